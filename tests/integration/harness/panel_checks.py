"""The standalone panel's administration checks that test_panel.py's newcomer
run makes on its PBX (ha-pbx on its defaults, HTTP at BASE, SIP 5060, in the
test's network namespace): the API called as the panel calls it, screenshots
at desktop and phone width, the QR code of an extension's settings read back
from the page, and the Diagnostics page (wrong password, unknown extension,
a ban and Unban)."""
from __future__ import annotations

import datetime
import re
import time
import urllib.request
from pathlib import Path

from . import procs
from .browser import PanelBrowser
from .pbx import api_request
from .qr import read_qr


ARTIFACTS = Path(__file__).resolve().parent.parent / ".artifacts" / "panel"
BASE = "http://127.0.0.1:8088"
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}



def http(method: str, path: str, token: str | None = None, body: dict | None = None, base: str = BASE) -> tuple[int, dict]:
    return api_request(base, method, path, body, token)


def shots(browser: PanelBrowser, page: str) -> None:
    for size, (w, h) in SIZES.items():
        browser.command("screenshot", out=str(ARTIFACTS / f"{page}-{size}.png"), width=w, height=h)



def qr_code(admin: PanelBrowser, token: str, ext: str, password: str) -> None:
    """The QR code beside `ext`'s settings: the image the page shows, cut from a
    screenshot of the page and read back with zbarimg, is the SIP account the API
    gives as `qr_text`; the SVG is never cached; bad requests get a clear 4xx."""
    scanned = read_qr(admin, "#settings-qr", ARTIFACTS / f"qr-{ext}.png", f"the QR code of {ext}", extension=ext)
    status, shown = http("GET", f"/api/admin/extensions/{ext}", token)
    assert status == 200, shown
    print(f"QR code of {ext} read back: {scanned!r}")
    assert scanned == shown["qr_text"] == f"sip:{ext}:{password}@127.0.0.1:5060;transport=udp", (scanned, shown)
    # the settings text names every listener (the default: UDP and TCP on 5060) and the one the code carries
    assert "Transport: UDP (port 5060), TCP (port 5060); the QR code: UDP\n" in shown["settings"], shown["settings"]
    shots(admin, "extensions-qr")
    req = urllib.request.Request(f"{BASE}/api/admin/extensions/{ext}/qr.svg", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.headers["Content-Type"] == "image/svg+xml" and r.headers["Cache-Control"] == "no-store", r.headers
        assert r.read().startswith(b"<?xml"), "not an SVG document"
    status, body = http("GET", "/api/admin/extensions/999/qr.svg", token)
    assert status == 404 and body["error"] == "extension 999: no such extension", body
    status, body = http("GET", "/api/admin/extensions/" + "%0d%0a" * 40 + "/qr.svg", token)
    assert status == 400 and body["error"].startswith("extension: not an extension number"), body
    assert http("GET", f"/api/admin/extensions/{ext}/qr.svg", "wrong-token")[0] == 401


def device_text(browser: PanelBrowser, device: str) -> str:
    return browser.command("text", selector=f'#dg-devices [data-device="{device}"]')["text"]


def same_refusal(a, b) -> None:
    """Two SIP refusals a scanner cannot tell apart: status, reason phrase, header names."""
    assert a is not None and b is not None, (a, b)
    assert (a.status, a.reason) == (b.status, b.reason) == (403, "Forbidden"), (a, b)
    names = lambda m: sorted(n.lower() for n, _ in m.headers)  # noqa: E731
    assert names(a) == names(b), (names(a), names(b))


def diagnostics(admin: PanelBrowser, token: str, pw111: str) -> None:
    """Diagnostics: a wrong password for 111 and an unknown extension from
    127.0.0.5 (same 403 on the wire, told apart only on the page); 111's good
    registration; ban_after_failures (10) failures ban 127.0.0.5, the page
    shows until when; Unban lifts it and 127.0.0.5 registers."""
    from .sip import SipClient
    hostile = "127.0.0.5"  # other phones use 127.0.0.1, which the ban must not touch
    with SipClient("127.0.0.1", 5060, local_host=hostile) as c:
        wrong = c.register("111", "not-" + pw111)
        unknown = c.register("nosuchuser", "whatever")
        same_refusal(wrong, unknown)
        admin.command("goto", url=BASE + "/#diagnostics")
        admin.command("wait-text", text="custom_wss_url")
        procs.wait_until(lambda: "wrong password" in device_text(admin, "111"), 10, interval=0.5, what="111's wrong password shown")
        t111 = device_text(admin, "111")
        assert re.search(r"REGISTER sip:127\.0\.0\.1:5060\s+403\s+wrong password\s+127\.0\.0\.5:\d+ UDP", t111), t111
        assert re.search(r"REGISTER sip:127\.0\.0\.1:5060\S*\s+200\s+registered\s+127\.0\.0\.1:\d+ UDP", t111), t111  # baresip's
        procs.wait_until(lambda: "unknown extension (nosuchuser)" in device_text(admin, hostile), 10, interval=0.5, what="the unknown extension under its address")
        assert "nosuchuser" not in device_text(admin, "110") + t111
        yaml = admin.command("text", selector="#dg-sip-core")["text"]
        assert "custom_wss_url: ws://127.0.0.1:8088/ws" in yaml and "extension: '111'" in yaml and pw111 in yaml, yaml
        # 8 more wrong ones: the 10th failure bans the address, whose next request is not answered
        answers = [c.register("111", f"guess{i}", timeout=2) for i in range(8)]
        assert [a.status for a in answers] == [403] * 8, answers
        assert c.register("111", pw111, timeout=1.5) is None, "a banned address was answered"
    procs.wait_until(lambda: "address banned until" in device_text(admin, "111"), 10, interval=0.5, what="the ban shown under 111")
    admin.command("wait-button", name=f"Unban {hostile}")
    row = admin.command("text", selector=f'#dg-bans tr[data-address="{hostile}"]')["text"]
    assert "every extension" in row and "too many failed SIP authentications" in row, row
    status, bans = http("GET", "/api/admin/bans", token)
    (ban,) = [b for b in bans["bans"] if b["address"] == hostile]
    assert 290 <= ban["until_unix"] - time.time() <= 301 and ban["kind"] == "sip_auth", ban  # security.ban_secs: 300
    shown = re.search(r"address banned until (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", device_text(admin, "111"))
    assert shown, device_text(admin, "111")
    shown_unix = datetime.datetime.strptime(shown.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp()
    assert abs(shown_unix - ban["until_unix"]) <= 1, (shown.group(1), ban)
    shots(admin, "diagnostics")
    # hostile unbans: clear 4xx naming the field
    status, body = http("DELETE", "/api/admin/bans/not-an-address", token)
    assert status == 400 and body["error"].startswith("address:"), body
    assert http("DELETE", "/api/admin/bans/127.0.0.9", token)[0] == 404
    status, body = http("DELETE", "/api/admin/bans/%0d%0aX:%20y%00" + "9" * 3000, token)
    assert status == 400 and "\r" not in body["error"] and "\x00" not in body["error"] and len(body["error"]) < 200, body
    admin.command("click", name=f"Unban {hostile}")
    admin.command("wait-text", text="No address is banned.")
    with SipClient("127.0.0.1", 5060, local_host=hostile) as c:
        ok = c.register("111", pw111)
        assert ok is not None and ok.status == 200, ok
        assert c.register("111", pw111, expires=0).status == 200  # leaves 111 with baresip's binding only
    procs.wait_until(lambda: re.search(r"200\s+registered\s+127\.0\.0\.5", device_text(admin, "111")), 10, interval=0.5,
                     what="the registration after the unban shown")
    admin.command("eval", js="document.getElementById('dg-sip-core').scrollIntoView()")
    shots(admin, "diagnostics-sip-core")

