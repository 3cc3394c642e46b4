"""A second real phone stack: linphonec (liblinphone 5.1) registers as 103 and
auto-answers calls through the PBX, from a sipp caller with a Python RTP
endpoint and from baresip. linphonec runs with its file sound card: it plays a
1000 Hz tone into the call and records what it receives, so both directions
are checked by content."""
from __future__ import annotations

import time

import pytest

from harness import audio, flows


def _linphone_103(pbx, linphone_factory, signals):
    lin = linphone_factory("103", user="103", password=pbx.passwords["103"],
                           pbx_host=pbx.host, pbx_port=pbx.sip_port,
                           play=signals["tone1000"]).start()
    lin.wait_registered(20)
    lin.use_files()
    return lin


@pytest.mark.timeout(120)
def test_sipp_caller_to_linphone_tones_both_ways(pbx, sipp, workdir, linphone_factory, signals):
    lin = _linphone_103(pbx, linphone_factory, signals)
    call = flows.sipp_caller_tone_call(sipp, pbx, workdir, caller="101", callee="103",
                                       hold_ms=7000, hz=440)
    assert call.uac.ok, call.uac.summary()
    assert call.sees and call.sees[0] == pbx.host and pbx.in_rtp_range(call.sees[1]), \
        f"caller was offered media at {call.sees}, not in the PBX range"
    lin.wait_console(r"(?i)connected\.", 2)
    time.sleep(1.0)  # linphonec closes its recording when the call ends
    # linphone -> PBX -> caller
    got = audio.analyze_tone_samples(call.rtp.decoded_float())
    assert got.ok(1000, min_seconds=4), f"caller heard (expected linphone's 1000 Hz): {got}"
    srcs = call.rtp.sources()
    assert all(ip == pbx.host and pbx.in_rtp_range(p) for ip, p in srcs), \
        f"caller received RTP from {srcs}, not from the PBX"
    # caller -> PBX -> linphone
    assert lin.record.exists(), "linphonec wrote no recording"
    rl = audio.analyze_tone(lin.record)
    assert rl.ok(440, min_seconds=4), f"linphone heard (expected the caller's 440 Hz): {rl}"


@pytest.mark.timeout(150)
def test_baresip_calls_linphone_tones_both_ways(pbx, baresip_factory, linphone_factory,
                                                signals):
    lin = _linphone_103(pbx, linphone_factory, signals)
    a = baresip_factory("101", user="101", domain=f"{pbx.host}:{pbx.sip_port}",
                        password=pbx.passwords["101"], source=signals["tone440"]).start()
    a.wait_registered(15)

    a.dial(f"sip:103@{pbx.host}:{pbx.sip_port}")
    a.wait_established(20)
    lin.wait_connected(10)
    time.sleep(8)
    a.hangup()
    a.wait_closed(10)
    time.sleep(1.0)

    # linphone -> PBX -> baresip
    ra = audio.analyze_tone(a.recordings()[-1])
    assert ra.ok(1000, min_seconds=5), f"101 heard (expected linphone's 1000 Hz): {ra}"
    # baresip -> PBX -> linphone
    assert lin.record.exists(), "linphonec wrote no recording"
    rl = audio.analyze_tone(lin.record)
    assert rl.ok(440, min_seconds=5), f"linphone heard (expected 101's 440 Hz): {rl}"
    # the audio was relayed by the PBX, not sent phone to phone
    srcs = a.rtp_sources()
    assert srcs and all(ip == pbx.host and pbx.in_rtp_range(p) for ip, p in srcs), \
        f"baresip received RTP from {srcs}, not from the PBX range"
    assert not any(p == lin.rtp_port for _, p in srcs)
