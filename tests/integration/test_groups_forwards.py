"""Ring groups (issue 14): a number that rings several extensions. A baresip
doorbell calls a ringall group of two baresip phones and a browser (headless
Chromium running JsSIP, in a loopback-only namespace: `netns`): all three
ring, the browser answers, both baresips get CANCEL, and the tones pass both
ways between the doorbell and the page. Python UAs (harness/ua.py)
check a hunt group's order (each member its share of ring_secs, a busy member
passed over at once), the fallback extension after ring_secs, and 480 for a
group without fallback."""
from __future__ import annotations

import time

import pytest

from harness import audio, procs
from harness.browser_flows import tone48k
from harness.ua import make_sdp
from harness.uaflows import health, registered

GROUPS = [
    {"extension": "600", "name": "House", "members": ["102", "103", "104"], "strategy": "ringall",
     "ring_secs": 30},
    {"extension": "602", "name": "Hunt", "members": ["102", "103"], "strategy": "hunt", "ring_secs": 4,
     "fallback": "104"},
    {"extension": "603", "name": "Short", "members": ["102", "103"], "ring_secs": 2},
]


@pytest.fixture
def gpbx(pbx_factory):
    return pbx_factory(overrides={"groups": GROUPS}).start()




@pytest.mark.netns
@pytest.mark.timeout(200)
def test_doorbell_rings_group_browser_answers_others_cancelled(gpbx, house_phone, browser_factory, workdir):
    pbx = gpbx

    def phone(ext, src, mode):
        return house_phone(pbx, ext, src, mode)
    door = phone("101", "tone440", "auto")
    kitchen = phone("102", "tone1000", "manual")
    garage = phone("103", "tone1000", "manual")
    # The dashboard of 104 (the third member) plays 700 Hz: what the door
    # hears can only come from the page.
    browser = browser_factory("browser104", tone48k(workdir, 700))
    browser.register(f"ws://{pbx.host}:{pbx.http_port}/ws", "104", pbx.host, pbx.passwords["104"])
    for p in (door, kitchen, garage):
        p.wait_registered(15)
    door.dial(pbx.uri("600"))
    kitchen.ctrl.wait_event("CALL_INCOMING", 10)
    garage.ctrl.wait_event("CALL_INCOMING", 10)
    browser.wait_event("incoming", 10)
    browser.command("answer")
    browser.wait_event("confirmed", 15)
    door.wait_established(10)
    for member in (kitchen, garage):
        member.wait_closed(10)
        assert "CANCEL sip:" in member.log_text(), f"{member.name}, which did not answer, got no CANCEL"
        assert "CALL_ESTABLISHED" not in member.ctrl.event_types(), f"{member.name} was connected too"
    browser.wait_event("track", 10)
    time.sleep(1.5)
    heard_by_browser = audio.analyze_tone(browser.record(6))
    browser.command("hangup")
    browser.wait_event("ended", 10)
    door.wait_closed(10)
    heard_at_door = audio.analyze_tone(door.recordings()[-1])
    print(f"browser heard {heard_by_browser}\ndoor heard {heard_at_door}")
    assert heard_by_browser.ok(440, min_seconds=4), f"the browser heard {heard_by_browser}"
    assert heard_at_door.ok(700, min_seconds=4), f"the door heard {heard_at_door}"


@pytest.mark.timeout(60)
def test_hunt_rings_in_order_then_the_fallback(gpbx, uas, rtp):
    pbx = gpbx
    m1, m2, fb, caller = uas(pbx, "102"), uas(pbx, "103"), uas(pbx, "104"), uas(pbx, "101")
    registered(m1, m2, fb)
    caller_rtp, fb_rtp = rtp(), rtp()
    out = caller.invite("602", make_sdp("127.0.0.1", caller_rtp.port))
    inv1 = m1.wait_request("INVITE", 5)
    assert inv1 is not None, "the first member did not ring"
    m1.respond(inv1, 180, to_tag="m1")
    assert out.wait_provisional(180, 5) is not None, "caller got no 180"
    assert m2.wait_request("INVITE", 1.0) is None, "hunt rang the second member at once"
    # Two members, ring_secs 4: the first rings 2 s, then the second.
    cancel1 = m1.wait_request("CANCEL", 5)
    assert cancel1 is not None, "the first member's turn did not end"
    m1.reject_cancelled(inv1, cancel1, to_tag="m1")
    inv2 = m2.wait_request("INVITE", 5)
    assert inv2 is not None, "the second member did not ring after the first"
    turn = cancel1.arrival - out.sent_at
    assert 1.5 <= turn <= 3.5, f"first member's turn lasted {turn:.2f}s (ring_secs 4, two members)"
    m2.respond(inv2, 180, to_tag="m2")
    cancel2 = m2.wait_request("CANCEL", 5)
    assert cancel2 is not None, "the second member was not cancelled at ring_secs"
    m2.reject_cancelled(inv2, cancel2, to_tag="m2")
    inv3 = fb.wait_request("INVITE", 5)
    assert inv3 is not None, "the fallback did not ring"
    assert 3.5 <= inv3.arrival - out.sent_at <= 6.0, f"fallback rang {inv3.arrival - out.sent_at:.2f}s after the INVITE"
    fb.answer(inv3, make_sdp("127.0.0.1", fb_rtp.port), to_tag="fb")
    final = out.wait_final(5)
    assert final is not None and final.status == 200, f"caller's final: {final}"
    out.dialog.bye()
    assert fb.wait_request("BYE", 5, call_id=inv3.get("call-id")) is not None, "the fallback got no BYE"


@pytest.mark.timeout(60)
def test_hunt_passes_a_busy_member_at_once_and_all_busy_gives_486(pbx_factory, uas):
    groups = [dict(GROUPS[1], fallback=None, ring_secs=20)]
    groups[0].pop("fallback")
    pbx = pbx_factory(overrides={"groups": groups}).start()
    m1, m2, caller = uas(pbx, "102"), uas(pbx, "103"), uas(pbx, "101")
    registered(m1, m2)
    out = caller.invite("602", make_sdp("127.0.0.1", procs.free_port("media")))
    inv1 = m1.wait_request("INVITE", 5)
    assert inv1 is not None
    m1.respond(inv1, 486, to_tag="busy1")
    inv2 = m2.wait_request("INVITE", 3)
    assert inv2 is not None, "the next member did not ring when the first was busy"
    assert inv2.arrival - inv1.arrival < 2.0, "the busy member's turn was not cut short"
    m2.respond(inv2, 486, to_tag="busy2")
    final = out.wait_final(5)
    assert final is not None and final.status == 486, f"caller's final: {final}"
    assert health(pbx)["active_calls"] == 0


@pytest.mark.timeout(60)
def test_group_without_fallback_gives_480_after_ring_secs(gpbx, uas):
    pbx = gpbx
    m1, m2, caller = uas(pbx, "102"), uas(pbx, "103"), uas(pbx, "101")
    registered(m1, m2)
    out = caller.invite("603", make_sdp("127.0.0.1", procs.free_port("media")))
    invs = [m.wait_request("INVITE", 5) for m in (m1, m2)]
    assert all(invs), "not every member rang"
    for i, (m, inv) in enumerate(zip((m1, m2), invs)):
        m.respond(inv, 180, to_tag=f"r{i}")
    for i, (m, inv) in enumerate(zip((m1, m2), invs)):
        cancel = m.wait_request("CANCEL", 6)
        assert cancel is not None, f"{m.name} got no CANCEL at ring_secs"
        m.reject_cancelled(inv, cancel, to_tag=f"r{i}")
    final = out.wait_final(5)
    assert final is not None and final.status == 480, f"caller's final: {final}"
    assert 1.5 <= out.final_at - out.sent_at <= 4.5, f"480 after {out.final_at - out.sent_at:.2f}s (ring_secs 2)"
    # Nobody of the group registered: 480 at once.
    m1.register(expires=0)
    m2.register(expires=0)
    out = caller.invite("603", make_sdp("127.0.0.1", procs.free_port("media")))
    final = out.wait_final(5)
    assert final is not None and final.status == 480, f"caller's final: {final}"


# ------------------------------------------------------------------ forwards and do-not-disturb
FORWARD_EXTENSIONS = [
    {"extension": "101", "password": "secret101", "name": "Front door"},
    {"extension": "102", "password": "secret102", "name": "Kitchen", "forward": {"no_answer": "104", "no_answer_secs": 2}},
    {"extension": "103", "password": "secret103", "name": "Garage", "forward": {"busy": "104"}},
    {"extension": "104", "password": "secret104", "name": "Office"},
    {"extension": "105", "password": "secret105", "name": "Bedroom", "dnd": True},
    {"extension": "106", "password": "secret106", "name": "Away", "forward": {"always": "600"}},
]


@pytest.fixture
def fpbx(pbx_factory):
    return pbx_factory(extensions=FORWARD_EXTENSIONS,
                       overrides={"groups": [{"extension": "600", "members": ["103", "104"]}]}).start()


def _answer_and_bye(ua, inv, out, rtp):
    ua.answer(inv, make_sdp("127.0.0.1", rtp.port), to_tag="answers")
    final = out.wait_final(5)
    assert final is not None and final.status == 200, f"caller's final: {final}"
    out.dialog.bye()
    assert ua.wait_request("BYE", 5, call_id=inv.get("call-id")) is not None, f"{ua.name} got no BYE"


@pytest.mark.timeout(60)
def test_forward_on_no_answer_and_on_busy(fpbx, uas, rtp):
    pbx = fpbx
    kitchen, garage, office, caller = uas(pbx, "102"), uas(pbx, "103"), uas(pbx, "104"), uas(pbx, "101")
    registered(kitchen, garage, office)
    # No answer within 2 s: the office rings.
    out = caller.invite("102", make_sdp("127.0.0.1", rtp().port))
    inv = kitchen.wait_request("INVITE", 5)
    assert inv is not None
    kitchen.respond(inv, 180, to_tag="k")
    cancel = kitchen.wait_request("CANCEL", 5)
    assert cancel is not None, "the kitchen was not cancelled after no_answer_secs"
    kitchen.reject_cancelled(inv, cancel, to_tag="k")
    inv_office = office.wait_request("INVITE", 5)
    assert inv_office is not None, "no-answer forward did not ring the office"
    assert 1.5 <= inv_office.arrival - out.sent_at <= 4.0, f"forwarded after {inv_office.arrival - out.sent_at:.2f}s"
    _answer_and_bye(office, inv_office, out, rtp())
    # Busy: the office rings at once.
    out = caller.invite("103", make_sdp("127.0.0.1", rtp().port))
    inv = garage.wait_request("INVITE", 5)
    assert inv is not None
    garage.respond(inv, 486, to_tag="busy")
    inv_office = office.wait_request("INVITE", 3)
    assert inv_office is not None, "busy forward did not ring the office"
    assert inv_office.arrival - inv.arrival < 1.5
    _answer_and_bye(office, inv_office, out, rtp())


@pytest.mark.timeout(60)
def test_dnd_gives_486_and_always_forwards_to_a_group(fpbx, uas, rtp):
    pbx = fpbx
    bedroom, garage, office, caller = uas(pbx, "105"), uas(pbx, "103"), uas(pbx, "104"), uas(pbx, "101")
    registered(bedroom, garage, office)
    out = caller.invite("105", make_sdp("127.0.0.1", procs.free_port("media")))
    final = out.wait_final(5)
    assert final is not None and final.status == 486, f"caller's final with DND on: {final}"
    assert bedroom.wait_request("INVITE", 0.5) is None, "a DND extension rang"
    # 106 forwards always to group 600 (103 and 104).
    out = caller.invite("106", make_sdp("127.0.0.1", rtp().port))
    inv_g = garage.wait_request("INVITE", 5)
    inv_o = office.wait_request("INVITE", 5)
    assert inv_g is not None and inv_o is not None, "the group 106 forwards to did not ring"
    garage.respond(inv_g, 180, to_tag="g")
    _answer_and_bye(office, inv_o, out, rtp())
    assert garage.wait_request("CANCEL", 5) is not None, "the other member got no CANCEL"
