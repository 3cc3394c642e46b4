"""Process bookkeeping: every peer is started in its own process group and is
killed at teardown, whatever the test's outcome. Also free-port allocation."""
from __future__ import annotations

import gc
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
import weakref
from pathlib import Path

# Port bands (all below the Linux ephemeral range 32768-60999, so sockets bound to
# port 0 by the tests never collide with them):
#   10000-14999  SIP/HTTP/control ports of the PBX and the peers
#   15000-19999  media ports of the peers (baresip, sipp, linphone)
#   28000-31999  RTP ranges handed to the PBX (rtp.ports)
# 20000-27999 is left alone: the PBX's default RTP range and developers' load tests
# live there. Each port is checked free (bind on 0.0.0.0, UDP and TCP) before use;
# a full band falls back to any free ports in 10000-32767.
_lock = threading.Lock()
_limits = {"sip": (10000, 15000), "media": (15000, 20000), "rtp": (28000, 32000),
           "any": (10000, 32700)}
_next = {k: random.randrange(lo, hi - 500, 2) for k, (lo, hi) in _limits.items()}
_reserved: set[int] = set()  # handed out in this run: never handed out twice


def _free(port: int, host: str = "127.0.0.1", udp: bool = True, tcp: bool = True) -> bool:
    socks = []
    try:
        if udp:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(s)
            s.bind((host, port))
        if tcp:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def free_port(band: str = "sip", count: int = 1, step: int = 1, host: str = "0.0.0.0") -> int:
    """First port of `count` consecutive free ports (UDP and TCP) in a band.
    Bound on 0.0.0.0 by default so that a port free on every 127.x address is chosen."""
    with _lock:
        for b in (band, "any"):
            lo, hi = _limits[b]
            for _ in range((hi - lo) // max(count * step, 1)):
                p = _next[b]
                if p + count * step >= hi:
                    p = lo
                _next[b] = p + count * step
                ports = [p + i * step for i in range(count)]
                if not _reserved.intersection(ports) and all(_free(q, host) for q in ports):
                    _reserved.update(ports)
                    return p
    raise RuntimeError(f"no {count} free consecutive ports in band {band}")


# RTP ranges handed out for an owner (a PBX object): (first port, size, weak reference).
_rtp_owned: list[tuple[int, int, weakref.ref]] = []


def rtp_range(size: int = 100, owner: object | None = None) -> tuple[int, int]:
    """An even-aligned, wholly free port range for the PBX's rtp.ports, never
    handed out before in this run. When every band has been used once (a whole
    suite starts more PBXes than the bands hold), the range of an `owner` that
    no longer exists (a finished test's PBX object, so no test can restart it)
    is handed out again, oldest first."""
    with _lock:
        got = _fresh_rtp_range(size)
    if got is None:
        gc.collect()  # a finished PBX object may sit in a reference cycle
        with _lock:
            got = _released_rtp_range(size)
    if got is None:
        raise RuntimeError("no free RTP range")
    if owner is not None:
        with _lock:
            _rtp_owned.append((got[0], size, weakref.ref(owner)))
    return got


def _fresh_rtp_range(size: int) -> tuple[int, int] | None:
    for b in ("rtp", "any"):
        lo, hi = _limits[b]
        for _ in range((hi - lo) // size):
            p = _next[b] & ~1
            if p + size >= hi:
                p = lo
            _next[b] = p + size
            ports = range(p, p + size)
            if not _reserved.intersection(ports) and all(_free(q, "0.0.0.0", tcp=False) for q in ports):
                _reserved.update(ports)
                return p, p + size - 1
    return None


def _released_rtp_range(size: int) -> tuple[int, int] | None:
    for i, (p, n, owner) in enumerate(_rtp_owned):
        if n >= size and owner() is None and all(_free(q, "0.0.0.0", tcp=False) for q in range(p, p + size)):
            del _rtp_owned[i]
            return p, p + size - 1
    return None


class ProcessRegistry:
    """Keeps every child started for a test; kill_all() ends them (SIGTERM, then SIGKILL)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def popen(self, cmd: list[str], log: Path | None = None, **kw) -> subprocess.Popen:
        if log is not None:
            f = open(log, "ab", buffering=0)
            kw.setdefault("stdout", f)
            kw.setdefault("stderr", subprocess.STDOUT)
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(cmd, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    @staticmethod
    def terminate(p: subprocess.Popen, grace: float = 5.0, sig: int = signal.SIGTERM) -> int | None:
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        else:
            # the leader is gone; members of its group may not be
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        return p.returncode

    def kill_all(self) -> None:
        for p in reversed(self.procs):
            self.terminate(p, grace=3.0)
        self.procs.clear()


def wait_until(pred, timeout: float, interval: float = 0.05, what: str = "condition"):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def port_bound_udp(port: int, host: str = "127.0.0.1") -> bool:
    return not _free(port, host, udp=True, tcp=False)


class LogFile:
    """log_text() and log_tail() of a process whose output goes to the file
    `self.log_path` (the dumper fixture prints log_tail() when a test fails).
    `log_tail_lines` is the default tail; a peer with more to show extends log_tail."""
    log_path: Path
    log_tail_lines = 60

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int | None = None) -> str:
        return tail(self.log_path, self.log_tail_lines if lines is None else lines)


def tail(path: Path, lines: int = 60) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    txt = re.sub(r"\x1b\[[0-9;]*m", "", data.decode("utf-8", "replace")).splitlines()
    return "\n".join(txt[-lines:])
