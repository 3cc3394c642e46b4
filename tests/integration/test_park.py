"""Park: baresip 102 transfers its call with the door to the park code, hears
"Parked on 7 0 1" (the agent's text-to-speech, real Wyoming Piper; Whisper
checks the words) and is hung up; the
door waits on slot 701 (seen in /api/calls), baresip 103 dials 701 and
door and 103 hear each other's tones; parked again and left, the door rings
102 back and they talk again. Python UAs check the refusals (REFER to
anything but the park code, the code dialled, an empty slot, a stranger),
the sipfrag NOTIFY and BYE the parker gets at once without an agent (no
text-to-speech: nothing is announced), the parked party hearing nothing
of a parker that goes on sending, the parked party dialling its own slot
(403), a parked party hanging up
(slot and relay freed), and a ring group's member parking (as itself) then
not answering the ring-back (the door gets BYE,
history says no_answer)."""
from __future__ import annotations

import json
import re
import sqlite3
import time
import urllib.request

import pytest

from harness import agent, audio, procs
from harness import rtp as rtp_tools
from harness.ua import make_sdp, parse_sdp
from harness.uaflows import health, registered, wait_health
from test_pickup_paging import GROUPS

TOKEN = "park-token-0123456789"
PARK = {"park": {"slots": "701-703", "timeout_secs": 6}, "sip": {"ring_timeout_secs": 8}, "http": {"api_token": TOKEN}}


@pytest.fixture
def parkpbx(pbx_factory):
    return pbx_factory(overrides={"groups": GROUPS, **PARK}).start()


def live_calls(pbx) -> list[dict]:
    req = urllib.request.Request(pbx.http_base + "/api/calls", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())["calls"]


def parked_on(pbx, slot: str, caller: str) -> bool:
    return any(c["callee"] == slot and c["caller"] == caller for c in live_calls(pbx))



@pytest.mark.timeout(150)
def test_park_announced_retrieve_and_ring_back_with_tones(pbx_factory, voice, house_phone, baresip_factory, workdir):
    piper, whisper = voice
    # The agent (a brain that is never asked) speaks the slot to the parker.
    over = agent.agent_overrides(stt_url=whisper.url, tts_url=piper.url,
                                 brain={"kind": "openai", "url": "http://127.0.0.1:9/v1", "model": "none"})
    # 10 s on the slot: the announcement (~4 s) comes before the retrieve.
    park = {**PARK, "park": {**PARK["park"], "timeout_secs": 10}}
    pbx = pbx_factory(overrides={**over, "groups": GROUPS, **park}).start()
    agent.wait_agent_ready(pbx)
    door = house_phone(pbx, "101", "tone440", "manual")
    kitchen = house_phone(pbx, "102", "tone1000", "auto")
    tone700 = audio.make_tone(workdir / "tone700.wav", 700, seconds=90)
    garage = baresip_factory("103", user="103", domain=f"{pbx.host}:{pbx.sip_port}", password=pbx.passwords["103"],
                             source=tone700, answermode="manual").start()
    for p in (door, kitchen, garage):
        p.wait_registered(15)
    # The door calls the kitchen, which parks it (Transfer to *70).
    door.dial(pbx.uri("102"))
    door.wait_established(10)
    kitchen.wait_established(10)
    kitchen.ctrl.command("transfer", pbx.uri("*70"))
    procs.wait_until(lambda: parked_on(pbx, "701", "101"), 5, what="the door parked on 701")
    kitchen.wait_closed(15)
    assert "CALL_CLOSED" not in door.ctrl.event_types(), "the parked door was hung up"
    # The garage takes it back by dialling the slot.
    garage.dial(pbx.uri("701"))
    garage.wait_established(10)
    procs.wait_until(lambda: not parked_on(pbx, "701", "101"), 5, what="701 to be taken")
    time.sleep(5)  # five seconds of audio to analyse, not synchronisation
    door.hangup()
    door.wait_closed(10)
    garage.wait_closed(10)
    heard_by_garage = audio.heard(garage)
    heard_at_door = audio.heard(door, last=3.5)
    print(f"garage heard {heard_by_garage}\ndoor heard (last 3.5 s) {heard_at_door}")
    assert heard_by_garage.ok(440, min_seconds=3.5), f"the retriever heard {heard_by_garage}"
    assert heard_at_door.ok(700, min_seconds=3), f"the parked door heard {heard_at_door}"
    procs.wait_until(lambda: health(pbx)["active_calls"] == 0, 5, what="the call to end")
    # Before its leg ended, the kitchen heard the slot (after the door's tone;
    # its file is complete). Whisper hears "Parked" as park, part or hark: the
    # digits are what is checked.
    told = kitchen.recordings()[-1]
    said = agent.words(whisper.transcribe_wav(told))
    print(f"the parker heard: {said!r}")
    digits = said.replace("seven", "7").replace("zero", "0").replace("oh", "0").replace("one", "1")
    assert "7 0 1" in digits or "701" in digits.replace(" ", ""), f"the parker was not told slot 701: {said!r}"
    # Parked again and left: after timeout_secs the kitchen rings again (and answers).
    door.clear_recordings()
    kitchen.clear_recordings()
    door_since, since = len(door.ctrl.event_types()), len(kitchen.ctrl.event_types())
    door.dial(pbx.uri("102"))
    door.ctrl.wait_event("CALL_ESTABLISHED", 10, since=door_since)
    kitchen.ctrl.wait_event("CALL_ESTABLISHED", 10, since=since)
    since = len(kitchen.ctrl.event_types())
    parked_at = time.monotonic()
    kitchen.ctrl.command("transfer", pbx.uri("*70"))
    procs.wait_until(lambda: parked_on(pbx, "701", "101"), 5, what="the door parked on 701 again")
    kitchen.ctrl.wait_event("CALL_CLOSED", 15, since=since)
    # baresip answers by itself (answermode auto): no CALL_INCOMING event.
    kitchen.ctrl.wait_event("CALL_ESTABLISHED", 15, since=since)
    rang_after = time.monotonic() - parked_at
    print(f"ring-back answered after {rang_after:.1f} s")
    assert rang_after > 9, f"the parker was rung back after {rang_after:.1f} s, before timeout_secs (10)"
    time.sleep(5)  # five seconds of audio to analyse, not synchronisation
    kitchen.hangup()
    door.ctrl.wait_event("CALL_CLOSED", 10, since=door_since)
    heard_by_kitchen = audio.heard(kitchen)
    heard_at_door = audio.heard(door, last=3.5)
    print(f"kitchen heard (ring-back) {heard_by_kitchen}\ndoor heard (last 3.5 s) {heard_at_door}")
    assert heard_by_kitchen.ok(440, min_seconds=3.5), f"the parker heard {heard_by_kitchen}"
    assert heard_at_door.ok(1000, min_seconds=3), f"the door heard {heard_at_door}"
    h = wait_health(pbx, 5, active_calls=0, media_relays=0)
    assert (h["active_calls"], h["media_relays"]) == (0, 0), h


@pytest.mark.timeout(90)
def test_park_refusals_hangup_while_parked_and_unanswered_ring_back(parkpbx, uas, rtp):
    pbx = parkpbx
    door, kitchen, office = uas(pbx, "101"), uas(pbx, "102"), uas(pbx, "104")
    registered(kitchen, office)
    # Dialling the code parks nothing; an empty slot and an unknown one say so.
    r = office.invite("*70", make_sdp("127.0.0.1", rtp().port)).wait_final(5)
    assert r is not None and (r.status, r.reason) == (403, "Transfer a call to the park code to park it"), f"{r}"
    r = office.invite("701", make_sdp("127.0.0.1", rtp().port)).wait_final(5)
    assert r is not None and (r.status, r.reason) == (404, "Nothing parked on 701"), f"{r}"
    intruder = uas(pbx, "104", password="wrong", name="intruder")
    r = intruder.invite("701", make_sdp("127.0.0.1", rtp().port)).wait_final(5)
    assert r is not None and r.status in (401, 403, 407), f"a wrong password got {r}"

    door_rtp = rtp()

    def call_and_park(number: str = "102"):
        out = door.invite(number, make_sdp("127.0.0.1", door_rtp.port))
        inv = kitchen.wait_request("INVITE", 5)
        assert inv is not None, f"102 did not ring for {number}"
        dialog = kitchen.answer(inv, make_sdp("127.0.0.1", rtp().port), to_tag="k")
        final = out.wait_final(5)
        assert final is not None and final.status == 200, f"{final}"
        return out, inv, dialog

    out, inv, dialog = call_and_park()
    # The kitchen talks, and goes on talking after it parked the call (a
    # parker's microphone while it hears the slot, or a phone that keeps
    # sending after the BYE): the parked door must hear none of it.
    kitchen_rtp = rtp()
    kitchen_rtp.start_sending(rtp_tools.tone_samples(1000, 2.0), parse_sdp(inv.body).addr)
    assert door_rtp.wait_packets(50, 5), "the kitchen's audio did not reach the door"
    # A REFER anywhere but the park code is not a transfer the PBX makes.
    r = dialog.request("REFER", extra=[("Refer-To", f"<sip:103@{pbx.host}>"), ("Referred-By", "<sip:102@ha-pbx>")])
    assert r is not None and r.status == 501, f"a REFER to 103 got {r}"
    r = dialog.request("REFER", extra=[("Refer-To", f"<sip:*70@{pbx.host}:{pbx.sip_port}>"), ("Referred-By", "<sip:102@ha-pbx>")])
    assert r is not None and r.status == 202, f"the park REFER got {r}"
    notify = kitchen.wait_request("NOTIFY", 5, call_id=inv.get("call-id"))
    assert notify is not None, "the parker got no NOTIFY"
    assert notify.body.decode().startswith("SIP/2.0 200"), f"NOTIFY body {notify.body!r}"
    assert "refer" in (notify.get("event") or "").lower(), f"{notify}"
    kitchen.respond(notify, 200)
    bye = kitchen.wait_request("BYE", 8, call_id=inv.get("call-id"))
    assert bye is not None, "the parker's leg was not ended"
    kitchen.respond(bye, 200)
    # No agent here: nothing can speak the slot, and the log says so.
    assert "the parker is not told the slot: no text-to-speech" in pbx.log_text(), "no log line for the unannounced park"
    procs.wait_until(lambda: parked_on(pbx, "701", "101"), 5, what="the door parked on 701")
    assert door.wait_request("BYE", 0.5, call_id=out.call_id) is None, "the parked door got BYE"

    def quiet_for(seconds: float) -> bool:
        n = len(door_rtp.packets())
        time.sleep(seconds)  # a window in which no packet may arrive, not synchronisation
        return len(door_rtp.packets()) == n
    procs.wait_until(lambda: quiet_for(1.0), 4, what="the parked door to hear nothing of the parker")
    kitchen_rtp.close()
    # The parked door dials its own slot: refused, never connected to itself.
    r = door.invite("701", make_sdp("127.0.0.1", rtp().port)).wait_final(5)
    assert r is not None and (r.status, r.reason) == (403, "You are the call parked on 701"), f"the parked party retrieving itself got {r}"
    assert parked_on(pbx, "701", "101"), "the refused retrieve took the call off its slot"
    # The parked door hangs up: its slot and relay are freed.
    h = wait_health(pbx, 5, active_calls=1, media_relays=1)
    assert (h["active_calls"], h["media_relays"]) == (1, 1), f"parked: {h}"
    out.dialog.bye()
    h = wait_health(pbx, 5, active_calls=0, media_relays=0)
    assert (h["active_calls"], h["media_relays"]) == (0, 0), f"after the parked door hung up: {h}"
    r = office.invite("701", make_sdp("127.0.0.1", rtp().port)).wait_final(5)
    assert r is not None and (r.status, r.reason) == (404, "Nothing parked on 701"), f"after the hang-up: {r}"
    # A call to the group 600, answered by its member 102, which parks it (as
    # itself, not as the group). Never taken: 102 rings back after 6 s, does
    # not answer in the ring time (8 s): cancelled, and the door gets BYE.
    out, inv, dialog = call_and_park("600")
    r = dialog.request("REFER", extra=[("Refer-To", f"<sip:%2A70@{pbx.host}>")])
    assert r is not None and r.status == 202, f"a group member's park got {r}"
    procs.wait_until(lambda: re.search(r"call parked.* parker=102 parked=101 slot=701", pbx.log_text()) is not None, 5, what="the member named as the parker")
    parked_at = time.monotonic()
    for method in ("NOTIFY", "BYE"):
        m = kitchen.wait_request(method, 8, call_id=inv.get("call-id"))
        assert m is not None, f"the parker got no {method}"
        kitchen.respond(m, 200)
    ring = kitchen.wait(lambda m: m.method == "INVITE" and m.get("call-id") != inv.get("call-id"), 12)
    assert ring is not None, "no ring-back"
    assert time.monotonic() - parked_at > 4, "rung back before timeout_secs"
    kitchen.respond(ring, 180, to_tag="rb")
    cancel = kitchen.wait_request("CANCEL", 12, call_id=ring.get("call-id"))
    assert cancel is not None, "the unanswered ring-back was not cancelled"
    kitchen.reject_cancelled(ring, cancel, to_tag="rb")
    assert door.wait_request("BYE", 5, call_id=out.call_id) is not None, "the parked door was not hung up"
    h = wait_health(pbx, 5, active_calls=0, media_relays=0)
    assert (h["active_calls"], h["media_relays"]) == (0, 0), h
    db = sqlite3.connect(f"file:{pbx.data_dir / 'ha-pbx.sqlite'}?mode=ro", uri=True)
    try:
        def row():
            return db.execute("SELECT disposition, end_reason FROM calls WHERE call_id = ?", (out.call_id,)).fetchone()
        procs.wait_until(lambda: row() is not None and row()[1] == "no_answer", 5, what="the history row")
        print(f"history: {row()}")
        assert row() == ("answered", "no_answer"), row()
    finally:
        db.close()
