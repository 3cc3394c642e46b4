#!/usr/bin/env python3
"""Voice-agent turn latency: real Wyoming Piper + faster-whisper, the PBX's agent
on extension 200, a baresip caller asking N questions in one call. Prints p50/p95
of the agent's own per-turn figures read from /metrics (STT, brain, TTS first
audio, voice-to-voice, overhead) and, independently, voice-to-voice measured at
the caller from its recordings (end of its speech -> first agent audio after it).
Asserts nothing.

    .venv-test/bin/python bench/agent_turns.py [TURNS] [--assist] [--gap S] [--early MS]

The brain is a local OpenAI-compatible mock (tests/integration/harness/openai_mock.py,
real streaming wire format, fixed short answer) unless --assist: then a real Home
Assistant (from .venv-ha) answers with Assist ("Turn on the hallway light" / "off").
Needs `bash scripts/install-test-deps.sh` and a release build (or HA_PBX_BIN).
BENCH_KEEP=1 keeps the run directory."""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from harness import agent, openai_mock, procs, speech, wyoming  # noqa: E402
from harness.baresip import Baresip  # noqa: E402
from harness.pbx import Pbx  # noqa: E402


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("turns", nargs="?", type=int, default=10)
    ap.add_argument("--assist", action="store_true", help="Home Assistant Assist as the brain")
    ap.add_argument("--gap", type=float, default=9.0, help="seconds from one question to the next")
    ap.add_argument("--early", type=int, default=None,
                    help="agent.early_stt_ms (default: the PBX's own default; 0: transcribe only at the end of a turn)")
    ap.add_argument("--dryrun", action="store_true",
                    help="the Python stand-in agent (tests/integration/harness/fake_agent.py) instead of "
                         "the PBX's: only to check this script")
    a = ap.parse_args()

    d = Path(tempfile.mkdtemp(prefix="agent-bench-"))
    reg = procs.ProcessRegistry()
    try:
        t0 = time.monotonic()
        piper = wyoming.PiperServer(d, reg).start()
        whisper = wyoming.WhisperServer(d, reg).start()
        print(f"wyoming up in {time.monotonic() - t0:.1f}s (piper {piper.startup_seconds:.1f}s, "
              f"whisper {whisper.startup_seconds:.1f}s, both warmed)")
        ha_api = None
        if a.assist:
            from harness.homeassistant import HomeAssistant

            ha = HomeAssistant(d, reg, extra_yaml="conversation:\n")
            ha.start()
            ha.onboard()
            ha_api = (ha.base, ha.long_lived_token())
            ha.expose(ha.create_input_boolean("Hallway light"))
            brain = {"kind": "assist"}
            questions = ["Turn on the hallway light", "Turn off the hallway light"]
        else:
            mock = openai_mock.OpenAIMock().start()
            mock.script(openai_mock.text("It is twelve o'clock."))
            brain = agent.openai_brain(mock)
            # a short question, and a longer request whose pauses (between its sentences
            # and at its commas) start early transcriptions that must be thrown away
            questions = ["What time is it?",
                         "Is the garage door closed? If it is open, please close it, and switch off the porch light."]
        parts = [(6.0 if i == 0 else a.gap, questions[i % len(questions)]) for i in range(a.turns)]
        u = speech.script(d / "caller.wav", parts, trail=60, piper_port=piper.port)

        over = agent.agent_overrides(stt_url=whisper.url, tts_url=piper.url, brain=brain, ha=ha_api,
                                     allowed_entities=["input_boolean.hallway_light"])
        if a.early is not None:
            over["agent"]["early_stt_ms"] = a.early
        exts = None
        if a.dryrun:
            from harness.fake_agent import FakeAgent
            from harness.pbx import DEFAULT_EXTENSIONS

            cfg = over.pop("agent")
            exts = [dict(e) for e in DEFAULT_EXTENSIONS] + [{"extension": "200", "password": "secret200"}]
        pbx = Pbx(d / "pbx", reg, overrides=over, extensions=exts)
        pbx.config["log_level"] = os.environ.get("BENCH_LOG", "info")
        pbx.start()
        if a.dryrun:
            fake = FakeAgent(pbx, cfg).start()
        else:
            print(f"agent ready {agent.wait_agent_ready(pbx):.1f}s after start")
        b = Baresip(d, reg, "caller", user="101", domain=f"{pbx.host}:{pbx.sip_port}",
                    password=pbx.passwords["101"], source=u.path).start()
        b.wait_registered(15)
        agent.dial(b, pbx)
        last_end = u.parts[-1][1]
        print(f"{a.turns} turns, the caller's script lasts {last_end:.0f}s ...")
        try:
            agent.wait_sound(b, after=last_end + 0.2, timeout=last_end + 40)
            agent.wait_quiet(b, after=last_end + 0.2, quiet=1.5, timeout=30)
        except AssertionError as e:
            print(f"(the last reply did not come: {e})")
        agent.hang_up(b)

        # caller side: end of each question (as sent) -> first agent sound after it
        dec_segs = speech.segments(agent.recording(b, "dec"))
        enc_segs = speech.segments(agent.recording(b, "enc"))
        heard = []
        for s, e, _ in u.parts:
            # the end of the last sound stretch of this question as sent (one with
            # sentences has pauses inside it)
            ends = [se for ss, se in enc_segs if s - 0.5 < ss < e - 0.05]
            e_sent = ends[-1] if ends else e
            nxt = [ds for ds, de in dec_segs if ds >= e_sent]
            if nxt and nxt[0] - e_sent < a.gap:
                heard.append(nxt[0] - e_sent)
        print(f"\ncaller-measured voice-to-voice over {len(heard)}/{a.turns} turns: "
              f"p50 {pct(heard, .5) * 1000:.0f} ms, p95 {pct(heard, .95) * 1000:.0f} ms, "
              f"mean {statistics.mean(heard) * 1000 if heard else float('nan'):.0f} ms")

        try:
            s = agent.parse_metrics(agent.metrics_text(pbx))
        except AssertionError as e:
            print(f"no /metrics: {e}")
            return
        print(f"\n/metrics: {agent.M_TURNS} = {agent.metric(s, agent.M_TURNS)}, failures "
              f"{ {k: agent.metric(s, agent.M_FAILURES, backend=k) for k in ('stt', 'tts', 'brain')} }")
        print(f"early transcriptions: {agent.metric(s, 'ha_pbx_agent_early_stt_started_total')} started, "
              f"{agent.metric(s, 'ha_pbx_agent_early_stt_used_total')} used")
        print(f"{'figure':45s} {'count':>6s} {'mean ms':>8s} {'p50 ms':>8s} {'p95 ms':>8s}")
        for n in agent.TURN_FIGURES:
            c, tot = agent.figure_count(s, n), agent.metric(s, n + "_sum")
            p50, p95 = agent.histogram_quantile(s, n, 0.5), agent.histogram_quantile(s, n, 0.95)

            def ms(v):
                return f"{v * 1000:8.0f}" if v is not None else "       -"

            mean = (tot / c) if c and tot is not None else None
            print(f"{n:45s} {int(c or 0):6d} {ms(mean)} {ms(p50)} {ms(p95)}")
        print("(p50/p95 from histogram buckets: as coarse as the buckets)")

        # exact per-turn figures from the PBX's "agent turn" log lines
        fields = ("v2v_ms", "stt_ms", "stt_waited_ms", "brain_ms", "tts_ms", "overhead_ms")
        rows = []
        for line in pbx.log_path.read_text(errors="replace").splitlines():
            if "agent turn" in line:
                kv = dict(m.groups() for m in re.finditer(r"(\w+)=(\d+)", line))
                rows.append([int(kv.get(f, 0)) for f in fields])
        if rows:
            print(f"\nfrom the PBX log, {len(rows)} turns:")
            print(f"{'figure':15s} {'p50 ms':>8s} {'p95 ms':>8s} {'max ms':>8s}")
            for i, f in enumerate(fields):
                xs = [r[i] for r in rows]
                print(f"{f:15s} {pct(xs, .5):8.0f} {pct(xs, .95):8.0f} {max(xs):8d}")
    finally:
        reg.kill_all()
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {d}")
        else:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
