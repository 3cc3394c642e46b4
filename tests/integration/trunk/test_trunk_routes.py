"""Where calls through the trunk go (the package's rig, conftest.py):
click-to-dial and announcements to numbers outside, a DID routed to the
agent, forwards to numbers outside (the route's trunk, SRTP and failover
included), and a route's failover to its next trunk."""
from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request

import pytest

from harness import agent, procs
from harness.baresip import Baresip

from .common import (AGENT_DID, ABROAD, API_TOKEN, CALLER_ID, DIALLED, FAILOVER_DIALLED, SENT, SRTP_DIALLED,
                     SRTP_FAILOVER_DIALLED, SRTP_SENT, SRTP_USER, TRUNK_USER, assert_heard,
                     assert_srtp_on_the_wire, call_both_ways, registration, srtp_call)


def _api_dial(pbx, frm: str, to: str) -> tuple[int, dict]:
    req = urllib.request.Request(pbx.http_base + "/api/calls", method="POST",
                                 data=json.dumps({"from": frm, "to": to}).encode(),
                                 headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@pytest.mark.timeout(60)
def test_click_to_dial_an_external_number_follows_the_routes(rig):
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15, what="registered")
    before = len(rig.provider.lines("INVITE"))
    status, body = _api_dial(rig.pbx, "102", DIALLED)
    assert status == 403 and "outbound route" in body["error"], (status, body)
    status, body = _api_dial(rig.pbx, "101", "9123")
    assert status == 404, (status, body)
    assert len(rig.provider.lines("INVITE")) == before, "a refused dial reached the provider"
    ext, pstn = rig.ext["101"], rig.pstn
    marks = len(ext.ctrl.events), len(pstn.ctrl.events)
    n_ok = len(rig.provider.lines("OUT-OK"))
    status, body = _api_dial(rig.pbx, "101", DIALLED)
    assert status == 202, (status, body)
    # 101 rings first and answers (auto), then the number is called over the trunk
    ext.ctrl.wait_event("CALL_ESTABLISHED", 15, since=marks[0])
    pstn.ctrl.wait_event("CALL_ESTABLISHED", 15, since=marks[1])
    ok = rig.provider.lines("OUT-OK")[n_ok:]
    assert ok and ok[0]["rU"] == SENT and ok[0]["fU"] == CALLER_ID and ok[0]["au"] == TRUNK_USER, ok
    pstn.hangup()
    pstn.ctrl.wait_event("CALL_CLOSED", 10, since=marks[1])
    ext.ctrl.wait_event("CALL_CLOSED", 10, since=marks[0])


def _transcript(rig, phone: Baresip) -> str:
    time.sleep(0.5)  # sndfile closes the WAV
    return agent.words(rig.whisper.transcribe_wav(agent.recording(phone)))


@pytest.mark.timeout(90)
def test_announce_to_an_external_number_over_mqtt(rig):
    """Home Assistant calls a mobile and speaks a text: `ha_pbx/cmd/announce`
    with a number outside. The agent's extension must be in the route's
    `extensions`; a number no route lets it call rings nothing."""
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15, what="registered")
    pstn = rig.pstn
    before = len(rig.provider.lines("INVITE"))
    mark = len(rig.pbx.log_text())
    rig.broker.publish("ha_pbx/cmd/announce", json.dumps({"to": ABROAD, "text": "Not for abroad."}))
    rig.broker.publish("ha_pbx/cmd/announce", json.dumps({"to": "9123", "text": "No route."}))
    rig.broker.publish("ha_pbx/cmd/announce", "The alarm went off")  # not JSON
    refusals = (f"extension {agent.AGENT_EXT} may not call {ABROAD}", "`9123` is not an extension", "payload is not the JSON")
    procs.wait_until(lambda: all(r in rig.pbx.log_text()[mark:] for r in refusals), 10, what=f"log lines {refusals}")
    assert len(rig.provider.lines("INVITE")) == before, "a refused announcement reached the provider"
    marks = len(pstn.ctrl.events)
    n_ok = len(rig.provider.lines("OUT-OK"))
    pstn.clear_recordings()
    rig.broker.publish("ha_pbx/cmd/announce", json.dumps({"to": DIALLED, "text": "The alarm in the garage went off."}))
    pstn.ctrl.wait_event("CALL_ESTABLISHED", 20, since=marks)
    ok = rig.provider.lines("OUT-OK")[n_ok:]
    assert ok and ok[0]["rU"] == SENT and ok[0]["fU"] == CALLER_ID and ok[0]["au"] == TRUNK_USER, ok
    pstn.ctrl.wait_event("CALL_CLOSED", 45, since=marks)  # the agent hangs up by itself
    heard = _transcript(rig, pstn)
    print(f"the mobile heard: {heard!r}")
    assert "alarm" in heard and "garage" in heard, heard


@pytest.mark.timeout(90)
def test_a_did_routed_to_the_agent_is_answered_by_it(rig):
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15, what="registered")
    pstn = rig.pstn
    marks = len(pstn.ctrl.events)
    pstn.clear_recordings()
    pstn.dial(f"sip:{AGENT_DID}@{rig.provider.addr}")
    pstn.ctrl.wait_event("CALL_ESTABLISHED", 20, since=marks)
    procs.wait_until(lambda: pstn.recordings(), 5, what="a recording")
    # the greeting (~3 s of speech) has been played once the recording holds 6 s
    procs.wait_until(lambda: len(agent.live(pstn)) >= 6 * 8000, 20, what="6 s of the call recorded")
    pstn.hangup()
    pstn.ctrl.wait_event("CALL_CLOSED", 10, since=marks)
    greeting = _transcript(rig, pstn)
    print(f"the caller heard: {greeting!r}")
    assert "your home" in greeting or "how can i help" in greeting, greeting


def _forward(rig, ext: str, field: str, target: str) -> None:
    """Sets a forward as Home Assistant does (MQTT), and waits for the settings it publishes."""
    since = len(rig.mqtt.messages())
    rig.broker.publish(f"ha_pbx/ext/{ext}/cmd/{field}", target)
    rig.mqtt.wait_for(lambda m: m.topic == f"ha_pbx/ext/{ext}/settings" and f'"{field}":"{target}"' in m.payload, 10,
                      what=f"{ext}'s {field} = {target!r}", since=since)


@pytest.mark.timeout(120)
def test_forward_to_a_mobile_goes_out_as_the_forwarding_extension(rig, workdir, signals):
    """"Nobody home: the door goes to my mobile". A forward may name a number
    outside when an outbound route lets the forwarding extension call it: 104
    may, 102 may not (refused, with the reason). Always: 101 calls 104 and the
    PSTN phone rings, tones both ways. No answer: 104's desk phone rings, does
    not answer, and after forward_no_answer_secs the mobile takes the call."""
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15, what="registered")
    mark = len(rig.pbx.log_text())
    rig.broker.publish("ha_pbx/ext/102/cmd/forward_always", DIALLED)
    procs.wait_until(lambda: "no outbound route lets extension 102 call it" in rig.pbx.log_text()[mark:], 10,
                     what="102's forward outside refused")
    door, pstn = rig.ext["101"], rig.pstn
    try:
        _forward(rig, "104", "forward_always", DIALLED)
        n_ok = len(rig.provider.lines("OUT-OK"))
        call_both_ways(door, pstn, "sip:104@127.0.0.1:%d" % rig.pbx.sip_port)
        ok = rig.provider.lines("OUT-OK")[n_ok:]
        assert ok and ok[0]["rU"] == SENT and ok[0]["fU"] == CALLER_ID, ok
        assert_heard(pstn, 440)
        assert_heard(door, 1000)
        # no answer: 104's phone rings 2 s, then the mobile
        _forward(rig, "104", "forward_always", "")
        rig.broker.publish("ha_pbx/ext/104/cmd/forward_no_answer_secs", "2")
        _forward(rig, "104", "forward_no_answer", DIALLED)
        desk = Baresip(workdir, rig.registry, "desk104", user="104", domain=f"127.0.0.1:{rig.pbx.sip_port}",
                       password=rig.pbx.passwords["104"], source=signals["tone440"], answermode="manual").start()
        desk.wait_registered(15)
        marks = len(door.ctrl.events), len(pstn.ctrl.events), len(desk.ctrl.events)
        door.clear_recordings()
        pstn.clear_recordings()
        door.dial("sip:104@127.0.0.1:%d" % rig.pbx.sip_port)
        desk.ctrl.wait_event("CALL_INCOMING", 10, since=marks[2])
        pstn.ctrl.wait_event("CALL_ESTABLISHED", 20, since=marks[1])
        door.ctrl.wait_event("CALL_ESTABLISHED", 10, since=marks[0])
        desk.ctrl.wait_event("CALL_CLOSED", 10, since=marks[2])  # its ringing stopped
        time.sleep(5.0)  # the audio being measured
        door.hangup()
        pstn.ctrl.wait_event("CALL_CLOSED", 10, since=marks[1])
        procs.wait_until(lambda: door.recordings() and pstn.recordings(), 5, what="recordings")
        assert_heard(pstn, 440)
        assert_heard(door, 1000)
        desk.stop()
    finally:
        _forward(rig, "104", "forward_always", "")
        _forward(rig, "104", "forward_no_answer", "")


def _flaky(rig, final: int):
    """The `flaky` trunk's server: a sipp that answers one INVITE with `final`."""
    proc = rig.sipp.start(rig.sipp.scenario("uas_final.xml", FINAL=final), name=f"flaky-{final}",
                          port=rig.flaky_port, keys={"callee": "flaky"}, timeout_s=30)
    rig.sipp.wait_listening(rig.flaky_port)
    return proc


@pytest.mark.timeout(90)
def test_a_call_out_fails_over_to_the_routes_next_trunk_only_when_the_provider_fails(rig):
    """Route `5` goes out on `flaky` (its server a sipp) with `failover: [provider]`.
    flaky answers 503: the same call goes out on `provider` (digest, caller ID,
    strip/prepend; tones both ways). flaky answers 486 (the callee is busy):
    the caller gets 486 and nothing reaches `provider`."""
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15, what="registered")

    def flaky(final: int):
        return _flaky(rig, final)

    uas = flaky(503)
    n_ok, mark = len(rig.provider.lines("OUT-OK")), len(rig.pbx.log_text())
    call_both_ways(rig.ext["101"], rig.pstn, f"sip:{FAILOVER_DIALLED}@127.0.0.1:{rig.pbx.sip_port}", seconds=4)
    res = uas.wait(10)
    assert res.ok and res.received_requests() == ["INVITE", "ACK"], res.summary()
    ok = rig.provider.lines("OUT-OK")[n_ok:]
    assert len(ok) == 1 and ok[0]["rU"] == SENT and ok[0]["fU"] == CALLER_ID and ok[0]["au"] == TRUNK_USER, ok
    assert re.search(r"call out not taken by the provider: trying the route's next trunk .*status=503 trunk=provider",
                     rig.pbx.log_text()[mark:]), rig.pbx.log_tail()
    assert_heard(rig.pstn, 440)
    assert_heard(rig.ext["101"], 1000)

    uas = flaky(486)
    before = len(rig.provider.lines("INVITE"))
    res = rig.sipp.run(rig.sipp.scenario("uac_final.xml", FINAL=486), f"127.0.0.1:{rig.pbx.sip_port}",
                       service=FAILOVER_DIALLED, auth=("101", rig.pbx.passwords["101"]),
                       keys={"caller": "101", "rtp_port": procs.free_port("media")}, timeout_s=15)
    assert res.ok, res.summary()
    assert uas.wait(10).ok
    assert len(rig.provider.lines("INVITE")) == before, rig.provider.lines("INVITE")[before:]


def _ext_registered(rig, ext: str) -> bool | None:
    """What ha-pbx last published on MQTT about `ext`'s registration."""
    states = [m for m in rig.mqtt.messages() if m.topic == f"ha_pbx/ext/{ext}/state"]
    return json.loads(states[-1].payload).get("registered") if states else None


def _forward_call_over_srtp(rig, door: Baresip, phone: Baresip, expect_log: str) -> None:
    """101 calls 104, whose forward takes the call out to the SRTP PSTN phone:
    it answers, tones are heard both ways, the provider got an SDES offer on
    the `srtp` trunk's account, and what crossed the wire toward the phone was
    SRTP. `expect_log`: the ha-pbx log line that says which way the call took."""
    n_ok, mark = len(rig.provider.lines("OUT-OK")), len(rig.pbx.log_text())
    wire = srtp_call(rig, door, phone, f"sip:104@127.0.0.1:{rig.pbx.sip_port}")
    ok = rig.provider.lines("OUT-OK")[n_ok:]
    assert len(ok) == 1 and ok[0]["au"] == SRTP_USER and ok[0]["rU"] == SRTP_SENT and ok[0]["pr"] == "tls", ok
    assert ok[0]["sdes"] == "yes", f"the provider got no RTP/SAVP offer with a=crypto: {ok}"
    assert expect_log in rig.pbx.log_text()[mark:], rig.pbx.log_tail()
    assert_heard(phone, 440)
    assert_heard(door, 1000)
    assert_srtp_on_the_wire(wire)


@pytest.mark.timeout(150)
def test_forwards_outside_go_out_as_their_route_says_srtp_and_failover_included(rig, workdir, signals):
    """A forward to a number outside takes its route's trunk as a dialled call
    does, whichever way it leaves: the trunk's SRTP and the route's failover.
    104 forwards on no answer (2 s) to numbers behind the `srtp` trunk
    (`srtp: mandatory`; the PSTN phone speaks SDES-SRTP only):
    - 104 is not registered: the forward goes out at once, to route `3`
      (`flaky` answers 503, failover to `srtp`): a plain trunk first, then an
      SRTP one, whose offer carries RTP/SAVP and a key;
    - 104's desk phone rings and does not answer: the fallback rings route `6`
      (the `srtp` trunk itself), then route `3` again (503, then `srtp`).
    Each time the phone answers, tones are heard both ways, the provider saw
    RTP/SAVP with an a=crypto line, and the wire toward the phone is SRTP."""
    procs.wait_until(lambda: registration(rig.pbx, "srtp").get("state") == "registered", 20, what="srtp trunk registered")
    door, phone = rig.ext["101"], rig.pstn_srtp
    desk = None
    try:
        procs.wait_until(lambda: _ext_registered(rig, "104") in (None, False), 10, what="104 not registered")
        rig.broker.publish("ha_pbx/ext/104/cmd/forward_no_answer_secs", "2")
        _forward(rig, "104", "forward_no_answer", SRTP_FAILOVER_DIALLED)
        uas = _flaky(rig, 503)
        _forward_call_over_srtp(rig, door, phone, "nobody to ring is registered: calling the forward outside")
        res = uas.wait(10)
        assert res.ok and res.received_requests() == ["INVITE", "ACK"], res.summary()
        assert re.search(r"call out not taken by the provider: trying the route's next trunk .*status=503 trunk=srtp",
                         rig.pbx.log_text()), rig.pbx.log_tail()
        desk = Baresip(workdir, rig.registry, "desk104-srtp", user="104", domain=f"127.0.0.1:{rig.pbx.sip_port}",
                       password=rig.pbx.passwords["104"], source=signals["tone440"], answermode="manual").start()
        desk.wait_registered(15)
        for target, flaky in ((SRTP_DIALLED, None), (SRTP_FAILOVER_DIALLED, 503)):
            _forward(rig, "104", "forward_no_answer", target)
            uas = _flaky(rig, flaky) if flaky else None
            since = len(desk.ctrl.events)
            _forward_call_over_srtp(rig, door, phone, "nobody in the group answered: calling the fallback outside")
            assert desk.ctrl.wait_event("CALL_INCOMING", 1, since=since), "104's desk phone did not ring first"
            if uas:
                res = uas.wait(10)
                assert res.ok and res.received_requests() == ["INVITE", "ACK"], res.summary()
    finally:
        if desk:
            desk.stop()
        _forward(rig, "104", "forward_no_answer", "")
