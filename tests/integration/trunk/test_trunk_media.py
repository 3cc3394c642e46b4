"""Media through the trunk (the package's rig, conftest.py): early media
and a telephone-event payload type other than 101 from the provider, and
session refreshes from the phone network (re-INVITEs with and without SDP)."""
from __future__ import annotations

import re
import time

import pytest

from harness import audio, procs
from harness.baresip import Baresip

from .common import DID, PSTN, registration


@pytest.mark.timeout(90)
def test_early_media_and_a_non_101_telephone_event_from_the_provider(rig, workdir):
    """The network callee answers 183 with SDP and plays an announcement (1000 Hz)
    for about 3 s, then 200 and another tone (600 Hz); its key presses use payload type 96
    (its own number, where RFC 3264 says 101, the extension's): they reach the extension
    as 101, and the extension's key press reaches the network callee as 96."""
    from harness.rtp import RtpEndpoint, tone_samples
    import numpy as np
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15, what="registered")
    caller = rig.ext["101"]
    media_file = workdir / "early-media.txt"
    net = RtpEndpoint()
    try:
        uas = rig.sipp.start("uas_early_media.xml", name="uas-early", port=rig.provider.uas_port,
                             keys={"rtp_port": net.port, "media_file": media_file}, timeout_s=40)
        rig.sipp.wait_listening(rig.provider.uas_port)
        mark = len(caller.ctrl.events)
        caller.clear_recordings()
        caller.dial(f"sip:0891234567@127.0.0.1:{rig.pbx.sip_port}")
        from harness.flows import wait_media_file
        peer = wait_media_file(media_file, 15, "the provider's INVITE at the network callee")
        announcement = np.concatenate([tone_samples(1000, 2.6), tone_samples(600, 60)])
        net.start_sending(announcement, peer, loop=False)
        caller.ctrl.wait_event("CALL_ESTABLISHED", 20, since=mark)
        # a key press from the network with payload type 96
        keys = len(caller.ctrl.events)
        net.send_key(5, pt=96)
        # ha-pbx reads it (the call's key press event) and passes it on as 101,
        # the number the extension offered: baresip knows events only by that
        procs.wait_until(lambda: re.search(r"Dtmf \{[^}]*from: \"0891234567\", digit: '5'", rig.pbx.log_text()), 5,
                         what="the provider's key press seen by ha-pbx")
        got = caller.ctrl.wait_event("CALL_DTMF_START", 5, since=keys)
        assert got.get("param") == "5", got
        # the extension's key press reaches the network as the 96 it answered with
        caller.ctrl.command("sndcode", "8")
        is_event = lambda r: r.pkt.payload[:1] == b"\x08" and len(r.pkt.payload) == 4  # noqa: E731
        procs.wait_until(lambda: [r for r in net.packets() if r.pkt.pt == 96 and is_event(r)], 5,
                         what="the extension's key 8 at the network callee as payload type 96")
        assert not [r for r in net.packets() if r.pkt.pt == 101], "payload type 101 reached the provider's side"
        time.sleep(3)  # the audio after the answer being measured
        caller.hangup()
        caller.ctrl.wait_event("CALL_CLOSED", 10, since=mark)
        res = uas.wait(15)
        assert res.ok, res.summary()
    finally:
        net.close()
    # the caller heard the announcement before the answer, then the callee
    procs.wait_until(caller.recordings, 5, what="recording")
    x, fs = audio.load(caller.recordings()[-1])
    early = audio.analyze_tone_samples(x[: int(2.0 * fs)])
    assert early.ok(1000, min_seconds=1), f"early media: {early}"
    later = audio.analyze_tone_samples(x[int(4.0 * fs):])
    assert later.ok(600, min_seconds=1), f"after the answer: {later}"
    # and the network callee heard the extension (440 Hz) through the relay
    heard = audio.analyze_tone_samples(net.decoded_float())
    assert heard.ok(440, min_seconds=1), heard


def _sdp_tokens(path) -> list[str] | None:
    """The c=/m=/o= lines a scenario's <exec> wrote, as tokens (None until written)."""
    try:
        t = path.read_text().split()
    except OSError:
        return None
    return t if "m=audio" in t and any(x.startswith("o=") for x in t) else None


def _port_and_origin(tokens: list[str]) -> tuple[int, str, str, int]:
    """(m= port, o= user, session id, version)."""
    m, o = tokens.index("m=audio"), next(i for i, x in enumerate(tokens) if x.startswith("o="))
    return int(tokens[m + 1]), tokens[o][2:], tokens[o + 1], int(tokens[o + 2])


def _heard_after(net, since: float, hz: float) -> None:
    """The RTP endpoint heard `hz` in what arrived after `since` (time.monotonic)."""
    from harness.rtp import ulaw_decode
    payload = b"".join(r.pkt.payload for r in net.packets() if r.arrival > since and r.pkt.pt == 0)
    rep = audio.analyze_tone_samples(ulaw_decode(payload).astype("float64") / 32768.0)
    assert rep.ok(hz, min_seconds=1.5), f"after the refresh the network side heard {rep}, expected {hz} Hz"


def _heard_at_the_end(phone: Baresip, hz: int, who: str):
    """The last 2.5 s of the phone's last recording (after a session refresh) hold the tone."""
    procs.wait_until(phone.recordings, 5, what="recording")
    x, fs = audio.load(phone.recordings()[-1])
    rep = audio.analyze_tone_samples(x[-int(2.5 * fs):-int(0.3 * fs)])
    assert rep.ok(hz, min_seconds=1.5), f"after the refresh {who} heard {rep}"


def _check_refresh(offer: list[str], answer: list[str]) -> None:
    """Our answer to the provider's re-INVITE: the same relay port, the same
    session, its o= version higher (RFC 4566: the SDP we send is a new version)."""
    print(f"our SDP to the provider before: {' '.join(offer)}; after the refresh: {' '.join(answer)}")
    port0, user0, sid0, ver0 = _port_and_origin(offer)
    port1, user1, sid1, ver1 = _port_and_origin(answer)
    assert (port1, user1, sid1) == (port0, user0, sid0), (offer, answer)
    assert ver1 > ver0, (offer, answer)


def _call_out_refreshed(rig, scenario: str, net, media_file, keys: dict, on_answer):
    """101 calls a network callee (sipp `scenario` at the provider's callee
    port, `net` its RTP endpoint sending 1000 Hz) that sends a re-INVITE 2.5 s
    after its answer; `on_answer()` once the call is up, then 3 s of audio,
    101 hangs up, the scenario passed. What `on_answer` returned."""
    from harness.flows import wait_media_file
    from harness.rtp import tone_samples
    ext = rig.ext["101"]
    uas = rig.sipp.start(scenario, name=scenario.removesuffix(".xml").replace("_", "-"), port=rig.provider.uas_port,
                         duration_ms=2500, timeout_s=40, keys={"rtp_port": net.port, "media_file": media_file, **keys})
    rig.sipp.wait_listening(rig.provider.uas_port)
    mark = len(ext.ctrl.events)
    ext.clear_recordings()
    ext.dial(f"sip:0891234567@127.0.0.1:{rig.pbx.sip_port}")
    net.start_sending(tone_samples(1000, 60), wait_media_file(media_file, 15, "the INVITE at the network callee"))
    ext.ctrl.wait_event("CALL_ESTABLISHED", 20, since=mark)
    got = on_answer()
    time.sleep(3)  # the audio after the refresh being measured
    assert "CALL_CLOSED" not in ext.ctrl.event_types()[mark:], "the re-INVITE ended the call"
    ext.hangup()
    ext.ctrl.wait_event("CALL_CLOSED", 10, since=mark)
    res = uas.wait(15)
    assert res.ok, res.summary()
    return got


def _call_in_refreshed(rig, scenario: str, net, media_file, keys: dict, on_answer):
    """The network caller (sipp `scenario` through the provider to the DID,
    `net` its RTP endpoint sending 1000 Hz) calls 102 and sends a re-INVITE
    2.5 s after the answer; `on_answer()` once the call is up; its BYE 3 s
    after the re-INVITE is answered. What `on_answer` returned."""
    from harness.flows import wait_media_file
    from harness.rtp import tone_samples
    phone = rig.ext["102"]
    mark = len(phone.ctrl.events)
    phone.clear_recordings()
    uac = rig.sipp.start(scenario, rig.provider.addr, name=scenario.removesuffix(".xml").replace("_", "-"), service=DID,
                         duration_ms=2500, timeout_s=40,
                         keys={"caller": PSTN, "rtp_port": net.port, "media_file": media_file, **keys})
    net.start_sending(tone_samples(1000, 60), wait_media_file(media_file, 20, "ha-pbx's answer at the caller"))
    phone.ctrl.wait_event("CALL_ESTABLISHED", 10, since=mark)
    got = on_answer()
    res = uac.wait(20)
    assert res.ok, res.summary()
    phone.ctrl.wait_event("CALL_CLOSED", 10, since=mark)
    return got


@pytest.mark.timeout(120)
def test_a_session_refresh_from_the_provider_keeps_the_call(rig, workdir):
    """A re-INVITE from the phone network (a session refresh passed on by the
    provider, same SDP), during a call out and during a call in: answered 200
    with SDP naming the same relay port toward the provider and a higher o=
    version of the same session; the call goes on, tones heard both ways after it."""
    from harness.rtp import RtpEndpoint
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15, what="registered")

    def refreshed(answer_file):
        """Our answer to the re-INVITE, and when it was seen."""
        return procs.wait_until(lambda: _sdp_tokens(answer_file), 15, what="our answer to the provider's re-INVITE"), time.monotonic()

    # a call out, to a network callee that refreshes 2.5 s after its answer; a call in,
    # whose network caller refreshes 2.5 s after the answer and hangs up 3 s later
    for call, scenario, ext, way in ((_call_out_refreshed, "uas_refresh.xml", "101", "out"),
                                     (_call_in_refreshed, "uac_refresh.xml", "102", "in")):
        net = RtpEndpoint()
        media_file, answer_file = workdir / f"refresh-{way}-media.txt", workdir / f"refresh-{way}-answer.txt"
        try:
            answer, at = call(rig, scenario, net, media_file, {"refresh_file": answer_file}, lambda: refreshed(answer_file))
        finally:
            net.close()
        _check_refresh(_sdp_tokens(media_file), answer)
        _heard_after(net, at, 440)
        _heard_at_the_end(rig.ext[ext], 1000, ext)


def _heard_between(net, since: float, until: float, hz: float, seconds: float) -> None:
    """The RTP endpoint heard `hz` for `seconds` in what arrived in [since, until] (time.monotonic)."""
    from harness.rtp import ulaw_decode
    payload = b"".join(r.pkt.payload for r in net.packets() if since < r.arrival <= until and r.pkt.pt == 0)
    rep = audio.analyze_tone_samples(ulaw_decode(payload).astype("float64") / 32768.0)
    assert rep.ok(hz, min_seconds=seconds), f"from {since:.2f} to {until:.2f} the network side heard {rep}, expected {hz} Hz"


@pytest.mark.timeout(120)
def test_a_reinvite_without_sdp_from_the_provider_gets_our_offer_and_the_ack_answer_moves_the_media(rig, workdir):
    """RFC 3261 14.2: a re-INVITE without SDP from the phone network (through
    the provider's Record-Route), during a call out and during a call in. Our
    200 carries the offer (the same relay port and session toward the
    provider, a higher o= version), and the answer comes in the ACK: it moves
    the network side's media to a new port, and the tones go on both ways at
    once (the relay follows the answer; without it the new port would be
    dropped as untrusted until the old one had been silent for 2 s). The
    extension's phone is not involved (ha-pbx answers for the call)."""
    from harness.rtp import RtpEndpoint, tone_samples
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15, what="registered")

    def moved(net, net2, refresh_file, what):
        """After our offer: the old endpoint goes quiet, the new one (named in the ACK) talks."""
        offer = procs.wait_until(lambda: _sdp_tokens(refresh_file), 15, what=f"our offer in the 200 ({what})")
        moved_at = time.monotonic()
        net2.start_sending(tone_samples(1000, 60), ("127.0.0.1", _port_and_origin(offer)[0]))
        net.close()
        return offer, moved_at

    mark = len(rig.pbx.log_text())
    # a call out, to a network callee that sends the re-INVITE 2.5 s after its answer; a call
    # in, whose network caller sends it 2.5 s after the answer and hangs up 3 s later
    for call, scenario, ext, way in ((_call_out_refreshed, "uas_refresh_late.xml", "101", "out"),
                                     (_call_in_refreshed, "uac_refresh_late.xml", "102", "in")):
        net, net2 = RtpEndpoint(), RtpEndpoint()
        media_file, refresh_file = workdir / f"late-{way}-media.txt", workdir / f"late-{way}-refresh.txt"
        try:
            offer, moved_at = call(rig, scenario, net, media_file, {"rtp_port2": net2.port, "refresh_file": refresh_file},
                                   lambda: moved(net, net2, refresh_file, f"call {way}"))
        finally:
            net.close()
            net2.close()
        _check_refresh(_sdp_tokens(media_file), offer)
        _heard_between(net2, moved_at, moved_at + 2.5, 440, 2.0)
        _heard_at_the_end(rig.ext[ext], 1000, ext)
    log = rig.pbx.log_text()[mark:]
    assert log.count("re-INVITE without SDP: the answer in the ACK taken") == 2, rig.pbx.log_tail()
