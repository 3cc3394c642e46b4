#!/usr/bin/env python3
"""The bridge's Opus encoder settings, cost against quality: espeak-ng speech
through G.711 μ-law, then Opus at each bit rate and complexity
(examples/opus_cost.rs), scored with PESQ (narrowband) against the G.711
input. Prints figures, asserts nothing.

    .venv-test/bin/python bench/opus_quality.py
"""
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from pesq import pesq

ROOT = Path(__file__).resolve().parent.parent
TEXT = ("The parcel is at the neighbours. Please tell Anna when she comes home, "
        "and ring the bell twice at the front door before six o'clock.")


def run(cmd: list[str]) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600).stdout


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        run(["espeak-ng", "-s", "140", "-w", str(d / "espeak.wav"), TEXT])
        run(["sox", "-D", str(d / "espeak.wav"), "-r", "8000", "-c", "1", "-e", "u-law", str(d / "ulaw.wav"), "norm", "-3"])
        run(["sox", str(d / "ulaw.wav"), "-e", "signed", "-b", "16", "-t", "raw", str(d / "in.raw")])
        out = d / "out"
        out.mkdir()
        lines = run(["cargo", "run", "-q", "--release", "--example", "opus_cost", "--", str(d / "in.raw"), str(out)]).splitlines()
        ref = np.fromfile(d / "in.raw", dtype="<i2") / 32768.0
        for line in lines:
            kbps, _, _, complexity = line.split()[:4]
            x = np.fromfile(out / f"{kbps}_{complexity.rstrip(':')}.raw", dtype="<i2") / 32768.0
            n = min(len(ref), len(x))
            print(f"{line}, PESQ {pesq(8000, ref[:n], x[:n], 'nb'):.2f}")


if __name__ == "__main__":
    sys.exit(main())
