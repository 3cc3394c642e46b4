"""Feature codes (issue 14): pickup, directed pickup and intercom.

A baresip doorbell calls 102, which rings without answering; baresip 103,
in the same group, dials the pickup code and is connected to the door, tones
both ways, and 102 gets CANCEL; the MQTT `answered` events (102's, 103's, the
door's, and ha_pbx/events) name 102 as the callee and 103 as `answered_by`. Python UAs (harness/ua.py) check directed
pickup from outside the group, the refusals (nothing ringing, not in the
picker's groups, unknown target, no credentials) and the intercom's
auto-answer headers on the wire. Paging: a `page: true` group rings two
baresip phones and two Python UAs (two devices of 104) at once; the caller's tone reaches every
member that answered, nothing reaches the caller, a member that does not
answer within ring_secs is cancelled, one hanging up leaves the others.
Re-INVITEs inside a page (a Python UA member holding and resuming, the
baresip caller holding and resuming) get 200 with the page's own SDP; a
caller that goes silent without BYE (its baresip stopped with SIGSTOP)
ends the page after rtp.media_timeout_secs: every member gets BYE, the
ports and the relay count go back to idle, history and MQTT say
media_timeout. Park: test_park.py."""
from __future__ import annotations

import re
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from harness import audio, procs
from harness.mqtt import mqtt_overrides
from harness import rtp as rtp_tools
from harness.ua import make_sdp, parse_sdp
from harness.uaflows import health, registered, wait_health

GROUPS = [{"extension": "600", "name": "House", "members": ["102", "103"], "strategy": "ringall", "ring_secs": 30}]
PAGE = {"extension": "601", "name": "Intercoms", "members": ["102", "103", "104"], "page": True, "ring_secs": 4}


@pytest.fixture
def fpbx(pbx_factory):
    return pbx_factory(overrides={"groups": GROUPS}).start()


@pytest.fixture
def ppbx(pbx_factory):
    return pbx_factory(overrides={"groups": GROUPS + [PAGE]}).start()


@pytest.mark.timeout(90)
def test_pickup_code_connects_a_group_member_to_the_ringing_door(pbx_factory, broker, rec, house_phone):
    pbx = pbx_factory(overrides={"groups": GROUPS, **mqtt_overrides(broker)}).start()

    def phone(ext, src, mode):
        return house_phone(pbx, ext, src, mode)
    door = phone("101", "tone440", "auto")
    kitchen = phone("102", "tone440", "manual")
    garage = phone("103", "tone1000", "manual")
    for p in (door, kitchen, garage):
        p.wait_registered(15)
    door.dial(pbx.uri("102"))
    kitchen.ctrl.wait_event("CALL_INCOMING", 10)
    garage.dial(pbx.uri("*8"))
    garage.wait_established(10)
    door.wait_established(10)
    kitchen.wait_closed(10)
    assert "CANCEL sip:" in kitchen.log_text(), "the ringing phone got no CANCEL"
    # The answered event names the callee (102) and who picked up (103), and
    # reaches the picker's extension too.
    for ext in ("102", "103", "101"):
        got = rec.wait_topic(f"ha_pbx/ext/{ext}/event", lambda p: '"event_type":"answered"' in p).json()
        assert (got["caller"], got["callee"], got["answered_by"]) == ("101", "102", "103"), f"{ext}: {got}"
    bus = rec.wait_topic("ha_pbx/events", lambda p: '"type":"answered"' in p).json()
    assert (bus["callee"], bus["answered_by"]) == ("102", "103"), bus
    time.sleep(6)  # six seconds of audio to analyse, not synchronisation
    door.hangup()
    door.wait_closed(10)
    garage.wait_closed(10)
    heard_by_garage = audio.analyze_tone(garage.recordings()[-1])
    heard_at_door = audio.analyze_tone(door.recordings()[-1])
    print(f"garage heard {heard_by_garage}\ndoor heard {heard_at_door}")
    assert heard_by_garage.ok(440, min_seconds=4), f"the picker heard {heard_by_garage}"
    assert heard_at_door.ok(1000, min_seconds=4), f"the door heard {heard_at_door}"
    procs.wait_until(lambda: health(pbx)["active_calls"] == 0, 5, what="the call to end")


@pytest.mark.timeout(60)
def test_directed_pickup_and_the_refusals(fpbx, uas, rtp):
    pbx = fpbx
    door, kitchen, garage, office = uas(pbx, "101"), uas(pbx, "102"), uas(pbx, "103"), uas(pbx, "104")
    registered(kitchen, garage, office)
    # Nothing ringing: a clear 480.
    r = garage.invite("*8", make_sdp("127.0.0.1", rtp().port)).wait_final(5)
    assert r is not None and (r.status, r.reason) == (480, "Nothing ringing in your groups"), f"{r}"
    door_rtp, office_rtp = rtp(), rtp()
    out = door.invite("102", make_sdp("127.0.0.1", door_rtp.port))
    inv = kitchen.wait_request("INVITE", 5)
    assert inv is not None, "102 did not ring"
    kitchen.respond(inv, 180, to_tag="k")
    assert out.wait_provisional(180, 5) is not None
    # 104 is in no group with 102: no undirected pickup.
    r = office.invite("*8", make_sdp("127.0.0.1", office_rtp.port)).wait_final(5)
    assert r is not None and (r.status, r.reason) == (480, "Nothing ringing in your groups"), f"{r}"
    # An unknown target, and a known one that does not ring.
    r = office.invite("**999", make_sdp("127.0.0.1", office_rtp.port)).wait_final(5)
    assert r is not None and r.status == 404, f"{r}"
    r = office.invite("**103", make_sdp("127.0.0.1", office_rtp.port)).wait_final(5)
    assert r is not None and (r.status, r.reason) == (480, "Nothing ringing at 103"), f"{r}"
    # No credentials, or the wrong ones: challenged, never picked up.
    intruder = uas(pbx, "104", password="wrong", name="intruder")
    r = intruder.invite("**102", make_sdp("127.0.0.1", office_rtp.port)).wait_final(5)
    assert r is not None and r.status in (401, 403, 407), f"a wrong password got {r}"
    assert kitchen.wait_request("CANCEL", 0.5) is None, "a failed pickup cancelled the ringing phone"
    # Directed pickup works from outside the group.
    pick = office.invite("**102", make_sdp("127.0.0.1", office_rtp.port))
    ok = pick.wait_final(5)
    assert ok is not None and ok.status == 200, f"directed pickup answered {ok}"
    cancel = kitchen.wait_request("CANCEL", 5)
    assert cancel is not None, "the ringing phone got no CANCEL"
    kitchen.reject_cancelled(inv, cancel, to_tag="k")
    final = out.wait_final(5)
    assert final is not None and final.status == 200, f"the door's final: {final}"
    # Media through the relay: what one side sends reaches the other.
    to_door, to_office = parse_sdp(final.body).addr, parse_sdp(ok.body).addr
    door_rtp.start_sending(rtp_tools.tone_samples(440, 2.0), to_door)
    office_rtp.start_sending(rtp_tools.tone_samples(1000, 2.0), to_office)
    assert office_rtp.wait_packets(100, 6) and door_rtp.wait_packets(100, 6), "no media through the relay"
    heard_by_office = audio.analyze_tone_samples(office_rtp.decoded_float())
    heard_at_door = audio.analyze_tone_samples(door_rtp.decoded_float())
    assert heard_by_office.ok(440, min_seconds=1.5), f"the picker heard {heard_by_office}"
    assert heard_at_door.ok(1000, min_seconds=1.5), f"the door heard {heard_at_door}"
    procs.wait_until(lambda: health(pbx)["active_calls"] == 1, 5, what="one call")
    pick.dialog.bye()
    assert door.wait_request("BYE", 5, call_id=out.call_id) is not None, "the door got no BYE when the picker hung up"


@pytest.mark.timeout(60)
def test_intercom_code_sends_auto_answer_headers(fpbx, uas, rtp):
    pbx = fpbx
    door, kitchen = uas(pbx, "101"), uas(pbx, "102")
    registered(kitchen)
    out = door.invite("*80102", make_sdp("127.0.0.1", rtp().port))
    inv = kitchen.wait_request("INVITE", 5)
    assert inv is not None, "the intercom call did not reach 102"
    call_info = inv.all("call-info")
    alert_info = inv.all("alert-info")
    print(f"Call-Info: {call_info}\nAlert-Info: {alert_info}")
    assert any(v.endswith(";answer-after=0") for v in call_info), call_info
    assert any("info=alert-autoanswer" in v for v in alert_info), alert_info
    assert any("info=intercom" in v for v in alert_info), alert_info
    kitchen.answer(inv, make_sdp("127.0.0.1", rtp().port), to_tag="k")
    final = out.wait_final(5)
    assert final is not None and final.status == 200, f"{final}"
    out.dialog.bye()
    assert kitchen.wait_request("BYE", 5, call_id=inv.get("call-id")) is not None
    # An ordinary call carries no auto-answer header.
    door.invite("102", make_sdp("127.0.0.1", rtp().port))
    plain = kitchen.wait_request("INVITE", 5)
    assert plain is not None and plain.get("call-id") != inv.get("call-id"), f"{plain}"
    assert not plain.all("call-info") and not plain.all("alert-info"), f"{plain}"
    kitchen.respond(plain, 486, to_tag="b")


@pytest.mark.timeout(90)
def test_page_reaches_every_member_one_way(ppbx, house_phone, uas, rtp):
    pbx = ppbx

    def phone(ext, src, mode):
        return house_phone(pbx, ext, src, mode)
    # baresip 1.0 has no header-driven auto-answer: the members answer every
    # call; the headers are checked on the Python UAs.
    door = phone("101", "tone440", "manual")
    kitchen = phone("102", "tone1000", "auto")
    garage = phone("103", "tone1000", "auto")
    office, hall = uas(pbx, "104"), uas(pbx, "104", name="hall")  # two devices of 104
    registered(office, hall)
    for p in (door, kitchen, garage):
        p.wait_registered(15)
    # A stranger cannot page.
    intruder = uas(pbx, "104", password="wrong", name="intruder")
    r = intruder.invite("601", make_sdp("127.0.0.1", rtp().port)).wait_final(5)
    assert r is not None and r.status in (401, 403, 407), f"a wrong password got {r}"
    time.sleep(0.5)  # a wrongly rung member would show it by now; not synchronisation
    assert "CALL_INCOMING" not in kitchen.ctrl.event_types(), "an unauthenticated page rang a member"
    # An offer the page cannot use: 488 (checked before any member is rung).
    r = office.invite("601", b"v=0\r\nm=audio 0 RTP/AVP 0\r\n").wait_final(5)
    assert r is not None and r.status == 488, f"an unusable offer got {r}"
    door.dial(pbx.uri("601"))
    inv = office.wait_request("INVITE", 5)
    ring = hall.wait_request("INVITE", 5)
    assert inv is not None and ring is not None, "the page did not reach the UAs"
    call_info, alert_info = inv.all("call-info"), inv.all("alert-info")
    print(f"Call-Info: {call_info}\nAlert-Info: {alert_info}\noffer:\n{inv.body.decode()}")
    assert any(v.endswith(";answer-after=0") for v in call_info), call_info
    assert any("info=alert-autoanswer" in v for v in alert_info), alert_info
    office_rtp = rtp()
    office_dialog = office.answer(inv, make_sdp("127.0.0.1", office_rtp.port, direction="recvonly"), to_tag="o")
    hall.respond(ring, 180, to_tag="h")
    door.wait_established(10)
    kitchen.wait_established(10)
    garage.wait_established(10)
    # The office talks into the page: nobody may hear it.
    office_rtp.start_sending(rtp_tools.tone_samples(1000, 3.0), parse_sdp(inv.body).addr)
    assert office_rtp.wait_packets(100, 6), "the caller's audio did not reach the UA member"
    heard_by_office = audio.analyze_tone_samples(office_rtp.decoded_float())
    assert heard_by_office.ok(440, min_seconds=1.5), f"the office heard {heard_by_office}"
    # Not answered within ring_secs: cancelled; the others stay.
    cancel = hall.wait_request("CANCEL", 8)
    assert cancel is not None, "the member that did not answer got no CANCEL"
    hall.reject_cancelled(ring, cancel, to_tag="h")
    office_dialog.bye()
    procs.wait_until(lambda: health(pbx)["active_calls"] == 1, 5, what="the page to go on")
    time.sleep(3)  # three more seconds of audio to analyse, not synchronisation
    door.hangup()
    door.wait_closed(10)
    kitchen.wait_closed(10)
    garage.wait_closed(10)
    for member in (kitchen, garage):
        heard = audio.analyze_tone(member.recordings()[-1])
        print(f"{member.name} heard {heard}")
        assert heard.ok(440, min_seconds=4), f"{member.name} heard {heard}"
    assert door.rtp_sources() == [], f"the caller got media back from {door.rtp_sources()}"
    for rec in door.recordings():
        back = audio.analyze_tone(rec)
        print(f"the caller's recording: {back}")
        assert back.rms_dbfs < -50 or back.seconds < 0.5, f"the caller heard {back}"
    procs.wait_until(lambda: health(pbx)["active_calls"] == 0, 5, what="the page to end")


@pytest.mark.timeout(90)
def test_page_answers_re_invites_and_ends_when_the_pager_goes_silent(pbx_factory, broker, rec, house_phone, uas, rtp):
    timeout = 3
    pbx = pbx_factory(overrides={"groups": GROUPS + [PAGE], "rtp": {"media_timeout_secs": timeout}, **mqtt_overrides(broker)}).start()
    door = house_phone(pbx, "101", "tone440", "manual")
    kitchen = house_phone(pbx, "102", "tone1000", "auto")
    office = uas(pbx, "104")
    registered(office)
    for p in (door, kitchen):
        p.wait_registered(15)
    assert health(pbx)["media_relays"] == 0
    door.dial(pbx.uri("601"))
    inv = office.wait_request("INVITE", 5)
    assert inv is not None, "the page did not reach the UA member"
    offered = parse_sdp(inv.body)
    office_rtp = rtp()
    dialog = office.answer(inv, make_sdp("127.0.0.1", office_rtp.port), to_tag="o")
    door.wait_established(10)
    kitchen.wait_established(10)
    assert office_rtp.wait_packets(50, 6), "the page's audio did not reach the UA member"
    h = wait_health(pbx, 5, active_calls=1, media_relays=1)
    assert (h["active_calls"], h["media_relays"]) == (1, 1), f"a page is one call and one media task: {h}"

    # The member holds (re-INVITE sendonly): 200, same port, recvonly, no audio to it.
    r = dialog.request("INVITE", make_sdp("127.0.0.1", office_rtp.port, direction="sendonly", version=2))
    assert r is not None and r.status == 200, f"the member's hold re-INVITE got {r}"
    held = parse_sdp(r.body)
    print(f"answer to the member's hold:\n{r.body.decode()}")
    assert held.addr == offered.addr, f"the page's port changed: {held.addr} != {offered.addr}"
    assert "a=recvonly" in r.body.decode() and "m=audio" in r.body.decode(), r.body.decode()

    def quiet_for(seconds: float) -> bool:
        n = len(office_rtp.packets())
        time.sleep(seconds)  # a window in which no packet may arrive, not synchronisation
        return len(office_rtp.packets()) == n
    procs.wait_until(lambda: quiet_for(0.5), 5, what="no audio to the member on hold")
    # It resumes: 200 sendrecv, and the audio comes again.
    r = dialog.request("INVITE", make_sdp("127.0.0.1", office_rtp.port, version=3))
    assert r is not None and r.status == 200 and "a=sendrecv" in r.body.decode(), f"the resume got {r}"
    assert parse_sdp(r.body).addr == offered.addr
    before = len(office_rtp.packets())
    assert office_rtp.wait_packets(before + 50, 6), "no audio to the member after it resumed"
    # A session refresh without SDP (UPDATE) is answered 200 too.
    r = dialog.request("UPDATE")
    assert r is not None and r.status == 200, f"an UPDATE refresh got {r}"
    # A re-offer without the page's codec: 488, and the page goes on.
    pcma = make_sdp("127.0.0.1", office_rtp.port, version=4).replace(b"RTP/AVP 0 101", b"RTP/AVP 8 101").replace(b"rtpmap:0 PCMU", b"rtpmap:8 PCMA")
    r = dialog.request("INVITE", pcma)
    assert r is not None and r.status == 488, f"a re-offer without PCMU got {r}"
    before = len(office_rtp.packets())
    assert office_rtp.wait_packets(before + 25, 5), "the page stopped after a refused re-offer"

    # The caller holds and resumes (baresip's re-INVITEs): answered, not 501.
    door.ctrl.command("hold")
    rec.wait_topic("ha_pbx/events", lambda p: '"type":"hold"' in p and '"held":true' in p)
    door.ctrl.command("resume")
    rec.wait_topic("ha_pbx/events", lambda p: '"type":"hold"' in p and '"held":false' in p)
    log = door.log_text()
    assert "SIP/2.0 501" not in log and "SIP/2.0 488" not in log, "the caller's re-INVITE was refused"
    assert "CALL_CLOSED" not in kitchen.ctrl.event_types() and "CALL_CLOSED" not in door.ctrl.event_types(), "a re-INVITE ended the page"
    before = len(office_rtp.packets())
    assert office_rtp.wait_packets(before + 25, 5), "no audio from the caller after it resumed"

    # The caller vanishes without BYE: after the media timeout every member
    # gets BYE, and the page's ports go back.
    door.proc.send_signal(signal.SIGSTOP)
    try:
        stopped = time.monotonic()
        bye = office.wait_request("BYE", timeout + 6, call_id=inv.get("call-id"))
        assert bye is not None, "the UA member got no BYE after the caller went silent"
        office.respond(bye, 200)
        after = time.monotonic() - stopped
        print(f"members hung up {after:.1f} s after the caller went silent (media_timeout_secs: {timeout})")
        assert after >= timeout - 0.5, f"BYE after {after:.1f} s: before the media timeout"
        kitchen.wait_closed(5)
        h = wait_health(pbx, 5, active_calls=0, media_relays=0)
        assert (h["active_calls"], h["media_relays"]) == (0, 0), f"after the timeout: {h}"
    finally:
        door.proc.send_signal(signal.SIGCONT)
    # The caller, back, finds its call ended too.
    door.wait_closed(15)
    ended = rec.wait_topic("ha_pbx/events", lambda p: '"type":"ended"' in p).json()
    assert (ended["callee"], ended["answered"], ended["reason"]) == ("601", True, "media_timeout"), ended
    db = sqlite3.connect(f"file:{pbx.data_dir / 'ha-pbx.sqlite'}?mode=ro", uri=True)
    try:
        def row():
            return db.execute("SELECT disposition, end_reason FROM calls WHERE callee = '601'").fetchone()
        procs.wait_until(lambda: row() is not None and row()[1] is not None, 5, what="the history row")
        assert row() == ("answered", "media_timeout"), row()
    finally:
        db.close()


PANEL_PAGE = {"extension": "602", "name": "Panel and garage", "members": ["102", "103"], "page": True, "ring_secs": 10}
PANEL_ARTIFACTS = Path(__file__).resolve().parent / ".artifacts" / "panel"


def _panel_talking(page) -> bool:
    return page.command("eval", js="!!(window.haPbxPhone.session && window.haPbxPhone.mode === 'talking' && window.haPbxPhone.remote)")["value"]


def _panel_hears(page, name: str) -> audio.ToneReport:
    """5 s of what the Phone page plays (its remote stream), analysed."""
    wav = page.dir / f"{name}.wav"
    page.command("record", ms=5000, out=str(wav), timeout=40)
    return audio.analyze_tone(wav)


@pytest.mark.netns
@pytest.mark.timeout(150)
def test_panel_answers_intercom_and_pages_by_itself(pbx_factory, house_phone, workdir, registry):
    """Extension 102's device is the panel's Phone page (Chromium, its
    microphone 1000 Hz). The doorbell 101 (baresip, 440 Hz) dials the
    intercom code *80102: the page answers by itself (Answer never pressed),
    shows "Intercom" and plays the doorbell's tone; the doorbell hears the
    page. An ordinary call to 102 still rings (no auto-answer). Then the
    doorbell pages group 602 (the panel 102 and baresip 103): both answer
    by themselves (the panel over its own WebRTC bridge); the panel holds
    and resumes (re-INVITEs answered through the bridge); both hear 440 Hz;
    nothing comes back to the doorbell."""
    from harness.browser_flows import signed_in_phone
    PANEL_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pbx = pbx_factory(overrides={"groups": GROUPS + [PANEL_PAGE]}).start()
    page = signed_in_phone(pbx, workdir, registry, "panel102")
    door = house_phone(pbx, "101", "tone440", "manual")
    garage = house_phone(pbx, "103", "tone1000", "auto")
    door.wait_registered(15)
    garage.wait_registered(15)

    # An ordinary call rings the page: nothing answers it by itself.
    door.dial(pbx.uri("102"))
    page.command("wait-button", name="Answer", timeout=15)
    assert page.command("text", selector="#ph-call-title")["text"] == "Incoming call"
    time.sleep(1)  # a page that wrongly answers would have by now; not synchronisation
    assert page.command("eval", js="window.haPbxPhone.mode")["value"] == "ringing", "an ordinary call was answered by itself"
    assert not any(e.get("type") == "CALL_ESTABLISHED" for e in door.ctrl.events), "the doorbell was answered without Answer"
    door.hangup()
    page.command("wait-button", name="Answer", state="hidden", timeout=10)
    procs.wait_until(lambda: health(pbx)["active_calls"] == 0, 10, what="the rung call to end")

    # Intercom: the page answers by itself and plays the doorbell.
    since = len(door.ctrl.events)
    door.dial(pbx.uri("*80102"))
    door.ctrl.wait_event("CALL_ESTABLISHED", 15, since=since)
    procs.wait_until(lambda: _panel_talking(page), 10, interval=0.2, what="the page talking on the intercom call")
    assert page.command("text", selector="#ph-call-title")["text"] == "Intercom"
    assert page.command("visible", selector="#ph-intercom")["visible"]
    assert not page.command("visible", selector="#ph-answer")["visible"], "Answer shown on an answered intercom call"
    assert not page.command("visible", selector="#ph-transfer-form")["visible"], "Transfer shown on an intercom call"
    assert not page.command("eval", js="!!window.haPbxPhone.ring")["value"], "the page rang on an intercom call"
    heard_intercom = _panel_hears(page, "intercom-from-door")
    for size, (w, h) in {"desktop": (1280, 800), "phone": (390, 844)}.items():
        page.command("screenshot", out=str(PANEL_ARTIFACTS / f"phone-intercom-{size}.png"), width=w, height=h)
    door.hangup()
    page.command("wait-button", name="Hang up", state="hidden", timeout=10)
    door.ctrl.wait_event("CALL_CLOSED", 10, since=since)
    door_heard = audio.heard(door)
    print(f"intercom: the page heard {heard_intercom}\nthe doorbell heard {door_heard}")
    assert heard_intercom.ok(440, min_seconds=3), f"the page heard {heard_intercom}"
    assert door_heard.ok(1000, min_seconds=2), f"the doorbell heard {door_heard}"
    procs.wait_until(lambda: health(pbx)["active_calls"] == 0, 10, what="the intercom call to end")

    # Paging: the panel and the garage phone answer by themselves; one way only.
    door.clear_recordings()
    sources_before = len(door.rtp_sources())  # the intercom call's, two-way
    since, garage_since = len(door.ctrl.events), len(garage.ctrl.events)
    door.dial(pbx.uri("602"))
    door.ctrl.wait_event("CALL_ESTABLISHED", 15, since=since)
    garage.ctrl.wait_event("CALL_ESTABLISHED", 15, since=garage_since)
    procs.wait_until(lambda: _panel_talking(page), 10, interval=0.2, what="the page talking on the page call")
    assert page.command("text", selector="#ph-call-title")["text"] == "Intercom"
    # The panel holds and resumes: its re-INVITEs are answered through its bridge (audio paused, then
    # sent again); the recording below is made after the resume.
    for pressed, takes_audio in (("true", "false"), ("false", "true")):
        page.command("click", name="Hold")
        procs.wait_until(lambda: page.command("eval", js="document.getElementById('ph-hold').getAttribute('aria-pressed')")["value"] == pressed
                         and page.command("eval", js="window.haPbxPhone.session.isReadyToReOffer()")["value"],
                         10, interval=0.2, what=f"the page's hold pressed={pressed} answered")
        procs.wait_until(lambda: re.search(rf"a listener's re-offer answered.* browser=true takes_audio={takes_audio}", pbx.log_text()),
                         5, interval=0.2, what=f"the PBX reading the panel's re-offer (takes_audio={takes_audio})")
    heard_page = _panel_hears(page, "page-from-door")
    for size, (w, h) in {"desktop": (1280, 800), "phone": (390, 844)}.items():
        page.command("screenshot", out=str(PANEL_ARTIFACTS / f"phone-paged-{size}.png"), width=w, height=h)
    door.hangup()
    door.ctrl.wait_event("CALL_CLOSED", 10, since=since)
    garage.ctrl.wait_event("CALL_CLOSED", 10, since=garage_since)
    page.command("wait-button", name="Hang up", state="hidden", timeout=10)
    heard_garage = audio.heard(garage)
    print(f"page: the panel heard {heard_page}\nthe garage heard {heard_garage}")
    assert heard_page.ok(440, min_seconds=3), f"the panel heard {heard_page}"
    assert heard_garage.ok(440, min_seconds=3), f"the garage heard {heard_garage}"
    assert door.rtp_sources()[sources_before:] == [], f"the pager got media back from {door.rtp_sources()[sources_before:]}"
    for rec in door.recordings():
        back = audio.analyze_tone(rec)
        print(f"the pager's recording: {back}")
        assert back.rms_dbfs < -50 or back.seconds < 0.5, f"the pager heard {back}"
    h = wait_health(pbx, 10, active_calls=0, media_relays=0)
    assert (h["active_calls"], h["media_relays"]) == (0, 0), f"after the page: {h}"
