"""Runs ha-pbx in add-on mode for the tests: an options.json in a data folder
(as the Supervisor writes /data/options.json), the environment the add-on
container would give (SUPERVISOR_TOKEN) and the test overrides
(HA_PBX_OPTIONS, HA_PBX_SUPERVISOR_URL, HA_PBX_INGRESS_ALLOW, HA_PBX_ADDON_BIND)."""
from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from . import procs
from . import sip as siplib
from .pbx import pbx_binary

REPO = Path(__file__).resolve().parents[3]


def default_options() -> dict:
    """What the Supervisor writes to options.json for config.yaml's defaults."""
    import yaml  # tests/integration/requirements.txt

    return dict(yaml.safe_load((REPO / "config.yaml").read_text())["options"])


def http_get(host: str, port: int, path: str, source: str | None = None,
             timeout: float = 5.0, headers: dict | None = None) -> tuple[int, bytes]:
    """GET from a chosen source address (127.0.0.x), to play the ingress proxy or a LAN client."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def http_request(host: str, port: int, method: str, path: str, source: str | None = None,
                 headers: dict | None = None, body: bytes | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    """Any method from a chosen source address (the ingress proxy's, in the tests)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


class AddonPbx(procs.LogFile):
    """One ha-pbx in add-on mode. `binary` defaults to the harness's (HA_PBX_BIN)."""
    log_tail_lines = 80

    def __init__(self, workdir: Path, registry: procs.ProcessRegistry, *, options: dict | None = None,
                 supervisor_url: str | None = None, token: str | None = None,
                 ingress_allow: str = "127.0.0.1", bind: str = "127.0.0.1",
                 addon_flag: bool = False, binary: Path | None = None, log_level: str = "debug"):
        self.dir = Path(workdir)
        self.data = self.dir / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.registry = registry
        self.bind = bind
        self.sip_port = procs.free_port("sip")
        self.tls_port = procs.free_port("sip")
        self.rtp_lo, self.rtp_hi = procs.rtp_range(100, owner=self)
        self.options = default_options()
        self.options.update({"sip_udp_port": self.sip_port, "sip_tcp_port": self.sip_port,
                             "sip_tls_port": self.tls_port, "rtp_port_min": self.rtp_lo,
                             "rtp_port_max": self.rtp_hi, "log_level": log_level})
        if options:
            self.options.update(options)
        self.supervisor_url = supervisor_url
        self.token = token
        self.ingress_allow = ingress_allow
        self.addon_flag = addon_flag
        self.binary = Path(binary) if binary else pbx_binary()
        self.options_path = self.data / "options.json"
        self.log_path = self.dir / "ha-pbx.log"
        self.proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        """Where phones reach SIP (the bind address; the tests' advertised address too)."""
        return self.bind

    @property
    def passwords(self) -> dict[str, str]:
        return {e["extension"]: e["password"] for e in self.options.get("extensions") or []}

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items()
               if k not in ("SUPERVISOR_TOKEN", "HA_PBX_SUPERVISOR_URL", "HA_PBX_LOG")}
        env.update({"HA_PBX_OPTIONS": str(self.options_path), "HA_PBX_INGRESS_ALLOW": self.ingress_allow,
                    "HA_PBX_ADDON_BIND": self.bind, "RUST_BACKTRACE": "1"})
        if self.token is not None:
            env["SUPERVISOR_TOKEN"] = self.token
        if self.supervisor_url is not None:
            env["HA_PBX_SUPERVISOR_URL"] = self.supervisor_url
        return env

    def launch(self) -> subprocess.Popen:
        if not self.binary.exists():
            raise RuntimeError(f"ha-pbx binary not found at {self.binary} (cargo build --release)")
        self.options_path.write_text(json.dumps(self.options, indent=2))
        cmd = [str(self.binary)] + (["--addon"] if self.addon_flag else [])
        self.log_start = len(self.log_text())  # the log file is appended to: a relaunch waits on its own lines
        self.started_at = time.monotonic()
        self.launched_unix = time.time()
        self.proc = self.registry.popen(cmd, log=self.log_path, cwd=str(self.dir), env=self.env())
        return self.proc

    def wait_log(self, needle: str, timeout: float = 15.0) -> str:
        def seen():
            if needle in self.log_text()[getattr(self, "log_start", 0):]:
                return True
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"ha-pbx exited with {self.proc.returncode} before logging {needle!r}:\n"
                                   f"{self.log_tail()}")
            return False
        procs.wait_until(seen, timeout, interval=0.05, what=f"{needle!r} in the ha-pbx log")
        return self.log_text()

    def wait_ready(self, timeout: float = 15.0) -> float:
        """Until the PBX logs that it is ready; returns seconds since launch."""
        self.wait_log(" ready", timeout)
        return time.monotonic() - self.started_at

    def get(self, port: int, path: str, source: str | None = None,
            headers: dict | None = None) -> tuple[int, bytes]:
        return http_get(self.bind, port, path, source=source, headers=headers)

    def register(self, user: str, password: str) -> int:
        """REGISTER over UDP with digest; the final status."""
        with siplib.SipClient(self.bind, self.sip_port) as c:
            r = c.register(user, password, expires=300)
            assert r is not None, f"no answer to REGISTER {user}"
            return r.status

    def stop(self, grace: float = 5.0) -> int | None:
        if self.proc is None:
            return None
        return procs.ProcessRegistry.terminate(self.proc, grace=grace, sig=signal.SIGTERM)
