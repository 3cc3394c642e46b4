"""The standalone panel, as a newcomer meets it: ha-pbx started with no
arguments in an empty directory (so on its defaults, SIP 5060 and HTTP 8088:
the test runs in its own loopback-only network namespace, `netns`, where
those ports are free) prints a one-time sign-in link; Chromium follows it,
adds extensions 110 and 111 in the panel (fields found by label, buttons by
name), and baresip phones register with the passwords the panel shows, at
once, and call each other (tones checked both ways). Then: a wrong password
in the sign-in form is refused and sets no session; an extension's session
gets 403 from the administration API; the link works once only; removing an
extension drops its registration. The Calls page: the call shows under live calls
(Transfer's refusals shown from the API), then in the history with its
duration; the filter (number, how it ended) narrows it; "Download CSV" gives the
rows with a hostile caller neutralised; a message the agent took (a row written
into the database as the agent's Store::add_message writes it) shows as new and
"Mark read" marks it; Transfer from the page connects 110 to a third phone,
112 (110's tone heard there). Diagnostics: a wrong password, an unknown
extension (the same 403 on the wire), a ban with its end, Unban, registering
again (`harness/panel_checks.py`). The Phone page (second test): an extension's
page registers on its session, rings for a baresip doorbell, answers (tones both
ways), holds, opens the door, transfers the doorbell to a baresip phone (tones
both ways there, the page's leg gone) and dials (test_panel_phone.py: Hold and resume
with the audio after it, Answer before the preview). Screenshots of each page at
desktop and phone width go to tests/integration/.artifacts/panel/."""
from __future__ import annotations

import csv
import json
import re
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from harness import audio, procs
from harness.browser import PanelBrowser
from harness.browser_flows import PHONE_EXTENSIONS
from harness.panel_checks import ARTIFACTS, BASE, SIZES, diagnostics as _diagnostics, http as _http, qr_code as _qr_code, shots as _shots
from harness.pbx import pbx_binary

HOSTILE = "=cmd|' /C calc'!A0"


def _seed_calls_page(db: Path) -> int:
    """What the Calls page must show that a baresip call cannot make: a call whose
    caller is a spreadsheet formula (the columns call_history writes) and a message
    the agent took (the columns Store::add_message writes). The id of the message."""
    now = int(time.time() * 1000)
    with sqlite3.connect(db, timeout=10) as c:
        c.execute("INSERT INTO calls (call_id, caller, callee, started_at, answered_at, ended_at, disposition, end_reason)"
                  " VALUES (?, ?, '111', ?, ?, ?, 'answered', 'caller_hangup')",
                  ("hostile-1", HOSTILE, now - 60_000, now - 58_000, now - 50_000))
        cur = c.execute("INSERT INTO messages (call_id, caller, callee, transcript, created_at) VALUES (?, ?, ?, ?, ?)",
                        ("agent-1", "110", "111", "Please call me back about the parcel at the door.", now - 30_000))
        return cur.lastrowid


def _history(browser: PanelBrowser) -> str:
    return browser.command("text", selector="#history-table tbody")["text"]


def _add_extension(browser: PanelBrowser, ext: str, name: str) -> str:
    """Add `ext` in the panel's form; the password the panel shows for it."""
    browser.command("fill", label="Extension", value=ext)
    browser.command("fill", label="Name", value=name)
    browser.command("click", name="Add extension")
    browser.command("wait-text", text=f"Extension {ext} ({name})")
    settings = browser.command("text", selector="#settings")["text"]
    m = re.search(r"Password: (\S+)", settings)
    assert m, settings
    assert "SIP server / registrar / proxy: 127.0.0.1:5060" in settings, settings
    return m.group(1)



@pytest.fixture
def first_run(workdir, registry, dumper):
    """ha-pbx with no arguments in an empty directory: (its directory, the link, the process)."""
    d = workdir / "newcomer"
    d.mkdir()
    log = d / "ha-pbx.log"
    proc = registry.popen([str(pbx_binary())], log=log, cwd=str(d))

    class Log(procs.LogFile):
        log_path = log
    dumper.add("ha-pbx (no arguments)", Log())

    def link():
        if proc.poll() is not None:
            raise RuntimeError(f"ha-pbx exited {proc.returncode}:\n{procs.tail(log)}")
        m = re.search(r"sign in as administrator once with (http://\S+\?login=\w+)", log.read_text(errors="replace"))
        return m and m.group(1)
    url = procs.wait_until(link, 20, what="the sign-in link in the log")
    return d, url, proc


@pytest.mark.netns
@pytest.mark.timeout(180)
def test_newcomer_adds_extensions_in_the_panel_and_phones_call(first_run, workdir, registry, baresip_factory, signals):
    d, link, proc = first_run
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert link.startswith("http://127.0.0.1:8088/?login="), link  # no route in the namespace: loopback
    token = (d / "data" / "admin_token").read_text().strip()
    assert len(token) >= 32
    assert (d / "data" / "admin_token").stat().st_mode & 0o777 == 0o600

    admin = PanelBrowser(workdir, registry, "admin")
    r = admin.command("goto", url=link)
    assert r["url"] == BASE + "/", r  # the token left the address bar
    admin.command("wait-text", text="Next steps")
    _shots(admin, "extensions-empty")
    pw110 = _add_extension(admin, "110", "Hall")
    pw111 = _add_extension(admin, "111", "Kitchen")
    pw112 = _add_extension(admin, "112", "Garage")
    _qr_code(admin, token, "112", pw112)

    # The phones register at once with what the panel showed.
    domain = "127.0.0.1:5060"
    p110 = baresip_factory("110", user="110", domain=domain, password=pw110, source=signals["tone440"]).start()
    p111 = baresip_factory("111", user="111", domain=domain, password=pw111, source=signals["tone1000"]).start()
    p112 = baresip_factory("112", user="112", domain=domain, password=pw112, source=signals["tone1000"]).start()
    t0 = time.monotonic()
    p110.wait_registered(10)
    p111.wait_registered(10)
    p112.wait_registered(10)
    print(f"both registered {time.monotonic() - t0:.2f}s after start")

    admin.command("goto", url=BASE + "/#extensions")
    procs.wait_until(lambda: "Not registered" not in admin.command("text", selector='tr[data-extension="110"]')["text"],
                     10, interval=0.5, what="110 shown registered (the page polls)")
    row = admin.command("text", selector='tr[data-extension="110"]')["text"]
    assert "baresip" in row, row  # the device's User-Agent
    _shots(admin, "extensions")

    message_id = _seed_calls_page(d / "data" / "ha-pbx.sqlite")
    p110.dial("sip:111@127.0.0.1:5060")
    p110.wait_established(20)
    p111.wait_established(10)
    admin.command("goto", url=BASE + "/#calls")
    admin.command("wait-text", text="Talking")
    # Live call actions: Transfer asks who leaves and to whom; the API's refusal is shown in the page.
    assert admin.command("eval", js="document.querySelectorAll('#calls-table button').length")["value"] == 2  # Hang up, Transfer
    assert "Answer with AI" not in admin.command("text", selector="#calls-table")["text"]  # no agent configured
    admin.command("click-in", selector="#calls-table", name="Transfer")
    admin.command("fill", label="Transfer to", value="999")
    admin.command("click", name="Transfer call")
    admin.command("wait-text", text="`999` is not an extension")
    admin.command("fill", label="Transfer to", value="110")
    admin.command("click", name="Transfer call")
    admin.command("wait-text", text="extension 110 is already in call")
    admin.command("wait-text", text="Please call me back about the parcel")
    _shots(admin, "calls")
    admin.command("click", name="Cancel")
    assert not admin.command("visible", selector="#calls-error")["visible"]
    procs.wait_until(lambda: p110.recordings() and p111.recordings()
                     and audio.analyze_tone(p111.recordings()[-1]).ok(440, min_seconds=3)
                     and audio.analyze_tone(p110.recordings()[-1]).ok(1000, min_seconds=3),
                     20, interval=0.5, what="3 s of tone each way")
    print("110 heard", audio.analyze_tone(p110.recordings()[-1]), "111 heard", audio.analyze_tone(p111.recordings()[-1]))
    # Transfer from the page: 111 (the callee, by default) leaves, 110 is connected to 112 and heard there.
    admin.command("click-in", selector="#calls-table", name="Transfer")
    admin.command("fill", label="Transfer to", value="112")
    admin.command("click", name="Transfer call")
    p111.wait_closed(10)
    p112.wait_established(20)
    procs.wait_until(lambda: re.search(r"110\s+112\s+Talking", admin.command("text", selector="#calls-table tbody")["text"]),
                     10, interval=0.5, what="live calls showing 110 talking to 112")
    procs.wait_until(lambda: p112.recordings() and audio.analyze_tone(p112.recordings()[-1]).ok(440, min_seconds=2),
                     20, interval=0.5, what="112 hearing 110's tone after the transfer")
    print("112 heard", audio.analyze_tone(p112.recordings()[-1]))
    p110.hangup()
    p110.wait_closed(10)
    p112.wait_closed(10)
    # The call leaves live calls and appears in the history with its duration.
    admin.command("wait-text", text="No call right now.")
    procs.wait_until(lambda: re.search(r"110\s+111\s+.*\d+ s", admin.command("text", selector="#history-table tbody")["text"]),
                     10, interval=0.5, what="the call in the history with a duration")
    _shots(admin, "calls-history")

    # The filter is the API's: by number (caller or callee), by how the call ended.
    assert HOSTILE in _history(admin)
    admin.command("fill", label="Extension or number", value="110")
    admin.command("click", name="Filter")
    procs.wait_until(lambda: HOSTILE not in _history(admin), 10, interval=0.3, what="the filter dropping the call 110 was not in")
    assert re.search(r"110\s+111\s+.*\d+ s", _history(admin)), _history(admin)
    admin.command("select", label="How it ended", value="missed")
    admin.command("click", name="Filter")
    admin.command("wait-text", text="No calls match the filter.")
    admin.command("fill", label="Extension or number", value="1 1")
    admin.command("click", name="Filter")
    admin.command("wait-text", text="number: an extension or number")
    admin.command("fill", label="Extension or number", value="111")
    admin.command("select", label="How it ended", value="answered")
    admin.command("click", name="Filter")
    procs.wait_until(lambda: HOSTILE in _history(admin) and "110" in _history(admin), 10, interval=0.3, what="both calls to 111")
    _shots(admin, "calls-filtered")
    # CSV from the page's own link: the same filter, a header, the call with its duration, the formula neutralised.
    dl = admin.command("download", name="Download CSV", out=str(ARTIFACTS / "calls.csv"))
    assert dl["filename"] == "ha-pbx-calls.csv" and dl["url"].endswith("history.csv?number=111&ended=answered"), dl
    raw = (ARTIFACTS / "calls.csv").read_bytes()
    assert b"\r\n" in raw, raw[:200]
    rows = list(csv.DictReader(raw.decode().splitlines()))
    print("CSV:", raw.decode())
    assert [r["caller"] for r in rows] == ["110", "'" + HOSTILE], rows
    assert all(r["callee"] == "111" and r["disposition"] == "answered" for r in rows), rows
    assert float(rows[0]["duration_s"]) >= 3 and rows[1]["duration_s"] == "8.0", rows
    assert not any(v[:1] in "=+-@" and v for r in rows for v in r.values()), rows
    # The export's headers, and its cap said in X-Rows-Capped (limit=1 of the two calls to 111).
    req = urllib.request.Request(BASE + "/api/admin/history.csv?number=111&limit=1", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/csv"), r.headers
        assert r.headers["Content-Disposition"] == 'attachment; filename="ha-pbx-calls.csv"', r.headers
        assert r.headers["X-Rows-Capped"] == "1", r.headers
        capped = r.read().decode().split("\r\n")
    assert len(capped) == 3 and capped[0].startswith("call_id,caller,callee") and capped[1].split(",")[1] == "110", capped
    # Bad filters from anyone: 400 naming the parameter, never a crash.
    for query, named in (("limit=0", "limit:"), ("limit=x", "limit:"), ("ended=bogus", "ended:"), ("number=%27%20OR%201%3D1", "number:"),
                         ("before=-1", "before:"), ("bogus=1", "`bogus`"), ("number=1&number=2", "duplicate field `number`")):
        for path in ("/api/admin/history?", "/api/admin/history.csv?"):
            status, body = _http("GET", path + query, token)
            assert status == 400 and named in body["error"], (path, query, status, body)
    status, body = _http("GET", "/api/admin/history?number=111&ended=answered&limit=1", token)
    assert status == 200 and len(body["calls"]) == 1 and body["next_before"], body
    # The agent's message: new, then "Mark read" marks it (the API says so too).
    li = f'#messages li[data-message="{message_id}"]'
    assert "New" in admin.command("text", selector=li)["text"]
    assert "From 110" in admin.command("text", selector=li)["text"]
    admin.command("click-in", selector=li, name="Mark read")
    procs.wait_until(lambda: admin.command("eval", js=f"document.querySelector('{li}').className")["value"] == "read",
                     10, interval=0.3, what="the message shown read")
    status, body = _http("GET", "/api/messages", token)
    (msg,) = [m for m in body["messages"] if m["id"] == message_id]
    assert msg["read_at"], msg
    assert "Mark read" not in admin.command("text", selector=li)["text"]

    # Sign-in form: a wrong password is refused and sets no session.
    user = PanelBrowser(workdir, registry, "user")
    user.command("goto", url=BASE + "/")
    user.command("wait-text", text="Sign in")
    user.command("fill", label="Extension", value="110")
    user.command("fill", label="Password", value="not-" + pw110)
    user.command("click", name="Sign in")
    user.command("wait-text", text="Wrong extension or password.")
    assert not any(c["name"] == "ha_pbx_session" for c in user.command("cookies")["cookies"])
    assert user.command("fetch", method="GET", url="api/session")["status"] == 401
    _shots(user, "sign-in")
    # The right one: a session, HttpOnly and SameSite=Strict, that is not an administrator's.
    user.command("fill", label="Password", value=pw110)
    user.command("click", name="Sign in")
    user.command("wait-text", text="You are signed in as extension")
    (cookie,) = [c for c in user.command("cookies")["cookies"] if c["name"] == "ha_pbx_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie
    _shots(user, "signed-in-extension")
    for method, url in (("GET", "api/admin/extensions"), ("DELETE", "api/admin/extensions/111"), ("GET", "api/calls"),
                        ("GET", "api/admin/extensions/111/qr.svg"), ("GET", "api/admin/extensions/110/qr.svg"),
                        ("GET", "api/admin/history"), ("GET", "api/admin/history.csv"), ("GET", "api/messages"),
                        ("POST", f"api/messages/{message_id}/read"),
                        ("GET", "api/admin/diagnostics"), ("GET", "api/admin/bans"), ("DELETE", "api/admin/bans/127.0.0.1")):
        r = user.command("fetch", method=method, url=url)
        assert r["status"] == 403, (method, url, r)
        assert "administrators only" in r["body"], r

    t_diag = time.monotonic()
    _diagnostics(admin, token, pw111)
    print(f"diagnostics checks took {time.monotonic() - t_diag:.1f}s")

    # The link works once.
    user.command("new-context")
    r = user.command("goto", url=link)
    assert r["url"].endswith("/#link-used") or r["url"] == BASE + "/", r
    user.command("wait-text", text="That sign-in link was used already")
    assert user.command("fetch", method="GET", url="api/session")["status"] == 401
    assert user.command("fetch", method="GET", url="api/admin/extensions")["status"] == 401

    # The stored secret stays the administrator's bearer token; removing 110
    # drops its registration at once.
    status, body = _http("DELETE", "/api/admin/extensions/110", token)
    assert status == 200 and body["registrations_dropped"] == 1, body
    status, body = _http("GET", "/api/admin/extensions", token)
    assert [e["extension"] for e in body["extensions"]] == ["111", "112"], body
    status, health = _http("GET", "/health")
    assert health["registered_extensions"] == 2, health
    # Read-only and bad input: clear 4xx.
    assert _http("POST", "/api/admin/extensions", token, {"extension": "111"})[0] == 409
    for code in ("*8", "**5", "*80111"):  # a feature code, or a number it would swallow
        status, body = _http("POST", "/api/admin/extensions", token, {"extension": code})
        assert status == 409 and "feature_codes." in body["error"], (code, body)
    status, body = _http("POST", "/api/admin/extensions", token, {"extension": "1 1"})
    assert status == 400 and "extension" in body["error"], body
    assert _http("POST", "/api/admin/extensions", token, {"extension": "112", "bogus": 1})[0] == 400
    assert _http("GET", "/api/admin/extensions", "wrong-token")[0] == 401

    # Hostile sign-ins: clear 4xx, never a crash; then the address is refused (429),
    # the right password included, after security.ban_after_failures (default 10).
    assert _http("POST", "/api/session", None, {"extension": "111"})[0] == 400
    status, body = _http("POST", "/api/session", None, {"extension": "111\r\nX: y\x00", "password": "x" * 5000})
    assert status == 401 and body["error"] == "wrong extension or password", body
    assert _http("POST", "/api/session", None, {"extension": "999", "password": "nope"})[0] == 401
    statuses = [_http("POST", "/api/session", None, {"extension": "111", "password": f"guess{i}"})[0] for i in range(10)]
    assert statuses[-1] == 429 and set(statuses) <= {401, 429}, statuses
    assert _http("POST", "/api/session", None, {"extension": "111", "password": pw111})[0] == 429
    assert "\r\nX: y" not in (d / "ha-pbx.log").read_text(errors="replace")
    assert proc.poll() is None, "ha-pbx died"


# ------------------------------------------------------------ the Phone page
PHONE_TOKEN = "phone-page-admin-token-0123456789abcdef"
# Video frames the ringing page's preview decoded.
PREVIEW_FRAMES = "(document.getElementById('ph-video').getVideoPlaybackQuality() || {}).totalVideoFrames || 0"
# RTP packets of audio the previewing page has sent.
PREVIEW_SENT = """(async () => { const p = window.haPbxPhone.preview; if (!p) return 0; let n = 0;
  (await p.pc.getStats()).forEach(r => { if (r.type === 'outbound-rtp' && r.kind === 'audio') n = r.packetsSent; }); return n; })()"""
# The next preview answer sends the page's microphone (a page that does not keep to receive-only).
SENDING_PREVIEW = """(() => { const orig = RTCPeerConnection.prototype.createAnswer;
  RTCPeerConnection.prototype.createAnswer = async function (...a) {
    RTCPeerConnection.prototype.createAnswer = orig;
    const mic = await navigator.mediaDevices.getUserMedia({ audio: true });
    const t = this.getTransceivers().find(x => x.receiver.track.kind === 'audio');
    await t.sender.replaceTrack(mic.getAudioTracks()[0]);
    t.direction = 'sendrecv';
    return orig.apply(this, a);
  }; })()"""


def _ws_register(pbx, ext: str, headers: dict) -> "object":
    """A REGISTER for `ext` without credentials on a /ws opened with `headers`: the reply."""
    from harness.sip import parse_message, rand_token
    from harness.wsclient import WsClient
    ws = WsClient(pbx.host, pbx.http_port, headers=headers)
    assert ws.upgraded, ws.headers
    try:
        tag, call_id = rand_token(8), rand_token(16)
        ws.send_text("\r\n".join([
            f"REGISTER sip:{pbx.host} SIP/2.0", f"Via: SIP/2.0/WS {rand_token(10)}.invalid;branch=z9hG4bK{rand_token(10)}",
            "Max-Forwards: 69", f"To: <sip:{ext}@{pbx.host}>", f"From: <sip:{ext}@{pbx.host}>;tag={tag}",
            f"Call-ID: {call_id}", "CSeq: 1 REGISTER", f"Contact: <sip:{rand_token(8)}@{rand_token(8)}.invalid;transport=ws>;expires=60",
            "Expires: 60", "Content-Length: 0", "", ""]))
        return parse_message(ws.recv_text(5).encode())
    finally:
        ws.close()


def _registered(pbx, ext: str) -> list[dict]:
    req = urllib.request.Request(f"{pbx.http_base}/api/admin/extensions", headers={"Authorization": f"Bearer {PHONE_TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        body = json.loads(r.read())
    return next(e for e in body["extensions"] if e["extension"] == ext)["devices"]


@pytest.mark.netns
@pytest.mark.timeout(180)
def test_phone_page_rings_answers_opens_the_door_and_dials(pbx_factory, baresip_factory, workdir, registry, signals):
    """Extension 102 signs in; its Phone page registers over /ws on its session
    (no password in the page); the baresip doorbell 101 (door_open "1#") calls
    it: the page rings with the caller's name, Answer gives tones both ways,
    Open door delivers 1 and # to the doorbell, Transfer moves the doorbell
    to the garage phone 103 (the page's leg ends; 440 and 700 Hz heard both
    ways; the doorbell may not be the one to leave); the
    dial pad then calls 103 (Hold and resume: test_panel_phone.py). Hostile: a forged cookie gets the digest
    challenge, a session for 102 cannot REGISTER 103."""
    from harness.browser_flows import signed_in_phone, wait_preview_audio
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pbx = pbx_factory(extensions=PHONE_EXTENSIONS, overrides={"http": {"api_token": PHONE_TOKEN}}).start()
    base = pbx.http_base
    page = signed_in_phone(pbx, workdir, registry, "phone102")
    html = page.command("eval", js="document.documentElement.outerHTML")["value"]
    assert pbx.passwords["102"] not in html, "the SIP password is in the page"
    devices = procs.wait_until(lambda: _registered(pbx, "102"), 10, interval=0.3, what="102 registered over /ws")
    assert devices[0]["transport"].lower() == "ws", devices
    assert "ha-pbx panel" in devices[0]["user_agent"], devices

    # Hostile /ws: the session cookie of 102 with the panel's own Origin binds the socket to 102...
    (cookie,) = [c["value"] for c in page.command("cookies")["cookies"] if c["name"] == "ha_pbx_session"]
    own = {"Cookie": f"ha_pbx_session={cookie}", "Origin": base}
    r = _ws_register(pbx, "103", own)
    assert r is not None and r.status == 403, f"a session for 102 registered 103: {r}"
    # ...a forged cookie, or the right one from another site's page, is digest as before.
    for headers in ({"Cookie": "ha_pbx_session=forged" + "x" * 40, "Origin": base},
                    {"Cookie": f"ha_pbx_session={cookie}", "Origin": "http://evil.example"},
                    {"Cookie": f"ha_pbx_session={cookie}"}):
        r = _ws_register(pbx, "102", headers)
        assert r is not None and r.status == 401, (headers, r)
    assert len(_registered(pbx, "103")) == 0
    # The Phone API is an extension session's: none → 401; no call → 409 naming why.
    try:
        urllib.request.urlopen(urllib.request.Request(f"{base}/api/phone", headers={"Authorization": f"Bearer {PHONE_TOKEN}"}), timeout=5)
        raise AssertionError("/api/phone answered without a session")
    except urllib.error.HTTPError as e:
        assert e.code == 401, e.code
    r = page.command("fetch", method="POST", url="api/phone/door")
    assert r["status"] == 409 and "no answered call with a doorbell" in r["body"], r
    r = page.command("fetch", method="POST", url="api/phone/transfer", body={"to": "103", "x": 1})
    assert r["status"] == 400, r
    contacts = json.loads(page.command("fetch", method="GET", url="api/phone")["body"])
    assert [(e["extension"], e["doorbell"], e["door_open"]) for e in contacts["extensions"]] == [
        ("101", True, True), ("102", False, False), ("103", False, False)], contacts
    assert "1#" not in json.dumps(contacts), "the door code reached the browser"

    garage = baresip_factory("garage103", user="103", domain=f"{pbx.host}:{pbx.sip_port}",
                             password=pbx.passwords["103"], source=audio.make_tone(workdir / "tone700.wav", 700, seconds=90)).start()
    garage.wait_registered(15)
    # The doorbell rings the page: caller's name, Answer.
    door = baresip_factory("door101", user="101", domain=f"{pbx.host}:{pbx.sip_port}",
                           password=pbx.passwords["101"], source=signals["tone440"], video=True).start()
    door.wait_registered(15)
    door.dial(pbx.uri("102"))
    page.command("wait-button", name="Answer", timeout=15)
    assert "Front door (101)" in page.command("text", selector="#ph-call")["text"]
    assert page.command("eval", js="!!window.haPbxPhone.ring")["value"], "no ring tone while ringing"
    # Door preview: still ringing, the page already plays the doorbell (its 183 went with a
    # receive-only answer); the doorbell hears nothing of the page until Answer (checked below).
    wait_preview_audio(page, "the ringing page")
    previewed = page.dir / "preview-of-door.wav"
    page.command("record", ms=4000, out=str(previewed), timeout=30)
    frames = procs.wait_until(lambda: (n := page.command("eval", js=PREVIEW_FRAMES)["value"]) >= 25 and n,
                              10, interval=0.3, what="the doorbell's video decoded in the ringing page")
    print(f"the preview decoded {frames} video frames")
    assert page.command("visible", selector="#ph-preview")["visible"] and page.command("visible", selector="#ph-answer")["visible"]
    for size, (w, h) in SIZES.items():
        page.command("screenshot", out=str(ARTIFACTS / f"phone-ringing-{size}.png"), width=w, height=h)
    assert door.ctrl.events and not any(e.get("type") == "CALL_ESTABLISHED" for e in door.ctrl.events), "the doorbell was answered before Answer"
    # baresip writes what it decodes as it arrives: before Answer (the page previewed for 4 s) nothing came.
    heard_before_answer = sum(max(0, f.stat().st_size - 44) for f in door.recordings())
    page.command("click", name="Answer")
    door.wait_established(10)
    page.command("wait-button", name="Open door", timeout=10)
    recorded = page.dir / "heard-from-door.wav"
    page.command("record", ms=5000, out=str(recorded), timeout=40)
    for size, (w, h) in SIZES.items():
        page.command("screenshot", out=str(ARTIFACTS / f"phone-in-call-{size}.png"), width=w, height=h)
    mark = len(door.ctrl.events)
    page.command("click", name="Open door")
    first = door.ctrl.wait_event("CALL_DTMF_START", 10, since=mark)
    second = door.ctrl.wait_event("CALL_DTMF_START", 10, since=door.ctrl.events.index(first) + 1)
    assert (first.get("param"), second.get("param")) == ("1", "#"), (first, second)
    # Transfer of the call the page answered on its own WebRTC bridge: the page leaves, the
    # doorbell (re-INVITEd from the gone bridge onto the relay) talks to the garage phone 103.
    door_file = door.recordings()[-1]
    heard_by_door = audio.analyze_tone(door_file)
    door_mark = len(audio.load(door_file)[0])
    r = page.command("fetch", method="POST", url="api/phone/transfer", body={"to": "102"})
    assert r["status"] == 400 and "already in call" in r["body"], r
    # The doorbell cannot be the one to leave: the page's bridge has no relay to hand on (REST, as MQTT).
    (live,) = _http("GET", "/api/calls", PHONE_TOKEN, base=base)[1]["calls"]
    status, body = _http("POST", f"/api/calls/{live['call_id']}/transfer", PHONE_TOKEN, {"leaving": "101", "to": "103"}, base=base)
    assert status == 409 and "only 102 can leave by transfer" in body.get("error", ""), (status, body)
    page.command("fill", label="Transfer to", value="103")
    page.command("click", name="Transfer")
    garage.wait_established(15)
    page.command("wait-button", name="Answer", state="hidden", timeout=10)
    assert page.command("eval", js="window.haPbxPhone.session === null")["value"], "the page's leg outlived the transfer"
    calls = _http("GET", "/api/calls", PHONE_TOKEN, base=base)[1]["calls"]
    assert [(c["caller"], c["callee"]) for c in calls] == [("101", "103")], calls
    garage_file = procs.wait_until(lambda: garage.recordings() and garage.recordings()[-1], 10, interval=0.3, what="the garage's recording")
    procs.wait_until(lambda: audio.analyze_tone(garage_file).ok(440, min_seconds=3)
                     and audio.analyze_tone_samples(audio.load(door_file)[0][door_mark:]).ok(700, min_seconds=3),
                     25, interval=0.5, what="3 s of tone each way between the doorbell and the garage after the transfer")
    heard_by_garage = audio.analyze_tone(garage_file)
    door.hangup()
    door.wait_closed(10)
    garage.wait_closed(10)
    heard_after_transfer = audio.analyze_tone_samples(audio.load(door_file)[0][door_mark:])
    heard_in_preview = audio.analyze_tone(previewed)
    heard_by_page = audio.analyze_tone(recorded)
    print(f"page heard in the preview {heard_in_preview}\npage heard {heard_by_page}\ndoorbell heard {heard_by_door}\n"
          f"after the transfer: the garage heard {heard_by_garage}, the doorbell heard {heard_after_transfer}")
    assert heard_in_preview.ok(440, min_seconds=2.5), heard_in_preview
    assert heard_by_page.ok(440, min_seconds=3), heard_by_page
    assert heard_by_door.ok(1000, min_seconds=3), heard_by_door
    assert heard_by_garage.ok(440, min_seconds=3), heard_by_garage
    assert heard_after_transfer.ok(700, min_seconds=3), heard_after_transfer
    print(f"the doorbell's recording before Answer: {heard_before_answer} bytes of audio")
    assert heard_before_answer < 320, f"the doorbell received {heard_before_answer} bytes of audio (20 ms is 320) while the page previewed"

    # A hostile page: its preview answer sends (sendrecv, its 1000 Hz microphone), yet the PBX gives
    # the doorbell nothing before Answer; Hang up while previewing refuses the call.
    page.command("eval", js=SENDING_PREVIEW)
    door.clear_recordings()
    door.dial(pbx.uri("102"))
    page.command("wait-button", name="Answer", timeout=15)
    sent = procs.wait_until(lambda: (n := page.command("eval", js=PREVIEW_SENT)["value"]) >= 150 and n,
                            15, interval=0.3, what="the previewing page sending 3 s of audio")
    heard_while_sending = sum(max(0, f.stat().st_size - 44) for f in door.recordings())
    print(f"the hostile preview sent {sent} packets; the doorbell received {heard_while_sending} bytes of audio")
    assert heard_while_sending < 320, f"the doorbell received {heard_while_sending} bytes of the previewing page's audio"
    page.command("click", name="Hang up")
    door.wait_closed(10)
    page.command("wait-button", name="Answer", state="hidden", timeout=10)
    assert page.command("eval", js="window.haPbxPhone.preview === null")["value"], "the preview outlived the call"

    # The dial pad calls 103 (baresip answers by itself); the page hangs up. Hold and resume on
    # such a call, with the audio after resuming, are test_panel_phone.py's.
    page.command("fill", label="Number", value="103")
    page.command("click", name="Call")
    garage.wait_established(15)
    page.command("wait-text", text="In call", timeout=10)
    page.command("click", name="Hang up")
    garage.wait_closed(10)

