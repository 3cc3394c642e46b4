"""A Python stand-in for the PBX's voice agent, ONLY for dry-running
test_agent.py's own logic (timelines, level windows, transcripts) while the
Rust agent is not there: `HA_PBX_AGENT_DRYRUN=1`. It registers as extension
200 on the real PBX (a plain extension, no `agent:` section) and does what the
spec says the agent does, crudely: greeting, energy VAD with end of turn,
barge-in, Wyoming STT/TTS at the configured URLs with the backend timeout, the
brain (Assist over HA's REST API, or the OpenAI-compatible LLM with one round
of tool calls), a pre-synthesized apology. No handoff, messages or metrics.
It is never used by a normal test run."""
from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from math import gcd

import numpy as np
from scipy.signal import resample_poly

from . import agent, openai_mock, rtp, wyoming
from .ua import UA, make_sdp, parse_sdp

FRAME = 160


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    g = gcd(src, dst)
    return resample_poly(x, dst // g, src // g)


class FakeAgent:
    def __init__(self, pbx, cfg: dict, ext: str = "200"):
        self.pbx, self.cfg = pbx, cfg
        self.ua = UA(pbx, ext, name="fake-agent")
        self.timeout = float(cfg.get("backend_timeout_secs", 15))
        self.eot = cfg.get("end_of_turn_ms", 700) / 1000.0
        self._stop = threading.Event()
        self.apology = self.tts(cfg.get("apology", agent.APOLOGY))
        self.log: list[str] = []
        # HA_PBX_FAKE_NO_BARGE_IN=1: keep talking over the caller (to see the barge-in test fail)
        self.barge_in = os.environ.get("HA_PBX_FAKE_NO_BARGE_IN") != "1"

    # ------------------------------------------------------------ backends
    def tts(self, text: str) -> np.ndarray:
        pcm, rate, _ = wyoming.synthesize(_port(self.cfg["tts"]["url"]), text, timeout=self.timeout)
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
        return np.clip(_resample(x, rate, 8000), -32768, 32767).astype(np.int16)

    def stt(self, x: np.ndarray) -> str:
        pcm = _resample(x.astype(np.float64), 8000, 16000).astype("<i2").tobytes()
        return wyoming.transcribe_pcm(_port(self.cfg["stt"]["url"]), pcm, 16000, timeout=self.timeout)

    def _post(self, url: str, body: dict, token: str) -> dict:
        req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=self.timeout) as r:
            return json.loads(r.read() or b"{}")

    def brain(self, text: str) -> str:
        b, ha = self.cfg["brain"], self.cfg.get("homeassistant") or {}
        if b["kind"] == "assist":
            r = self._post(ha["url"] + "/api/conversation/process", {"text": text, "language": "en"},
                           ha["token"])
            return r["response"]["speech"]["plain"]["speech"]
        tools = [{"type": "function", "function": {"name": n, "description": n, "parameters": {
            "type": "object", "properties": {k: {"type": "string"} for k in
                                             (("domain", "service", "entity_id") if n == "ha_call_service"
                                              else ("entity_id",))}}}} for n in agent.TOOLS]
        msgs = [{"role": "system", "content": "You are a home assistant on the phone."},
                {"role": "user", "content": text}]
        body = {"model": b["model"], "messages": msgs, "tools": tools}
        for _ in range(3):
            _, m = openai_mock.stream_chat(b["url"], body, timeout=self.timeout,
                                           api_key=b.get("api_key") or "")
            if not m["tool_calls"]:
                return m["content"]
            msgs.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": t["id"], "type": "function", "function": {"name": t["name"], "arguments": t["arguments"]}}
                for t in m["tool_calls"]]})
            for t in m["tool_calls"]:
                a = json.loads(t["arguments"] or "{}")
                if a.get("entity_id") not in self.cfg.get("allowed_entities", []):
                    res = {"error": "not allowed"}
                else:
                    self._post(f"{ha['url']}/api/services/{a['domain']}/{a['service']}",
                               {"entity_id": a["entity_id"]}, ha["token"])
                    res = {"ok": True}
                msgs.append({"role": "tool", "tool_call_id": t["id"], "content": json.dumps(res)})
        return "Okay."

    # ------------------------------------------------------------ calls
    def start(self) -> "FakeAgent":
        r = self.ua.register()
        assert r is not None and r.status == 200, r
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.ua.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            inv = self.ua.wait_request("INVITE", timeout=0.3)
            if inv is not None:
                threading.Thread(target=self._call, args=(inv,), daemon=True).start()

    def _call(self, inv) -> None:
        peer = parse_sdp(inv.body).addr
        ep = rtp.RtpEndpoint()
        self.ua.answer(inv, make_sdp(ep.host, ep.port))
        play = {"q": np.zeros(0, dtype=np.int16)}
        lock = threading.Lock()
        done = threading.Event()

        def sender():
            seq, ts, nxt = 1, 0, time.monotonic()
            while not done.is_set():
                with lock:
                    fr, play["q"] = play["q"][:FRAME], play["q"][FRAME:]
                fr = np.pad(fr, (0, FRAME - len(fr)))
                ep.sock.sendto(rtp.RtpPacket(0, seq, ts, 1234, seq == 1, rtp.ulaw_encode(fr)).pack(), peer)
                seq, ts = (seq + 1) & 0xFFFF, (ts + FRAME) & 0xFFFFFFFF
                nxt += 0.02
                time.sleep(max(0.0, nxt - time.monotonic()))

        gen = {"n": 0}  # bumped by a barge-in: pending synthesis is dropped

        def say(x: np.ndarray, g: int | None = None) -> None:
            with lock:
                if g is None or g == gen["n"]:
                    play["q"] = np.concatenate([play["q"], x])

        def speak(text: str) -> None:
            """Sentence by sentence, as a streaming agent would."""
            g = gen["n"]
            for sent in [t.strip() for t in text.replace("?", "?|").replace(".", ".|").split("|") if t.strip()]:
                if g != gen["n"]:
                    return
                say(self.tts(sent), g)

        def turn(x: np.ndarray) -> None:
            try:
                text = self.stt(x)
                self.log.append(f"heard {text!r}")
                speak(self.brain(text))
            except Exception as e:  # noqa: BLE001 - any backend failure: apologise
                self.log.append(f"failure {e!r}")
                say(self.apology)

        threading.Thread(target=sender, daemon=True).start()
        def greet():
            try:
                speak(self.cfg.get("greeting", agent.GREETING))
            except Exception:  # noqa: BLE001
                say(self.apology)

        threading.Thread(target=greet, daemon=True).start()
        seen, speech, quiet, talking, preroll = 0, [], 0.0, False, []
        while not self._stop.is_set():
            bye = self.ua.wait_request("BYE", timeout=0.02, call_id=inv.get("call-id"))
            if bye is not None:
                self.ua.respond(bye, 200)
                break
            pk = ep.packets()
            for r in pk[seen:]:
                fr = rtp.ulaw_decode(r.pkt.payload).astype(np.float64)
                loud = np.sqrt((fr ** 2).mean()) > 32768 * 10 ** (-35 / 20)
                preroll = (preroll + [fr])[-15:]
                if loud:
                    if not talking and self.barge_in:
                        with lock:  # barge-in
                            play["q"] = play["q"][:0]
                            gen["n"] += 1
                    if not talking:
                        speech = preroll[:-1]
                    talking, quiet = True, 0.0
                if talking:
                    speech.append(fr)
                    if not loud:
                        quiet += 0.02
                        if quiet >= self.eot:
                            threading.Thread(target=turn, args=(np.concatenate(speech),), daemon=True).start()
                            speech, talking, quiet = [], False, 0.0
            seen = len(pk)
        done.set()
        ep.close()
