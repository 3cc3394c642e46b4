// ha-pbx panel, Diagnostics page: each device's last SIP exchanges, the bans
// with an Unban button, the SIP Core card's configuration. Relative URLs only.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);

  // panel.js's API call (loaded after this file; used only once the page shows)
  const api = (method, url) => window.haPbxApi(method, url);

  function el(tag, value, cls) {
    const e = document.createElement(tag);
    if (value != null) e.textContent = String(value);
    if (cls) e.className = cls;
    return e;
  }

  function error(text) {
    $("dg-error").textContent = text || "";
    $("dg-error").hidden = !text;
  }

  function statusClass(code) {
    if (code >= 200 && code < 300) return "badge on";
    if (code >= 400) return "badge bad";
    return "badge";
  }

  function device(d) {
    const box = el("div", null, "device");
    box.dataset.device = d.extension || d.address;
    const title = d.extension
      ? "Extension " + d.extension + (d.name ? " (" + d.name + ")" : "")
      : "Address " + d.address + " (no extension here)";
    box.append(el("h3", title));
    if (d.exchanges.length === 0) {
      box.append(el("p", "No request since ha-pbx started.", "muted"));
      return box;
    }
    const wrap = el("div", null, "table-wrap");
    const table = el("table", null, "exchanges");
    const head = el("tr");
    for (const h of ["Time", "Request", "Response", "Reason", "From"]) head.append(el("th", h));
    const thead = el("thead");
    thead.append(head);
    const body = el("tbody");
    for (const x of d.exchanges) {
      const tr = el("tr");
      tr.append(el("td", new Date(x.at_unix_ms).toLocaleString(), "when"));
      tr.append(el("td", x.request, "request"));
      const st = el("td");
      st.append(el("span", x.status === 100 ? "100 Trying" : String(x.status), statusClass(x.status)));
      tr.append(st);
      tr.append(el("td", x.reason_words + (x.user ? " (" + x.user + ")" : ""), "reason"));
      tr.append(el("td", x.source + " " + x.transport.toUpperCase(), "source"));
      body.append(tr);
    }
    table.append(thead, body);
    wrap.append(table);
    box.append(wrap);
    return box;
  }

  function banRow(b) {
    const tr = el("tr");
    tr.dataset.address = b.address;
    tr.append(el("td", b.address), el("td", b.extension || "every extension"),
      el("td", new Date(b.until_unix * 1000).toLocaleString()), el("td", b.why, "reason"));
    const actions = el("td");
    const btn = el("button", "Unban", "small");
    btn.type = "button";
    btn.setAttribute("aria-label", "Unban " + b.address);
    btn.addEventListener("click", async () => {
      try { await api("DELETE", "api/admin/bans/" + encodeURIComponent(b.address)); error(""); } catch (e) { error(e.message); }
      load();
    });
    actions.append(btn);
    tr.append(actions);
    return tr;
  }

  async function load() {
    let diag, bans;
    try {
      [diag, bans] = await Promise.all([api("GET", "api/admin/diagnostics"), api("GET", "api/admin/bans")]);
    } catch (e) { return error(e.message); }
    error("");
    $("dg-devices").replaceChildren(...diag.devices.map(device));
    $("dg-devices-empty").hidden = diag.devices.length > 0;
    const body = $("dg-bans").querySelector("tbody");
    body.replaceChildren(...bans.bans.map(banRow));
    $("dg-bans-empty").hidden = bans.bans.length > 0;
    $("dg-bans").hidden = bans.bans.length === 0;
    // only when it changed, so a selection in it survives the refresh
    if ($("dg-sip-core").textContent !== diag.sip_core_yaml) $("dg-sip-core").textContent = diag.sip_core_yaml;
  }

  $("dg-copy").addEventListener("click", async () => {
    const yaml = $("dg-sip-core").textContent;
    try {
      await navigator.clipboard.writeText(yaml);
      $("dg-copied").textContent = "Copied.";
    } catch (e) {
      // no clipboard (plain http): select it for Ctrl+C
      const range = document.createRange();
      range.selectNodeContents($("dg-sip-core"));
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      $("dg-copied").textContent = "Selected: press Ctrl+C.";
    }
  });

  window.haPbxDiagnostics = { load };
})();
