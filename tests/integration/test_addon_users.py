"""Home Assistant users in add-on mode (src/addon/ha_users.rs, user_directory.rs,
panel.rs): a user opening the panel through ingress (the X-Remote-User-*
headers the Supervisor's proxy adds, from the proxy's address) gets an
extension (100, then the next free number) with a generated password, which
REGISTERs at once and survives a restart; the panel shows the SIP Core
configuration for every such user; the same request from another address is
refused and creates nothing. The proxy's 172.30.32.2 is played by 127.0.0.2."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from harness import procs
from harness.addon import AddonPbx
from harness.mqtt import Mosquitto, Recorder
from harness.qr import read_qr
from harness.panel import ENTRY, SIP_CORE, ingress_headers, my_extension, sip_core_config
from harness.supervisor import TOKEN, FakeSupervisor

PROXY = "127.0.0.2"
LAN = "127.0.0.1"
DOOR = {"extension": "101", "password": "door-secret-101", "name": "Front door"}
ALICE = ingress_headers("0a1b2c3d4e5f", "alice", "Alice Müller")
BOB = ingress_headers("9f8e7d6c5b4a", "bob", "Bob")


@pytest.fixture
def supervisor():
    s = FakeSupervisor(ingress_port=procs.free_port("sip"))
    s.start()
    yield s
    s.stop()


@pytest.fixture
def addon(workdir, registry, dumper, supervisor):
    pbx = AddonPbx(workdir / "addon", registry, options={"extensions": [DOOR]},
                   supervisor_url=supervisor.url, token=TOKEN, ingress_allow=PROXY)
    dumper.add("ha-pbx add-on", pbx)
    yield pbx
    pbx.stop()


def admins_alice_and_user_bob(supervisor) -> None:
    """What Home Assistant's config/auth/list says (through the Supervisor's WebSocket)."""
    supervisor.auth_users = [
        {"id": ALICE["X-Remote-User-Id"], "username": "alice", "name": "Alice Müller", "is_owner": True, "is_active": True,
         "local_only": False, "system_generated": False, "group_ids": ["system-admin"]},
        {"id": BOB["X-Remote-User-Id"], "username": "bob", "name": "Bob", "is_owner": False, "is_active": True,
         "local_only": False, "system_generated": False, "group_ids": ["system-users"]},
    ]


def test_panel_gives_each_ha_user_an_extension_that_registers(addon, supervisor):
    admins_alice_and_user_bob(supervisor)
    addon.launch()
    addon.wait_ready()
    port = supervisor.ingress_port

    # Alice's first visit: extension 100, a generated password
    status, page = addon.get(port, SIP_CORE, source=PROXY, headers=ALICE)
    assert status == 200, page
    ext, pw = my_extension(page)
    assert ext == "100" and len(pw) >= 16 and pw.isalnum()
    addon.wait_log("extension created for a Home Assistant user")

    # it registers right away, with that password only
    assert addon.register("100", pw) == 200
    assert addon.register("100", pw + "x") in (401, 403)

    # a second visit changes nothing
    status, page = addon.get(port, SIP_CORE, source=PROXY, headers=ALICE)
    assert my_extension(page) == ("100", pw)

    # Bob: 101 is the options' extension, so 102
    status, page = addon.get(port, SIP_CORE, source=PROXY, headers=BOB)
    bob_ext, bob_pw = my_extension(page)
    assert bob_ext == "102" and bob_pw != pw
    assert addon.register("102", bob_pw) == 200
    # Bob is no administrator: his own entry only, nobody else's password
    assert sip_core_config(page) == {"custom_wss_url": f"wss://ha.example.org:8123{ENTRY}/ws", "users": [
        {"ha_username": "Bob", "display_name": "Bob", "extension": "102", "password": bob_pw}]}
    assert pw.encode() not in page and DOOR["password"].encode() not in page and b"your own entry only" in page

    # the SIP Core configuration, for every HA user that has an extension: Alice administers
    status, page = addon.get(port, SIP_CORE, source=PROXY, headers=ALICE)
    cfg = sip_core_config(page)
    assert cfg == {
        "custom_wss_url": f"wss://ha.example.org:8123{ENTRY}/ws",
        "users": [
            {"ha_username": "Alice Müller", "display_name": "Alice Müller", "extension": "100", "password": pw},
            {"ha_username": "Bob", "display_name": "Bob", "extension": "102", "password": bob_pw},
        ],
    }

    # without user headers (e.g. a health check) the panel shows, creates nothing, and no password
    status, page = addon.get(port, SIP_CORE, source=PROXY)
    assert status == 200 and b'id="my-ext"' not in page
    assert sip_core_config(page)["users"] == [] and pw.encode() not in page and bob_pw.encode() not in page
    # a user id Home Assistant does not list: their own (new) extension only
    status, page = addon.get(port, SIP_CORE, source=PROXY, headers=ingress_headers("c0c0c0", "carol", "Carol"))
    assert [u["ha_username"] for u in sip_core_config(page)["users"]] == ["Carol"] and pw.encode() not in page

    # a header HA would never send is refused, naming it
    bad = dict(ALICE, **{"X-Remote-User-Id": "x" * 300})
    status, page = addon.get(port, SIP_CORE, source=PROXY, headers=bad)
    assert status == 400 and b"x-remote-user-id" in page

    # extensions survive a restart
    addon.stop()
    addon.launch()
    addon.wait_ready()
    assert addon.register("100", pw) == 200
    status, page = addon.get(port, SIP_CORE, source=PROXY, headers=ALICE)
    assert my_extension(page) == ("100", pw)


def test_websocket_of_an_ha_user_gets_its_extension(addon, supervisor):
    """The SIP Core card's socket through ingress (/ws with the proxy's user
    headers) maps the Home Assistant user to an extension before the card's
    first REGISTER; the same socket from another address is refused."""
    from harness.wsclient import WsClient
    addon.launch()
    addon.wait_ready()
    port = supervisor.ingress_port
    lan = WsClient(addon.bind, port, headers=ALICE)
    assert not lan.upgraded and " 403 " in lan.status_line + " ", lan.status_line
    lan.close()
    ws = WsClient(addon.bind, port, source=PROXY, headers=ALICE)
    assert ws.upgraded and ws.headers.get("sec-websocket-protocol") == "sip", ws.status_line
    addon.wait_log("SIP websocket of a Home Assistant user")
    status, page = addon.get(port, SIP_CORE, source=PROXY, headers=ALICE)
    ext, pw = my_extension(page)
    assert ext == "100", page
    assert addon.register("100", pw) == 200
    ws.close()
    bad = dict(ALICE, **{"X-Remote-User-Id": "x" * 300})
    refused = WsClient(addon.bind, port, source=PROXY, headers=bad)
    assert " 400 " in refused.status_line + " ", refused.status_line
    refused.close()


def test_panel_from_another_address_is_refused_and_creates_nothing(addon, supervisor):
    addon.launch()
    addon.wait_ready()
    port = supervisor.ingress_port
    mallory = ingress_headers("deadbeef", "mallory", "Mallory")
    status, body = addon.get(port, SIP_CORE, source=LAN, headers=mallory)
    assert status == 403, body
    addon.wait_log(f"ingress: refused GET {SIP_CORE} from {LAN} (403)")
    assert "extension created" not in addon.log_text()

    # the first real user still gets 100: nothing was handed out above
    status, page = addon.get(port, SIP_CORE, source=PROXY, headers=ALICE)
    assert status == 200 and my_extension(page)[0] == "100"
    assert [u["ha_username"] for u in sip_core_config(page)["users"]] == ["Alice Müller"]


def test_turning_the_option_off_removes_the_users_extensions(addon, supervisor):
    addon.launch()
    addon.wait_ready()
    port = supervisor.ingress_port
    _, page = addon.get(port, SIP_CORE, source=PROXY, headers=ALICE)
    ext, pw = my_extension(page)
    assert addon.register(ext, pw) == 200
    addon.stop()

    addon.options["ha_user_extensions"] = False
    addon.launch()
    addon.wait_ready()
    addon.wait_log("Home Assistant users' extensions removed")
    assert addon.register(ext, pw) in (401, 403, 404)
    status, page = addon.get(port, SIP_CORE, source=PROXY, headers=ALICE)
    assert status == 200 and b'id="my-ext"' not in page and b"ha_user_extensions" in page
    assert sip_core_config(page)["users"] == []
    # the options' extension is untouched
    assert addon.register("101", DOOR["password"]) == 200


def test_a_new_users_extension_reaches_home_assistant_over_mqtt_at_once(workdir, registry, dumper, addon, supervisor):
    broker = Mosquitto(workdir, registry).start()
    dumper.add("mosquitto", broker)
    rec = Recorder(broker, registry, "#").start()
    dumper.add("mqtt recorder", rec)
    supervisor.mqtt = {"host": "127.0.0.1", "port": broker.port, "ssl": False, "protocol": "3.1.1",
                       "addon": "core_mosquitto"}
    addon.launch()
    addon.wait_ready()
    rec.wait_topic("ha_pbx/status", lambda p: p == "online", timeout=15)
    rec.wait_for(lambda m: m.topic.endswith("/ha_pbx_ext_101/config") and m.payload != "",
                 timeout=10, what="discovery of the options' extension 101")
    assert not any(m.topic.endswith("/ha_pbx_ext_100/config") for m in rec.messages())

    t0 = time.monotonic()
    status, page = addon.get(supervisor.ingress_port, SIP_CORE, source=PROXY, headers=ALICE)
    assert status == 200 and my_extension(page)[0] == "100"
    # well before the bridge's 30 s safety resync
    rec.wait_for(lambda m: m.topic.endswith("/ha_pbx_ext_100/config") and "Alice" in m.payload,
                 timeout=5, what="discovery of Alice's extension 100")
    print(f"\nAlice's extension announced over MQTT {time.monotonic() - t0:.2f} s after her first visit")


INGRESS_ARTIFACTS = Path(__file__).resolve().parent / ".artifacts" / "panel"
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}
DB_FILE = "ha-pbx.sqlite"


@pytest.mark.netns
@pytest.mark.timeout(150)
def test_panel_through_the_ingress_path_admin_and_user(workdir, registry, addon, supervisor):
    """The panel (web/) in Chromium through an ingress path prefix, as HA's
    sidebar opens it: Alice, whom Home Assistant lists as an administrator
    (config/auth/list through the Supervisor's WebSocket), sees the
    administration and her Phone page, whose socket (`ws` relative to the
    prefix) registers her extension; Bob, a user, sees only his phone, and the
    administration API answers him 403. Screenshots of each at desktop and
    phone width."""
    from harness.browser import PanelBrowser
    from harness.ingress_proxy import IngressProxy
    alice_id, bob_id = ALICE["X-Remote-User-Id"], BOB["X-Remote-User-Id"]
    supervisor.auth_users = [
        {"id": alice_id, "username": "alice", "name": "Alice Müller", "is_owner": True, "is_active": True,
         "local_only": False, "system_generated": False, "group_ids": ["system-admin"]},
        {"id": bob_id, "username": "bob", "name": "Bob", "is_owner": False, "is_active": True,
         "local_only": False, "system_generated": False, "group_ids": ["system-users"]},
    ]
    addon.launch()
    addon.wait_ready()
    INGRESS_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    proxy = IngressProxy((addon.bind, supervisor.ingress_port), PROXY, ("0a1b2c3d4e5f", "alice", "Alice Müller"))
    browser = PanelBrowser(workdir, registry, "ingress")
    try:
        def fetch(method, url):
            r = browser.command("fetch", method=method, url=url)
            return r["status"], json.loads(r["body"] or "null")

        def shots(name):
            for size, (w, h) in SIZES.items():
                browser.command("screenshot", out=str(INGRESS_ARTIFACTS / f"ingress-{name}-{size}.png"), width=w, height=h)

        def phone_registered(ext):
            procs.wait_until(lambda: browser.command("text", selector="#ph-state")["text"] == "Registered", 15,
                             what=f"the Phone page of {ext} registered")
            # the PBX agrees: the panel's JsSIP holds the registration
            status, body = fetch("GET", "api/phone")
            assert status == 200 and body["extension"] == ext, body
            assert next(e for e in body["extensions"] if e["extension"] == ext)["registered"], body

        # Alice: administration (Extensions first), no Sign out (HA signed her in)
        r = browser.command("goto", url=proxy.url)
        assert r["status"] == 200, r
        browser.command("wait-text", text="Front door")
        assert browser.command("visible", selector="#nav")["visible"]
        assert not browser.command("visible", selector="#sign-out")["visible"]
        status, me = fetch("GET", "api/session")
        assert (status, me["role"], me["extension"], me["via"]) == (200, "admin", "100", "ingress"), me
        status, body = fetch("GET", "api/admin/extensions")
        assert status == 200 and {e["extension"] for e in body["extensions"]} == {"100", "101"}, body
        shots("extensions")
        browser.command("goto", url=proxy.url + "#diagnostics")
        browser.command("wait-text", text="SIP Core page")
        shots("diagnostics")
        browser.command("goto", url=proxy.url + "#phone")
        phone_registered("100")
        shots("phone-admin")
        # every request went through the prefix: relative URLs only
        assert "GET /ws?panel" in proxy.requests, proxy.requests
        assert "GET /api/admin/extensions" in proxy.requests

        # messages the agent took (rows as Store::add_message writes them): one for Bob, one for Alice
        import sqlite3
        now = int(time.time() * 1000)
        with sqlite3.connect(addon.data / DB_FILE, timeout=10) as c:
            bob_msg = c.execute("INSERT INTO messages (call_id, caller, callee, transcript, created_at) VALUES (?, ?, ?, ?, ?)",
                                ("agent-b", "101", "102", "The parcel is at the door, Bob.", now - 20_000)).lastrowid
            alice_msg = c.execute("INSERT INTO messages (call_id, caller, callee, transcript, created_at) VALUES (?, ?, ?, ?, ?)",
                                  ("agent-a", "101", "100", "Alice, secret note for you only.", now - 10_000)).lastrowid

        # Bob: only his phone; the administration API refuses him
        proxy.user = (bob_id, "bob", "Bob")
        browser.command("new-context")
        r = browser.command("goto", url=proxy.url)
        assert r["status"] == 200, r
        phone_registered("102")
        assert not browser.command("visible", selector="#nav")["visible"]
        assert not browser.command("visible", selector="#page-extensions")["visible"]
        for method, url in [("GET", "api/admin/extensions"), ("GET", "api/admin/diagnostics"), ("DELETE", "api/admin/extensions/101"),
                            ("GET", "api/admin/history"), ("GET", "api/calls")]:
            status, body = fetch(method, url)
            assert status == 403 and "administrators only" in body["error"], (method, url, status, body)
        browser.command("goto", url=proxy.url + "#extensions")  # asking for the page does not show it
        assert not browser.command("visible", selector="#page-extensions")["visible"]

        # his own messages, on his Phone page: transcript, caller, time; never Alice's
        browser.command("wait-text", text="The parcel is at the door, Bob.")
        assert "From 101" in browser.command("text", selector=f'#ph-messages li[data-message="{bob_msg}"]')["text"]
        assert "secret note" not in browser.command("text", selector="#page-phone")["text"]
        status, body = fetch("GET", "api/phone/messages")
        assert status == 200 and [m["id"] for m in body["messages"]] == [bob_msg], body
        # hostile: marking Alice's message read, by its id, is refused like a missing one
        assert fetch("POST", f"api/phone/messages/{alice_msg}/read")[0] == 404
        assert fetch("POST", "api/phone/messages/999999/read")[0] == 404
        for bad in ["-1", "0", "x", "1%20OR%201=1"]:
            assert fetch("POST", f"api/phone/messages/{bad}/read")[0] == 400, bad
        # his own SIP account, on request: the text and the QR code (read by zbarimg) carry the
        # password ha-pbx made for him; the API has no way to ask for anyone else's
        browser.command("click", name="Show my settings")
        browser.command("wait-text", text="Authentication ID: 102")
        status, account = fetch("GET", "api/phone/account")
        assert status == 200 and account["extension"] == "102" and account["password"], account
        assert f"Password: {account['password']}" in browser.command("text", selector="#ph-account")["text"]
        scanned = read_qr(browser, "#ph-account-qr", INGRESS_ARTIFACTS / "qr-own-102.png", "Bob's own QR code")
        print(f"Bob's own QR code read back: {scanned!r}")
        assert scanned == account["qr_text"] == f"sip:102:{account['password']}@{account['sip_server']};transport=udp", (scanned, account)
        assert fetch("GET", "api/phone/account?extension=100")[1]["extension"] == "102"
        shots("phone-user")
        browser.command("click-in", selector=f'#ph-messages li[data-message="{bob_msg}"]', name="Mark read")
        procs.wait_until(lambda: fetch("GET", "api/phone/messages")[1]["messages"][0]["read_at"] is not None, 10,
                         what="Bob's message marked read")
        with sqlite3.connect(addon.data / DB_FILE, timeout=10) as c:
            assert c.execute("SELECT read_at FROM messages WHERE id = ?", (alice_msg,)).fetchone()[0] is None

        # The SIP Core page through the prefix, deny by default: Bob sees his own entry;
        # no other extension's password is in the page or in any answer of the API he can reach
        alice_pw = my_extension(addon.get(supervisor.ingress_port, SIP_CORE, source=PROXY, headers=ALICE)[1])[1]
        bob_pw = my_extension(addon.get(supervisor.ingress_port, SIP_CORE, source=PROXY, headers=BOB)[1])[1]
        r = browser.command("goto", url=proxy.url + "sip-core")
        assert r["status"] == 200, r
        browser.command("wait-text", text="your own entry only")
        bob_sees = [browser.command("eval", js="document.documentElement.outerHTML")["value"]]
        bob_sees += [browser.command("fetch", method="GET", url=u)["body"] for u in ("api/session", "api/phone", "api/phone/messages", "api/phone/account", "health")]
        assert bob_pw in bob_sees[0] and "extension: '102'" in bob_sees[0], bob_sees[0]
        for secret in (alice_pw, DOOR["password"]):
            assert not any(secret in b for b in bob_sees), "another extension's password reached Bob"
        assert "'100'" not in browser.command("text", selector="#sipcore")["text"]
        shots("sip-core-user")
        # Alice administers: every Home Assistant user's entry
        proxy.user = (alice_id, "alice", "Alice Müller")
        browser.command("new-context")
        browser.command("goto", url=proxy.url + "sip-core")
        browser.command("wait-text", text="every Home Assistant user")
        cfg = browser.command("text", selector="#sipcore")["text"]
        assert alice_pw in cfg and bob_pw in cfg and "extension: '100'" in cfg and "extension: '102'" in cfg, cfg
        shots("sip-core-admin")
        assert not browser.has_event("pageerror"), browser.events
    finally:
        browser.quit()
        proxy.stop()
