"""Doorbells (issue 14): an extension of `kind: doorbell` calls a ring group;
its Home Assistant event entity is a doorbell that fires `ring`, and the
"Open door" button (`door_open: "1#"`) sends the digits into the doorbell's
live call through the DTMF command path: SIP INFO here (`dtmf: info`), as a
door station that opens on an INFO digit gets them. A real Mosquitto carries
discovery, events and the button press; Python UAs are the devices."""
from __future__ import annotations

import json

import pytest

from harness.mqtt import mqtt_overrides
from harness.uaflows import connect

EXTENSIONS = [
    {"extension": "101", "password": "secret101", "name": "Front door", "kind": "doorbell",
     "door_open": "1#", "dtmf": "info"},
    {"extension": "102", "password": "secret102", "name": "Kitchen"},
]


def _info_digits(ua, count: int) -> list[str]:
    digits = []
    for _ in range(count):
        info = ua.wait_request("INFO", 8)
        assert info is not None, f"the doorbell got INFO digits {digits}, expected {count}"
        ua.respond(info, 200)
        body = info.body.decode()
        digits.append(next(l.split("=", 1)[1].strip() for l in body.splitlines() if l.startswith("Signal=")))
    return digits


@pytest.mark.timeout(60)
def test_doorbell_rings_and_the_open_door_button_sends_its_digits(pbx_factory, broker, rec, uas, rtp):
    overrides = mqtt_overrides(broker)
    overrides["groups"] = [{"extension": "600", "name": "House", "members": ["102"]}]
    pbx = pbx_factory(extensions=EXTENSIONS, overrides=overrides).start()
    disc = rec.wait_topic("homeassistant/device/ha_pbx_ext_101/config")
    config = json.loads(disc.payload)["cmps"]
    assert config["call"]["dev_cla"] == "doorbell" and "ring" in config["call"]["evt_typ"], config["call"]
    button = config["open_door"]
    assert button["p"] == "button" and button["name"] == "Open door", button
    phone_cfg = json.loads(rec.wait_topic("homeassistant/device/ha_pbx_ext_102/config").payload)["cmps"]
    assert "open_door" not in phone_cfg and "dev_cla" not in phone_cfg["call"]

    door, kitchen = uas(pbx, "101"), uas(pbx, "102")
    for ua in (door, kitchen):
        r = ua.register()
        assert r is not None and r.status == 200
    call = connect(pbx, door, kitchen, "600", rtp().port, rtp().port)
    ring = rec.wait_topic("ha_pbx/ext/101/event", lambda p: '"event_type":"ring"' in p)
    assert json.loads(ring.payload)["callee"] == "600"
    rec.wait_topic("ha_pbx/ext/101/trigger", lambda p: p == "ring")
    rec.wait_topic("ha_pbx/ext/101/state", lambda p: '"state":"in_call"' in p)

    # Pressing the button in HA publishes its payload_press on its command topic.
    broker.publish(button["cmd_t"], button["pl_prs"])
    assert _info_digits(door, 2) == ["1", "#"]
    assert kitchen.wait_request("INFO", 0.5) is None, "the digits went to the wrong side"
    call.caller.bye()
