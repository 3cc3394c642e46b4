"""Starts and stops the ha-pbx binary with a config written for the test."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from . import procs

REPO = Path(__file__).resolve().parents[3]
DEFAULT_BIN = REPO / "target" / "release" / "ha-pbx"

DEFAULT_EXTENSIONS = [
    {"extension": "101", "password": "secret101", "name": "Front door"},
    {"extension": "102", "password": "secret102", "name": "Kitchen"},
    {"extension": "103", "password": "secret103", "name": "Garage"},
    {"extension": "104", "password": "secret104", "name": "Office"},
]


def pbx_binary() -> Path:
    return Path(os.environ.get("HA_PBX_BIN", str(DEFAULT_BIN)))


def api_request(base: str, method: str, path: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    """One call of ha-pbx's HTTP API (JSON in and out, `Authorization: Bearer
    token`): (status, the answer's JSON, {} when it has none)."""
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def to_yaml(obj: Any, indent: int = 0) -> str:
    """Block-style YAML; scalars are written as JSON (a YAML subset), so strings
    such as "101" stay strings."""
    pad = "  " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{k}:")
                out.append(to_yaml(v, indent + 1))
            else:
                out.append(f"{pad}{k}: {_scalar(v)}")
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, dict) and v:
                inner = to_yaml(v, indent + 1).splitlines()
                out.append(f"{pad}- {inner[0].strip()}")
                out.extend(inner[1:])
            elif isinstance(v, list) and v:
                out.append(f"{pad}-")
                out.append(to_yaml(v, indent + 1))
            else:
                out.append(f"{pad}- {_scalar(v)}")
    else:
        out.append(pad + _scalar(obj))
    return "\n".join(out)


def _scalar(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, dict):
        return "{}"
    if isinstance(v, list):
        return "[]"
    return json.dumps(str(v))


def _merge(base: dict, over: dict) -> dict:
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
    return base


class Pbx(procs.LogFile):
    """One ha-pbx process. Ports are chosen free at construction; the data_dir
    (and so registrations) survives restart()."""
    log_tail_lines = 80

    def __init__(self, workdir: Path, registry: procs.ProcessRegistry, *,
                 tls: bool = False, tls_files: tuple[Path, Path] | None = None,
                 extensions: list[dict] | None = None, overrides: dict | None = None,
                 host: str = "127.0.0.1", binary: Path | None = None, launcher: list[str] | None = None):
        """binary: the ha-pbx to run (default pbx_binary()); launcher: a command it is
        run under, e.g. ["qemu-aarch64"] for a cross-built binary."""
        self.dir = Path(workdir)
        self.binary = Path(binary) if binary else None
        self.launcher = list(launcher or [])
        self.dir.mkdir(parents=True, exist_ok=True)
        self.registry = registry
        self.host = host
        self.sip_port = procs.free_port("sip")
        self.tls_port = procs.free_port("sip") if tls else None
        self.http_port = procs.free_port("sip")
        self.rtp_lo, self.rtp_hi = procs.rtp_range(100, owner=self)
        self.extensions = extensions if extensions is not None else [dict(e) for e in DEFAULT_EXTENSIONS]
        self.passwords = {e["extension"]: e["password"] for e in self.extensions}
        listen = [f"udp://{host}:{self.sip_port}", f"tcp://{host}:{self.sip_port}"]
        if tls:
            listen.append(f"tls://{host}:{self.tls_port}")
        self.config: dict[str, Any] = {
            "data_dir": "./data",
            "log_level": "debug",
            "sip": {
                "listen": listen,
                "realm": "ha-pbx",
                "ring_timeout_secs": 60,
            },
            "rtp": {"ports": f"{self.rtp_lo}-{self.rtp_hi}", "address": host,
                    "media_timeout_secs": 60},
            "http": {"listen": f"{host}:{self.http_port}"},
            "security": {"ban_after_failures": 10, "ban_window_secs": 60, "ban_secs": 300},
            "extensions": self.extensions,
        }
        if tls_files:
            self.config["sip"]["tls"] = {"cert": str(tls_files[0]), "key": str(tls_files[1])}
        self._tls_files = tls_files
        if overrides:
            _merge(self.config, overrides)
        self.config_path = self.dir / "ha-pbx.yaml"
        self.log_path = self.dir / "ha-pbx.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    # ------------------------------------------------------------ addresses
    @property
    def data_dir(self) -> Path:
        return (self.dir / self.config["data_dir"]).resolve()

    @property
    def cert_path(self) -> Path:
        """The certificate a TLS client should trust."""
        if self._tls_files:
            return Path(self._tls_files[0])
        return self.data_dir / "tls" / "cert.pem"

    @property
    def http_base(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def uri(self, user: str, transport: str | None = None) -> str:
        port = self.tls_port if transport == "tls" else self.sip_port
        t = f";transport={transport}" if transport else ""
        return f"sip:{user}@{self.host}:{port}{t}"

    def in_rtp_range(self, port: int) -> bool:
        return self.rtp_lo <= port <= self.rtp_hi

    # ------------------------------------------------------------ lifecycle
    def write_config(self) -> None:
        self.config_path.write_text(to_yaml(self.config) + "\n")

    def start(self, timeout: float = 15.0) -> "Pbx":
        binary = self.binary or pbx_binary()
        if not binary.exists():
            raise RuntimeError(f"ha-pbx binary not found at {binary} "
                               "(cargo build --release --bin ha-pbx, or set HA_PBX_BIN)")
        self.write_config()
        self.starts += 1
        with open(self.log_path, "ab") as f:
            f.write(f"\n===== start #{self.starts} {time.strftime('%H:%M:%S')} =====\n".encode())
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        self.proc = self.registry.popen([*self.launcher, str(binary), "--config", str(self.config_path)],
                                        log=self.log_path, cwd=str(self.dir), env=env)
        self.wait_healthy(timeout)
        return self

    def health(self) -> int | None:
        try:
            with urllib.request.urlopen(self.http_base + "/health", timeout=1) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except (OSError, ValueError):
            return None

    def wait_healthy(self, timeout: float = 15.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"ha-pbx exited with {self.proc.returncode} during start-up\n"
                                   f"--- config ---\n{self.config_path.read_text()}"
                                   f"--- log tail ---\n{self.log_tail()}")
            if self.health() == 200:
                return
            time.sleep(0.1)
        raise RuntimeError(f"ha-pbx: GET {self.http_base}/health did not answer 200 within "
                           f"{timeout}s\n--- log tail ---\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 5.0) -> int | None:
        if self.proc is None:
            return None
        rc = procs.ProcessRegistry.terminate(self.proc, grace=grace, sig=signal.SIGTERM)
        return rc

    def restart(self, timeout: float = 15.0) -> "Pbx":
        self.stop()
        return self.start(timeout)
