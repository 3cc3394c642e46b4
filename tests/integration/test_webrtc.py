"""Browser calls through ha-pbx: headless Chromium running JsSIP (the SIP Core
card's SIP stack) registers over ws://…/ws, and audio is bridged between
WebRTC (ICE-lite, DTLS-SRTP) and plain RTP devices (baresip), checked by tone
frequency and level in what each side recorded.

Chromium's ICE must see loopback only, and nothing may leave the machine: each
test re-runs itself (its `test_netns_*` twin) inside a fresh network namespace
whose only interface is `lo` (`unshare -n`), with ha-pbx, baresip and the
browser all inside. Needs root for unshare, chromium and the npm packages
(scripts/install-test-deps.sh)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import audio
from harness.browser import WEBRTC_DIR, BrowserPhone

IN_NETNS = os.environ.get("HA_PBX_WEBRTC_NETNS") == "1"
HERE = Path(__file__).resolve().parent

outside = pytest.mark.skipif(IN_NETNS, reason="the namespace run uses the test_netns_* twins")
inside = pytest.mark.skipif(not IN_NETNS, reason="runs inside a loopback-only namespace, via its twin")


def _run_in_netns(test_name: str) -> None:
    if shutil.which("unshare") is None or not Path("/usr/bin/chromium").exists() \
            or not (WEBRTC_DIR / "node_modules").is_dir():
        pytest.fail("needs unshare, /usr/bin/chromium and tests/integration/webrtc/node_modules: "
                    "run scripts/install-test-deps.sh")
    script = 'ip link set lo up && exec "$0" -m pytest "$1" -k "$2" -v -s -p no:cacheprovider'
    env = dict(os.environ, HA_PBX_WEBRTC_NETNS="1")
    r = subprocess.run(["unshare", "-n", "bash", "-c", script, sys.executable, str(HERE / "test_webrtc.py"),
                        test_name], env=env, cwd=str(HERE), capture_output=True, text=True, timeout=240)
    print(r.stdout[-20000:], r.stderr[-5000:])
    assert r.returncode == 0 and " passed" in r.stdout, f"{test_name} failed in its namespace (rc {r.returncode})"


def _only_loopback() -> None:
    names = [n for _, n in socket.if_nameindex()]
    assert names == ["lo"], f"not in a loopback-only namespace: {names}"


def _tone48k(workdir: Path, hz: int) -> Path:
    """Chromium's fake microphone plays this file (48 kHz, like a real one)."""
    path = workdir / f"browser-tone{hz}.wav"
    subprocess.run(["sox", "-D", "-n", "-r", "48000", "-c", "1", "-b", "16", str(path),
                    "synth", "90", "sine", str(hz), "vol", "0.35"], check=True, timeout=60)
    return path


@pytest.fixture
def browser_factory(workdir, registry, dumper):
    made: list[BrowserPhone] = []

    def make(name: str, source: Path) -> BrowserPhone:
        b = BrowserPhone(workdir, registry, name, source)
        made.append(b)
        dumper.add(f"browser {name}", b)
        return b

    yield make
    for b in made:
        b.quit()


def _browser_102(pbx, browser_factory, workdir) -> BrowserPhone:
    phone = browser_factory("browser102", _tone48k(workdir, 1000))
    phone.register(f"ws://{pbx.host}:{pbx.http_port}/ws", "102", pbx.host, pbx.passwords["102"])
    return phone


def _doorbell_101(pbx, baresip_factory, signals):
    door = baresip_factory("door101", user="101", domain=f"{pbx.host}:{pbx.sip_port}",
                           password=pbx.passwords["101"], source=signals["tone440"]).start()
    door.wait_registered(15)
    return door


def _assert_both_tones(browser_wav: Path, door_wav: Path) -> None:
    heard_by_browser = audio.analyze_tone(browser_wav)
    heard_by_door = audio.analyze_tone(door_wav)
    print(f"browser heard: {heard_by_browser}\ndoorbell heard: {heard_by_door}")
    assert heard_by_browser.ok(440, min_seconds=4), f"browser (expects 440 Hz from the doorbell): {heard_by_browser}"
    assert heard_by_door.ok(1000, min_seconds=4), f"doorbell (expects 1000 Hz from the browser): {heard_by_door}"


# ------------------------------------------------------------ doorbell calls the browser
@outside
@pytest.mark.timeout(300)
def test_webrtc_doorbell_calls_browser():
    _run_in_netns("test_netns_doorbell_calls_browser")


@inside
@pytest.mark.timeout(200)
def test_netns_doorbell_calls_browser(pbx, baresip_factory, browser_factory, signals, workdir):
    _only_loopback()
    phone = _browser_102(pbx, browser_factory, workdir)
    door = _doorbell_101(pbx, baresip_factory, signals)
    door.dial(pbx.uri("102"))
    phone.wait_event("incoming", 15)
    phone.command("answer")
    phone.wait_event("confirmed", 15)
    door.wait_established(10)
    phone.wait_event("track", 10)
    time.sleep(1.5)
    recorded = phone.record(6)
    door.hangup()
    door.wait_closed(10)
    phone.wait_event("ended", 10)
    _assert_both_tones(recorded, door.recordings()[-1])
    assert pbx.alive()
