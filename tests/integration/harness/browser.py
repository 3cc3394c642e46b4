"""A headless Chromium tab running JsSIP (the SIP Core card's SIP stack),
driven through tests/integration/webrtc/driver.mjs: JSON commands on stdin,
JSON replies and page events on stdout. Needs `scripts/install-test-deps.sh`
(chromium, npm packages). Run it in a loopback-only network namespace: see
test_webrtc.py."""
from __future__ import annotations

import base64
import json
import queue
import subprocess
import threading
import time
from pathlib import Path

from . import procs

WEBRTC_DIR = Path(__file__).resolve().parents[1] / "webrtc"


class BrowserPhone(procs.LogFile):
    log_tail_lines = 40

    def __init__(self, workdir: Path, registry: procs.ProcessRegistry, name: str, source_wav: Path):
        self.name = name
        self.dir = Path(workdir) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "driver.log"
        self.proc = registry.popen(["node", str(WEBRTC_DIR / "driver.mjs"), "--wav", str(source_wav)],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=open(self.log_path, "ab"), cwd=str(WEBRTC_DIR))
        self.events: list[dict] = []
        self._replies: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_event("ready", 30)

    def _read(self) -> None:
        assert self.proc.stdout
        with open(self.dir / "events.jsonl", "a") as log:
            for raw in self.proc.stdout:
                log.write(raw.decode(errors="replace"))
                log.flush()
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue
                if "reply" in msg:
                    self._replies.put(msg)
                else:
                    with self._lock:
                        self.events.append(msg)

    def command(self, cmd: str, timeout: float = 30.0, **kw) -> dict:
        assert self.proc.stdin
        self.proc.stdin.write((json.dumps({"cmd": cmd, **kw}) + "\n").encode())
        self.proc.stdin.flush()
        try:
            reply = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"browser {self.name}: no reply to {cmd} within {timeout}s\n{self.log_tail()}")
        if not reply.get("ok"):
            raise RuntimeError(f"browser {self.name}: {cmd} failed: {reply.get('error')}")
        return reply

    def has_event(self, name: str) -> bool:
        with self._lock:
            return any(e.get("event") == name for e in self.events)

    def mark(self) -> int:
        """Index to pass as `since`, to wait only for events after now."""
        with self._lock:
            return len(self.events)

    def wait_event(self, name: str, timeout: float, since: int = 0) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                for e in self.events[since:]:
                    if e.get("event") == name:
                        return e
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise TimeoutError(f"browser {self.name}: no '{name}' event within {timeout}s; "
                           f"events: {[e.get('event') for e in self.events]}\n{self.log_tail()}")

    def register(self, ws_url: str, ext: str, host: str, password: str, timeout: float = 15.0,
                 strip_candidates: bool = False, opus_only: bool = False, video: bool = False,
                 tap_received: bool = False) -> None:
        self.command("start", wsUrl=ws_url, uri=f"sip:{ext}@{host}", password=password,
                     stripCandidates=strip_candidates, opusOnly=opus_only, video=video, tapReceived=tap_received)
        self.wait_event("registered", timeout)

    def record(self, seconds: float) -> Path:
        out = self.dir / f"received-{len(list(self.dir.glob('received-*.wav')))}.wav"
        self.command("record", timeout=seconds + 30, ms=int(seconds * 1000), out=str(out))
        return out

    def start_payload_tap(self) -> None:
        """Start keeping the audio RTP payloads the page receives, before its
        jitter buffer (needs register(..., tap_received=True))."""
        self.command("tap-start")

    def take_payloads(self) -> list[tuple[int, int, bytes]]:
        """What arrived since start_payload_tap: (rtp timestamp, payload type, bytes)."""
        out = self.dir / f"payloads-{len(list(self.dir.glob('payloads-*.json')))}.json"
        self.command("tap-take", timeout=60, out=str(out))
        return [(ts, pt, base64.b64decode(b64)) for ts, pt, b64 in json.loads(out.read_text())]

    def video_stats(self) -> dict | None:
        """getStats inbound-rtp of kind video: framesDecoded, keyFramesDecoded, pliCount..."""
        return self.command("videostats")["stats"]

    def log_tail(self, lines: int | None = None) -> str:
        lines = self.log_tail_lines if lines is None else lines
        return super().log_tail(lines) + "\n" + procs.tail(self.dir / "events.jsonl", lines)

    def quit(self) -> None:
        if self.proc.poll() is None:
            try:
                self.command("quit", timeout=10)
            except Exception:
                pass
            procs.ProcessRegistry.terminate(self.proc, grace=3)


class PanelBrowser(BrowserPhone):
    """A headless Chromium tab on ha-pbx's own panel, driven by
    webrtc/panel-driver.mjs (same JSON protocol as BrowserPhone's driver)."""

    def __init__(self, workdir: Path, registry: procs.ProcessRegistry, name: str = "panel",
                 source_wav: Path | None = None):
        """source_wav: what the page's (fake) microphone plays, for the Phone page's calls."""
        self.name = name
        self.dir = Path(workdir) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "driver.log"
        wav = ["--wav", str(source_wav)] if source_wav else []
        self.proc = registry.popen(["node", str(WEBRTC_DIR / "panel-driver.mjs"), *wav],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=open(self.log_path, "ab"), cwd=str(WEBRTC_DIR))
        self.events = []
        self._replies = queue.Queue()
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_event("ready", 30)
