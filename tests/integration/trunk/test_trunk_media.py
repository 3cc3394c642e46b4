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


@pytest.mark.timeout(120)
def test_a_session_refresh_from_the_provider_keeps_the_call(rig, workdir):
    """A re-INVITE from the phone network (a session refresh passed on by the
    provider, same SDP), during a call out and during a call in: answered 200
    with SDP naming the same relay port toward the provider and a higher o=
    version of the same session; the call goes on, tones heard both ways after it."""
    from harness.flows import wait_media_file
    from harness.rtp import RtpEndpoint, tone_samples
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15, what="registered")
    # a call out, to a network callee that refreshes 2.5 s after its answer
    ext, net = rig.ext["101"], RtpEndpoint()
    offer_file, answer_file = workdir / "refresh-out-offer.txt", workdir / "refresh-out-answer.txt"
    try:
        uas = rig.sipp.start("uas_refresh.xml", name="uas-refresh", port=rig.provider.uas_port, duration_ms=2500,
                             keys={"rtp_port": net.port, "media_file": offer_file, "refresh_file": answer_file},
                             timeout_s=40)
        rig.sipp.wait_listening(rig.provider.uas_port)
        mark = len(ext.ctrl.events)
        ext.clear_recordings()
        ext.dial(f"sip:0891234567@127.0.0.1:{rig.pbx.sip_port}")
        net.start_sending(tone_samples(1000, 60), wait_media_file(offer_file, 15, "the INVITE at the network callee"))
        ext.ctrl.wait_event("CALL_ESTABLISHED", 20, since=mark)
        answer = procs.wait_until(lambda: _sdp_tokens(answer_file), 15, what="our answer to the provider's re-INVITE")
        refreshed = time.monotonic()
        time.sleep(3)  # the audio after the refresh being measured
        assert "CALL_CLOSED" not in ext.ctrl.event_types()[mark:], "the refresh ended the call"
        ext.hangup()
        ext.ctrl.wait_event("CALL_CLOSED", 10, since=mark)
        res = uas.wait(15)
        assert res.ok, res.summary()
    finally:
        net.close()
    _check_refresh(_sdp_tokens(offer_file), answer)
    _heard_after(net, refreshed, 440)
    _heard_at_the_end(ext, 1000, "101")

    # a call in: the network caller refreshes 2.5 s after the answer, hangs up 3 s later
    phone, net = rig.ext["102"], RtpEndpoint()
    answer0_file, answer_file = workdir / "refresh-in-answer0.txt", workdir / "refresh-in-answer.txt"
    try:
        mark = len(phone.ctrl.events)
        phone.clear_recordings()
        uac = rig.sipp.start("uac_refresh.xml", rig.provider.addr, name="uac-refresh", service=DID, duration_ms=2500,
                             keys={"caller": PSTN, "rtp_port": net.port, "media_file": answer0_file,
                                   "refresh_file": answer_file}, timeout_s=40)
        net.start_sending(tone_samples(1000, 60), wait_media_file(answer0_file, 20, "ha-pbx's answer at the caller"))
        phone.ctrl.wait_event("CALL_ESTABLISHED", 10, since=mark)
        answer = procs.wait_until(lambda: _sdp_tokens(answer_file), 15, what="our answer to the provider's re-INVITE")
        refreshed = time.monotonic()
        res = uac.wait(20)  # its BYE 3 s after the refresh, answered
        assert res.ok, res.summary()
        phone.ctrl.wait_event("CALL_CLOSED", 10, since=mark)
    finally:
        net.close()
    _check_refresh(_sdp_tokens(answer0_file), answer)
    _heard_after(net, refreshed, 440)
    _heard_at_the_end(phone, 1000, "102")


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
    from harness.flows import wait_media_file
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
    # a call out, to a network callee that sends the re-INVITE 2.5 s after its answer
    ext, net, net2 = rig.ext["101"], RtpEndpoint(), RtpEndpoint()
    offer_file, refresh_file = workdir / "late-out-offer.txt", workdir / "late-out-refresh.txt"
    try:
        uas = rig.sipp.start("uas_refresh_late.xml", name="uas-refresh-late", port=rig.provider.uas_port,
                             duration_ms=2500, timeout_s=40,
                             keys={"rtp_port": net.port, "rtp_port2": net2.port, "media_file": offer_file,
                                   "refresh_file": refresh_file})
        rig.sipp.wait_listening(rig.provider.uas_port)
        since = len(ext.ctrl.events)
        ext.clear_recordings()
        ext.dial(f"sip:0891234567@127.0.0.1:{rig.pbx.sip_port}")
        net.start_sending(tone_samples(1000, 60), wait_media_file(offer_file, 15, "the INVITE at the network callee"))
        ext.ctrl.wait_event("CALL_ESTABLISHED", 20, since=since)
        offer, moved_at = moved(net, net2, refresh_file, "call out")
        time.sleep(3)  # the audio after the refresh being measured
        assert "CALL_CLOSED" not in ext.ctrl.event_types()[since:], "the re-INVITE ended the call"
        ext.hangup()
        ext.ctrl.wait_event("CALL_CLOSED", 10, since=since)
        res = uas.wait(15)
        assert res.ok, res.summary()
    finally:
        net.close()
        net2.close()
    _check_refresh(_sdp_tokens(offer_file), offer)
    _heard_between(net2, moved_at, moved_at + 2.5, 440, 2.0)
    _heard_at_the_end(ext, 1000, "101")

    # a call in: the network caller sends the re-INVITE 2.5 s after the answer, hangs up 3 s later
    phone, net, net2 = rig.ext["102"], RtpEndpoint(), RtpEndpoint()
    answer_file, refresh_file = workdir / "late-in-answer.txt", workdir / "late-in-refresh.txt"
    try:
        since = len(phone.ctrl.events)
        phone.clear_recordings()
        uac = rig.sipp.start("uac_refresh_late.xml", rig.provider.addr, name="uac-refresh-late", service=DID,
                             duration_ms=2500, timeout_s=40,
                             keys={"caller": PSTN, "rtp_port": net.port, "rtp_port2": net2.port,
                                   "media_file": answer_file, "refresh_file": refresh_file})
        net.start_sending(tone_samples(1000, 60), wait_media_file(answer_file, 20, "ha-pbx's answer at the caller"))
        phone.ctrl.wait_event("CALL_ESTABLISHED", 10, since=since)
        offer, moved_at = moved(net, net2, refresh_file, "call in")
        res = uac.wait(20)  # its BYE 3 s after the re-INVITE, answered
        assert res.ok, res.summary()
        phone.ctrl.wait_event("CALL_CLOSED", 10, since=since)
    finally:
        net.close()
        net2.close()
    _check_refresh(_sdp_tokens(answer_file), offer)
    _heard_between(net2, moved_at, moved_at + 2.5, 440, 2.0)
    _heard_at_the_end(phone, 1000, "102")
    log = rig.pbx.log_text()[mark:]
    assert log.count("re-INVITE without SDP: the answer in the ACK taken") == 2, rig.pbx.log_tail()
