"""Self-tests of the voice-agent rig, without the PBX: if these fail, fix the
rig before reading test_agent.py.

- espeak-ng utterances have the silence and speech where the harness says
- real Wyoming Piper and faster-whisper servers (from .venv-wyoming) start from
  local files; Piper -> our Wyoming client -> Whisper gives the text back
- the fault proxy passes, refuses (ECONNREFUSED) and hangs (accepts, never answers)
- the OpenAI chat-completions mock streams text and split tool-call deltas in the
  real SSE wire format, read by a raw HTTP client, and records the requests
- a direct baresip -> baresip call: the callee's live recording shows the speech
  while the call is up, and Whisper transcribes the recording
- the Prometheus text parser and histogram quantiles
"""
from __future__ import annotations

import json
import socket
import time

import pytest

from harness import agent, openai_mock, speech, wyoming

pytestmark = pytest.mark.harness


def test_espeak_utterance_timing(tmp_path):
    u = speech.utterance(tmp_path / "u.wav", "Turn on the hallway light", lead=2.0, trail=3.0)
    segs = speech.segments(u.path)
    assert len(segs) == 1, segs
    s, e = segs[0]
    assert abs(s - 2.0) < 0.06 and abs(e - u.speech_end) < 0.06, (segs, u)
    assert 0.8 < u.speech_seconds < 3.0 and abs(u.total_seconds - (u.speech_end + 3.0)) < 0.01
    two = speech.script(tmp_path / "two.wav", [(1.0, "Hello there"), (2.0, "Goodbye now")], trail=1.0)
    segs = speech.segments(two.path)
    assert len(segs) == 2 and abs(segs[1][0] - two.parts[1][0]) < 0.06, (segs, two.parts)
    assert speech.loud_share(two.path, 0, 0.9) == 0.0
    assert speech.loud_share(two.path, *two.parts[0][:2]) > 0.7


@pytest.mark.timeout(180)
def test_piper_to_whisper_round_trip(voice, tmp_path):
    piper, whisper = voice
    names = [v["name"] for t in piper.info["tts"] for v in t["voices"]]
    assert wyoming.PIPER_VOICE in names
    assert whisper.info.get("asr"), whisper.info
    pcm, rate, first = piper.say("The hallway light is now on. Is there anything else?")
    print(f"\npiper: {len(pcm) / 2 / rate:.2f}s of audio at {rate} Hz, first chunk after {first * 1000:.0f} ms")
    assert rate in (16000, 22050) and len(pcm) / 2 / rate > 1.5
    # through the telephone band, as the agent's audio will arrive
    wav = wyoming.pcm_to_wav(tmp_path / "tts8k.wav", pcm, rate, 8000)
    t0 = time.monotonic()
    text = agent.words(whisper.transcribe_wav(wav))
    print(f"whisper: {text!r} in {time.monotonic() - t0:.2f}s")
    assert "light is now on" in text and "anything else" in text, text
    # the callers' speech: espeak-ng for short commands, Piper for longer sentences
    u = speech.utterance(tmp_path / "cmd.wav", "Turn on the hallway light", lead=0.5, trail=1.0)
    text = agent.words(whisper.transcribe_wav(u.path))
    assert "turn on the hallway light" in text, text
    u = speech.utterance(tmp_path / "ask.wav", "Please tell Anna that the parcel is at the neighbours.",
                         lead=0.5, trail=1.0, piper_port=piper.port)
    text = agent.words(whisper.transcribe_wav(u.path))
    assert "parcel" in text and "neighbo" in text, text


@pytest.mark.timeout(120)
def test_fault_proxy_modes(voice):
    piper, _ = voice
    p = wyoming.FaultProxy(piper.port)
    try:
        assert wyoming.describe(p.port).get("tts"), "describe through the proxy"
        pcm, rate, _ = wyoming.synthesize(p.port, "Hello")
        assert len(pcm) > rate // 4 and p.bytes_down > len(pcm)
        p.set_mode("refuse")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", p.port), timeout=2)
        p.set_mode("hang")
        t0 = time.monotonic()
        with pytest.raises((socket.timeout, TimeoutError)):
            wyoming.describe(p.port, timeout=1.5)
        assert 1.4 < time.monotonic() - t0 < 3 and p.accepted["hang"] == 1
        # a connection opened while passing goes silent when the mode turns to hang
        p.set_mode("pass")
        c = wyoming.Conn(p.port, timeout=1.5)
        c.send("describe")
        assert c.recv()[0] == "info"
        p.set_mode("hang")
        c.send("describe")
        with pytest.raises((socket.timeout, TimeoutError)):
            c.recv()
        c.close()
        p.set_mode("pass")
        assert wyoming.describe(p.port).get("tts"), "pass again after hang"
    finally:
        p.close()


def test_openai_mock_streams_the_real_wire_format():
    m = openai_mock.OpenAIMock().start()
    try:
        args = {"domain": "input_boolean", "service": "turn_on", "entity_id": "input_boolean.hallway_light"}
        m.script(openai_mock.tool_call("ha_call_service", args),
                 openai_mock.text("The hallway light is on now."))
        tools = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
                 for n in agent.TOOLS]
        body = {"model": "test-model", "tools": tools,
                "messages": [{"role": "user", "content": "Turn on the hallway light"}]}
        chunks, msg = openai_mock.stream_chat(m.url, body)
        assert all(c["object"] == "chat.completion.chunk" for c in chunks)
        tc_chunks = [c for c in chunks if c["choices"][0]["delta"].get("tool_calls")]
        assert len(tc_chunks) >= 3, "the tool call is split over several chunks"
        first = tc_chunks[0]["choices"][0]["delta"]["tool_calls"][0]
        assert first["id"] and first["function"]["name"] == "ha_call_service" and first["function"]["arguments"] == ""
        assert all("id" not in c["choices"][0]["delta"]["tool_calls"][0] for c in tc_chunks[1:])
        assert msg["finish_reason"] == "tool_calls" and json.loads(msg["tool_calls"][0]["arguments"]) == args
        call_id = msg["tool_calls"][0]["id"]
        follow = body["messages"] + [
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": call_id, "type": "function",
                 "function": {"name": "ha_call_service", "arguments": msg["tool_calls"][0]["arguments"]}}]},
            {"role": "tool", "tool_call_id": call_id, "content": json.dumps({"ok": True})}]
        chunks, msg2 = openai_mock.stream_chat(m.url, {**body, "messages": follow})
        assert msg2["content"] == "The hallway light is on now." and msg2["finish_reason"] == "stop"
        assert sum(1 for c in chunks if c["choices"][0]["delta"].get("content")) >= 3
        r1, r2 = m.requests
        assert r1.body["stream"] is True and r1.tool_names() == list(agent.TOOLS)
        assert r1.headers["authorization"] == "Bearer sk-test"
        assert r2.tool_results() == [{"role": "tool", "tool_call_id": call_id, "content": '{"ok": true}'}]
        # non-streaming requests get a whole chat.completion
        import urllib.request
        req = urllib.request.Request(m.url + "/v1/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            whole = json.loads(r.read())
        assert whole["object"] == "chat.completion" and whole["choices"][0]["message"]["content"]
        # an error reply
        m.script(openai_mock.error(503))
        with pytest.raises(RuntimeError, match="HTTP 503"):
            openai_mock.stream_chat(m.url, body)
    finally:
        m.stop()


@pytest.mark.timeout(120)
def test_baresip_live_recording_and_transcript(voice, baresip_factory, tmp_path):
    piper, whisper = voice
    u = speech.utterance(tmp_path / "say.wav", "Please tell Anna that the parcel is at the neighbours.",
                         lead=1.5, trail=60, piper_port=piper.port)
    quiet = speech.silence(tmp_path / "quiet.wav", 90)
    a = baresip_factory("a", user="a", domain="127.0.0.1", source=u.path, register=False).start()
    b = baresip_factory("b", user="b", domain="127.0.0.1", source=quiet, register=False).start()
    a.dial(f"sip:b@127.0.0.1:{b.sip_port}")
    a.wait_established(10)
    # the live (still being written) recording shows the speech while the call is up
    s = agent.wait_sound(b, after=0.0, timeout=15)
    e = agent.wait_quiet(b, after=s, quiet=1.0, timeout=15)
    print(f"\nspeech in b's live recording {s:.2f}-{e:.2f}s (sent at {u.speech_start:.2f}-{u.speech_end:.2f}s)")
    assert abs((e - s) - u.speech_seconds) < 0.3, (s, e, u.speech_seconds)
    assert 0.0 <= s - u.speech_start < 1.0, "recording and source are aligned to within 1 s"
    agent.hang_up(a)
    # a's *-enc.wav holds what a sent: speech at the same offset as in the file
    enc = agent.recording(a, "enc")
    se = speech.speech_start(enc)
    assert se is not None and abs(se - u.speech_start) < 0.3, (se, u.speech_start)
    text = agent.words(whisper.transcribe_wav(agent.recording(b, "dec")))
    assert "parcel" in text and "neighbo" in text, text


def test_prometheus_parser_and_quantiles():
    text = """# HELP x_seconds demo
# TYPE x_seconds histogram
x_seconds_bucket{le="0.1"} 1
x_seconds_bucket{le="0.5"} 3
x_seconds_bucket{le="1"} 4
x_seconds_bucket{le="+Inf"} 4
x_seconds_sum 1.7
x_seconds_count 4
failures_total{backend="stt"} 2
failures_total{backend="tts"} 0
"""
    s = agent.parse_metrics(text)
    assert agent.figure_count(s, "x_seconds") == 4
    assert agent.metric(s, "failures_total", backend="stt") == 2
    assert agent.metric(s, "failures_total") == 2
    assert agent.metric(s, "nothing") is None
    assert abs(agent.histogram_quantile(s, "x_seconds", 0.5) - 0.3) < 1e-9
    assert abs(agent.histogram_quantile(s, "x_seconds", 0.95) - 0.9) < 1e-9
