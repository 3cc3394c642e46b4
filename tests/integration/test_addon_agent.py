"""The AI voice agent switched on from the add-on's options (config.yaml's
`agent` group; its defaults but for the Wyoming addresses) with real peers:
Wyoming Piper and faster-whisper, and a real Home Assistant reached only
through the fake Supervisor's proxies (REST and WebSocket) with the
add-on's token. A call to an offline extension is handed to the agent by an
`agent.handoff` rule; the agent takes a message, which must arrive in Home
Assistant as a persistent notification with the caller's words. A call to the
agent's extension asks Assist (the default brain) to turn on an exposed light.
What the caller heard is checked by content (Whisper on baresip's recording).
Everything on 127.0.0.x."""
from __future__ import annotations

import json
import time

import pytest

from harness import agent, procs, speech
from harness.addon import AddonPbx, default_options
from harness.agent import words
from harness.homeassistant import HALLWAY_LIGHT, HomeAssistant
from harness.supervisor import TOKEN, FakeSupervisor

PROXY = "127.0.0.2"   # plays the Supervisor's ingress proxy
ANNA = {"extension": "100", "password": "secret100", "name": "Anna"}
CALLER = {"extension": "101", "password": "secret101", "name": "Front door"}
NOTIFY_PATH = "/core/api/services/persistent_notification/create"
LIGHT = HALLWAY_LIGHT   # exposed to Assist


# voice (Piper, Whisper) and ha (LIGHT exposed to Assist): conftest.py, one of
# each for the session.


def notifications(ha: HomeAssistant) -> list[dict]:
    """Home Assistant's persistent notifications (no longer states since 2023.6)."""
    with ha.ws() as w:
        return w.call("persistent_notification/get")


def agent_options(piper, whisper) -> dict:
    group = json.loads(json.dumps(default_options()["agent"]))
    assert group["enabled"] is False and group["brain"] == {"kind": "assist"}, group
    group["enabled"] = True
    group["stt"].update(host="127.0.0.1", port=whisper.port)
    group["tts"].update(host="127.0.0.1", port=piper.port)
    group["handoff"] = [{"callee": ANNA["extension"], "ring_secs": 5}]
    return group


def wait_agent_ready(pbx: AddonPbx, port: int, timeout: float = 60.0) -> None:
    def ready():
        status, body = pbx.get(port, "/health", source=PROXY)
        return status == 200 and (json.loads(body).get("agent") or {}).get("ready") is True
    procs.wait_until(ready, timeout, interval=0.2, what="agent.ready in /health")


@pytest.mark.timeout(300)
def test_options_turn_the_agent_on_and_a_message_becomes_a_notification(ha, voice, workdir, registry, dumper,
                                                                        baresip_factory):
    piper, whisper = voice
    sup = FakeSupervisor(ingress_port=procs.free_port("sip"), core=(ha.base, ha.token)).start()
    try:
        pbx = AddonPbx(workdir / "addon", registry, supervisor_url=sup.url, token=TOKEN, ingress_allow=PROXY,
                       options={"extensions": [ANNA, CALLER], "agent": agent_options(piper, whisper)})
        dumper.add("ha-pbx add-on", pbx)
        pbx.launch()
        pbx.wait_ready()
        assert "AI voice agent enabled in the add-on options" in pbx.log_text()
        wait_agent_ready(pbx, sup.ingress_port)
        before = {n["notification_id"] for n in notifications(ha)}

        said = "Please tell Anna that the parcel is at the neighbours."
        u = speech.utterance(workdir / "caller.wav", said, lead=8.0, trail=120, piper_port=piper.port)
        b = agent.caller(baresip_factory, pbx, u.path, ext=CALLER["extension"])
        # Anna is not registered: the rule hands the call over at once, not after ring_secs
        t_dial = time.monotonic()
        t_est = agent.dial(b, pbx, target=ANNA["extension"], timeout=20)
        assert t_est - t_dial < 4, f"answered {t_est - t_dial:.1f}s after the dial"
        time.sleep(max(0.0, t_est + u.speech_end + 5.0 - time.monotonic()))
        agent.hang_up(b)
        greeting = words(whisper.transcribe_wav(agent.recording(b), 0.0, u.speech_start))
        print(f"\nmessage greeting heard: {greeting!r}")
        assert "message" in greeting, greeting

        found: list[dict] = []

        def arrived():
            found[:] = [n for n in notifications(ha) if n["notification_id"] not in before]
            return found
        procs.wait_until(arrived, 30, interval=0.5, what="a new persistent notification in Home Assistant")
        print(f"notification: {found}")
        assert len(found) == 1, found
        n = found[0]
        assert agent.is_the_message(n["message"]), n
        assert "100" in n["title"] and "101" in n["title"], n
        # it came through the Supervisor's proxy, with the add-on's token
        posts = [r for r in sup.requests if r["method"] == "POST" and r["path"] == NOTIFY_PATH]
        assert len(posts) == 1 and posts[0]["authorization"] == f"Bearer {TOKEN}", sup.paths()
        assert json.loads(posts[0]["body"])["message"] == n["message"]
    finally:
        sup.stop()


@pytest.mark.timeout(300)
def test_assist_brain_through_the_supervisor_turns_on_the_light(ha, voice, workdir, registry, dumper,
                                                                 baresip_factory):
    piper, whisper = voice
    ha.call("input_boolean", "turn_off", entity_id=LIGHT)
    ha.wait_state(LIGHT, lambda s: s["state"] == "off")
    sup = FakeSupervisor(ingress_port=procs.free_port("sip"), core=(ha.base, ha.token)).start()
    try:
        pbx = AddonPbx(workdir / "addon", registry, supervisor_url=sup.url, token=TOKEN, ingress_allow=PROXY,
                       options={"extensions": [ANNA, CALLER], "agent": agent_options(piper, whisper)})
        dumper.add("ha-pbx add-on", pbx)
        pbx.launch()
        pbx.wait_ready()
        wait_agent_ready(pbx, sup.ingress_port)
        u = speech.utterance(workdir / "caller.wav", "Turn on the hallway light", lead=5.0, trail=120)
        b = agent.caller(baresip_factory, pbx, u.path, ext=CALLER["extension"])
        agent.dial(b, pbx, target=default_options()["agent"]["extension"])
        ha.wait_state(LIGHT, lambda s: s["state"] == "on", timeout=u.speech_end + 30)
        start = agent.wait_sound(b, after=u.speech_end + 0.2, timeout=u.speech_end + 25)
        end = agent.wait_quiet(b, after=start, quiet=1.5, timeout=25)
        agent.hang_up(b)
        greeting = words(whisper.transcribe_wav(agent.recording(b), 0.0, u.speech_start))
        reply = words(whisper.transcribe_wav(agent.recording(b), u.speech_end, end + 0.5))
        print(f"\ngreeting heard: {greeting!r}\nreply heard: {reply!r}")
        assert "how can i help" in greeting, greeting
        assert "turned on" in reply or "turn on" in reply, reply
        # Assist was reached through the Supervisor's WebSocket proxy, not HA directly
        assert {"/core/websocket", "/core/api/websocket"} & set(sup.paths()), sup.paths()
    finally:
        sup.stop()
