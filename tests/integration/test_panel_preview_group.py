"""Door preview when several panel phones ring (issue 15): a ring group of
panel phones, and one extension signed in on two pages. One PBX, a baresip
doorbell (101, 440 Hz) and three signed-in Phone pages: 102 (1000 Hz), 103
(700 Hz) and a second page of 102 (600 Hz).

The doorbell calls the ringall group 600 (102, 103): before anyone answers
both pages are receiving the door (440 Hz in each page's recording) and the
doorbell is not answered; 103's page answers: the other page stops ringing,
the doorbell and 103 hear each other, and the doorbell's whole recording
holds nothing of 102's 1000 Hz (more than 40 dB below 103's 700 Hz). Then
the doorbell calls 102, rung on two pages: both preview, the second page
answers, and the doorbell heard nothing of the first. Last, group 601 (103
for 10 s, then its fallback 102): nobody answers 103, the fallback's two
pages ring and preview the door, and the first answers it. `/health` shows no
call, relay or bridge left after each call. Screenshots of the previewing
pages are saved in .artifacts/panel/.

A camera doorbell (baresip's VP8 test picture) calling the group: both
pages decode its video and hear it before anyone answers, the doorbell
receives nothing; the PBX asked the doorbell for keyframes for them; 102
answers and goes on decoding the doorbell's video (now from its own
bridge), both hear each other, and 103's page stops."""
from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from harness import audio, procs
from harness.browser import PanelBrowser
from harness.browser_flows import signed_in_phone

EXTENSIONS = [
    {"extension": "101", "password": "secret101", "name": "Front door", "kind": "doorbell"},
    {"extension": "102", "password": "secret102", "name": "Kitchen"},
    {"extension": "103", "password": "secret103", "name": "Garage"},
]
GROUPS = [{"extension": "600", "name": "Everyone", "members": ["102", "103"], "strategy": "ringall", "ring_secs": 60},
          {"extension": "601", "name": "Garage first", "members": ["103"], "strategy": "ringall", "ring_secs": 10, "fallback": "102"}]
ARTIFACTS = Path(__file__).resolve().parent / ".artifacts" / "panel"
PREVIEWING = "!!(window.haPbxPhone.preview && window.haPbxPhone.preview.sent && window.haPbxPhone.remote)"
# Video frames the page decoded (the preview's, then the call's: one element).
FRAMES = "(document.getElementById('ph-video').getVideoPlaybackQuality() || {}).totalVideoFrames || 0"


def _health(pbx) -> dict:
    with urllib.request.urlopen(f"{pbx.http_base}/health", timeout=5) as r:
        return json.loads(r.read())


def _idle(pbx) -> dict:
    return procs.wait_until(lambda: (h := _health(pbx))["active_calls"] == 0 and h["media_relays"] == 0 and h,
                            15, interval=0.3, what="no call, relay or bridge left")


def _page_hears(page: PanelBrowser, name: str, ms: int = 3000) -> audio.ToneReport:
    wav = page.dir / f"{name}.wav"
    page.command("record", ms=ms, out=str(wav), timeout=30)
    return audio.analyze_tone(wav)


def _band(wav: Path, f: float) -> float:
    x = audio.load(wav)[0]
    spectrum = np.abs(np.fft.rfft(x))
    hz = np.fft.rfftfreq(len(x), 1 / audio.RATE)
    return float(spectrum[(hz > f - 20) & (hz < f + 20)].max())


def _heard(phone, hz: int, seconds: float) -> bool:
    files = phone.recordings()
    return bool(files) and audio.analyze_tone(files[-1]).ok(hz, min_seconds=seconds)


def _ring_and_preview(pbx, door, number: str, pages: dict[str, PanelBrowser], flowing=None) -> dict[str, audio.ToneReport]:
    """The doorbell calls `number`; every page in `pages` rings and previews it (440 Hz heard).
    `flowing(name, page)`, if given, waits for the page's media before it is recorded."""
    mark = len(door.ctrl.events)
    door.dial(pbx.uri(number))
    for page in pages.values():
        page.command("wait-button", name="Answer", timeout=15)
    for name, page in pages.items():
        procs.wait_until(lambda: page.command("eval", js=PREVIEWING)["value"], 10, interval=0.2,
                         what=f"the door preview playing in page {name}")
    for name, page in pages.items():
        if flowing:
            flowing(name, page)
    heard = {name: _page_hears(page, f"preview-{number}-{name}", ms=4000) for name, page in pages.items()}
    for name, page in pages.items():
        page.command("screenshot", out=str(ARTIFACTS / f"preview-{number}-{name}.png"), width=1280, height=800)
    assert not any(e.get("type") == "CALL_ESTABLISHED" for e in door.ctrl.events[mark:]), \
        "the doorbell was answered before anyone answered"
    return heard


def _answer(door, answering: PanelBrowser, others: list[PanelBrowser]) -> None:
    answering.command("click", name="Answer")
    door.wait_established(10)
    for page in others:
        page.command("wait-button", name="Answer", state="hidden", timeout=10)
        assert page.command("eval", js="window.haPbxPhone.preview === null && window.haPbxPhone.session === null")["value"], \
            "a page that did not answer kept its preview or a call"


def _check_answered_call(what: str, pbx, door, previewed: dict, talking: audio.ToneReport, answered_hz: int, other_hz: int) -> None:
    """After the call: nothing left in /health; every page previewed the door;
    the page that answered heard it; the doorbell heard that page's tone and
    nothing (40 dB down) of the page that did not answer."""
    health = _idle(pbx)
    door_wav = door.recordings()[-1]
    heard_by_door = audio.analyze_tone(door_wav)
    leak = _band(door_wav, other_hz) / _band(door_wav, answered_hz)
    print(f"{what}: previewed {previewed}; the answering page then heard {talking}; the doorbell heard {heard_by_door}, "
          f"the other page's {other_hz} Hz at {20 * np.log10(max(leak, 1e-12)):.1f} dB of {answered_hz} Hz; /health {health}")
    for name, report in previewed.items():
        assert report.ok(440, min_seconds=2.5), f"{what}: page {name} previewed {report}"
    assert talking.ok(440, min_seconds=2), (what, talking)
    assert heard_by_door.ok(answered_hz, min_seconds=3), (what, heard_by_door)
    assert leak < 0.01, f"{what}: the doorbell heard the page that did not answer: {other_hz} Hz at {leak:.4f} of {answered_hz} Hz"


@pytest.mark.netns
@pytest.mark.timeout(240)
def test_every_ringing_panel_phone_previews_the_door(pbx_factory, workdir, registry, baresip_factory, signals):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pbx = pbx_factory(extensions=EXTENSIONS, overrides={"groups": GROUPS}).start()
    kitchen = signed_in_phone(pbx, workdir, registry, "kitchen102", ext="102", mic_hz=1000)
    garage = signed_in_phone(pbx, workdir, registry, "garage103", ext="103", mic_hz=700)
    door = baresip_factory("door101", user="101", domain=f"{pbx.host}:{pbx.sip_port}",
                           password=pbx.passwords["101"], source=signals["tone440"]).start()
    door.wait_registered(15)

    # The ringall group: both pages preview, 103 answers.
    previewed = _ring_and_preview(pbx, door, "600", {"102": kitchen, "103": garage})
    _answer(door, garage, [kitchen])
    procs.wait_until(lambda: _heard(door, 700, 3), 20, interval=0.5, what="the doorbell hearing 103 for 3 s")
    talking = _page_hears(garage, "group-answered")
    door.hangup()
    door.wait_closed(10)
    garage.command("wait-button", name="Answer", state="hidden", timeout=10)
    _check_answered_call("group 600", pbx, door, previewed, talking, answered_hz=700, other_hz=1000)

    # 102 on two pages: both preview, the second answers.
    kitchen2 = signed_in_phone(pbx, workdir, registry, "kitchen102b", ext="102", mic_hz=600)
    previewed = _ring_and_preview(pbx, door, "102", {"102a": kitchen, "102b": kitchen2})
    _answer(door, kitchen2, [kitchen])
    procs.wait_until(lambda: _heard(door, 600, 3), 20, interval=0.5, what="the doorbell hearing the second page for 3 s")
    talking = _page_hears(kitchen2, "tabs-answered")
    kitchen2.command("click", name="Hang up")
    door.wait_closed(10)
    _check_answered_call("102 on two pages", pbx, door, previewed, talking, answered_hz=600, other_hz=1000)
    assert "door preview: a ringing browser receives" in pbx.log_text(), "not previewed through the fan-out"

    # Group 601: 103 rings 10 s unanswered, then its fallback 102 (both pages) rings and previews.
    previewed = _ring_and_preview(pbx, door, "601", {"103": garage})
    garage.command("wait-button", name="Answer", state="hidden", timeout=15)
    for name, page in {"102a": kitchen, "102b": kitchen2}.items():
        page.command("wait-button", name="Answer", timeout=15)
        procs.wait_until(lambda: page.command("eval", js=PREVIEWING)["value"], 10, interval=0.2,
                         what=f"the fallback's page {name} previewing the door")
    fallback_previewed = _page_hears(kitchen, "fallback-preview", ms=4000)
    _answer(door, kitchen, [kitchen2])
    procs.wait_until(lambda: _heard(door, 1000, 2), 20, interval=0.5, what="the doorbell hearing the fallback's page")
    door.hangup()
    door.wait_closed(10)
    fallback_health = _idle(pbx)
    print(f"group 601: 103 previewed {previewed}; the fallback 102 previewed {fallback_previewed}; /health {fallback_health}")
    assert previewed["103"].ok(440, min_seconds=2), previewed
    assert fallback_previewed.ok(440, min_seconds=2), f"the fallback's page previewed {fallback_previewed}"


def _frames(page: PanelBrowser, more_than: int, name: str) -> int:
    return procs.wait_until(lambda: (n := page.command("eval", js=FRAMES)["value"]) > more_than and n,
                            10, interval=0.3, what=f"page {name} decoding more than {more_than} video frames")


@pytest.mark.netns
@pytest.mark.timeout(240)
def test_every_ringing_panel_phone_previews_a_camera_doorbell(pbx_factory, workdir, registry, baresip_factory, signals):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pbx = pbx_factory(extensions=EXTENSIONS, overrides={"groups": GROUPS}).start()
    kitchen = signed_in_phone(pbx, workdir, registry, "kitchen102", ext="102", mic_hz=1000)
    garage = signed_in_phone(pbx, workdir, registry, "garage103", ext="103", mic_hz=700)
    door = baresip_factory("door101", user="101", domain=f"{pbx.host}:{pbx.sip_port}",
                           password=pbx.passwords["101"], source=signals["tone440"], video=True).start()
    door.wait_registered(15)

    # Each page decodes the doorbell's picture before its sound is recorded (the
    # preview's track is there before its transport is up).
    frames = {}
    previewed = _ring_and_preview(pbx, door, "600", {"102": kitchen, "103": garage},
                                  flowing=lambda name, page: frames.update({name: _frames(page, 25, name)}))
    for name, page in {"102": kitchen, "103": garage}.items():
        page.command("screenshot", out=str(ARTIFACTS / f"preview-video-{name}.png"), width=1280, height=800)
    assert not any(e.get("type") == "CALL_ESTABLISHED" for e in door.ctrl.events), "the doorbell was answered before anyone answered"
    # baresip writes what it decodes as it arrives: nothing came while the pages previewed.
    heard_before_answer = sum(max(0, f.stat().st_size - 44) for f in door.recordings())
    assert heard_before_answer < 320, f"the doorbell received {heard_before_answer} bytes of audio (20 ms is 320) while the pages previewed"
    assert "door preview: a ringing browser receives" in pbx.log_text(), "not previewed through the fan-out"
    assert "door preview: keyframe request to the caller" in pbx.log_text(), "no keyframe request reached the doorbell"

    _answer(door, kitchen, [garage])
    answered_at = kitchen.command("eval", js=FRAMES)["value"]
    after = _frames(kitchen, answered_at + 25, "102 after answering")
    procs.wait_until(lambda: _heard(door, 1000, 3), 20, interval=0.5, what="the doorbell hearing 102 for 3 s")
    talking = _page_hears(kitchen, "video-group-answered")
    door.hangup()
    door.wait_closed(10)
    kitchen.command("wait-button", name="Answer", state="hidden", timeout=10)
    print(f"video frames decoded while previewing {frames}; 102 at answer {answered_at}, then {after}")
    _check_answered_call("camera doorbell to group 600", pbx, door, previewed, talking, answered_hz=1000, other_hz=700)
