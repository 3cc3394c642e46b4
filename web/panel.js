// ha-pbx panel: plain JavaScript, relative URLs only (works behind a path prefix).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const pages = ["sign-in", "phone", "extensions", "calls", "diagnostics"];
  let me = null;
  let pollTimer = null;

  async function api(method, url, body) {
    const opts = { method, headers: {}, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(url, opts);
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (!r.ok) {
      const err = new Error((data && data.error) || ("HTTP " + r.status));
      err.status = r.status;
      throw err;
    }
    return data;
  }

  window.haPbxApi = api;

  function show(page) {
    for (const p of pages) $("page-" + p).hidden = p !== page;
    for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === page);
    // Registrations and calls change on their own: the page asks again every 2 s.
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
    if (page === "extensions") { loadExtensions(); pollTimer = setInterval(loadExtensions, 2000); }
    if (page === "calls") { loadCalls(); pollTimer = setInterval(loadCalls, 2000); }
    if (page === "diagnostics") { window.haPbxDiagnostics.load(); pollTimer = setInterval(window.haPbxDiagnostics.load, 2000); }
  }

  function notice(text) {
    $("notice").textContent = text;
    $("notice").hidden = !text;
  }

  function text(tag, value, cls) {
    const el = document.createElement(tag);
    el.textContent = value == null ? "" : String(value);
    if (cls) el.className = cls;
    return el;
  }

  function button(label, onclick, cls) {
    const b = text("button", label, "small" + (cls ? " " + cls : ""));
    b.type = "button";
    b.addEventListener("click", onclick);
    return b;
  }

  function when(unix) {
    if (!unix) return "";
    return new Date(unix * 1000).toLocaleString();
  }

  async function loadExtensions() {
    let data;
    try { data = await api("GET", "api/admin/extensions"); } catch (e) { return notice(e.message); }
    for (const el of document.querySelectorAll(".sip-server")) el.textContent = data.sip_server;
    $("agent-hint").hidden = !data.agent;
    $("agent-ext").textContent = data.agent || "";
    $("next-steps").hidden = data.extensions.some((e) => e.registered);
    const body = $("ext-table").querySelector("tbody");
    body.replaceChildren();
    for (const e of data.extensions) {
      const tr = document.createElement("tr");
      tr.dataset.extension = e.extension;
      tr.append(text("td", e.extension));
      const name = text("td", e.name || "");
      if (!e.editable) { name.append(" "); name.append(text("span", "read-only: configuration", "badge ro")); }
      tr.append(name);
      const state = document.createElement("td");
      state.append(text("span", e.registered ? "Registered" : "Not registered", "badge" + (e.registered ? " on" : "")));
      tr.append(state);
      const d = e.devices[0] || {};
      tr.append(text("td", d.user_agent || ""));
      tr.append(text("td", d.address ? d.address + " (" + d.transport + ")" : "", "wide"));
      tr.append(text("td", when(d.registered_at), "wide"));
      const actions = document.createElement("td");
      if (e.editable) {
        actions.append(button("Show settings", () => showSettings(e.extension)));
        actions.append(button("New password", () => newPassword(e.extension)));
        actions.append(button("Remove", () => removeExtension(e.extension), "danger"));
      }
      tr.append(actions);
      body.append(tr);
    }
    $("ext-empty").hidden = data.extensions.length > 0;
    $("groups-card").hidden = data.groups.length === 0;
    const groups = $("groups");
    groups.replaceChildren();
    for (const g of data.groups) {
      groups.append(text("li", g.extension + " " + (g.name || "") + ": " + (g.everyone ? "everyone" : g.members.join(", "))));
    }
  }

  function showSettingsText(s) {
    $("settings").textContent = "Extension " + s.extension + (s.name ? " (" + s.name + ")" : "") + "\n" + s.settings;
    $("settings").hidden = false;
    // The QR code of the same account, made by the server (it holds the password: never cached).
    $("settings-qr").src = "api/admin/extensions/" + encodeURIComponent(s.extension) + "/qr.svg?" + Date.now();
    $("settings-qr").alt = "QR code of extension " + s.extension + "'s SIP account";
    $("settings-qr").dataset.extension = s.extension;
    $("settings-qr-box").hidden = false;
  }

  async function showSettings(ext) {
    try { showSettingsText(await api("GET", "api/admin/extensions/" + encodeURIComponent(ext))); } catch (e) { notice(e.message); }
  }

  async function newPassword(ext) {
    if (!confirm("Give extension " + ext + " a new password? Its phones must be set up again.")) return;
    try { showSettingsText(await api("PATCH", "api/admin/extensions/" + encodeURIComponent(ext), { new_password: true })); } catch (e) { notice(e.message); }
  }

  async function removeExtension(ext) {
    if (!confirm("Remove extension " + ext + "? Its phones are signed off at once.")) return;
    try { await api("DELETE", "api/admin/extensions/" + encodeURIComponent(ext)); $("settings").hidden = true; $("settings-qr-box").hidden = true; } catch (e) { notice(e.message); }
    loadExtensions();
  }

  function showError(id, message) {
    $(id).textContent = message || "";
    $(id).hidden = !message;
  }

  // Live calls: Hang up; Transfer (answered calls: who leaves, and to whom); Answer with AI
  // (ringing calls, when the agent is configured). A refusal shows the API's message.
  let transferCall = null;
  async function callAction(method, url, body) {
    showError("calls-error", "");
    try { await api(method, url, body); return true; } catch (e) { showError("calls-error", e.message); return false; }
  }
  function openTransfer(c) {
    transferCall = c.call_id;
    $("transfer-title").textContent = "Transfer the call " + c.caller + " → " + c.callee + ": one side leaves, the other is connected to the number you type.";
    const sel = $("transfer-leaving");
    sel.replaceChildren();
    for (const [ext, role] of [[c.callee, "callee"], [c.caller, "caller"]]) {
      const o = text("option", ext + " (" + role + ")");
      o.value = ext;
      sel.append(o);
    }
    $("transfer-form").hidden = false;
    $("transfer-to").focus();
  }
  function closeTransfer() { transferCall = null; $("transfer-form").hidden = true; $("transfer-form").reset(); showError("calls-error", ""); }
  $("transfer-cancel").addEventListener("click", closeTransfer);
  $("transfer-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!transferCall) return;
    const body = { leaving: $("transfer-leaving").value, to: $("transfer-to").value.trim() };
    if (await callAction("POST", "api/calls/" + encodeURIComponent(transferCall) + "/transfer", body)) closeTransfer();
    loadCalls();
  });

  async function loadCalls() {
    let data;
    try { data = await api("GET", "api/calls"); } catch (e) { return notice(e.message); }
    const body = $("calls-table").querySelector("tbody");
    body.replaceChildren();
    for (const c of data.calls) {
      const tr = document.createElement("tr");
      tr.dataset.call = c.call_id;
      tr.append(text("td", c.caller), text("td", c.callee), text("td", c.answered_by_agent ? "Talking with the AI agent" : c.answered ? "Talking" : "Ringing"));
      const actions = document.createElement("td");
      const id = encodeURIComponent(c.call_id);
      actions.append(button("Hang up", async () => { await callAction("DELETE", "api/calls/" + id); loadCalls(); }, "danger"));
      if (c.answered) actions.append(button("Transfer", () => openTransfer(c)));
      if (!c.answered && me && me.agent) actions.append(button("Answer with AI", async () => { await callAction("POST", "api/calls/" + id + "/agent"); loadCalls(); }));
      tr.append(actions);
      body.append(tr);
    }
    $("calls-empty").hidden = data.calls.length > 0;
    if (transferCall && !data.calls.some((c) => c.call_id === transferCall && c.answered)) closeTransfer();
    loadHistory(false);
    loadMessages();
  }

  // History: the first page is refreshed with the live calls; "Older calls" appends the next.
  // The filter is the API's (number: caller or callee; ended: how it ended); the CSV link carries it.
  let historyNext = null;
  function historyFilter() {
    const q = new URLSearchParams();
    const number = $("hf-number").value.trim();
    if (number) q.set("number", number);
    if ($("hf-ended").value) q.set("ended", $("hf-ended").value);
    return q;
  }
  function historyRow(c) {
    const tr = document.createElement("tr");
    const dur = c.ended_at == null ? "in progress" : c.duration_ms == null ? "not answered" : Math.round(c.duration_ms / 1000) + " s";
    tr.append(text("td", c.caller), text("td", c.callee), text("td", new Date(c.started_at).toLocaleString()),
      text("td", dur), text("td", (c.disposition || "") + (c.end_reason ? " (" + c.end_reason + ")" : "")));
    return tr;
  }
  async function loadHistory(more) {
    let data;
    const q = historyFilter();
    const csv = q.toString();
    $("history-csv").setAttribute("href", "api/admin/history.csv" + (csv ? "?" + csv : ""));
    q.set("limit", "25");
    if (more && historyNext) q.set("before", historyNext);
    try { data = await api("GET", "api/admin/history?" + q.toString()); } catch (e) { return showError("history-error", e.message); }
    showError("history-error", "");
    const body = $("history-table").querySelector("tbody");
    if (!more) body.replaceChildren();
    for (const c of data.calls) body.append(historyRow(c));
    historyNext = data.next_before;
    $("history-older").hidden = !historyNext;
    $("history-empty").hidden = body.children.length > 0;
    $("history-empty").textContent = csv ? "No calls match the filter." : "No calls yet.";
  }
  $("history-older").addEventListener("click", () => { if (pollTimer) { clearInterval(pollTimer); pollTimer = null; } loadHistory(true); });
  $("history-filter").addEventListener("submit", (ev) => { ev.preventDefault(); loadHistory(false); });

  // Messages the agent took: newest first; new ones stand out until "Mark read".
  async function loadMessages() {
    let data;
    try { data = await api("GET", "api/messages"); } catch (e) { return notice(e.message); }
    window.haPbxMessages.render($("messages"), $("messages-empty"), data.messages, {
      showCallee: true,
      markRead: (id) => api("POST", "api/messages/" + encodeURIComponent(id) + "/read"),
      onError: notice,
      reload: loadMessages,
    });
  }

  $("add-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    $("add-error").hidden = true;
    try {
      const s = await api("POST", "api/admin/extensions", { extension: f.extension.value.trim(), name: f.name.value, password: f.password.value });
      f.reset();
      showSettingsText(s);
    } catch (e) {
      $("add-error").textContent = e.message;
      $("add-error").hidden = false;
    }
    loadExtensions();
  });

  $("sign-in-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    $("sign-in-error").hidden = true;
    try {
      await api("POST", "api/session", { extension: f.extension.value.trim(), password: f.password.value });
      f.reset();
      start();
    } catch (e) {
      $("sign-in-error").textContent = e.status === 401 ? "Wrong extension or password." : e.message;
      $("sign-in-error").hidden = false;
    }
  });

  $("sign-out").addEventListener("click", async () => {
    window.haPbxPhone.stop();
    try { await api("DELETE", "api/session"); } catch (e) { /* signed out anyway */ }
    location.hash = "";
    start();
  });

  window.addEventListener("hashchange", route);

  function route() {
    if (!me) return show("sign-in");
    if (me.role !== "admin") { show("phone"); return window.haPbxPhone.start(me); }
    const asked = location.hash.slice(1);
    // an administrator with an extension (Home Assistant's, through ingress) has a phone too
    if (asked === "phone" && me.extension) { show("phone"); return window.haPbxPhone.start(me); }
    show(asked === "calls" || asked === "diagnostics" ? asked : "extensions");
  }

  async function start() {
    if (location.hash === "#link-used") {
      notice("That sign-in link was used already or is wrong: each link works once. Restart ha-pbx for a new one, or use the administrator secret.");
      history.replaceState(null, "", location.pathname);
    }
    try { me = await api("GET", "api/session"); } catch (e) { me = null; }
    $("nav").hidden = !me || me.role !== "admin";
    const ingress = !!me && me.via === "ingress";
    // through Home Assistant there is no signing out: Home Assistant signed the user in
    $("sign-out").hidden = !me || ingress;
    $("nav-phone").hidden = !me || !me.extension;
    $("dg-addon-sip-core").hidden = !ingress;
    // through ingress the card's address is Home Assistant's, which only the SIP Core page knows
    $("dg-sip-core").hidden = $("dg-copy").hidden = ingress;
    if (ingress) $("signed-in-as").textContent = "Your Home Assistant user has";
    if (me && me.extension) $("user-ext").textContent = me.extension;
    route();
  }

  start();
})();
