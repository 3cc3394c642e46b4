"""baresip 1.0 as a headless SIP phone: plays a WAV (aufile), records what it
receives (sndfile: *-dec.wav), is driven through ctrl_tcp (netstring JSON).
With video=True it is a video doorbell: fakevideo's test picture in VP8."""
from __future__ import annotations

import json
import re
import shutil
import socket
import threading
import time
from pathlib import Path

from . import procs

MODULE_PATH = "/usr/lib/baresip/modules"


class BaresipCtrl:
    """A persistent ctrl_tcp connection: commands with responses, events collected."""

    def __init__(self, port: int, timeout: float = 10.0):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.settimeout(0.2)
        self.events: list[dict] = []
        self.responses: dict[str, dict] = {}
        self._buf = b""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._n = 0
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                d = self.sock.recv(65536)
                if not d:
                    return
                self._buf += d
            except socket.timeout:
                continue
            except OSError:
                return
            while True:
                m = re.match(rb"(\d+):", self._buf)
                if not m:
                    break
                n = int(m.group(1))
                start = m.end()
                if len(self._buf) < start + n + 1:
                    break
                payload = self._buf[start: start + n]
                self._buf = self._buf[start + n + 1:]
                try:
                    obj = json.loads(payload)
                except ValueError:
                    continue
                with self._lock:
                    if obj.get("event"):
                        self.events.append(obj)
                    elif obj.get("response"):
                        self.responses[obj.get("token", "")] = obj

    def command(self, cmd: str, params: str = "", timeout: float = 5.0) -> dict:
        self._n += 1
        token = f"t{self._n}"
        body = json.dumps({"command": cmd, "params": params, "token": token}).encode()
        self.sock.sendall(str(len(body)).encode() + b":" + body + b",")
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if token in self.responses:
                    return self.responses.pop(token)
            time.sleep(0.02)
        raise TimeoutError(f"baresip ctrl: no response to {cmd!r} within {timeout}s")

    def event_types(self) -> list[str]:
        with self._lock:
            return [e.get("type", "") for e in self.events]

    def wait_event(self, etype: str, timeout: float, since: int = 0) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                for e in self.events[since:]:
                    if e.get("type") == etype:
                        return e
            time.sleep(0.05)
        raise TimeoutError(f"baresip: no {etype} event within {timeout}s "
                           f"(events: {self.event_types()})")

    def close(self) -> None:
        self._stop.set()
        try:
            self.sock.close()
        except OSError:
            pass
        self._t.join(timeout=1)


class Baresip(procs.LogFile):
    """One baresip process with its own config dir, SIP port (and port+1, which
    baresip takes for TLS), RTP range, ctrl port and recording dir."""

    def __init__(self, workdir: Path, registry: procs.ProcessRegistry, name: str, *,
                 user: str, domain: str, password: str | None = None,
                 transport: str = "udp", source: Path, cafile: Path | None = None,
                 answermode: str = "auto", regint: int = 600, register: bool = True,
                 outbound: str | None = None, video: bool = False, audio_codecs: str = "pcmu",
                 mediaenc: str | None = None):
        if shutil.which("baresip") is None:
            raise RuntimeError("baresip is not installed (scripts/install-test-deps.sh)")
        self.name = name
        self.registry = registry
        self.dir = Path(workdir) / f"baresip-{name}"
        self.rec = self.dir / "rec"
        self.rec.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "baresip.log"
        self.sip_port = procs.free_port("sip", count=2)  # UDP/TCP on p, TLS on p+1
        self.ctrl_port = procs.free_port("sip")
        # baresip (libre's rtp_listen) takes a random port in the range and clears its low
        # bit, so an odd first port lets RTP land one below the range: an even first port
        # keeps RTP and RTCP (port + 1) inside rtp_lo..rtp_lo + 19, which tests sniff.
        base = procs.free_port("media", count=21)
        self.rtp_lo = base + (base & 1)
        self.user, self.domain, self.transport = user, domain, transport
        # audio_codecs: baresip's names, e.g. "pcmu", "opus/48000/2" (a device with Opus alone).
        params = [f"answermode={answermode}", f"audio_codecs={audio_codecs}"]
        if video:
            params.append("video_codecs=vp8")
        if password is not None:
            params.insert(0, f"auth_pass={password}")
        params.append(f"regint={regint if register else 0}")
        if outbound:
            params.append(f"outbound=\"{outbound}\"")
        # e.g. "srtp-mand": SDES-SRTP only (baresip's srtp module, RFC 4568)
        if mediaenc:
            params.append(f"mediaenc={mediaenc}")
        self.aor = f"sip:{user}@{domain}"
        self.account = f"<sip:{user}@{domain};transport={transport}>;" + ";".join(params)
        cfg = {
            "poll_method": "epoll",
            "sip_listen": f"127.0.0.1:{self.sip_port}",
            "net_interface": "127.0.0.1",
            "call_local_timeout": "120",
            "call_max_calls": "4",
            "audio_player": "alsa,null",
            "audio_alert": "alsa,null",
            "audio_source": f"aufile,{source}",
            "ausrc_srate": "8000",
            "auplay_srate": "8000",
            "ausrc_channels": "1",
            "auplay_channels": "1",
            "rtp_ports": f"{self.rtp_lo}-{self.rtp_lo + 19}",
            "rtcp_mux": "no",
            "jitter_buffer_delay": "5-10",
            "rtp_stats": "yes",
            "module_path": MODULE_PATH,
            "ctrl_tcp_listen": f"127.0.0.1:{self.ctrl_port}",
            "snd_path": str(self.rec),
            "statmode_default": "off",
        }
        if cafile:
            cfg["sip_cafile"] = str(cafile)
        if video:
            # fakevideo is both the camera and the (discarding) display.
            cfg.update({"video_source": "fakevideo,nil", "video_display": "fakevideo,nil",
                        "video_size": "320x240", "video_bitrate": "300000", "video_fps": "15"})
        lines = [f"{k}\t\t{v}" for k, v in cfg.items()]
        codec_modules = ("g711.so",) + (("opus.so",) if "opus" in audio_codecs else ())
        extra = (("vp8.so", "fakevideo.so") if video else ()) + (("srtp.so",) if mediaenc else ())
        for m in codec_modules + ("aufile.so", "alsa.so", "sndfile.so") + extra:
            lines.append(f"module\t\t{m}")
        for m in ("uuid.so", "account.so"):
            lines.append(f"module_tmp\t\t{m}")
        for m in ("menu.so", "ctrl_tcp.so"):
            lines.append(f"module_app\t\t{m}")
        (self.dir / "config").write_text("\n".join(lines) + "\n")
        (self.dir / "accounts").write_text(self.account + "\n")
        self.proc = None
        self.ctrl: BaresipCtrl | None = None

    @property
    def contact_hint(self) -> str:
        return f"127.0.0.1:{self.sip_port}"

    def start(self, timeout: float = 10.0) -> "Baresip":
        # -s: SIP trace in the log (used to check SDP); -t: a hard upper bound on its life
        self.proc = self.registry.popen(["baresip", "-f", str(self.dir), "-s", "-t", "600"],
                                        log=self.log_path, cwd=str(self.dir))
        end = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"baresip {self.name} exited ({self.proc.returncode}):\n"
                                   f"{self.log_tail()}")
            try:
                self.ctrl = BaresipCtrl(self.ctrl_port)
                break
            except OSError:
                if time.monotonic() > end:
                    raise RuntimeError(f"baresip {self.name}: ctrl_tcp not up\n{self.log_tail()}")
                time.sleep(0.1)
        return self

    def registered(self) -> bool:
        # baresip prints e.g. "101@127.0.0.1: {0/UDP/v4} 200 OK () [1 binding]"
        return bool(re.search(r"\{\d+/\w+/v4\} 200 OK", self.log_text()))

    def wait_registered(self, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.registered():
                return
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        errors = re.findall(r"(?m)^.*reg: .*$", self.log_text())
        why = "; ".join(e.replace("\x1b[31m", "").strip() for e in errors[-3:]) or "no reg: error line"
        raise TimeoutError(f"baresip {self.name} did not register within {timeout}s ({why})\n"
                           f"{self.log_tail(80)}")

    def dial(self, uri: str) -> dict:
        assert self.ctrl
        return self.ctrl.command("dial", uri)

    def hangup(self) -> None:
        if self.ctrl:
            try:
                self.ctrl.command("hangup", timeout=3)
            except (TimeoutError, OSError):
                pass

    def listcalls(self) -> str:
        assert self.ctrl
        return self.ctrl.command("listcalls").get("data", "")

    def wait_established(self, timeout: float = 15.0) -> dict:
        assert self.ctrl
        return self.ctrl.wait_event("CALL_ESTABLISHED", timeout)

    def wait_closed(self, timeout: float = 10.0) -> dict:
        assert self.ctrl
        return self.ctrl.wait_event("CALL_CLOSED", timeout)

    def rtp_sources(self) -> list[tuple[str, int]]:
        """Where incoming RTP came from ("stream: incoming rtp for 'audio' established,
        receiving from IP:PORT")."""
        return [(ip, int(p)) for ip, p in
                re.findall(r"incoming rtp for 'audio' established, receiving from ([\d.]+):(\d+)",
                           self.log_text())]

    def sdp_media(self) -> list[dict]:
        """Every SDP in the SIP trace: {src, dst, c, port} with src/dst as "ip:port"
        (messages baresip received have the PBX's address as src)."""
        out = []
        text = self.log_text()
        # trace blocks start with "UDP|TCP|TLS a:p -> b:p" and end with an ANSI reset
        for m in re.finditer(r"(?m)^(?:UDP|TCP|TLS) ([\d.]+:\d+) -> ([\d.]+:\d+)\n(.*?)(?=^\x1b|\Z)",
                             text, re.S):
            block = m.group(3)
            c = re.search(r"(?m)^c=IN IP4 ([\d.]+)", block)
            mm = re.search(r"(?m)^m=audio (\d+)", block)
            if c and mm:
                out.append({"src": m.group(1), "dst": m.group(2), "c": c.group(1),
                            "port": int(mm.group(1)), "start": block.split("\n", 1)[0]})
        return out

    def received_sdp(self, from_port: int) -> list[dict]:
        return [d for d in self.sdp_media() if d["src"].endswith(f":{from_port}")]

    def recordings(self, kind: str = "dec") -> list[Path]:
        return sorted(self.rec.glob(f"*-{kind}.wav"), key=lambda p: p.stat().st_mtime)

    def clear_recordings(self) -> None:
        for p in self.rec.glob("*.wav"):
            p.unlink()

    def stop(self) -> None:
        if self.ctrl:
            self.ctrl.close()
            self.ctrl = None
        if self.proc is not None:
            procs.ProcessRegistry.terminate(self.proc, grace=3.0)
