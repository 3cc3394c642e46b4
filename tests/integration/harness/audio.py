"""Test signals (sox, espeak-ng) and their analysis (numpy, scipy, pesq).

All signals are 8 kHz mono signed 16-bit WAV, the format baresip's aufile
source and G.711 want.
"""
from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np

RATE = 8000
FRAME = 160  # 20 ms at 8 kHz

SPEECH_TEXT = (
    "Someone is at the front door. Please open the gate, "
    "I have a parcel for number twelve. Thank you, have a nice day."
)


# sox is run with -D (no dither) so that the signals are the same on every run
def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, timeout=60, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_tone(path: Path, hz: float, seconds: float = 60.0, volume: float = 0.35) -> Path:
    """A sine tone, 8 kHz mono s16 (about -12 dBFS RMS at volume 0.35)."""
    _run(["sox", "-D", "-n", "-r", str(RATE), "-c", "1", "-b", "16", str(path),
          "synth", str(seconds), "sine", str(hz), "vol", str(volume)])
    return path


def make_speech(path: Path, total_seconds: float = 60.0, lead_silence: float = 0.5) -> Path:
    """espeak-ng speech (~8 s), resampled to 8 kHz, normalised to -3 dBFS peak,
    with lead_silence before it and silence after it up to total_seconds
    (baresip 1.0 hangs up when its aufile source ends, so the file must outlast the call)."""
    raw = path.with_suffix(".raw.wav")
    _run(["espeak-ng", "-s", "140", "-w", str(raw), SPEECH_TEXT])
    _run(["sox", "-D", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(path),
          "norm", "-3", "pad", str(lead_silence), "0"])
    dur = float(subprocess.run(["soxi", "-D", str(path)], check=True, capture_output=True,
                               text=True, timeout=30).stdout)
    if dur < total_seconds:
        padded = path.with_suffix(".pad.wav")
        _run(["sox", "-D", str(path), str(padded), "pad", "0", str(total_seconds - dur)])
        padded.replace(path)
    raw.unlink(missing_ok=True)
    return path


def speech_seconds(path: Path, floor_db: float = -40.0) -> float:
    """Length of the active (non-silent) part of a file."""
    x, fs = load(path)
    fr = int(0.02 * fs)
    frames = x[: len(x) // fr * fr].reshape(-1, fr)
    act = np.flatnonzero(np.sqrt((frames ** 2).mean(1)) > 10 ** (floor_db / 20))
    return 0.0 if act.size == 0 else (act[-1] - act[0] + 1) * 0.02


def load(path: Path | str, rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read a WAV (any format soundfile knows) as float64 in [-1, 1], first channel."""
    import soundfile as sf

    x, fs = sf.read(str(path), dtype="float64", always_2d=True)
    x = x[:, 0]
    if rate and fs != rate:
        from scipy.signal import resample_poly

        g = gcd(rate, fs)
        x = resample_poly(x, rate // g, fs // g)
        fs = rate
    return x, fs


def save(path: Path | str, samples: np.ndarray, rate: int = RATE) -> Path:
    import soundfile as sf

    x = np.asarray(samples)
    if x.dtype.kind in "iu":
        x = x.astype(np.float64) / 32768.0
    sf.write(str(path), x, rate, subtype="PCM_16")
    return Path(path)


@dataclass
class ToneReport:
    seconds: float           # length analysed (active part)
    total_seconds: float     # whole signal
    freq_hz: float           # dominant frequency
    rms_dbfs: float          # RMS of the active part
    snr_db: float            # energy within +-10 Hz of the peak vs the rest
    silent_share: float      # share of silent 20 ms frames within the active part (0..1)

    def ok(self, hz: float, tol: float = 0.05, min_dbfs: float = -30.0,
           min_seconds: float = 1.0, min_snr_db: float = 10.0,
           max_silent: float = 0.2) -> bool:
        return not self.problems(hz, tol, min_dbfs, min_seconds, min_snr_db, max_silent)

    def problems(self, hz: float, tol: float = 0.05, min_dbfs: float = -30.0,
                 min_seconds: float = 1.0, min_snr_db: float = 10.0,
                 max_silent: float = 0.2) -> list[str]:
        p = []
        if self.seconds < min_seconds:
            p.append(f"only {self.seconds:.2f}s of signal (< {min_seconds}s)")
        if abs(self.freq_hz - hz) > tol * hz:
            p.append(f"dominant frequency {self.freq_hz:.1f} Hz, expected {hz} Hz +-{tol:.0%}")
        if self.rms_dbfs < min_dbfs:
            p.append(f"level {self.rms_dbfs:.1f} dBFS < {min_dbfs} dBFS")
        if self.snr_db < min_snr_db:
            p.append(f"tone SNR {self.snr_db:.1f} dB < {min_snr_db} dB")
        if self.silent_share > max_silent:
            p.append(f"{self.silent_share:.0%} silent 20 ms frames (> {max_silent:.0%})")
        return p

    def __str__(self) -> str:
        return (f"active={self.seconds:.2f}s/{self.total_seconds:.2f}s peak={self.freq_hz:.1f}Hz "
                f"rms={self.rms_dbfs:.1f}dBFS snr={self.snr_db:.1f}dB "
                f"silent={self.silent_share:.1%}")


def frame_rms(x: np.ndarray, fs: int = RATE, ms: int = 20) -> np.ndarray:
    fr = int(fs * ms / 1000)
    frames = x[: len(x) // fr * fr].reshape(-1, fr)
    return np.sqrt((frames ** 2).mean(1)) if len(frames) else np.zeros(0)


def silent_share(x: np.ndarray, fs: int = RATE, floor_db: float = -40.0) -> float:
    """Share of 20 ms frames whose RMS is below floor_db (whole signal)."""
    r = frame_rms(x, fs)
    return float((r <= 10 ** (floor_db / 20)).mean()) if len(r) else 1.0


def dominant_frequency(x: np.ndarray, fs: int = RATE) -> float:
    if len(x) < 16:
        return 0.0
    w = np.hanning(len(x))
    spec = np.abs(np.fft.rfft(x * w))
    freqs = np.fft.rfftfreq(len(x), 1 / fs)
    k = int(spec[1:].argmax()) + 1
    return float(freqs[k])


def rms_dbfs(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x ** 2)) + 1e-12)) if len(x) else -240.0


def analyze_tone_samples(x: np.ndarray, fs: int = RATE, floor_db: float = -40.0) -> ToneReport:
    """Trim leading/trailing silence (call setup and teardown), then measure."""
    total = len(x) / fs
    fr = int(0.02 * fs)
    frames = x[: len(x) // fr * fr].reshape(-1, fr)
    if len(frames) == 0:
        return ToneReport(0.0, total, 0.0, -240.0, -99.0, 1.0)
    active = np.sqrt((frames ** 2).mean(1)) > 10 ** (floor_db / 20)
    idx = np.flatnonzero(active)
    if idx.size == 0:
        return ToneReport(0.0, total, 0.0, rms_dbfs(x), -99.0, 1.0)
    body = frames[idx[0]: idx[-1] + 1]
    sig = body.reshape(-1)
    silent = float((~active[idx[0]: idx[-1] + 1]).mean())
    w = np.hanning(len(sig))
    spec = np.abs(np.fft.rfft(sig * w)) ** 2
    freqs = np.fft.rfftfreq(len(sig), 1 / fs)
    k = int(spec[1:].argmax()) + 1
    band = (freqs > freqs[k] - 10) & (freqs < freqs[k] + 10)
    snr = 10 * np.log10(spec[band].sum() / max(spec[~band].sum(), 1e-20))
    return ToneReport(len(sig) / fs, total, float(freqs[k]), rms_dbfs(sig), float(snr), silent)


def analyze_tone(path: Path | str) -> ToneReport:
    x, fs = load(path)
    return analyze_tone_samples(x, fs)


def heard(phone, last: float | None = None) -> ToneReport:
    """The tone in a baresip `phone`'s newest recording, or in its last `last`
    seconds (after a park, the part with the new party). baresip completes the
    file shortly after CALL_CLOSED: polled until it holds sound, 5 s at most."""
    end = time.monotonic() + 5
    while True:
        recs = phone.recordings()
        try:
            x, fs = load(recs[-1]) if recs else (None, 0)
        except (RuntimeError, OSError):  # a header not yet written
            x, fs = None, 0
        if x is not None and len(x) >= (last or 1) * fs or time.monotonic() > end:
            break
        time.sleep(0.1)
    if x is None:
        return analyze_tone_samples(np.zeros(0))
    return analyze_tone_samples(x[-int(last * fs):] if last else x, fs)


def align(ref: np.ndarray, deg: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Align deg to ref by cross-correlation; returns (ref, deg, lag_samples) cut to equal length.
    A positive lag means deg is late (network + jitter buffer + call setup)."""
    from scipy.signal import correlate

    c = correlate(deg, ref, mode="full", method="fft")
    lag = int(np.argmax(np.abs(c))) - (len(ref) - 1)
    if lag > 0:
        deg = deg[lag:]
    elif lag < 0:
        ref = ref[-lag:]
    n = min(len(ref), len(deg))
    return ref[:n], deg[:n], lag


@dataclass
class PesqReport:
    mos: float
    lag_ms: float
    seconds: float

    def __str__(self) -> str:
        return f"PESQ-NB={self.mos:.3f} delay={self.lag_ms:.0f}ms compared={self.seconds:.2f}s"


@dataclass
class WarpedDistance:
    db: float
    lag_ms: float
    seconds: float

    def __str__(self) -> str:
        return f"spectral distance={self.db:.2f} dB (time-warped) delay={self.lag_ms:.0f}ms compared={self.seconds:.2f}s"


def _log_spectra(x: np.ndarray, fs: int) -> np.ndarray:
    """Frames x bins of log magnitude (dB), 32 ms windows every 10 ms, ~100-3100 Hz."""
    from scipy.signal import stft

    n, hop = int(0.032 * fs), int(0.010 * fs)
    _, _, z = stft(x, fs=fs, nperseg=n, noverlap=n - hop, boundary=None, padded=False)
    lo, hi = int(100 * n / fs), int(3100 * n / fs)
    return 20 * np.log10(np.abs(z[lo:hi]) + 1e-5).T


def _active_span(r: np.ndarray, fs: int, pad_seconds: float) -> tuple[int, int] | None:
    """The sample range where r has speech (frames above -40 dBFS), widened by
    pad_seconds either side; None when r is silent throughout."""
    act = np.flatnonzero(frame_rms(r, fs) > 10 ** (-40 / 20))
    if act.size == 0:
        return None
    pad = int(pad_seconds * fs)
    return max(0, act[0] * FRAME - pad), min(len(r), (act[-1] + 1) * FRAME + pad)


def warped_distance(ref_path: Path | str, deg_path: Path | str, band_seconds: float = 0.4) -> WarpedDistance:
    """Mean log-spectral distance (dB) between ref's active part and deg, along
    the best dynamic-time-warping path (within +-band_seconds of the
    cross-correlation alignment). Unlike PESQ it does not punish a receiver
    that plays out at a slightly different speed (a jitter buffer that
    accelerates or decelerates: WebRTC NetEq does, by up to a few per cent);
    it still sees a wrong level, noise, band limits, distortion, another codec
    law, missing or different speech. Clean G.711 ~0.5 dB; 1-5 % tempo changes
    ~1.6-1.9 dB; -6 dB level ~3.3; noise, clipping, a-law/u-law mix-ups > 9."""
    ref, fs = load(ref_path, RATE)
    deg, _ = load(deg_path, RATE)
    r, d, lag = align(ref, deg)
    span = _active_span(r, fs, 0.25)
    if span is None:
        raise ValueError("reference has no speech")
    a, b = span
    A, B = _log_spectra(r[a:b], fs), _log_spectra(d[a:b], fs)
    floor = A.max() - 60.0  # below this both count as silence
    A, B = np.maximum(A, floor), np.maximum(B, floor)
    n, m = len(A), len(B)
    band = int(band_seconds * 100)
    cost = np.full((n + 1, m + 1), np.inf)
    cost[0, 0] = 0.0
    for i in range(1, n + 1):
        j0, j1 = max(1, i - band), min(m, i + band)
        step = np.abs(B[j0 - 1:j1] - A[i - 1]).mean(axis=1)
        for k, j in enumerate(range(j0, j1 + 1)):
            cost[i, j] = step[k] + min(cost[i - 1, j], cost[i, j - 1], cost[i - 1, j - 1])
    return WarpedDistance(float(cost[n, m] / n), lag * 1000.0 / fs, (b - a) / fs)


def pesq_nb(ref_path: Path | str, deg_path: Path | str, max_seconds: float | None = None) -> PesqReport:
    """Narrow-band PESQ (P.862) of deg against ref after cross-correlation alignment.
    The comparison is cut to the part where ref has speech (plus 0.5 s either side)."""
    from pesq import pesq

    ref, fs = load(ref_path, RATE)
    deg, _ = load(deg_path, RATE)
    r, d, lag = align(ref, deg)
    # keep the active part of the reference (padding silence would dominate otherwise)
    span = _active_span(r, fs, 0.5)
    if span is not None:
        a, b = span
        r, d = r[a:b], d[a:b]
    if max_seconds:
        r, d = r[: int(max_seconds * fs)], d[: int(max_seconds * fs)]
    mos = float(pesq(fs, r, d, "nb"))
    return PesqReport(mos, lag * 1000.0 / fs, len(r) / fs)
