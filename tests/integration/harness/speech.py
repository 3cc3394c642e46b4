"""Callers' speech for the voice-agent tests: espeak-ng utterances rendered to
8 kHz mono s16 WAVs (what baresip's `audio_source aufile,FILE.wav` plays) with
chosen silence before and after, and helpers to find speech in recordings.

baresip 1.0 hangs up when its aufile source ends: give every file a long tail
of silence (trail) so it outlasts the call."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import audio

RATE = audio.RATE


def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, timeout=60, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@dataclass
class Utterance:
    path: Path
    text: str
    lead: float                      # silence before the speech (s)
    speech_seconds: float            # length of the spoken part (s)
    total_seconds: float
    parts: list[tuple[float, float, str]] = field(default_factory=list)  # (start, end, text)

    @property
    def speech_start(self) -> float:
        return self.lead

    @property
    def speech_end(self) -> float:
        return self.lead + self.speech_seconds


def _espeak(text: str, out: Path, speed: int = 150, voice: str = "en-us") -> np.ndarray:
    raw = out.with_suffix(".espeak.wav")
    _run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text])
    x, _ = audio.load(raw, RATE)
    raw.unlink(missing_ok=True)
    # trim espeak's own leading/trailing quiet so that `lead` is exact
    act = np.flatnonzero(audio.frame_rms(x) > 10 ** (-45 / 20))
    if act.size:
        x = x[act[0] * audio.FRAME: (act[-1] + 1) * audio.FRAME]
    peak = np.max(np.abs(x)) or 1.0
    return x * (10 ** (-3 / 20) / peak)  # -3 dBFS peak


def _piper(text: str, port: int) -> np.ndarray:
    from . import wyoming

    pcm, rate, _ = wyoming.synthesize(port, text)
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0
    if rate != RATE:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(RATE, rate)
        x = resample_poly(x, RATE // g, rate // g)
    act = np.flatnonzero(audio.frame_rms(x) > 10 ** (-45 / 20))
    if act.size:
        x = x[act[0] * audio.FRAME: (act[-1] + 1) * audio.FRAME]
    peak = np.max(np.abs(x)) or 1.0
    return x * (10 ** (-3 / 20) / peak)


def utterance(path: Path | str, text: str, lead: float = 1.0, trail: float = 60.0,
              speed: int = 150, voice: str = "en-us", piper_port: int | None = None) -> Utterance:
    """`lead` s of silence, `text` spoken, `trail` s of silence. Spoken by espeak-ng,
    or by a Wyoming Piper server when piper_port is given: faster-whisper's tiny.en
    gets short commands from espeak-ng right ("Turn on the hallway light") but
    garbles longer sentences ("...the parcel is at the neighbours"), which it
    transcribes correctly from Piper."""
    return script(path, [(lead, text)], trail=trail, speed=speed, voice=voice, piper_port=piper_port)


def script(path: Path | str, parts: list[tuple[float, str]], trail: float = 60.0,
           speed: int = 150, voice: str = "en-us", piper_port: int | None = None) -> Utterance:
    """Several utterances: each (pause before it in s, text); then `trail` s of silence."""
    path = Path(path)
    chunks = []
    t = 0.0
    spans = []
    for pause, text in parts:
        chunks.append(np.zeros(int(round(pause * RATE))))
        t += pause
        s = _piper(text, piper_port) if piper_port else _espeak(text, path, speed, voice)
        chunks.append(s)
        spans.append((t, t + len(s) / RATE, text))
        t += len(s) / RATE
    chunks.append(np.zeros(int(round(trail * RATE))))
    x = np.concatenate(chunks)
    audio.save(path, x, RATE)
    first = spans[0][0]
    return Utterance(path, " ".join(p[1] for p in parts), first, spans[-1][1] - first,
                     len(x) / RATE, spans)


def silence(path: Path | str, seconds: float) -> Path:
    return audio.save(path, np.zeros(int(seconds * RATE)), RATE)


# ------------------------------------------------------------------ analysis
def levels(x: np.ndarray, fs: int = RATE, window: float = 0.05) -> np.ndarray:
    """RMS level in dBFS per window (default 50 ms)."""
    n = max(1, int(fs * window))
    frames = x[: len(x) // n * n].reshape(-1, n)
    if not len(frames):
        return np.zeros(0)
    return 20 * np.log10(np.sqrt((frames ** 2).mean(1)) + 1e-12)


def segments(path_or_x, floor_db: float = -40.0, min_gap: float = 0.4, min_len: float = 0.1,
             window: float = 0.02, fs: int = RATE) -> list[tuple[float, float]]:
    """Stretches of sound (level above floor_db), gaps shorter than min_gap merged,
    stretches shorter than min_len dropped: [(start s, end s), ...]."""
    if isinstance(path_or_x, (str, Path)):
        x, fs = audio.load(path_or_x)
    else:
        x = path_or_x
    lv = levels(x, fs, window)
    act = lv > floor_db
    segs: list[list[float]] = []
    i = 0
    while i < len(act):
        if act[i]:
            j = i
            while j < len(act) and act[j]:
                j += 1
            s, e = i * window, j * window
            if segs and s - segs[-1][1] < min_gap:
                segs[-1][1] = e
            else:
                segs.append([s, e])
            i = j
        else:
            i += 1
    return [(s, e) for s, e in segs if e - s >= min_len]


def speech_start(path_or_x, after: float = 0.0, floor_db: float = -40.0, **kw) -> float | None:
    """Start of the first sound stretch beginning at or after `after` s (None: none)."""
    for s, e in segments(path_or_x, floor_db, **kw):
        if s >= after:
            return s
        if e > after:  # already sounding at `after`
            return after
    return None


def speech_end(path_or_x, after: float = 0.0, floor_db: float = -40.0, **kw) -> float | None:
    """End of the sound stretch that is going on at, or starts first after, `after`."""
    for s, e in segments(path_or_x, floor_db, **kw):
        if e > after:
            return e
    return None


def level_between(path_or_x, start: float, end: float, fs: int = RATE) -> float:
    """RMS level (dBFS) of [start, end) s."""
    if isinstance(path_or_x, (str, Path)):
        x, fs = audio.load(path_or_x)
    else:
        x = path_or_x
    seg = x[int(start * fs): int(end * fs)]
    return audio.rms_dbfs(seg)


def loud_share(path_or_x, start: float, end: float, floor_db: float = -40.0,
               window: float = 0.05, fs: int = RATE) -> float:
    """Share of `window`-long windows in [start, end) louder than floor_db."""
    if isinstance(path_or_x, (str, Path)):
        x, fs = audio.load(path_or_x)
    else:
        x = path_or_x
    lv = levels(x[int(start * fs): int(end * fs)], fs, window)
    return float((lv > floor_db).mean()) if len(lv) else 0.0
