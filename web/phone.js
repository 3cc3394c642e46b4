// ha-pbx panel: the Phone page. A JsSIP user agent over the PBX's own `/ws`
// (relative URL, so it works behind a path prefix); the panel session's
// cookie makes that socket this extension's, so no password is in the page.
// Actions a browser cannot do over SIP (open the door, answer with AI,
// transfer) go to /api/phone/..., which acts on this extension's own call.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const media = { audio: { echoCancellation: false, autoGainControl: false, noiseSuppression: false }, video: false };
  const callOptions = { mediaConstraints: media, pcConfig: { iceServers: [] } };
  const phone = { ua: null, session: null, contacts: null, me: null, remote: null, ring: null, other: null, preview: null };
  window.haPbxPhone = phone;

  async function post(url, body) {
    const r = await fetch(url, { method: "POST", credentials: "same-origin", headers: body ? { "Content-Type": "application/json" } : {}, body: body ? JSON.stringify(body) : undefined });
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (!r.ok) throw new Error((data && data.error) || ("HTTP " + r.status));
    return data;
  }

  function error(msg) { $("ph-error").textContent = msg || ""; $("ph-error").hidden = !msg; }
  function state(label, on) { $("ph-state").textContent = label; $("ph-state").classList.toggle("on", !!on); }
  function contact(ext) { return ((phone.contacts && phone.contacts.extensions) || []).find((c) => c.extension === ext) || null; }
  function label(ext, display) {
    const c = contact(ext);
    const name = (c && c.name) || display || "";
    return name ? name + " (" + ext + ")" : ext;
  }

  // Ring tone: 440+480 Hz, 2 s on, 4 s off (WebAudio), while a call rings.
  function ringStart() {
    ringStop();
    let ctx;
    try { ctx = new AudioContext(); } catch (e) { return; }
    const gain = ctx.createGain();
    gain.gain.value = 0;
    gain.connect(ctx.destination);
    for (const f of [440, 480]) { const o = ctx.createOscillator(); o.frequency.value = f; o.connect(gain); o.start(); }
    const cycle = () => { const t = ctx.currentTime; gain.gain.setValueAtTime(0.1, t); gain.gain.setValueAtTime(0, t + 2); };
    cycle();
    phone.ring = { ctx, timer: setInterval(cycle, 6000) };
  }
  function ringStop() {
    if (!phone.ring) return;
    clearInterval(phone.ring.timer);
    phone.ring.ctx.close().catch(() => {});
    phone.ring = null;
  }

  function notify(text) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    try { const n = new Notification("ha-pbx", { body: text, tag: "ha-pbx-call" }); phone.notification = n; } catch (e) { /* not allowed here */ }
  }

  // What the call card shows: ringing (incoming), calling (outgoing), talking.
  function render(mode) {
    const s = phone.session;
    $("ph-call").hidden = !s;
    if (!s) return;
    const who = label(phone.other, phone.otherName);
    const c = contact(phone.other);
    $("ph-call-title").textContent = phone.intercom ? "Intercom" : mode === "ringing" ? "Incoming call" : mode === "calling" ? "Calling" : "In call";
    $("ph-intercom").hidden = !phone.intercom;
    $("ph-call-who").textContent = who;
    $("ph-answer").hidden = mode !== "ringing";
    $("ph-agent").hidden = mode !== "ringing" || !phone.contacts || !phone.contacts.agent;
    $("ph-door").hidden = mode !== "talking" || !(c && c.doorbell && c.door_open);
    $("ph-hold").hidden = mode !== "talking";
    // an intercom or page call is the PBX's doing: nothing to hand on
    $("ph-transfer-form").hidden = mode !== "talking" || phone.intercom;
    phone.mode = mode;
  }

  function attachMedia(pc) {
    pc.addEventListener("track", (e) => {
      if (e.track.kind === "video") {
        $("ph-video").srcObject = new MediaStream([e.track]);
        $("ph-video").hidden = false;
        return;
      }
      if (e.track.kind !== "audio") return;
      phone.remote = e.streams[0] || new MediaStream([e.track]);
      $("ph-remote").srcObject = phone.remote;
    });
  }

  // Door preview. When the PBX offers it (X-HA-PBX-Preview on the INVITE:
  // one panel phone rings for a SIP caller), the ringing page answers early,
  // a 183 with a receive-only peer connection, and plays the caller's audio
  // and video before anyone answers. "Answer" hands that same connection to
  // JsSIP, which adds the microphone and answers (200); the PBX lets the
  // caller hear the page only from then on, whatever the page sends before.
  async function previewStart(session, request) {
    let pc;
    try { pc = new RTCPeerConnection({ iceServers: [] }); } catch (e) { return; }
    phone.preview = { session, pc };
    attachMedia(pc);
    try {
      await pc.setRemoteDescription({ type: "offer", sdp: request.body });
      for (const t of pc.getTransceivers()) t.direction = "recvonly";
      await pc.setLocalDescription(await pc.createAnswer());
      await gathered(pc, 2000);
      if (!phone.preview || phone.preview.pc !== pc || !session.isInProgress()) return;
      request.reply(183, "Session Progress", ["Contact: " + session._contact], pc.localDescription.sdp);
      phone.preview.sent = true;
      $("ph-preview").hidden = false;
    } catch (e) {
      if (phone.preview && phone.preview.pc === pc) previewStop();
    }
  }
  function gathered(pc, ms) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, ms);
    });
  }
  // Not answered here (another phone did, the caller hung up, Hang up): the preview goes.
  function previewStop() {
    const p = phone.preview;
    phone.preview = null;
    $("ph-preview").hidden = true;
    if (p) try { p.pc.close(); } catch (e) { /* already closed */ }
  }
  // JsSIP builds its connection in answer(): it gets the preview's, so ICE
  // and DTLS carry on and the 200 answers in the same session.
  function answerWith(session) {
    const p = phone.preview;
    // A preview still being set up never reached the PBX: JsSIP answers afresh.
    if (p && !p.sent) previewStop();
    if (p && p.sent && p.session === session) {
      phone.preview = null;
      $("ph-preview").hidden = true;
      session._createRTCConnection = function () {
        this._connection = p.pc;
        p.pc.addEventListener("iceconnectionstatechange", () => {
          if (p.pc.iceConnectionState === "failed") this.terminate({ cause: "RTP Timeout", status_code: 408, reason_phrase: "RTP Timeout" });
        });
        this.emit("peerconnection", { peerconnection: p.pc });
      };
    }
    session.answer(callOptions);
  }

  function watch(session, mode) {
    phone.session = session;
    session.on("peerconnection", (e) => attachMedia(e.peerconnection));
    if (session.connection) attachMedia(session.connection);
    session.on("accepted", () => { ringStop(); render("talking"); });
    session.on("confirmed", () => { ringStop(); render("talking"); });
    const end = (e) => {
      ringStop();
      if (phone.preview && phone.preview.session === session) previewStop();
      $("ph-video").hidden = true;
      $("ph-video").srcObject = null;
      if (phone.notification) { phone.notification.close(); phone.notification = null; }
      if (phone.session === session) { phone.session = null; phone.remote = null; phone.mode = null; phone.intercom = false; render(); }
      if (e && e.cause && !["Terminated", "Canceled", "Bye", "Rejected"].includes(e.cause) && e.originator !== "local") error("Call ended: " + e.cause);
    };
    session.on("ended", end);
    session.on("failed", end);
    session.on("hold", () => { $("ph-hold").setAttribute("aria-pressed", "true"); });
    session.on("unhold", () => { $("ph-hold").setAttribute("aria-pressed", "false"); });
    render(mode);
  }

  // Intercom and paging: the PBX asks the phone to answer by itself with
  // `Call-Info: <...>;answer-after=0` (and the Alert-Info variants desk
  // phones read). It puts them only on the calls it makes for the intercom
  // code or a `page: true` group, never copied from a caller, and this
  // socket's only peer is the PBX: every INVITE here is the PBX's.
  function autoAnswer(request) {
    const callInfo = request.getHeaders("Call-Info").some((v) => /;\s*answer-after\s*=\s*0\s*(;|$)/i.test(v));
    const alertInfo = request.getHeaders("Alert-Info").some((v) => /;\s*info\s*=\s*(alert-autoanswer|intercom)\s*(;|$)/i.test(v));
    return callInfo || alertInfo;
  }

  function target(number) { return "sip:" + number + "@" + location.hostname; }

  function dial(number) {
    number = (number || "").trim();
    if (!/^[0-9*#+]{1,32}$/.test(number)) return error("Enter a number: digits, * or #.");
    if (!phone.ua || phone.session) return;
    error("");
    phone.other = number;
    phone.otherName = null;
    try { watch(phone.ua.call(target(number), callOptions), "calling"); } catch (e) { error(e.message); }
  }

  function keypad() {
    const keys = $("ph-keys");
    if (keys.children.length) return;
    for (const k of ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"]) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = k;
      b.className = "key";
      b.addEventListener("click", () => {
        // In a call the keypad sends DTMF (SIP INFO, as the SIP Core card does).
        if (phone.session && phone.mode === "talking") phone.session.sendDTMF(k, { transportType: "INFO", duration: 160, interToneGap: 200 });
        else $("ph-number").value += k;
      });
      keys.append(b);
    }
  }

  // The contact list as the PBX sees it now (who is registered), drawn
  // again only when it changed. False when it could not be read.
  async function loadContacts() {
    let data = null;
    try { data = await (await fetch("api/phone", { credentials: "same-origin" })).json(); } catch (e) { data = null; }
    if (!data || !data.extensions) return false;
    const changed = JSON.stringify(data) !== JSON.stringify(phone.contacts);
    phone.contacts = data;
    if (changed) renderContacts();
    return true;
  }

  function renderContacts() {
    const list = $("ph-contacts");
    list.replaceChildren();
    const d = phone.contacts;
    const entries = d.extensions.filter((e) => e.extension !== d.extension).map((e) => [e.extension, e.name, e.doorbell ? "doorbell" : e.registered ? "online" : "offline"]);
    for (const g of d.groups) entries.push([g.extension, g.name, "group"]);
    if (d.agent) entries.push([d.agent, "AI agent", "agent"]);
    for (const [ext, name, kind] of entries) {
      const li = document.createElement("li");
      li.dataset.extension = ext;
      const b = document.createElement("button");
      b.type = "button";
      b.className = "text contact";
      b.textContent = (name ? name + " " : "") + ext;
      b.setAttribute("aria-label", "Call " + (name ? name + " " : "") + ext);
      b.addEventListener("click", () => dial(ext));
      const tag = document.createElement("span");
      tag.className = "badge" + (kind === "online" ? " on" : "");
      tag.textContent = kind;
      li.append(b, tag);
      list.append(li);
    }
  }

  // The messages the agent took for this extension (its own only: the API
  // answers with the session's extension's), newest first; "Mark read".
  async function loadMessages() {
    const err = $("ph-messages-error");
    let data;
    try {
      const r = await fetch("api/phone/messages", { credentials: "same-origin" });
      data = await r.json();
      if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
      err.hidden = true;
    } catch (e) { err.textContent = e.message; err.hidden = false; return; }
    window.haPbxMessages.render($("ph-messages"), $("ph-messages-empty"), data.messages, {
      showCallee: false,
      markRead: (id) => post("api/phone/messages/" + encodeURIComponent(id) + "/read"),
      onError: (text) => { err.textContent = text; err.hidden = false; },
      reload: loadMessages,
    });
  }
  phone.loadMessages = loadMessages;

  phone.start = async function (me) {
    if (phone.ua) return;
    phone.me = me;
    loadMessages();
    // One tick for what changes on its own: the messages and the contacts'
    // registration states.
    setInterval(() => { loadMessages(); loadContacts(); }, 5000);
    keypad();
    if (!(await loadContacts())) return error("Cannot read the contact list.");
    if (typeof JsSIP === "undefined") return error("The phone library did not load.");
    // `?panel`: through Home Assistant's ingress this socket is the signed-in
    // user's phone (the SIP Core card's socket, without it, digests as ever).
    const ws = new URL("ws?panel", location.href);
    ws.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    // No password: this socket carries the session cookie, and the PBX
    // treats it as this extension (and refuses any other on it).
    phone.ua = new JsSIP.UA({ sockets: [new JsSIP.WebSocketInterface(ws.href)], uri: "sip:" + me.extension + "@" + location.hostname, register: true, register_expires: 300, user_agent: "ha-pbx panel (JsSIP 3.10.6)" });
    phone.ua.on("registered", () => { state("Registered", true); error(""); });
    phone.ua.on("unregistered", () => state("Not registered"));
    phone.ua.on("registrationFailed", (e) => { state("Not registered"); error("Registration failed: " + e.cause); });
    phone.ua.on("disconnected", () => state("Disconnected"));
    phone.ua.on("newRTCSession", (e) => {
      if (e.originator !== "remote") return;
      if (phone.session) { e.session.terminate({ status_code: 486 }); return; }
      phone.other = e.request.from.uri.user;
      phone.otherName = e.request.from.display_name;
      phone.intercom = autoAnswer(e.request);
      watch(e.session, "ringing");
      if (phone.intercom) {
        // Answered at once, no ring: the caller is heard as soon as media flows.
        notify("Intercom from " + label(phone.other, phone.otherName));
        answerWith(e.session);
        return;
      }
      if (e.request.hasHeader("X-HA-PBX-Preview") && e.request.body) previewStart(e.session, e.request);
      ringStart();
      notify("Call from " + label(phone.other, phone.otherName));
    });
    phone.ua.start();
    if ("Notification" in window && Notification.permission === "default") Notification.requestPermission().catch(() => {});
  };

  phone.stop = function () {
    ringStop();
    if (phone.ua) { phone.ua.stop(); phone.ua = null; }
    phone.session = null;
    render();
  };

  $("ph-answer").addEventListener("click", () => { if (phone.session) { ringStop(); answerWith(phone.session); } });
  $("ph-hangup").addEventListener("click", () => { if (phone.session) phone.session.terminate(); });
  $("ph-hold").addEventListener("click", () => {
    const s = phone.session;
    if (!s) return;
    if (s.isOnHold().local) s.unhold(); else s.hold();
  });
  $("ph-door").addEventListener("click", async () => { try { await post("api/phone/door"); error(""); } catch (e) { error(e.message); } });
  $("ph-agent").addEventListener("click", async () => { try { ringStop(); await post("api/phone/agent"); } catch (e) { error(e.message); } });
  $("ph-transfer-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try { await post("api/phone/transfer", { to: $("ph-transfer").value.trim() }); error(""); } catch (e) { error(e.message); }
  });
  $("ph-dial-form").addEventListener("submit", (ev) => { ev.preventDefault(); dial($("ph-number").value); });
  // "Show my settings": this extension's own SIP account, shown on request
  // (it holds the password) as text and, when ha-pbx keeps the password, a QR code.
  $("ph-account-btn").addEventListener("click", async () => {
    const err = $("ph-account-error");
    try {
      const r = await fetch("api/phone/account", { credentials: "same-origin", cache: "no-store" });
      const a = await r.json();
      if (!r.ok) throw new Error(a.error || ("HTTP " + r.status));
      err.hidden = true;
      $("ph-account").textContent = a.settings;
      $("ph-account").hidden = false;
      const img = $("ph-account-qr");
      if (a.qr_text) {
        img.src = "api/phone/account/qr.svg?" + Date.now();
        img.alt = "QR code of your SIP account (extension " + a.extension + ")";
        img.dataset.extension = a.extension;
      }
      $("ph-account-qr-box").hidden = !a.qr_text;
    } catch (e) { err.textContent = e.message; err.hidden = false; }
  });
})();
