"""Browser call steps shared by test_webrtc.py and test_webrtc_video.py: the
dashboard (a BrowserPhone, harness/browser.py) as extension 102 or 103, a
baresip doorbell as 101, calls set up and ended step by step, and the tone
checks on what each side recorded. The tests run in a loopback-only network
namespace (`@pytest.mark.netns`, conftest.py)."""
from __future__ import annotations

import concurrent.futures
import subprocess
import time
from pathlib import Path

from . import audio, procs
from .browser import BrowserPhone, PanelBrowser

# The panel's Phone page previews a ringing call (its receive-only 183 answer went, the
# remote stream is set)...
PREVIEWING = "!!(window.haPbxPhone.preview && window.haPbxPhone.preview.sent && window.haPbxPhone.remote)"
# ...and the RTP packets of audio it has received since (its DTLS handshake may take a
# second or more on a loaded machine after the preview's 183 went).
PREVIEW_RECEIVED = """(async () => { const p = window.haPbxPhone.preview; if (!p) return 0; let n = 0;
  (await p.pc.getStats()).forEach(r => { if (r.type === 'inbound-rtp' && r.kind === 'audio') n = r.packetsReceived; }); return n; })()"""

# The Phone page's tests' extensions: a doorbell that opens with "1#" (sent as SIP INFO),
# and two panel users.
PHONE_EXTENSIONS = [
    {"extension": "101", "password": "secret101", "name": "Front door", "kind": "doorbell", "door_open": "1#", "dtmf": "info"},
    {"extension": "102", "password": "secret102", "name": "Kitchen"},
    {"extension": "103", "password": "secret103", "name": "Garage"},
]


def tone48k(workdir: Path, hz: int) -> Path:
    """Chromium's fake microphone plays this file (48 kHz, like a real one)."""
    path = workdir / f"browser-tone{hz}.wav"
    subprocess.run(["sox", "-D", "-n", "-r", "48000", "-c", "1", "-b", "16", str(path),
                    "synth", "90", "sine", str(hz), "vol", "0.35"], check=True, timeout=60)
    return path



def signed_in_phone(pbx, workdir: Path, registry, name: str, ext: str = "102", mic_hz: int = 1000) -> PanelBrowser:
    """The panel's Phone page of `ext`, signed in with its SIP password and
    registered; its (fake) microphone plays `mic_hz`."""
    page = PanelBrowser(workdir, registry, name, source_wav=tone48k(workdir, mic_hz))
    page.command("goto", url=pbx.http_base + "/")
    page.command("fill", label="Extension", value=ext)
    page.command("fill", label="Password", value=pbx.passwords[ext])
    page.command("click", name="Sign in")
    page.command("wait-text", text="Registered", timeout=15)
    return page


def wait_preview_audio(page: PanelBrowser, what: str, packets: int = 25, timeout: float = 10) -> None:
    """Wait until `page` previews the ringing call and the caller's audio reaches it
    (`packets` RTP packets received): only then is a recording of the preview whole."""
    procs.wait_until(lambda: page.command("eval", js=PREVIEWING)["value"], timeout, interval=0.2,
                     what=f"the door preview playing in {what}")
    procs.wait_until(lambda: page.command("eval", js=PREVIEW_RECEIVED)["value"] >= packets, timeout, interval=0.2,
                     what=f"the door's audio reaching {what}")


def browser_102(pbx, browser_factory, workdir, strip_candidates: bool = False,
                opus_only: bool = False, video: bool = False) -> BrowserPhone:
    """The dashboard registered as 102, playing 1000 Hz."""
    phone = browser_factory("browser102", tone48k(workdir, 1000))
    phone.register(f"ws://{pbx.host}:{pbx.http_port}/ws", "102", pbx.host, pbx.passwords["102"],
                   strip_candidates=strip_candidates, opus_only=opus_only, video=video)
    return phone


def doorbell_101(pbx, baresip_factory, signals):
    """A baresip doorbell registered as 101, playing 440 Hz (answers by itself)."""
    door = baresip_factory("door101", user="101", domain=f"{pbx.host}:{pbx.sip_port}",
                           password=pbx.passwords["101"], source=signals["tone440"]).start()
    door.wait_registered(15)
    return door


def door_calls_browser_answers(pbx, door, phone: BrowserPhone) -> None:
    """The doorbell (101) calls the browser (102), whose page answers."""
    door.dial(pbx.uri("102"))
    phone.wait_event("incoming", 15)
    phone.command("answer")
    phone.wait_event("confirmed", 15)
    door.wait_established(10)


def browser_hangs_up(phone: BrowserPhone, door) -> None:
    """The page hangs up; the scripted device (harness/ua.py) takes the BYE."""
    phone.command("hangup")
    bye = door.wait_request("BYE", 10)
    assert bye is not None, "no BYE reached the device"
    door.respond(bye, 200)
    phone.wait_event("ended", 10)


def assert_both_tones(browser_wav: Path, door_wav: Path) -> None:
    """The browser heard the doorbell's 440 Hz and the doorbell the browser's 1000 Hz."""
    heard_by_browser = audio.analyze_tone(browser_wav)
    heard_by_door = audio.analyze_tone(door_wav)
    print(f"browser heard: {heard_by_browser}\ndoorbell heard: {heard_by_door}")
    assert heard_by_browser.ok(440, min_seconds=4), f"browser (expects 440 Hz from the doorbell): {heard_by_browser}"
    assert heard_by_door.ok(1000, min_seconds=4), f"doorbell (expects 1000 Hz from the browser): {heard_by_door}"


def browser_103_calls_102(pbx, browser_factory, workdir, video: bool = False):
    """103 (plays 440 Hz) calls 102 (plays 1000 Hz), whose page answers."""
    callee = browser_102(pbx, browser_factory, workdir, video=video)
    caller = browser_factory("browser103", tone48k(workdir, 440))
    caller.register(f"ws://{pbx.host}:{pbx.http_port}/ws", "103", pbx.host, pbx.passwords["103"], video=video)
    caller.command("call", target=f"sip:102@{pbx.host}")
    callee.wait_event("incoming", 15)
    callee.command("answer")
    for p in (caller, callee):
        p.wait_event("confirmed", 15)
        p.wait_event("track", 10)
    time.sleep(1.5)
    return caller, callee


def browsers_hear_each_other(caller: BrowserPhone, callee: BrowserPhone, seconds: float) -> None:
    """Both record at once (each in its own thread's command), the caller
    hangs up, and each heard the other's tone."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        rec_callee, rec_caller = pool.map(lambda p: p.record(seconds), (callee, caller))
    caller.command("hangup")
    callee.wait_event("ended", 10)
    heard_by_callee = audio.analyze_tone(rec_callee)
    heard_by_caller = audio.analyze_tone(rec_caller)
    print(f"102 heard: {heard_by_callee}\n103 heard: {heard_by_caller}")
    assert heard_by_callee.ok(440, min_seconds=seconds - 2), f"102 (expects 440 Hz from 103): {heard_by_callee}"
    assert heard_by_caller.ok(1000, min_seconds=seconds - 2), f"103 (expects 1000 Hz from 102): {heard_by_caller}"
