"""The media plane seen from outside, with Python UAs (harness/ua.py) and
Python RTP endpoints: the media timeout hangs up silent calls (and only
those), relay ports are released and a full port range refuses calls,
symmetric RTP latches onto the port a device really sends from, RFC 4733
telephone-events and RTCP cross the relay untouched. Audio is checked by
content (tone frequency ±5 % and level)."""
from __future__ import annotations

import random
import re
import struct
import time

import numpy as np
import pytest

from harness import procs
from harness.rtp import RtpEndpoint, RtpPacket, tone_samples
from harness.ua import make_sdp, parse_sdp
from harness.uaflows import connect, hang_up, health, start_tones, tone_report, wait_health


def _registered(ua):
    r = ua.register()
    assert r is not None and r.status == 200, f"{ua.name}: REGISTER answered {r}"


def _assert_tones(caller_rtp, callee_rtp, caller_hz=1000, callee_hz=440, t0=None, min_seconds=2.0):
    by_callee = tone_report(callee_rtp, t0)
    by_caller = tone_report(caller_rtp, t0)
    print(f"callee heard: {by_callee}\ncaller heard: {by_caller}")
    assert by_callee.ok(caller_hz, min_seconds=min_seconds), f"callee heard {by_callee}"
    assert by_caller.ok(callee_hz, min_seconds=min_seconds), f"caller heard {by_caller}"


# ------------------------------------------------------------------ 7. media timeout
@pytest.mark.timeout(60)
def test_media_timeout_byes_both_legs_of_a_silent_call(pbx_factory, uas):
    pbx = pbx_factory(overrides={"rtp": {"media_timeout_secs": 3}}).start()
    caller, callee = uas(pbx, "101"), uas(pbx, "102")
    _registered(callee)
    # SDP names ports nobody sends from: no RTP at all
    call = connect(pbx, caller, callee, "102", procs.free_port("media"), procs.free_port("media"))
    t_answer = call.out.final_at
    bye_caller = caller.wait_request("BYE", 12, call_id=call.out.call_id)
    bye_callee = callee.wait_request("BYE", 12, call_id=call.invite.get("call-id"))
    for ua, bye in ((caller, bye_caller), (callee, bye_callee)):
        if bye is not None:
            ua.respond(bye, 200)
    assert bye_caller is not None, "caller got no BYE after the media timeout"
    assert bye_callee is not None, "callee got no BYE after the media timeout"
    for who, bye in (("caller", bye_caller), ("callee", bye_callee)):
        after = bye.arrival - t_answer
        print(f"{who}: BYE {after:.2f}s after the 200")
        assert 2.5 <= after <= 8.0, f"{who}: BYE {after:.2f}s after answer (media_timeout_secs: 3)"
    h = wait_health(pbx, 5, active_calls=0, media_relays=0)
    assert h["active_calls"] == 0 and h["media_relays"] == 0, h


@pytest.mark.timeout(60)
def test_media_timeout_spares_a_call_with_rtp(pbx_factory, uas, rtp):
    pbx = pbx_factory(overrides={"rtp": {"media_timeout_secs": 3}}).start()
    caller, callee = uas(pbx, "101"), uas(pbx, "102")
    _registered(callee)
    caller_rtp, callee_rtp = rtp(), rtp()
    call = connect(pbx, caller, callee, "102", caller_rtp.port, callee_rtp.port)
    start_tones(call, caller_rtp, callee_rtp)
    time.sleep(9.0)
    byes = [m for ua in (caller, callee) for m in ua.pending() if not m.is_response]
    assert not byes, f"a call with RTP flowing was ended: {[m.start for m in byes]}"
    assert health(pbx)["active_calls"] == 1
    _assert_tones(caller_rtp, callee_rtp, min_seconds=7.0)
    resp, bye = hang_up(call.caller, callee, call.invite.get("call-id"))
    assert bye is not None and resp is not None and resp.status == 200, (resp, bye)


# ------------------------------------------------------------------ 8. ports released / exhausted
@pytest.mark.timeout(90)
def test_relay_ports_released_after_calls(pbx, uas, rtp):
    caller, callee = uas(pbx, "101"), uas(pbx, "102")
    _registered(callee)
    assert health(pbx)["media_relays"] == 0
    # 1: the caller hangs up; 2: the callee hangs up (both with audio)
    for n, hanger in enumerate(("caller", "callee")):
        caller_rtp, callee_rtp = rtp(), rtp()
        call = connect(pbx, caller, callee, "102", caller_rtp.port, callee_rtp.port)
        start_tones(call, caller_rtp, callee_rtp)
        h = health(pbx)
        assert h["active_calls"] == 1 and h["media_relays"] == 1, f"call {n + 1} up: {h}"
        time.sleep(2.5)
        _assert_tones(caller_rtp, callee_rtp, min_seconds=1.5)
        if hanger == "caller":
            resp, bye = hang_up(call.caller, callee, call.invite.get("call-id"))
        else:
            resp, bye = hang_up(call.callee, caller, call.out.call_id)
        assert bye is not None and resp is not None and resp.status == 200, (hanger, resp, bye)
        h = wait_health(pbx, 5, active_calls=0, media_relays=0)
        assert h["active_calls"] == 0 and h["media_relays"] == 0, f"after call {n + 1}: {h}"
    # 3: cancelled while ringing
    out = caller.invite("102", make_sdp("127.0.0.1", procs.free_port("media")))
    inv = callee.wait_request("INVITE", 5)
    assert inv is not None
    callee.respond(inv, 180, to_tag="c3")
    assert out.wait_provisional(180, 5) is not None
    assert health(pbx)["media_relays"] == 1
    r = out.cancel()
    assert r is not None and r.status == 200, f"CANCEL answered {r}"
    cancel = callee.wait_request("CANCEL", 5)
    assert cancel is not None
    callee.reject_cancelled(inv, cancel, to_tag="c3")
    final = out.wait_final(5)
    assert final is not None and final.status == 487, final
    # 4: refused by the callee
    out = caller.invite("102", make_sdp("127.0.0.1", procs.free_port("media")))
    inv = callee.wait_request("INVITE", 5)
    assert inv is not None
    callee.respond(inv, 486, to_tag="c4")
    final = out.wait_final(5)
    assert final is not None and final.status == 486, final
    h = wait_health(pbx, 5, active_calls=0, media_relays=0)
    assert h["active_calls"] == 0 and h["media_relays"] == 0, f"after 4 calls: {h}"
    # 5: answered with SDP the PBX cannot use: the caller gets 488, the
    # callee a BYE, and the call is gone (it used to stay "answered" with
    # its relay forever, since no media timeout runs for it)
    out = caller.invite("102", make_sdp("127.0.0.1", procs.free_port("media")))
    inv = callee.wait_request("INVITE", 5)
    assert inv is not None
    callee.answer(inv, b"\x00\x01\xfe not SDP \xff", to_tag="c5")
    final = out.wait_final(5)
    assert final is not None and final.status == 488, final
    bye = callee.wait_request("BYE", 5, call_id=inv.get("call-id"))
    assert bye is not None, "the callee got no BYE"
    callee.respond(bye, 200)
    h = wait_health(pbx, 5, active_calls=0, media_relays=0)
    assert h["active_calls"] == 0 and h["media_relays"] == 0, f"after the unusable answer: {h}"


@pytest.mark.timeout(90)
def test_full_port_range_refuses_third_call_then_recovers(pbx_factory, uas, rtp):
    lo, hi = procs.rtp_range(8)   # 4 RTP/RTCP pairs = 2 relays (2 pairs each) = 2 calls
    pbx = pbx_factory(overrides={"rtp": {"ports": f"{lo}-{hi}"}})
    pbx.rtp_lo, pbx.rtp_hi = lo, hi
    pbx.start()
    c101, c103 = uas(pbx, "101"), uas(pbx, "103")
    e102, e104 = uas(pbx, "102"), uas(pbx, "104")
    _registered(e102)
    _registered(e104)
    calls = []
    for caller, callee, target in ((c101, e102, "102"), (c103, e104, "104")):
        a, b = rtp(), rtp()
        call = connect(pbx, caller, callee, target, a.port, b.port)
        for who, (ip, port) in (("caller", call.caller_sees), ("callee", call.callee_sees)):
            assert ip == pbx.host and lo <= port <= hi, f"{who} offered {ip}:{port}, range {lo}-{hi}"
        start_tones(call, a, b)
        calls.append((call, a, b, caller, callee))
    h = health(pbx)
    assert h["active_calls"] == 2 and h["media_relays"] == 2, h
    # the third concurrent call finds no free port pair
    out = c101.invite("104", make_sdp("127.0.0.1", procs.free_port("media")))
    final = out.wait_final(8)
    assert final is not None, "third call got no final response"
    assert final.status == 488 or 500 <= final.status <= 599, f"third call answered {final.status}"
    assert e104.wait_request("INVITE", 1.0) is None, "the refused call still rang the callee"
    time.sleep(1.0)
    for call, a, b, _, _ in calls:
        _assert_tones(a, b, min_seconds=1.5)   # the refusal did not disturb the calls up
    for call, a, b, caller, callee in calls:
        resp, bye = hang_up(call.caller, callee, call.invite.get("call-id"))
        assert bye is not None and resp is not None and resp.status == 200, (resp, bye)
    h = wait_health(pbx, 5, active_calls=0, media_relays=0)
    assert h["active_calls"] == 0 and h["media_relays"] == 0, h
    # now there is room again
    a, b = rtp(), rtp()
    call = connect(pbx, c103, e102, "102", a.port, b.port)
    t0 = time.monotonic()
    start_tones(call, a, b)
    time.sleep(3.0)
    _assert_tones(a, b, t0=t0, min_seconds=2.0)
    resp, bye = hang_up(call.caller, e102, call.invite.get("call-id"))
    assert bye is not None and resp is not None and resp.status == 200, (resp, bye)


@pytest.mark.timeout(30)
def test_an_offer_with_a_bad_port_gets_488_and_rings_nobody(pbx, uas):
    """m=audio 99999 is the offer's fault: 488, not the 503 of a full port range."""
    caller, callee = uas(pbx, "101"), uas(pbx, "102")
    _registered(callee)
    out = caller.invite("102", make_sdp("127.0.0.1", 99999))
    final = out.wait_final(5)
    assert final is not None and final.status == 488, final
    assert callee.wait_request("INVITE", 1.0) is None, "the callee was rung"
    assert health(pbx)["media_relays"] == 0


# ------------------------------------------------------------------ 9. latching
@pytest.mark.timeout(60)
@pytest.mark.parametrize("real_host", ["127.0.0.1", "127.0.0.2"])
def test_relay_latches_onto_the_port_the_caller_really_sends_from(pbx, uas, rtp, real_host):
    """real_host 127.0.0.2: the NAT also changed the address, not only the port
    (the caller's SIP comes from there too, its SDP names 127.0.0.1)."""
    caller, callee = uas(pbx, "101", host=real_host), uas(pbx, "102")
    _registered(callee)
    named = rtp()                  # port X: in the caller's SDP, never sends
    actual = RtpEndpoint(real_host)  # port Y: what the caller really sends from (NAT)
    callee_rtp = rtp()
    call = connect(pbx, caller, callee, "102", named.port, callee_rtp.port, caller_sdp_host="127.0.0.1")
    # both start at once: until the caller's first packet arrives from Y, the
    # relay can only send to X; from then on everything must go to Y
    actual.start_sending(tone_samples(1000, 2.0), call.caller_sees)
    callee_rtp.start_sending(tone_samples(440, 2.0), call.callee_sees)
    time.sleep(4.0)
    heard_y = tone_report(actual)
    heard_callee = tone_report(callee_rtp)
    print(f"caller's real port heard: {heard_y}\ncallee heard: {heard_callee}\n"
          f"SDP port got {len(named.packets())} packets")
    assert heard_y.ok(440, min_seconds=3.0), f"caller at the latched port heard {heard_y}"
    assert heard_callee.ok(1000, min_seconds=3.0), f"callee heard {heard_callee}"
    assert all(src == call.caller_sees for src in actual.sources()), \
        f"caller got RTP from {actual.sources()}, not from its relay port {call.caller_sees}"
    assert len(named.packets()) <= 10, \
        f"{len(named.packets())} packets still went to the SDP port after latching"
    resp, bye = hang_up(call.caller, callee, call.invite.get("call-id"))
    assert bye is not None and resp is not None and resp.status == 200, (resp, bye)
    actual.close()


def _share_at(x, hz: float, fs: int = 8000) -> float:
    """Fraction of the signal's energy within ±50 Hz of `hz`."""
    spec = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / fs)
    return float(spec[(freqs > hz - 50) & (freqs < hz + 50)].sum() / max(spec.sum(), 1e-20))


@pytest.mark.timeout(60)
def test_rtp_from_a_host_signalling_did_not_name_never_gets_the_call(pbx, uas, rtp):
    """RTP bleed (issue 17 item 4): a stranger on 127.0.0.3 sends to the
    caller's relay port before the caller speaks, and goes on after the
    caller fell silent for longer than the re-latch time. The relay never
    latches onto it: the callee hears only the caller's tone, the stranger
    receives nothing, and the relay counts what it dropped."""
    caller, callee = uas(pbx, "101"), uas(pbx, "102")
    _registered(callee)
    a, b = rtp(), rtp()
    stranger = RtpEndpoint("127.0.0.3")
    try:
        call = connect(pbx, caller, callee, "102", a.port, b.port)
        stranger.start_sending(tone_samples(2000, 2.0), call.caller_sees)
        time.sleep(1.0)
        # The caller talks for 2 s and then falls silent; the callee talks all along.
        a.start_sending(tone_samples(1000, 2.0), call.caller_sees, loop=False)
        b.start_sending(tone_samples(440, 2.0), call.callee_sees)
        time.sleep(6.0)
        heard = b.decoded_float()
        by_callee, by_caller = tone_report(b), tone_report(a)
        print(f"callee heard: {by_callee}, 2000 Hz share {_share_at(heard, 2000):.2e}\n"
              f"caller heard: {by_caller}\nstranger sent {stranger.sent}, got {len(stranger.packets())}")
        assert stranger.sent > 200, "the stranger did not send"
        assert len(stranger.packets()) == 0, f"the stranger got {len(stranger.packets())} packets of the call"
        assert by_callee.ok(1000, min_seconds=1.5), f"callee heard {by_callee}"
        assert _share_at(heard, 2000) < 1e-3, "the stranger's 2000 Hz reached the callee"
        assert by_caller.ok(440, min_seconds=3.0), f"caller heard {by_caller}"
        resp, bye = hang_up(call.caller, callee, call.invite.get("call-id"))
        assert bye is not None and resp is not None and resp.status == 200, (resp, bye)
        wait_health(pbx, 5, active_calls=0, media_relays=0)
        dropped = [int(n) for n in re.findall(r"relay stopped .*dropped_untrusted: (\d+)", pbx.log_text())]
        assert dropped and max(dropped) > 100, f"relay drop counts: {dropped}"
    finally:
        stranger.close()


# ------------------------------------------------------------------ 10. RFC 4733 + RTCP
def _dtmf_packets(digit: int = 5) -> list[RtpPacket]:
    """RFC 4733 §2.5 event 5: three updates, then the end packet sent three times;
    all with the event's start timestamp, marker on the first."""
    ssrc, seq, ts = random.randint(1, 2**32 - 1), random.randint(0, 60000), random.randint(0, 2**31)
    pk = []
    for i, dur in enumerate((160, 320, 480)):
        pk.append(RtpPacket(101, seq + i, ts, ssrc, i == 0, struct.pack("!BBH", digit, 10, dur)))
    for j in range(3):
        pk.append(RtpPacket(101, seq + 3 + j, ts, ssrc, False,
                            struct.pack("!BBH", digit, 0x80 | 10, 640)))
    return pk


@pytest.mark.timeout(60)
def test_rfc4733_events_and_rtcp_cross_the_relay_unchanged(pbx, uas, rtp):
    caller, callee = uas(pbx, "101"), uas(pbx, "102")
    _registered(callee)
    a, b = rtp(pair=True), rtp(pair=True)
    call = connect(pbx, caller, callee, "102", a.port, b.port)
    # telephone-event offered and answered through the PBX
    for who, msg in (("callee's INVITE", call.invite), ("caller's 200", call.out.final)):
        maps = parse_sdp(msg.body).rtpmaps
        assert any(m.startswith("101 telephone-event/8000") for m in maps), f"{who}: rtpmaps {maps}"
    start_tones(call, a.rtp, b.rtp)
    assert b.rtp.wait_packets(10, 5) and a.rtp.wait_packets(10, 5), "no audio relayed"
    events = _dtmf_packets(5)
    for p in events:
        a.rtp.sock.sendto(p.pack(), call.caller_sees)
        time.sleep(0.02)
    # RTCP: to the relay's RTCP port (RTP port + 1), both ways
    rr_a = struct.pack("!BBHI", 0x80, 201, 1, 0x11223344)      # empty RR from the caller
    sr_b = struct.pack("!BBHIIIIII", 0x80, 200, 6, 0x55667788, 1, 2, 3, 4, 5)  # SR from the callee
    for _ in range(3):
        a.rtcp.sendto(rr_a, (call.caller_sees[0], call.caller_sees[1] + 1))
        b.rtcp.sendto(sr_b, (call.callee_sees[0], call.callee_sees[1] + 1))
        time.sleep(0.1)
    time.sleep(1.5)
    got = [r.pkt for r in b.rtp.packets() if r.pkt.pt == 101]
    assert [p.payload for p in got] == [p.payload for p in events], \
        f"telephone-event payloads changed: sent {[p.payload.hex() for p in events]}, " \
        f"callee got {[(p.pt, p.payload.hex()) for p in got]}"
    assert all(p.pt == 101 for p in got)
    assert got[0].marker, "the event's first packet lost its marker bit"
    assert len({p.ts for p in got}) == 1, "the event's packets no longer share one timestamp"
    other = [r.pkt.pt for r in b.rtp.packets() if r.pkt.pt not in (0, 101)]
    assert not other, f"callee got unexpected payload types {set(other)}"
    # RTCP arrived intact, from the PBX's RTCP ports
    at_b = [(d, s) for d, s in b.rtcp_received if d == rr_a]
    at_a = [(d, s) for d, s in a.rtcp_received if d == sr_b]
    assert at_b, f"caller's RTCP did not reach the callee's RTCP port; got {b.rtcp_received}"
    assert at_a, f"callee's RTCP did not reach the caller's RTCP port; got {a.rtcp_received}"
    assert all(s == (call.callee_sees[0], call.callee_sees[1] + 1) for _, s in at_b), at_b
    assert all(s == (call.caller_sees[0], call.caller_sees[1] + 1) for _, s in at_a), at_a
    _assert_tones(a.rtp, b.rtp, min_seconds=2.0)
    resp, bye = hang_up(call.caller, callee, call.invite.get("call-id"))
    assert bye is not None and resp is not None and resp.status == 200, (resp, bye)
