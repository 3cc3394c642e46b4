"""Real phones through the PBX: two baresips register as 101 and 102; 101 dials
102 (auto-answer). Each side plays its own signal and records what it receives
(*-dec.wav); the recordings are checked by content. The media must be relayed
by the PBX (SDP and RTP sources in the PBX's rtp.ports range)."""
from __future__ import annotations

import time

import pytest

from harness import audio


def _phones(pbx, baresip_factory, sources, transport="udp"):
    port = pbx.tls_port if transport == "tls" else pbx.sip_port
    cafile = pbx.cert_path if transport == "tls" else None
    phones = {}
    for ext, src in zip(("101", "102"), sources):
        phones[ext] = baresip_factory(
            ext, user=ext, domain=f"{pbx.host}:{port}", password=pbx.passwords[ext],
            transport=transport, source=src, cafile=cafile).start()
    for b in phones.values():
        b.wait_registered(15)
    return phones["101"], phones["102"]


def _call(a, b, pbx, seconds: float, transport="udp"):
    port = pbx.tls_port if transport == "tls" else pbx.sip_port
    t = f";transport={transport}" if transport != "udp" else ""
    a.dial(f"sip:102@{pbx.host}:{port}{t}")
    a.wait_established(20)
    b.wait_established(10)
    time.sleep(seconds)
    a.hangup()
    a.wait_closed(10)
    b.wait_closed(10)
    time.sleep(0.5)


def _assert_media_via_pbx(pbx, *phones):
    for ph in phones:
        sdps = ph.received_sdp(pbx.tls_port if ph.transport == "tls" else pbx.sip_port)
        assert sdps, f"baresip {ph.name} saw no SDP from the PBX"
        for d in sdps:
            assert d["c"] == pbx.host and pbx.in_rtp_range(d["port"]), \
                f"baresip {ph.name} got SDP {d} not pointing at the PBX range {pbx.rtp_lo}-{pbx.rtp_hi}"
        srcs = ph.rtp_sources()
        assert srcs, f"baresip {ph.name}: no incoming RTP"
        assert all(ip == pbx.host and pbx.in_rtp_range(p) for ip, p in srcs), \
            f"baresip {ph.name} received RTP from {srcs}, not from the PBX"


def _assert_tones(a, b):
    ra = audio.analyze_tone(a.recordings()[-1])
    rb = audio.analyze_tone(b.recordings()[-1])
    print(f"101 heard: {ra}\n102 heard: {rb}")
    assert rb.ok(440, min_seconds=5), f"102 heard (expected 440 Hz from 101): {rb}"
    assert ra.ok(1000, min_seconds=5), f"101 heard (expected 1000 Hz from 102): {ra}"


@pytest.mark.timeout(120)
def test_udp_call_tones_both_ways(pbx, baresip_factory, signals):
    a, b = _phones(pbx, baresip_factory, (signals["tone440"], signals["tone1000"]))
    _call(a, b, pbx, 8)
    assert a.recordings() and b.recordings(), "no recordings"
    _assert_tones(a, b)
    _assert_media_via_pbx(pbx, a, b)


@pytest.mark.timeout(120)
def test_udp_call_speech_pesq(pbx, baresip_factory, signals):
    a, b = _phones(pbx, baresip_factory, (signals["speech"], signals["tone1000"]))
    _call(a, b, pbx, audio.speech_seconds(signals["speech"]) + 3.0)
    p = audio.pesq_nb(signals["speech"], b.recordings()[-1])
    print(f"speech 101 -> 102: {p}")
    assert p.mos >= 3.8, f"speech 101 -> 102 through the PBX: {p}"
    _assert_media_via_pbx(pbx, a, b)


@pytest.mark.timeout(150)
def test_tls_call_tones_both_ways(pbx_factory, baresip_factory, signals):
    # no sip.tls in the config: the PBX writes a self-signed pair to data_dir/tls/
    pbx = pbx_factory(tls=True).start()
    assert pbx.cert_path.exists(), f"no self-signed certificate at {pbx.cert_path}"
    a, b = _phones(pbx, baresip_factory, (signals["tone440"], signals["tone1000"]),
                   transport="tls")
    _call(a, b, pbx, 8, transport="tls")
    _assert_tones(a, b)
    _assert_media_via_pbx(pbx, a, b)
