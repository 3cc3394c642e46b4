// ha-pbx panel: one renderer for the messages the agent took, used by the
// Phone page ("My messages", the extension's own) and the Calls page (every
// extension's, for administrators). Each page fetches its list from its own
// endpoint and says how a message is marked read.
"use strict";
window.haPbxMessages = (function () {
  function el(tag, value, cls) {
    const x = document.createElement(tag);
    x.textContent = value == null ? "" : String(value);
    if (cls) x.className = cls;
    return x;
  }

  // One message as a list item: a "New" badge and a "Mark read" button while
  // it is unread, the caller, whom it was for (showCallee), the time and the
  // transcript. "Mark read" awaits markRead(id), shows a failure with
  // onError(text), then calls reload().
  function messageItem(m, opts) {
    const li = document.createElement("li");
    li.dataset.message = m.id;
    li.className = m.read_at ? "read" : "unread";
    const head = el("div", "", "head");
    if (!m.read_at) head.append(el("span", "New", "badge on"));
    const when = new Date(m.at).toLocaleString();
    head.append(el("strong", "From " + m.caller), el("span", (opts.showCallee ? " for " + m.callee + ", " : " ") + when, "muted"));
    if (!m.read_at) {
      const b = el("button", "Mark read", "small");
      b.type = "button";
      b.addEventListener("click", async () => {
        try { await opts.markRead(m.id); } catch (e) { opts.onError(e.message); }
        opts.reload();
      });
      head.append(b);
    }
    li.append(head, el("p", m.transcript, "transcript"));
    return li;
  }

  // `list` holds one item a message (newest first, as the API answers);
  // `empty` ("No messages.") shows when there are none.
  function render(list, empty, messages, opts) {
    list.replaceChildren(...messages.map((m) => messageItem(m, opts)));
    empty.hidden = messages.length > 0;
  }

  return { messageItem, render };
})();
