"""Per-extension DTMF mode: 102 is `dtmf: info` (a door station that opens
on a SIP INFO digit), the others keep RFC 4733; 102 answering group 600
keeps its own mode. Every key press toward 102
arrives as INFO `application/dtmf-relay` (none as telephone-event RTP);
102's INFO presses reach an RFC 4733 device as events in its RTP stream."""
from __future__ import annotations

import time

import pytest

from harness.pbx import api_request
from harness.rtp import RtpEndpoint, tone_samples
from harness.ua import make_sdp, parse_sdp
from harness.uaflows import connect, start_tones

TOKEN = "test-token-0123456789"
EXTENSIONS = [
    {"extension": "101", "password": "secret101"},
    {"extension": "102", "password": "secret102", "dtmf": "info"},
    {"extension": "103", "password": "secret103", "dtmf": "rfc4733"},
]
# A group whose only member is the INFO extension: its number has no mode.
GROUPS = [{"extension": "600", "name": "Door", "members": ["102"], "ring_secs": 30}]
EVENT_PT = 101  # harness.ua.make_sdp and baresip both offer telephone-event as 101


@pytest.fixture
def ipbx(pbx_factory):
    return pbx_factory(extensions=[dict(e) for e in EXTENSIONS],
                       overrides={"http": {"api_token": TOKEN}, "groups": [dict(g) for g in GROUPS]}).start()


def api(pbx, method: str, path: str, body: dict | None = None):
    return api_request(pbx.http_base, method, path, body, TOKEN)


def info_digits(ua, count: int, timeout: float = 8.0) -> list[str]:
    """Answer 200 to `count` INFO requests; their Signal= digits in arrival order."""
    digits = []
    end = time.monotonic() + timeout
    while len(digits) < count:
        info = ua.wait_request("INFO", max(0.0, end - time.monotonic()))
        assert info is not None, f"{ua.name} got INFO digits {digits}, expected {count}"
        ua.respond(info, 200)
        assert (info.get("content-type") or "").lower() == "application/dtmf-relay", info.get("content-type")
        body = info.body.decode()
        assert "Duration=160" in body, body
        digits.append(next(line.split("=", 1)[1].strip() for line in body.splitlines() if line.startswith("Signal=")))
    return digits


def events(ep: RtpEndpoint) -> list[list]:
    """Received telephone-event packets grouped by RTP timestamp (one key press each)."""
    presses: dict[int, list] = {}
    for r in ep.packets():
        if r.pkt.pt == EVENT_PT:
            presses.setdefault(r.pkt.ts, []).append(r.pkt)
    return list(presses.values())


@pytest.mark.timeout(120)
def test_baresip_keys_reach_an_info_extension_as_info(ipbx, baresip_factory, signals, uas, rtp):
    """(1) baresip (RFC 4733) presses 1 2 3 toward 102: INFO, in order, and no
    telephone-event RTP reaches 102. Then 102's INFO key reaches baresip as
    an RFC 4733 press (baresip reports it; it got no INFO)."""
    door = uas(ipbx, "102")
    assert door.register().status == 200
    door_rtp = rtp()
    phone = baresip_factory("101", user="101", domain=f"{ipbx.host}:{ipbx.sip_port}",
                            password=ipbx.passwords["101"], transport="udp",
                            source=signals["tone440"]).start()
    phone.wait_registered(15)
    phone.dial(f"sip:102@{ipbx.host}:{ipbx.sip_port}")
    inv = door.wait_request("INVITE", 10)
    assert inv is not None, "102 was not rung"
    dialog = door.answer(inv, make_sdp(door.local[0], door_rtp.port), to_tag="door1")
    assert door.wait_request("ACK", 8, call_id=inv.get("call-id")) is not None
    door_rtp.start_sending(tone_samples(1000, 2.0), parse_sdp(inv.body).addr)
    phone.wait_established(10)
    time.sleep(1.0)

    for key in "123":
        phone.ctrl.command("sndcode", key)
        time.sleep(0.6)
    assert info_digits(door, 3) == ["1", "2", "3"]
    time.sleep(0.5)
    assert door.wait_request("INFO", 0.5) is None, "one INFO per key press"
    audio = [r for r in door_rtp.packets() if r.pkt.pt == 0]
    assert len(audio) > 50, "102 receives baresip's audio through the relay"
    assert events(door_rtp) == [], "telephone-events reached the INFO extension"

    mark = len(phone.ctrl.events)
    r = dialog.request("INFO", b"Signal=4\r\nDuration=160\r\n", content_type="application/dtmf-relay")
    assert r is not None and r.status == 200, r
    got = phone.ctrl.wait_event("CALL_DTMF_START", 5, since=mark)
    assert got.get("param") == "4", got
    assert "dtmf-relay" not in phone.log_text(), "baresip got INFO, not RFC 4733"
    phone.hangup()
    phone.wait_closed(10)
    assert ipbx.alive()


@pytest.mark.timeout(120)
def test_info_keys_become_rfc4733_events_and_api_dtmf_follows_the_mode(ipbx, uas, rtp):
    """(2) 102's INFO presses 4 and 5 reach 103 (RFC 4733) as telephone-events
    in the stream 103 already receives, with end packets ×3; 103 gets no INFO.
    (3) DTMF sent through the HTTP API follows each extension's mode: INFO
    to 102, RFC 4733 events in 103's stream."""
    caller, door = uas(ipbx, "103"), uas(ipbx, "102")
    assert door.register().status == 200
    caller_rtp, door_rtp = rtp(), rtp()
    call = connect(ipbx, caller, door, "102", caller_rtp.port, door_rtp.port)
    start_tones(call, caller_rtp, door_rtp)
    time.sleep(1.0)

    for key in "45":
        r = call.callee.request("INFO", f"Signal={key}\r\nDuration=160\r\n".encode(),
                                content_type="application/dtmf-relay")
        assert r is not None and r.status == 200, r
    time.sleep(1.0)
    assert caller.wait_request("INFO", 0.3) is None, "103 takes RFC 4733: the INFO must not pass"
    presses = events(caller_rtp)
    assert [p[0].payload[0] for p in presses] == [4, 5], presses
    audio_ssrc = {r.pkt.ssrc for r in caller_rtp.packets() if r.pkt.pt == 0}
    for p in presses:
        assert p[0].marker and not any(x.marker for x in p[1:]), "marker on the first packet only"
        assert sum(1 for x in p if x.payload[1] & 0x80) == 3, "end bit on three packets"
        assert not any(x.payload[1] & 0x80 for x in p[:-3]), "end packets come last"
        assert {x.ssrc for x in p} == audio_ssrc, "events ride the stream 103 receives"
        seqs = [x.seq for x in p]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    assert events(door_rtp) == [], "the INFO extension got no telephone-events"

    status, body = api(ipbx, "GET", "/api/calls")
    assert status == 200 and len(body["calls"]) == 1, body
    call_id = body["calls"][0]["call_id"]
    status, body = api(ipbx, "POST", f"/api/calls/{call_id}/dtmf", {"to": "102", "digits": "7#"})
    assert status in (200, 202), body
    assert info_digits(door, 2) == ["7", "#"]
    assert events(door_rtp) == []
    # 103 takes RFC 4733: the API's keys go into the stream it receives, no INFO.
    status, body = api(ipbx, "POST", f"/api/calls/{call_id}/dtmf", {"to": "103", "digits": "9*"})
    assert status in (200, 202), body
    deadline = time.monotonic() + 5
    while len(events(caller_rtp)) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p[0].payload[0] for p in events(caller_rtp)] == [4, 5, 9, 10], events(caller_rtp)
    assert caller.wait_request("INFO", 0.3) is None, "103 takes RFC 4733: the API sends no INFO"
    assert events(door_rtp) == []
    assert ipbx.alive()


@pytest.mark.timeout(120)
def test_a_group_member_set_to_info_gets_the_callers_keys_as_info(ipbx, uas, rtp):
    """(4) 103 dials group 600 and its member 102 (`dtmf: info`) answers: the
    member's mode applies, not the group number's. 103's RFC 4733 presses 4
    and 5 reach 102 as INFO, in order, and no telephone-event reaches 102."""
    caller, door = uas(ipbx, "103"), uas(ipbx, "102")
    assert door.register().status == 200
    caller_rtp, door_rtp = rtp(), rtp()
    call = connect(ipbx, caller, door, "600", caller_rtp.port, door_rtp.port)
    start_tones(call, caller_rtp, door_rtp)
    for key in (4, 5):
        caller_rtp.send_key(key, EVENT_PT)
    assert info_digits(door, 2) == ["4", "5"]
    assert door.wait_request("INFO", 0.5) is None, "one INFO per key press"
    assert len([r for r in door_rtp.packets() if r.pkt.pt == 0]) > 10, "102 receives 103's audio through the relay"
    assert events(door_rtp) == [], "telephone-events reached the INFO member"
    assert ipbx.alive()
