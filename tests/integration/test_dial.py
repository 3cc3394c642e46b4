"""Click-to-dial through the HTTP API (the same control path MQTT's "Dial"
uses): ha-pbx rings 101 first, then 102, and connects them; each baresip
hears the other's tone through the PBX. DTMF sent through the API reaches
the device as RFC 4733 telephone-events, key by key. Bad requests get a 4xx with a message."""
from __future__ import annotations

import concurrent.futures
import time

import numpy as np
import pytest

from harness import audio, flows, procs
from harness.pbx import api_request

TOKEN = "test-token-0123456789"


def api(pbx, method: str, path: str, body: dict | None = None, token: str | None = TOKEN):
    return api_request(pbx.http_base, method, path, body, token)


@pytest.fixture
def apbx(pbx_factory):
    return pbx_factory(overrides={"http": {"api_token": TOKEN}}).start()


def _phones(pbx, baresip_factory, signals):
    phones = []
    for ext, sig in (("101", "tone440"), ("102", "tone1000")):
        b = baresip_factory(ext, user=ext, domain=f"{pbx.host}:{pbx.sip_port}", password=pbx.passwords[ext],
                            transport="udp", source=signals[sig]).start()
        b.wait_registered(15)
        phones.append(b)
    return phones


@pytest.mark.timeout(120)
def test_dial_connects_two_phones_with_audio(apbx, baresip_factory, signals):
    a, b = _phones(apbx, baresip_factory, signals)
    status, body = api(apbx, "POST", "/api/calls", {"from": "101", "to": "102"})
    assert status == 202 and body.get("call_id"), (status, body)
    a.wait_established(20)
    b.wait_established(20)
    answered = time.monotonic()
    status, calls = api(apbx, "GET", "/api/calls")
    assert status == 200 and len(calls["calls"]) == 1 and calls["calls"][0]["answered"], calls
    call_id = calls["calls"][0]["call_id"]
    # DTMF to 102's device (RFC 4733, the default `dtmf`): baresip reports
    # each key it decodes as a CALL_DTMF_START event.
    mark = len(b.ctrl.events)
    status, body = api(apbx, "POST", f"/api/calls/{call_id}/dtmf", {"to": "102", "digits": "5#"})
    assert status == 202, body
    first = b.ctrl.wait_event("CALL_DTMF_START", 10, since=mark)
    second = b.ctrl.wait_event("CALL_DTMF_START", 10, since=b.ctrl.events.index(first) + 1)
    assert (first.get("param"), second.get("param")) == ("5", "#"), (first, second)
    # Long enough for the tone checks below (4 s of each tone).
    time.sleep(max(0.0, 7 - (time.monotonic() - answered)))
    status, _ = api(apbx, "DELETE", f"/api/calls/{call_id}")
    assert status == 202
    a.wait_closed(10)
    b.wait_closed(10)
    time.sleep(0.5)
    ra, rb = audio.analyze_tone(a.recordings()[-1]), audio.analyze_tone(b.recordings()[-1])
    assert rb.ok(440, min_seconds=4), f"102 heard {rb}"
    assert ra.ok(1000, min_seconds=4), f"101 heard {ra}"
    status, calls = api(apbx, "GET", "/api/calls")
    assert calls["calls"] == [], calls


def test_api_refuses_bad_requests(apbx, pbx_factory):
    assert api(apbx, "GET", "/api/calls", token=None)[0] == 401
    assert api(apbx, "GET", "/api/calls", token="wrong-token-wrong-token")[0] == 401
    status, body = api(apbx, "POST", "/api/calls", {"from": "101"})
    assert status == 400 and "from" in body["error"], body
    status, body = api(apbx, "POST", "/api/calls", {"from": "101", "to": "999"})
    assert status == 404 and "999" in body["error"], body
    status, body = api(apbx, "POST", "/api/calls", {"from": "101", "to": "102"})
    assert status == 409 and "101" in body["error"], body
    status, body = api(apbx, "DELETE", "/api/calls/nope")
    assert status == 404 and "nope" in body["error"], body
    # Without http.api_token (standalone) the API is not off: the administrator
    # secret ha-pbx made in data_dir (mode 0600) is its token.
    off = pbx_factory("off").start()
    assert api(off, "GET", "/api/calls")[0] == 401
    secret = (off.data_dir / "admin_token").read_text().strip()
    assert api(off, "GET", "/api/calls", token=secret)[0] == 200


@pytest.mark.timeout(150)
def test_transfer_connects_the_remaining_party_to_the_target(apbx, baresip_factory, signals, tmp_path):
    """101 calls 102; 102 transfers it to 103 (blind, by command): 102 is hung
    up, 103 rings and answers, and 101 and 103 hear each other's tones."""
    a, b = _phones(apbx, baresip_factory, signals)
    tone700 = audio.make_tone(tmp_path / "tone700.wav", 700, seconds=90)
    c = baresip_factory("103", user="103", domain=f"{apbx.host}:{apbx.sip_port}", password=apbx.passwords["103"],
                        transport="udp", source=tone700).start()
    c.wait_registered(15)
    a.dial(f"sip:102@{apbx.host}:{apbx.sip_port}")
    a.wait_established(20)
    b.wait_established(10)
    calls = api(apbx, "GET", "/api/calls")[1]["calls"]
    call_id = calls[0]["call_id"]
    status, body = api(apbx, "POST", f"/api/calls/{call_id}/transfer", {"leaving": "101", "to": "999"})
    assert status == 404, body
    status, body = api(apbx, "POST", f"/api/calls/{call_id}/transfer", {"leaving": "102", "to": "103"})
    assert status == 202, body
    b.wait_closed(10)
    c.wait_established(20)
    time.sleep(6)
    calls = api(apbx, "GET", "/api/calls")[1]["calls"]
    assert [(x["caller"], x["callee"], x["answered"]) for x in calls] == [("101", "103", True)], calls
    a.hangup()
    a.wait_closed(10)
    c.wait_closed(10)
    time.sleep(0.5)
    heard_by_c = audio.analyze_tone(c.recordings()[-1])
    assert heard_by_c.ok(440, min_seconds=4), f"103 heard {heard_by_c}"
    # 101's one recording spans both parts of the call: 1000 Hz from 102,
    # then 700 Hz from 103. Its last 3 s of sound must be 103's tone.
    x, fs = audio.load(a.recordings()[-1])
    loud = np.flatnonzero(np.abs(x) > 0.01)
    assert loud.size, "101 recorded silence"
    end = int(loud[-1])
    tail = audio.analyze_tone_samples(x[max(0, end - 3 * fs):end], fs)
    assert tail.ok(700, min_seconds=2), f"101 heard at the end {tail}"


def _answer_when_ringing(pbx, callee: str, until: float) -> list[tuple[int, dict]]:
    """Press "answer" through the API as soon as a call rings at `callee`;
    returns every reply (409 while the phone has not announced remote answer)."""
    replies: list[tuple[int, dict]] = []
    while time.monotonic() < until:
        calls = [c for c in api(pbx, "GET", "/api/calls")[1]["calls"] if c["callee"] == callee]
        if calls and not calls[0]["answered"]:
            replies.append(api(pbx, "POST", f"/api/calls/{calls[0]['call_id']}/answer"))
            if replies[-1][0] == 202:
                break
        time.sleep(0.05)
    return replies


@pytest.mark.timeout(120)
def test_answer_command_makes_a_remote_control_phone_pick_up(apbx, sipp, workdir):
    """102 is a desk phone with BroadSoft remote control (sipp: 180 with
    Allow-Events: talk, answers only on NOTIFY Event: talk). 101 calls it; the
    API's answer makes it pick up, and tones cross the call both ways."""
    port = procs.free_port()
    assert flows.sipp_register(sipp, apbx, "102", port=port, name="reg-102").ok
    pool = concurrent.futures.ThreadPoolExecutor(1)
    pressed = pool.submit(_answer_when_ringing, apbx, "102", time.monotonic() + 20)
    call = flows.sipp_tone_call(sipp, apbx, workdir, caller="101", callee="102", callee_port=port,
                                hold_ms=5000, caller_hz=1000, callee_hz=440,
                                uas_scenario="uas_remote_answer.xml")
    replies = pressed.result(30)
    assert replies and replies[-1][0] == 202, f"answer replies: {replies}"
    assert call.uas.ok, call.uas.summary()
    assert call.uac.ok, call.uac.summary()
    notify = [m for m in call.uas.received() if m.method == "NOTIFY"]
    assert len(notify) == 1 and (notify[0].get("event") or "").strip() == "talk", call.uas.summary()
    r_callee = audio.analyze_tone_samples(call.callee_rtp.decoded_float())
    r_caller = audio.analyze_tone_samples(call.caller_rtp.decoded_float())
    assert r_callee.ok(1000, min_seconds=2.5), f"callee heard: {r_callee}"
    assert r_caller.ok(440, min_seconds=2.5), f"caller heard: {r_caller}"


@pytest.mark.timeout(120)
def test_answer_is_refused_for_a_phone_without_remote_control(apbx, sipp, workdir):
    """A phone that does not announce Allow-Events: talk cannot be answered
    remotely: 409 with the reason, and the call keeps ringing until cancelled."""
    port = procs.free_port()
    assert flows.sipp_register(sipp, apbx, "102", port=port, name="reg-102").ok
    media = workdir / "uas-media.txt"
    uas = flows.start_uas(sipp, apbx, "102", port, "uas_ring_cancel.xml", procs.free_port("media"), media)
    caller = sipp.start("uac_call.xml", f"{apbx.host}:{apbx.sip_port}", name="uac-101", service="102",
                        auth=("101", apbx.passwords["101"]),
                        keys={"caller": "101", "rtp_port": procs.free_port("media"),
                              "media_file": workdir / "uac-media.txt"},
                        duration_ms=1000, timeout_s=30)
    flows.wait_media_file(media, 10, "the INVITE at 102")
    time.sleep(0.5)  # the 180 has reached the PBX
    calls = api(apbx, "GET", "/api/calls")[1]["calls"]
    assert len(calls) == 1 and not calls[0]["answered"], calls
    status, body = api(apbx, "POST", f"/api/calls/{calls[0]['call_id']}/answer")
    assert status == 409 and "Allow-Events: talk" in body["error"], (status, body)
    status, body = api(apbx, "POST", "/api/calls/no-such-call/answer")
    assert status == 404, body
    assert api(apbx, "DELETE", f"/api/calls/{calls[0]['call_id']}")[0] == 202
    assert uas.wait(20).ok, "102 was not cancelled"
    caller.stop()
