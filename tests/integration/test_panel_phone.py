"""The panel's Phone page where test_panel.py's walk-through does not go, on
one PBX, one signed-in page (extension 102, a 1000 Hz microphone) and baresip
phones (the garage 103 at 700 Hz, the doorbell 101 at 440 Hz).

Hold and resume on a dial-pad call to 103: before Hold each side hears the
other; after resuming the page hears 103 again (its recording), and 103 is
sent the page's tone again as one unbroken stream: one SSRC for the whole
call, sequence numbers only going forward, 1000 Hz for 2 s in what a
receiver keeping to that stream decodes. That is read off the wire
(harness/sniff.py), not from baresip's dump: baresip 1.0.0 drops its decode
filters, sndfile's dump with them, for the rest of a call at the first
re-INVITE that is not sendrecv (audio_decoder_set flushes rx->filtl and
aufilt_setup does not set them up again while the encoder's are there), so
its -dec.wav stops at Hold whoever holds, through the relay as through a
bridge.

The contact list follows registrations: 103, registering after the page
signed in, turns from offline to online without a reload.

"Answer" pressed before the door preview's 183 left the page (the page's
preview answer is held back until then, so the order is certain): the call is
answered, tones both ways, no preview left in the page.

A preview beside a SIP device of the same extension: the page previews, the
baresip phone answers; the page stops ringing, the doorbell and the phone hear
each other, and the doorbell heard nothing of the page. Then a second baresip
phone of 102 that sends early media (183 with SDP) before the page's preview
answer (held back until the PBX has that 183): the page previews all the same
(the preview goes through the fan-out, which keeps the door from the desk's
early media), answers, and the doorbell hears the page and nothing of the desk.

The agent handoff while the page previews (second test, with an agent)."""
from __future__ import annotations

import numpy as np
import pytest

from harness import audio, procs
from harness.browser import PanelBrowser
from harness.browser_flows import signed_in_phone, wait_preview_audio
from harness.rtp import g711_timeline
from harness.sniff import UdpSniffer

EXTENSIONS = [
    {"extension": "101", "password": "secret101", "name": "Front door", "kind": "doorbell", "door_open": "1#", "dtmf": "info"},
    {"extension": "102", "password": "secret102", "name": "Kitchen"},
    {"extension": "103", "password": "secret103", "name": "Garage"},
]
TOKEN = "phone-page-admin-token-0123456789abcdef"

# The next RTCPeerConnection answer made (the ringing page's preview) waits for window.__previewGo().
STALL_PREVIEW = """(() => { const orig = RTCPeerConnection.prototype.createAnswer;
  let go; const released = new Promise(r => { go = r; }); window.__previewGo = go;
  RTCPeerConnection.prototype.createAnswer = async function (...a) {
    RTCPeerConnection.prototype.createAnswer = orig;
    window.__previewStalled = true;
    await released;
    return orig.apply(this, a);
  }; })()"""


@pytest.fixture
def phone_page(pbx_factory, workdir, registry):
    """The PBX and extension 102's Phone page."""
    pbx = pbx_factory(extensions=EXTENSIONS, overrides={"http": {"api_token": TOKEN}}).start()
    return pbx, signed_in_phone(pbx, workdir, registry, "phone102")


def _heard(phone, hz: int, seconds: float) -> bool:
    files = phone.recordings()
    return bool(files) and audio.analyze_tone(files[-1]).ok(hz, min_seconds=seconds)


def _page_hears(page: PanelBrowser, name: str, ms: int = 3000) -> audio.ToneReport:
    wav = page.dir / f"{name}.wav"
    page.command("record", ms=ms, out=str(wav), timeout=30)
    return audio.analyze_tone(wav)


def _contact_state(page: PanelBrowser, ext: str) -> str | None:
    """The badge beside `ext` in the Phone page's contact list (online, offline, doorbell, ...)."""
    js = f"(li => li && li.querySelector('.badge').textContent)(document.querySelector('#ph-contacts li[data-extension=\"{ext}\"]'))"
    return page.command("eval", js=js)["value"]


def _hold_pressed(page: PanelBrowser) -> str:
    return page.command("eval", js="document.getElementById('ph-hold').getAttribute('aria-pressed')")["value"]


def _reoffer_answered(page: PanelBrowser) -> bool:
    return page.command("eval", js="window.haPbxPhone.session.isReadyToReOffer()")["value"]


def _pcmu_to(wire: UdpSniffer, since: int = 0) -> list[tuple[int, int, int, bytes]]:
    """The PCMU RTP sent to the phone's ports, in arrival order from the `since`-th datagram:
    (ssrc, sequence number, timestamp, payload)."""
    return [(int.from_bytes(d[8:12], "big"), int.from_bytes(d[2:4], "big"), int.from_bytes(d[4:8], "big"), d[12:])
            for _, d in wire.packets()[since:] if len(d) > 12 and d[0] >> 6 == 2 and d[1] & 0x7F == 0]


def _stream_problems(packets: list[tuple[int, int, int, bytes]]) -> list[str]:
    """Why a receiver keeping to one stream would drop some of these: another SSRC, a
    sequence number or timestamp that does not go forward (a packet missing from the
    capture, which loses some on a loaded machine, is a step forward)."""
    problems = [f"SSRCs {sorted({hex(p[0]) for p in packets})}"] if len({p[0] for p in packets}) > 1 else []
    for a, b in zip(packets, packets[1:]):
        if not 0 < (b[1] - a[1]) % 65536 < 2**15:
            problems.append(f"sequence {a[1]} then {b[1]}")
        if not 0 < (b[2] - a[2]) % 2**32 < 2**31:
            problems.append(f"timestamp {a[2]} then {b[2]}")
    return problems[:5]


def _decoded(packets: list[tuple[int, int, int, bytes]]) -> audio.ToneReport:
    samples = g711_timeline([(ts, 0, payload) for _, _, ts, payload in packets]).astype(np.float64) / 32768.0
    return audio.analyze_tone_samples(samples)


@pytest.mark.netns
@pytest.mark.timeout(150)
def test_dial_pad_hold_resume_and_answer_before_the_preview(phone_page, baresip_factory, workdir, signals):
    pbx, page = phone_page
    # The contact list follows registrations without a reload: 103 offline, then online once it registers.
    assert _contact_state(page, "103") == "offline"
    garage = baresip_factory("garage103", user="103", domain=f"{pbx.host}:{pbx.sip_port}",
                             password=pbx.passwords["103"], source=audio.make_tone(workdir / "tone700.wav", 700, seconds=90)).start()
    garage.wait_registered(15)
    procs.wait_until(lambda: _contact_state(page, "103") == "online", 15, interval=0.5, what="103 shown online on the page")
    wire = UdpSniffer(range(garage.rtp_lo, garage.rtp_lo + 20)).start()
    page.command("fill", label="Number", value="103")
    page.command("click", name="Call")
    garage.wait_established(15)
    page.command("wait-text", text="In call", timeout=10)
    procs.wait_until(lambda: _heard(garage, 1000, 2), 15, interval=0.5, what="103 hearing the page before Hold")
    before = _page_hears(page, "before-hold")
    # Hold: a re-INVITE the PBX accepts; again resumes. JsSIP marks the button pressed as it sends
    # the re-INVITE and ignores a second press until its answer (isReadyToReOffer), so wait for that.
    page.command("click", name="Hold")
    procs.wait_until(lambda: _hold_pressed(page) == "true", 10, interval=0.2, what="the call on hold")
    procs.wait_until(lambda: _reoffer_answered(page), 10, interval=0.1, what="the hold re-INVITE answered")
    page.command("click", name="Hold")
    procs.wait_until(lambda: _hold_pressed(page) == "false", 10, interval=0.2, what="the call resumed")
    procs.wait_until(lambda: _reoffer_answered(page), 10, interval=0.1, what="the resume re-INVITE answered")
    resumed_at = len(wire.packets())
    procs.wait_until(lambda: _decoded(_pcmu_to(wire, resumed_at)).ok(1000, min_seconds=2), 20, interval=0.5,
                     what="103 sent the page's 1000 Hz again for 2 s after resuming")
    after = _page_hears(page, "after-resume")
    page.command("click", name="Hang up")
    garage.wait_closed(10)
    wire.stop()
    sent = _pcmu_to(wire)
    print(f"the page heard before Hold {before}\nafter resuming {after}\n103 was sent {len(sent)} packets, "
          f"after resuming {_decoded(_pcmu_to(wire, resumed_at))}; 103's dump before Hold {audio.analyze_tone(garage.recordings()[-1])}")
    assert before.ok(700, min_seconds=2), before
    assert after.ok(700, min_seconds=2), after
    assert not _stream_problems(sent), _stream_problems(sent)

    # "Answer" pressed before the preview's 183 left the page: the page's preview answer is held
    # (STALL_PREVIEW) until Answer was pressed, so the order is certain, not a race.
    page.command("eval", js=STALL_PREVIEW)
    door = baresip_factory("door101", user="101", domain=f"{pbx.host}:{pbx.sip_port}",
                           password=pbx.passwords["101"], source=signals["tone440"]).start()
    door.wait_registered(15)
    door.dial(pbx.uri("102"))
    page.command("wait-button", name="Answer", timeout=15)
    procs.wait_until(lambda: page.command("eval", js="window.__previewStalled === true")["value"],
                     10, interval=0.1, what="the page's preview answer being made")
    page.command("click", name="Answer")
    door.wait_established(10)
    page.command("eval", js="window.__previewGo()")
    page.command("wait-button", name="Open door", timeout=10)
    procs.wait_until(lambda: _heard(door, 1000, 2), 15, interval=0.5, what="the doorbell hearing the page")
    heard = _page_hears(page, "answered-before-preview")
    print(f"answered before the preview: the page heard {heard}, the doorbell {audio.analyze_tone(door.recordings()[-1])}")
    assert heard.ok(440, min_seconds=2), heard
    assert page.command("eval", js="window.haPbxPhone.preview === null")["value"], "a preview outlived Answer"
    assert "door preview: the ringing browser" not in pbx.log_text(), "the preview's 183 went after all: the test raced"
    assert not page.command("visible", selector="#ph-preview")["visible"]
    door.hangup()
    door.wait_closed(10)
    page.command("wait-button", name="Answer", state="hidden", timeout=10)

    # 102 on a baresip phone too (600 Hz, answering by hand): the doorbell rings both, the page
    # previews; the phone answers: the page stops ringing, its preview ends, the doorbell and the
    # phone hear each other, and the doorbell never heard the page.
    desk = baresip_factory("desk102", user="102", domain=f"{pbx.host}:{pbx.sip_port}", password=pbx.passwords["102"],
                           source=audio.make_tone(workdir / "tone600.wav", 600, seconds=90), answermode="manual").start()
    desk.wait_registered(15)
    mark = len(door.ctrl.events)
    door.dial(pbx.uri("102"))
    page.command("wait-button", name="Answer", timeout=15)
    desk.ctrl.wait_event("CALL_INCOMING", 10)
    wait_preview_audio(page, "the ringing page beside the desk phone")
    previewed = _page_hears(page, "preview-beside-desk", ms=4000)
    assert not any(e.get("type") == "CALL_ESTABLISHED" for e in door.ctrl.events[mark:]), "the doorbell was answered before anyone answered"
    desk.ctrl.command("accept")
    desk.wait_established(10)
    door.ctrl.wait_event("CALL_ESTABLISHED", 10, since=mark)
    page.command("wait-button", name="Answer", state="hidden", timeout=10)
    assert page.command("eval", js="window.haPbxPhone.preview === null && window.haPbxPhone.session === null")["value"], \
        "the page's preview or call outlived the desk phone's answer"
    procs.wait_until(lambda: _heard(desk, 440, 3) and _heard(door, 600, 3), 20, interval=0.5,
                     what="3 s of tone each way between the doorbell and the desk phone")
    door.hangup()
    door.wait_closed(10)
    desk.wait_closed(10)
    heard_by_door, heard_by_desk = audio.analyze_tone(door.recordings()[-1]), audio.analyze_tone(desk.recordings()[-1])
    print(f"beside the desk phone the page previewed {previewed}; the desk heard {heard_by_desk}, the doorbell {heard_by_door}")
    assert previewed.ok(440, min_seconds=2.5), previewed
    assert heard_by_desk.ok(440, min_seconds=3), heard_by_desk
    # The doorbell's whole recording of this call: the desk's 600 Hz, with nothing of the page's 1000 Hz.
    assert heard_by_door.ok(600, min_seconds=3), heard_by_door
    x = audio.load(door.recordings()[-1])[0]
    spectrum = np.abs(np.fft.rfft(x))
    hz = np.fft.rfftfreq(len(x), 1 / audio.RATE)
    band = lambda f: spectrum[(hz > f - 20) & (hz < f + 20)].max()  # noqa: E731
    assert band(1000) < band(600) / 100, f"the doorbell heard the page: 1000 Hz at {band(1000) / band(600):.4f} of 600 Hz"

    # A phone of 102 that sends early media at once (answermode=early, 500 Hz): its 183 with SDP
    # reaches the PBX before the page's preview answer, held (STALL_PREVIEW) until then.
    early = baresip_factory("early102", user="102", domain=f"{pbx.host}:{pbx.sip_port}", password=pbx.passwords["102"],
                            source=audio.make_tone(workdir / "tone500.wav", 500, seconds=90), answermode="early").start()
    early.wait_registered(15)
    page.command("eval", js=STALL_PREVIEW)
    mark = len(door.ctrl.events)
    door.dial(pbx.uri("102"))
    page.command("wait-button", name="Answer", timeout=15)
    procs.wait_until(lambda: "a ringing SIP device's early media is not relayed" in pbx.log_text(), 10, interval=0.2,
                     what="the early phone's 183 with SDP at the PBX (the preview goes through the fan-out)")
    procs.wait_until(lambda: page.command("eval", js="window.__previewStalled === true")["value"],
                     10, interval=0.1, what="the page's preview answer being made")
    page.command("eval", js="window.__previewGo()")
    wait_preview_audio(page, "the page after the desk's early media", packets=50)
    previewed = _page_hears(page, "preview-after-desk-183", ms=4000)
    assert not any(e.get("type") == "CALL_ESTABLISHED" for e in door.ctrl.events[mark:]), "the doorbell was answered before anyone answered"
    page.command("click", name="Answer")
    door.ctrl.wait_event("CALL_ESTABLISHED", 10, since=mark)
    page.command("wait-button", name="Open door", timeout=10)
    procs.wait_until(lambda: _heard(door, 1000, 3), 20, interval=0.5, what="the doorbell hearing the page for 3 s")
    early.wait_closed(10)
    door.hangup()
    door.wait_closed(10)
    page.command("wait-button", name="Answer", state="hidden", timeout=10)
    x = audio.load(door.recordings()[-1])[0]
    spectrum = np.abs(np.fft.rfft(x))
    hz = np.fft.rfftfreq(len(x), 1 / audio.RATE)
    print(f"after the desk's early media the page previewed {previewed}; the doorbell heard {audio.analyze_tone(door.recordings()[-1])}, "
          f"500 Hz at {band(500) / band(1000):.4f} of 1000 Hz")
    assert previewed.ok(440, min_seconds=2.5), previewed
    assert band(500) < band(1000) / 100, f"the doorbell heard the early phone: 500 Hz at {band(500) / band(1000):.4f} of 1000 Hz"


def _health(pbx) -> dict:
    import json
    import urllib.request
    with urllib.request.urlopen(f"{pbx.http_base}/health", timeout=5) as r:
        return json.loads(r.read())


@pytest.mark.netns
@pytest.mark.timeout(240)
def test_agent_takes_the_door_from_a_previewing_page(pbx_factory, workdir, registry, baresip_factory, voice):
    """Nobody answers the page previewing the doorbell: the handoff rule (ring_secs 8) gives the
    door to the agent. The page's preview ends (no Answer, no preview left), the doorbell hears
    the agent's greeting (Whisper), and no call, relay or bridge is left afterwards (/health)."""
    from harness import agent
    from harness.openai_mock import OpenAIMock
    piper, whisper = voice
    llm = OpenAIMock().start()
    try:
        over = agent.agent_overrides(stt_url=whisper.url, tts_url=piper.url, brain=agent.openai_brain(llm),
                                     handoff=[{"callee": "102", "ring_secs": 8}])
        pbx = pbx_factory(extensions=EXTENSIONS, overrides=over).start()
        agent.wait_agent_ready(pbx)
        page = signed_in_phone(pbx, workdir, registry, "phone102")
        # The doorbell: 440 Hz for 5 s (the preview hears it), then quiet (the agent is not interrupted).
        t = np.arange(int(5 * audio.RATE)) / audio.RATE
        source = audio.save(workdir / "door.wav", np.concatenate([0.35 * np.sin(2 * np.pi * 440 * t), np.zeros(90 * audio.RATE)]))
        door = agent.caller(baresip_factory, pbx, source, ext="101")
        door.dial(pbx.uri("102"))
        page.command("wait-button", name="Answer", timeout=15)
        wait_preview_audio(page, "the ringing page")
        previewed = _page_hears(page, "preview", ms=4000)
        door.wait_established(15)
        page.command("wait-button", name="Answer", state="hidden", timeout=10)
        assert page.command("eval", js="window.haPbxPhone.preview === null && window.haPbxPhone.session === null")["value"], \
            "the page's preview or call outlived the handoff"
        assert not page.command("visible", selector="#ph-preview")["visible"]
        spoke = agent.wait_sound(door, after=0.0, timeout=20)
        agent.wait_quiet(door, after=spoke, quiet=agent.GREETING_END_QUIET_S, timeout=30)
        agent.hang_up(door)
        greeting = agent.words(whisper.transcribe_wav(agent.recording(door)))
        print(f"the page previewed {previewed}; the doorbell heard the agent say {greeting!r}")
        assert previewed.ok(440, min_seconds=2.5), previewed
        assert "message" in greeting, greeting
        health = procs.wait_until(lambda: (h := _health(pbx))["active_calls"] == 0 and h["media_relays"] == 0 and h,
                                  15, interval=0.3, what="no call, relay or bridge left")
        print(f"/health after the call: {health}")
    finally:
        llm.stop()
