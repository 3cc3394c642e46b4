"""Self-tests of the harness, without the PBX: they prove that the peers, the
scenarios and the audio checks work, so that a failure in the other files
points at the PBX rather than at the test rig.

- audio analysis on sox-made files; PCMU codec against sox's
- Python RTP endpoints against each other
- every sipp UAC scenario against a sipp UAS standing in for the PBX (it sends
  the 407 challenge itself), the REGISTER scenarios and the Python digest
  client against a sipp registrar that verifies the digest
- baresip -> baresip direct call: tones both ways and PESQ (~4.0 for G.711)
- baresip -> linphonec direct call: tones both ways
"""
from __future__ import annotations

import subprocess
import time
from types import SimpleNamespace

import numpy as np
import pytest

from harness import audio, flows, procs, rtp
from harness import sip as siplib
from harness.sipp import SCENARIOS, with_challenge

pytestmark = pytest.mark.harness


# ------------------------------------------------------------------ audio + codec
def test_tone_analysis_on_sox_files(tmp_path, signals):
    r = audio.analyze_tone(signals["tone440"])
    assert r.ok(440), str(r)
    r = audio.analyze_tone(signals["tone1000"])
    assert r.ok(1000), str(r)
    assert not r.ok(440)  # the check does tell tones apart
    # a quiet tone fails the level check, silence fails everything
    quiet = audio.make_tone(tmp_path / "quiet.wav", 1000, seconds=3, volume=0.03)  # about -33 dBFS
    rq = audio.analyze_tone(quiet)
    assert abs(rq.freq_hz - 1000) < 5 and rq.rms_dbfs < -30 and not rq.ok(1000), str(rq)
    sil = tmp_path / "silence.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(sil), "trim", "0", "3"],
                   check=True, timeout=30)
    rs = audio.analyze_tone(sil)
    assert rs.seconds == 0 and not rs.ok(1000)
    x, _ = audio.load(sil)
    assert audio.silent_share(x) == 1.0
    # a tone with gaps: silent-frame share is measured
    x, _ = audio.load(signals["tone1000"])
    x = x[: 8000 * 4].copy()
    x[8000:16000] = 0  # one second of dropout inside the active part
    r = audio.analyze_tone_samples(x)
    assert 0.2 < r.silent_share < 0.3, str(r)


def test_pesq_separates_clean_and_degraded(tmp_path, signals):
    ref = signals["speech"]
    clean = audio.pesq_nb(ref, ref)
    assert clean.mos > 4.3, str(clean)
    # delayed copy: alignment must find the delay
    delayed = tmp_path / "delayed.wav"
    subprocess.run(["sox", str(ref), str(delayed), "pad", "0.37", "0"], check=True, timeout=30)
    d = audio.pesq_nb(ref, delayed)
    assert d.mos > 4.3 and abs(d.lag_ms - 370) < 2, str(d)
    # G.711 round trip through our codec: ~4.0 (the codec's own ceiling)
    x, _ = audio.load(ref)
    s = np.round(x * 32767).astype(np.int16)
    g711 = audio.save(tmp_path / "g711.wav", rtp.ulaw_decode(rtp.ulaw_encode(s)))
    g = audio.pesq_nb(ref, g711)
    assert g.mos > 3.9, str(g)
    # heavy degradation scores low
    bad = tmp_path / "bad.wav"
    subprocess.run(["sox", str(ref), str(bad), "lowpass", "500", "vol", "0.3"],
                   check=True, timeout=30)
    x, _ = audio.load(bad)
    rng = np.random.default_rng(1)
    audio.save(bad, np.clip(x + 0.05 * rng.standard_normal(len(x)), -1, 1))
    b = audio.pesq_nb(ref, bad)
    assert b.mos < 3.0, str(b)


def test_warped_distance_forgives_tempo_not_damage(tmp_path, signals):
    """The played-out measure of the browser tests: a receiver's speed changes
    (a jitter buffer accelerating) pass, damage does not."""
    ref = signals["speech"]
    x, _ = audio.load(ref)
    g711 = audio.save(tmp_path / "g711.wav", rtp.ulaw_decode(rtp.ulaw_encode(np.round(x * 32767).astype(np.int16))))
    clean = audio.warped_distance(ref, g711)
    assert clean.db < 1.0, str(clean)
    faster = tmp_path / "faster.wav"
    subprocess.run(["sox", str(g711), str(faster), "tempo", "-s", "1.03"], check=True, timeout=30)
    assert audio.pesq_nb(ref, faster).mos < 2.8  # what PESQ makes of it
    f = audio.warped_distance(ref, faster)
    assert f.db < 2.5, str(f)
    damaged = {
        "u-law read as a-law": rtp.alaw_decode(rtp.ulaw_encode(np.round(x * 32767).astype(np.int16))) / 32768.0,
        "noise at 10 dB SNR": x + np.random.default_rng(1).normal(0, np.sqrt(np.mean(x[x != 0] ** 2)) / np.sqrt(10), len(x)),
        "clipped": np.clip(x * 8, -1, 1),
        "reversed": x[::-1].copy(),
        "-12 dB": x / 4,
    }
    for name, y in damaged.items():
        d = audio.warped_distance(ref, audio.save(tmp_path / "damaged.wav", np.clip(y, -1, 1)))
        assert d.db > 4.0, f"{name}: {d}"
        print(name, d)


def _sox_g711(tmp_path, signals, encoding: str) -> tuple[bytes, np.ndarray]:
    """2 s of the 1000 Hz tone coded by sox in `encoding` (mu-law, a-law), and
    sox's own decoding of those bytes."""
    coded, s16 = tmp_path / f"t.{encoding}", tmp_path / f"t.{encoding}.s16"
    subprocess.run(["sox", str(signals["tone1000"]), "-t", "raw", "-e", encoding, "-b", "8",
                    str(coded), "trim", "0", "2"], check=True, timeout=30)
    subprocess.run(["sox", "-t", "raw", "-r", "8000", "-e", encoding, "-b", "8", "-c", "1",
                    str(coded), "-t", "raw", "-e", "signed", "-b", "16", str(s16)],
                   check=True, timeout=30)
    return coded.read_bytes(), np.fromfile(s16, dtype=np.int16)


def test_ulaw_codec_matches_sox(tmp_path, signals):
    coded, ref = _sox_g711(tmp_path, signals, "mu-law")
    assert np.array_equal(ref, rtp.ulaw_decode(coded)), "u-law decoding differs from sox"
    x, _ = audio.load(signals["tone1000"])
    s = np.round(x[:16000] * 32767).astype(np.int16)
    err = np.abs(rtp.ulaw_decode(rtp.ulaw_encode(s)).astype(int) - s)
    assert err.max() <= 16 + np.abs(s).max() / 32, err.max()  # within one u-law step


def test_alaw_decoder_matches_sox(tmp_path, signals):
    coded, ref = _sox_g711(tmp_path, signals, "a-law")
    assert np.array_equal(ref, rtp.alaw_decode(coded)), "A-law decoding differs from sox"
    every = bytes(range(256))
    assert np.array_equal(rtp.alaw_decode(every), -rtp.alaw_decode(bytes(b ^ 0x80 for b in every)))


def test_g711_timeline_places_payloads_by_timestamp():
    """What the browser tap hands over: frames out of order, one lost, one
    repeated, a telephone-event among them, timestamps across the 2^32 wrap."""
    tone = rtp.tone_samples(1000, 1.0)
    frames = [((2**32 - 800 + i * 160) % 2**32, 0, rtp.ulaw_encode(tone[i * 160:(i + 1) * 160])) for i in range(50)]
    lost = frames.pop(20)
    frames[30], frames[31] = frames[31], frames[30]
    frames.insert(10, frames[9])
    frames.insert(5, (frames[5][0], 101, bytes([1, 0x8a, 0, 160])))
    out = rtp.g711_timeline(frames)
    assert len(out) == 8000
    at = (lost[0] - frames[0][0]) % 2**32
    assert at == 20 * 160 and not out[at:at + 160].any(), "the lost frame is silence where it belonged"
    rest = np.concatenate([out[:at], out[at + 160:]])
    expect = rtp.ulaw_decode(rtp.ulaw_encode(np.concatenate([tone[:at], tone[at + 160:]])))
    assert np.array_equal(rest, expect)


def test_rtp_endpoints_exchange_tones():
    with rtp.RtpEndpoint() as a, rtp.RtpEndpoint() as b:
        a.start_sending(rtp.tone_samples(1000, 2.0), (b.host, b.port))
        b.start_sending(rtp.tone_samples(440, 2.0), (a.host, a.port))
        time.sleep(3.0)
    rb = audio.analyze_tone_samples(b.decoded_float())
    ra = audio.analyze_tone_samples(a.decoded_float())
    assert rb.ok(1000, min_seconds=2.5), str(rb)
    assert ra.ok(440, min_seconds=2.5), str(ra)
    # 20 ms pacing: about 50 packets a second
    n = len(b.packets())
    assert 130 <= n <= 160, n
    assert b.sources() == {(a.host, a.port)}


# ------------------------------------------------------------------ sipp scenarios
@pytest.fixture
def fake_pbx():
    """What the flows need of a PBX, pointing at a sipp UAS that plays its part."""
    return SimpleNamespace(host="127.0.0.1", sip_port=0,
                           passwords={"101": "secret101", "102": "secret102"})


def test_sipp_uac_call_scenario_with_rtp(sipp, workdir, fake_pbx):
    port = procs.free_port()
    fake_pbx.sip_port = port
    uas = with_challenge(SCENARIOS / "uas_answer.xml", workdir)
    call = flows.sipp_tone_call(sipp, fake_pbx, workdir, caller="101", callee="102",
                                callee_port=port, hold_ms=3000, uas_scenario=uas)
    assert call.uac.ok, call.uac.summary()
    assert call.uas.ok, call.uas.summary()
    assert call.uac.received_statuses()[-1] == 200
    # ACK, BYE went out after the 407 round
    assert [m.method for m in call.uac.sent()] == ["INVITE", "ACK", "INVITE", "ACK", "BYE"]
    r1 = audio.analyze_tone_samples(call.callee_rtp.decoded_float())
    r2 = audio.analyze_tone_samples(call.caller_rtp.decoded_float())
    assert r1.ok(1000, min_seconds=2), str(r1)
    assert r2.ok(440, min_seconds=2), str(r2)


def test_sipp_cancel_and_reject_scenarios(sipp, workdir):
    def pair(uas_sc, uac_sc, **kw):
        port = procs.free_port()
        uas = sipp.start(uas_sc, port=port, timeout_s=20,
                         keys={"callee": "102", "rtp_port": 40000, "media_file": workdir / "m"})
        sipp.wait_listening(port)
        uac = sipp.run(uac_sc, f"127.0.0.1:{port}", service="102", auth=("101", "secret101"),
                       keys={"caller": "101", "rtp_port": 40002}, timeout_s=20, **kw)
        return uac, uas.wait(20)

    uac, uas = pair(with_challenge(SCENARIOS / "uas_ring_cancel.xml", workdir), "uac_cancel.xml")
    assert uac.ok and uas.ok, uac.summary() + "\n" + uas.summary()
    assert 487 in uac.received_statuses() and "CANCEL" in uas.received_requests()

    uac, uas = pair(with_challenge(SCENARIOS / "uas_busy.xml", workdir),
                    sipp.scenario("uac_final.xml", FINAL=486))
    assert uac.ok and uas.ok, uac.summary() + "\n" + uas.summary()
    # a final code the scenario does not expect makes it fail
    uac, _ = pair(with_challenge(SCENARIOS / "uas_busy.xml", workdir),
                  sipp.scenario("uac_final.xml", FINAL=404))
    assert not uac.ok, uac.summary()
    # unchallenged rejection (e.g. 404 before authentication) also passes
    uac, uas = pair(sipp.scenario("selftest/uas_final.xml", FINAL=404),
                    sipp.scenario("uac_final.xml", FINAL=404))
    assert uac.ok, uac.summary()
    # wrong password: refused with 403 or a new 407
    uac, _ = pair(with_challenge(sipp.scenario("selftest/uas_final.xml", FINAL=403), workdir),
                  "uac_wrong_password.xml")
    assert uac.ok, uac.summary()
    uac, _ = pair(with_challenge(with_challenge(sipp.scenario("selftest/uas_final.xml", FINAL=500),
                                                workdir), workdir), "uac_wrong_password.xml")
    assert uac.ok, uac.summary()


def _registrar(sipp, user, password, expires=600):
    port = procs.free_port()
    proc = sipp.start("selftest/registrar.xml", port=port, timeout_s=15,
                      keys={"user": user, "pass": password, "expires": expires})
    sipp.wait_listening(port)
    return port, proc


def test_sipp_register_scenarios_and_digest(sipp):
    pbx = SimpleNamespace(host="127.0.0.1", sip_port=0, passwords={"101": "secret101"})
    # right password -> 200 with the contact and its expires
    pbx.sip_port, srv = _registrar(sipp, "101", "secret101", 3600)
    cport = procs.free_port()
    res = flows.sipp_register(sipp, pbx, "101", port=cport)
    assert res.ok, res.summary()
    assert srv.wait(10).ok
    ok = res.received()[-1]
    assert ok.status == 200 and f":{cport}" in ok.contacts()[0] and "expires=3600" in ok.contacts()[0]
    # wrong password -> the registrar's digest check refuses it
    pbx.sip_port, srv = _registrar(sipp, "101", "secret101")
    res = flows.sipp_register(sipp, pbx, "101", port=procs.free_port(), password="wrong",
                              scenario="register_wrong.xml")
    assert res.ok and res.received_statuses()[-1] == 403, res.summary()
    # the right-password scenario fails against that refusal
    pbx.sip_port, srv = _registrar(sipp, "101", "secret101")
    res = flows.sipp_register(sipp, pbx, "101", port=procs.free_port(), password="wrong")
    assert not res.ok
    # unregister (Contact: *, Expires: 0) passes the same digest check
    pbx.sip_port, srv = _registrar(sipp, "101", "secret101")
    res = flows.sipp_register(sipp, pbx, "101", port=procs.free_port(), scenario="unregister.xml")
    assert res.ok, res.summary()
    sent = res.sent()[-1]
    assert sent.get("contact") == "*" and sent.get("expires") == "0"
    # the Python client's digest (qop=auth) is accepted by sipp's verifyauth
    port, srv = _registrar(sipp, "101", "secret101")
    with siplib.SipClient("127.0.0.1", port) as c:
        r = c.register("101", "secret101")
    assert r is not None and r.status == 200, r
    port, srv = _registrar(sipp, "101", "secret101")
    with siplib.SipClient("127.0.0.1", port) as c:
        r = c.register("101", "nope")
    assert r is not None and r.status == 403, r


# ------------------------------------------------------------------ real phones, direct
@pytest.mark.timeout(120)
def test_baresip_direct_call_tones_and_pesq(baresip_factory, signals):
    a = baresip_factory("a", user="a", domain="127.0.0.1", source=signals["tone440"],
                        register=False).start()
    b = baresip_factory("b", user="b", domain="127.0.0.1", source=signals["tone1000"],
                        register=False).start()
    a.dial(f"sip:b@127.0.0.1:{b.sip_port}")
    a.wait_established(10)
    time.sleep(6)
    a.hangup()
    a.wait_closed(5)
    b.wait_closed(5)
    time.sleep(0.5)
    ra = audio.analyze_tone(a.recordings()[-1])
    rb = audio.analyze_tone(b.recordings()[-1])
    assert ra.ok(1000, min_seconds=4), str(ra)
    assert rb.ok(440, min_seconds=4), str(rb)
    # direct: the media came from the other phone's own port range
    src = a.rtp_sources()
    assert src and all(b.rtp_lo <= p < b.rtp_lo + 20 for _, p in src), src

    # speech: PESQ of G.711 end to end without a PBX is ~4.0
    c = baresip_factory("c", user="c", domain="127.0.0.1", source=signals["speech"],
                        register=False).start()
    a.clear_recordings()
    n = len(a.ctrl.events)
    c.dial(f"sip:a@127.0.0.1:{a.sip_port}")
    c.wait_established(10)
    time.sleep(audio.speech_seconds(signals["speech"]) + 2.5)
    c.hangup()
    a.ctrl.wait_event("CALL_CLOSED", 5, since=n)
    time.sleep(0.5)
    p = audio.pesq_nb(signals["speech"], a.recordings()[-1])
    assert p.mos >= 3.8, str(p)


@pytest.mark.timeout(120)
def test_linphone_direct_call_tones(baresip_factory, linphone_factory, signals, workdir):
    lin = linphone_factory("lin", user="103", password="x", pbx_host="127.0.0.1", pbx_port=9,
                           register=False, play=signals["tone1000"]).start()
    lin.wait_console(r"linphonec> ", 10, poll_cmd="help")
    lin.use_files()
    a = baresip_factory("a", user="a", domain="127.0.0.1", source=signals["tone440"],
                        register=False).start()
    a.dial(f"sip:103@127.0.0.1:{lin.sip_port}")
    a.wait_established(10)
    lin.wait_connected(5)
    time.sleep(6)
    a.hangup()
    a.wait_closed(5)
    time.sleep(1.0)
    ra = audio.analyze_tone(a.recordings()[-1])
    assert ra.ok(1000, min_seconds=4), str(ra)
    rl = audio.analyze_tone(lin.record)
    assert rl.ok(440, min_seconds=4), str(rl)
