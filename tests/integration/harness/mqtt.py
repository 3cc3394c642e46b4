"""Mosquitto for the MQTT tests: a broker on a free loopback port, a recorder
(mosquitto_sub writing every message with its arrival time) and a publisher
(mosquitto_pub). Debian's mosquitto and mosquitto-clients, installed by
scripts/install-test-deps.sh."""
from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import procs


def require_mosquitto() -> None:
    for tool in ("mosquitto", "mosquitto_sub", "mosquitto_pub"):
        if shutil.which(tool) is None and not Path("/usr/sbin/mosquitto").exists():
            raise RuntimeError(f"{tool} is not installed (bash scripts/install-test-deps.sh)")


def _mosquitto_bin() -> str:
    return shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class Mosquitto(procs.LogFile):
    """One broker. `persistent`: it saves sessions and queued messages on
    SIGTERM and restores them when started again (for restart tests)."""

    def __init__(self, workdir: Path, registry: procs.ProcessRegistry, *, persistent: bool = False):
        require_mosquitto()
        self.dir = Path(workdir) / "mosquitto"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.registry = registry
        self.port = procs.free_port("sip")
        self.log_path = self.dir / "mosquitto.log"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true",
                 "log_dest stdout", "log_type all", "max_queued_messages 5000"]
        if persistent:
            lines += ["persistence true", f"persistence_location {self.dir}/",
                      "persistence_file mosquitto.db", "autosave_interval 0"]
        else:
            lines.append("persistence false")
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> "Mosquitto":
        with open(self.log_path, "ab") as f:
            f.write(f"\n===== start {time.strftime('%H:%M:%S')} =====\n".encode())
        self.proc = self.registry.popen([_mosquitto_bin(), "-c", str(self.conf)], log=self.log_path)
        procs.wait_until(self._accepting, timeout, what=f"mosquitto on port {self.port}")
        return self

    def _accepting(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited ({self.proc.returncode}):\n{self.log_tail()}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            procs.ProcessRegistry.terminate(self.proc, grace=5.0)
            self.proc = None

    def publish(self, topic: str, payload: str, retain: bool = False, qos: int = 1) -> None:
        cmd = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.port), "-t", topic,
               "-m", payload, "-q", str(qos)]
        if retain:
            cmd.append("-r")
        subprocess.run(cmd, check=True, timeout=10)

    def wait_subscribed(self, topic: str, timeout: float = 10.0) -> None:
        """Until some client has subscribed to exactly `topic` (from the
        broker's own log), e.g. Home Assistant attaching a device trigger."""
        pat = re.compile(rf"^\d+: \S+ \d {re.escape(topic)}$", re.M)
        procs.wait_until(lambda: pat.search(self.log_path.read_text(errors="replace")), timeout,
                         interval=0.1, what=f"a subscription to {topic}")

    def retained(self, topic_filter: str, wait: float = 1.0) -> dict[str, str]:
        """Retained messages under a filter, as the broker holds them now."""
        out = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.port), "-t", topic_filter,
                              "--retained-only", "-W", str(max(1, int(wait))), "-F", "%t\t%p"],
                             capture_output=True, text=True, timeout=wait + 10)
        msgs = {}
        for line in out.stdout.splitlines():
            t, _, p = line.partition("\t")
            msgs[t] = p
        return msgs


@dataclass
class Message:
    at: float          # arrival at the recorder, unix seconds
    retain: bool
    topic: str
    payload: str

    def json(self):
        return json.loads(self.payload)


class Recorder(procs.LogFile):
    """mosquitto_sub on a filter, every message with its arrival time.
    `client_id` + `persistent`: a persistent QoS 1 session, so that messages
    published while the recorder is away are queued for it by the broker."""

    def __init__(self, broker: Mosquitto, registry: procs.ProcessRegistry, topic_filter: str = "#",
                 name: str = "rec", client_id: str | None = None, persistent: bool = False):
        self.broker, self.registry, self.filter = broker, registry, topic_filter
        self.log_path = broker.dir / f"{name}.log"
        self.client_id, self.persistent = client_id, persistent
        self.proc: subprocess.Popen | None = None
        self.log_path.write_text("")

    def start(self) -> "Recorder":
        cmd = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.broker.port), "-t", self.filter,
               "-q", "1", "-F", "%U\t%r\t%t\t%p"]
        if self.client_id:
            cmd += ["-i", self.client_id]
        if self.persistent:
            cmd.append("-c")
        f = open(self.log_path, "ab", buffering=0)
        self.proc = self.registry.popen(cmd, stdout=f, stderr=subprocess.DEVNULL)
        # mosquitto_sub has no "subscribed" signal: give it a moment.
        time.sleep(0.3)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            procs.ProcessRegistry.terminate(self.proc, grace=2.0)
            self.proc = None

    def messages(self) -> list[Message]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            parts = line.split("\t", 3)
            if len(parts) == 4:
                out.append(Message(float(parts[0]), parts[1] == "1", parts[2], parts[3]))
        return out

    def on(self, topic: str) -> list[Message]:
        return [m for m in self.messages() if m.topic == topic]

    def wait_for(self, pred: Callable[[Message], bool], timeout: float = 10.0, what: str = "message",
                 since: int = 0) -> Message:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for m in self.messages()[since:]:
                if pred(m):
                    return m
            time.sleep(0.05)
        seen = "\n".join(f"  {m.topic} {m.payload[:120]}" for m in self.messages()[-40:])
        raise TimeoutError(f"no {what} within {timeout}s; last messages:\n{seen}")

    def wait_topic(self, topic: str, payload_pred: Callable[[str], bool] = lambda p: True,
                   timeout: float = 10.0, since: int = 0) -> Message:
        return self.wait_for(lambda m: m.topic == topic and payload_pred(m.payload), timeout,
                             what=f"message on {topic}", since=since)


def mqtt_overrides(broker: Mosquitto, **extra) -> dict:
    """The `mqtt` section for Pbx(overrides=...)."""
    section = {"host": "127.0.0.1", "port": broker.port}
    section.update(extra)
    return {"mqtt": section}


def wait_hung_up(caller, callee, label: str, t0: float, timeout: float = 10.0) -> None:
    """Both baresips see the call closed after a hang-up from outside SIP
    (started at monotonic `t0`); prints how long each took."""
    callee.ctrl.wait_event("CALL_CLOSED", timeout)
    t_callee = time.monotonic() - t0
    caller.ctrl.wait_event("CALL_CLOSED", timeout)
    print(f"\n{label} -> callee's call closed after {t_callee * 1000:.0f} ms, "
          f"caller's after {(time.monotonic() - t0) * 1000:.0f} ms")
