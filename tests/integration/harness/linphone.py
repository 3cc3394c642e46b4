"""linphonec (Debian's linphone-cli 5.1) as a headless phone driven through stdin.

It auto-answers (-a); with `soundcard use files` it plays a WAV into the call
(`play FILE`) and records what it receives (`record FILE`)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

from . import procs


class Linphone(procs.LogFile):
    def __init__(self, workdir: Path, registry: procs.ProcessRegistry, name: str, *,
                 user: str, password: str, pbx_host: str, pbx_port: int,
                 realm: str = "ha-pbx", transport: str = "udp", register: bool = True,
                 play: Path | None = None, record: Path | None = None):
        if shutil.which("linphonec") is None:
            raise RuntimeError("linphonec is not installed (scripts/install-test-deps.sh)")
        self.name = name
        self.registry = registry
        self.dir = Path(workdir) / f"linphone-{name}"
        (self.dir / ".local" / "share" / "linphone").mkdir(parents=True, exist_ok=True)
        self.sip_port = procs.free_port("sip")
        self.rtp_port = procs.free_port("media", count=4)
        self.user = user
        self.play = play
        self.record = record or (self.dir / "received.wav")
        self.log_path = self.dir / "linphone.log"        # liblinphone's own log (-l)
        self.console_path = self.dir / "console.log"     # linphonec's stdout
        self.rc_path = self.dir / "linphonerc"
        domain = f"{pbx_host}:{pbx_port}"
        # contact= matters: without it linphonec guesses a hostname and, on a machine
        # whose only usable address is loopback, sends nothing ("no channel available")
        rc = f"""[sip]
sip_port={self.sip_port}
sip_tcp_port=0
sip_tls_port=0
default_proxy=0
ipv6_enabled=0
contact=sip:{user}@127.0.0.1
inc_timeout=60
in_call_timeout=0

[rtp]
audio_rtp_port={self.rtp_port}
audio_jitt_comp=60
nortp_timeout=30

[sound]
echocancellation=0

[proxy_0]
reg_proxy=<sip:{domain};transport={transport}>
reg_identity=sip:{user}@{domain}
reg_expires=600
reg_sendregister={1 if register else 0}
publish=0

[auth_info_0]
username={user}
passwd={password}
realm={realm}
domain={domain}

[video]
display=0
capture=0
show_local=0
"""
        # G.711 only, so that the file-mode audio is comparable and any peer can take it
        codecs = [("opus", 48000, 0), ("speex", 16000, 0), ("speex", 8000, 0),
                  ("PCMU", 8000, 1), ("PCMA", 8000, 0), ("GSM", 8000, 0), ("G722", 8000, 0),
                  ("G729", 8000, 0), ("speex", 32000, 0)]
        for i, (mime, rate, on) in enumerate(codecs):
            rc += f"\n[audio_codec_{i}]\nmime={mime}\nrate={rate}\nchannels=1\nenabled={on}\n"
        self.rc_path.write_text(rc)
        self.proc: subprocess.Popen | None = None
        self._out: list[str] = []
        self._lock = threading.Lock()

    def start(self) -> "Linphone":
        env = dict(os.environ, HOME=str(self.dir))
        self.proc = self.registry.popen(
            ["linphonec", "-c", str(self.rc_path), "-a", "-d", "5", "-l", str(self.log_path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=str(self.dir), env=env)
        t = threading.Thread(target=self._reader, daemon=True)
        t.start()
        return self

    def _reader(self) -> None:
        assert self.proc and self.proc.stdout
        with open(self.console_path, "ab") as f:
            for line in iter(self.proc.stdout.readline, b""):
                f.write(line)
                f.flush()
                with self._lock:
                    self._out.append(line.decode("utf-8", "replace"))

    def console(self) -> str:
        with self._lock:
            return "".join(self._out)

    def send(self, cmd: str) -> None:
        assert self.proc and self.proc.stdin
        try:
            self.proc.stdin.write((cmd + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def wait_console(self, pattern: str, timeout: float, poll_cmd: str | None = None,
                     since: int = 0) -> re.Match:
        end = time.monotonic() + timeout
        nxt = 0.0
        while time.monotonic() < end:
            if poll_cmd and time.monotonic() >= nxt:
                self.send(poll_cmd)
                nxt = time.monotonic() + 0.5
            m = re.search(pattern, self.console()[since:], re.M)
            if m:
                return m
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise TimeoutError(f"linphonec {self.name}: no /{pattern}/ within {timeout}s\n"
                           f"--- console ---\n{self.console()[-3000:]}\n"
                           f"--- log ---\n{procs.tail(self.log_path, 40)}")

    def wait_registered(self, timeout: float = 15.0) -> None:
        self.wait_console(r"^(?:linphonec> )?registered, identity=", timeout,
                          poll_cmd="status register")

    def use_files(self) -> None:
        """File sound card: play self.play into calls, record received audio to self.record."""
        self.send("soundcard use files")
        if self.play:
            self.send(f"play {self.play}")
        self.send(f"record {self.record}")

    def call(self, uri: str) -> None:
        self.send(f"call {uri}")

    def wait_connected(self, timeout: float = 15.0) -> None:
        # linphonec prints "Call N with <sip:...> connected." (or "Connected.")
        self.wait_console(r"(?i)connected\.", timeout)

    def terminate_all(self) -> None:
        self.send("terminate all")

    def log_tail(self, lines: int | None = None) -> str:
        return self.console()[-3000:] + "\n--- liblinphone log ---\n" + super().log_tail(lines)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.send("terminate all")
            self.send("quit")
            try:
                self.proc.wait(timeout=4)
            except subprocess.TimeoutExpired:
                pass
        procs.ProcessRegistry.terminate(self.proc, grace=2.0)
