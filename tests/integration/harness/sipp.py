"""Runs sipp scenarios (tests/integration/sipp/*.xml), always bounded:
-recv_timeout, -timeout and an outer `timeout`, and killed at teardown."""
from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import procs
from .sip import SipMessage, parse_message

SCENARIOS = Path(__file__).resolve().parents[1] / "sipp"


@dataclass
class TracedMessage:
    direction: str  # "sent" or "received"
    msg: SipMessage

    def __repr__(self) -> str:
        return f"<{self.direction} {self.msg.start}>"


def parse_message_log(text: str) -> list[TracedMessage]:
    """Parse sipp's -trace_msg file into sent/received messages."""
    out: list[TracedMessage] = []
    blocks = re.split(r"(?m)^-{10,}.*$", text)
    for b in blocks:
        m = re.search(r"(?m)^\s*(UDP|TCP|TLS|SCTP)? ?message (sent|received)[^\n]*\n", b)
        if not m:
            continue
        direction = m.group(2)
        body = b[m.end():].lstrip("\r\n")
        # sipp writes messages with \n or \r\n; normalise line ends of the head
        head, sep, rest = body.replace("\r\n", "\n").partition("\n\n")
        data = head.replace("\n", "\r\n").encode() + b"\r\n\r\n" + rest.rstrip("\n").encode()
        pm = parse_message(data)
        if pm is not None and pm.start:
            out.append(TracedMessage(direction, pm))
    return out


@dataclass
class SippResult:
    name: str
    rc: int | None
    messages: list[TracedMessage]
    stdout: str
    errors: str
    screen: str
    cmd: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def received(self) -> list[SipMessage]:
        return [t.msg for t in self.messages if t.direction == "received"]

    def sent(self) -> list[SipMessage]:
        return [t.msg for t in self.messages if t.direction == "sent"]

    def received_statuses(self) -> list[int]:
        return [m.status for m in self.received() if m.is_response]

    def received_requests(self) -> list[str]:
        return [m.method for m in self.received() if not m.is_response]

    def summary(self) -> str:
        flow = ", ".join(("<- " if t.direction == "received" else "-> ") +
                         (t.msg.start.split(" ", 1)[1] if t.msg.is_response else t.msg.method)
                         for t in self.messages)
        return (f"sipp {self.name}: rc={self.rc}; flow: {flow or '(nothing)'}\n"
                f"errors: {self.errors.strip()[-1500:] or '-'}\n"
                f"screen tail: {self.screen.strip()[-800:] or '-'}")


class SippProc:
    def __init__(self, name: str, popen: subprocess.Popen, files: dict[str, Path],
                 cmd: list[str]):
        self.name = name
        self.popen = popen
        self.files = files
        self.cmd = cmd

    def wait(self, timeout: float = 60.0) -> SippResult:
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            procs.ProcessRegistry.terminate(self.popen, grace=2.0)
        return self.result()

    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> SippResult:
        procs.ProcessRegistry.terminate(self.popen, grace=2.0)
        return self.result()

    def result(self) -> SippResult:
        def rd(k: str) -> str:
            p = self.files.get(k)
            try:
                return p.read_text(errors="replace") if p else ""
            except OSError:
                return ""
        return SippResult(self.name, self.popen.returncode, parse_message_log(rd("messages")),
                          rd("stdout"), rd("errors"), rd("screen"), self.cmd)

    def messages(self) -> list[TracedMessage]:
        """Messages logged so far (sipp flushes its trace after each message)."""
        return self.result().messages


class Sipp:
    """Factory for sipp runs of one test; files go to workdir/sipp-NAME.*"""

    def __init__(self, workdir: Path, registry: procs.ProcessRegistry):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.registry = registry
        self.count = 0

    def scenario(self, name: str, **subst: str) -> Path:
        """Path of a scenario; a template (NAME.xml.in) gets @KEY@ replaced and is
        written into the test's directory."""
        p = SCENARIOS / name
        if p.exists() and not subst:
            return p
        src = SCENARIOS / (name + ".in") if not p.exists() else p
        text = src.read_text()
        for k, v in subst.items():
            text = text.replace(f"@{k}@", str(v))
        leftover = re.findall(r"@[A-Z_]+@", text)
        if leftover:
            raise ValueError(f"unreplaced {leftover} in {src}")
        tag = "_".join(f"{v}" for v in subst.values())
        out = self.dir / f"{Path(name).stem}_{tag}.xml"
        out.write_text(text)
        return out

    def users_csv(self, rows: list[tuple[str, str]], name: str) -> Path:
        """CSV for -inf: field0 = user, field1 = the [authentication ...] keyword."""
        p = self.dir / f"{name}.csv"
        lines = ["SEQUENTIAL"] + [f"{u};[authentication username={u} password={pw}]"
                                  for u, pw in rows]
        p.write_text("\n".join(lines) + "\n")
        return p

    def start(self, scenario: str | Path, remote: str | None = None, *, name: str | None = None,
              local_ip: str = "127.0.0.1", port: int | None = None, transport: str = "u1",
              keys: dict[str, str | int] | None = None, users: list[tuple[str, str]] | None = None,
              service: str | None = None, auth: tuple[str, str] | None = None,
              calls: int = 1, limit: int | None = None, rate: int | None = None,
              duration_ms: int | None = None,
              recv_timeout_ms: int = 8000, timeout_s: int = 40,
              extra: list[str] | None = None) -> SippProc:
        if shutil.which("sipp") is None:
            raise RuntimeError("sipp is not installed (scripts/install-test-deps.sh)")
        self.count += 1
        sc = scenario if isinstance(scenario, Path) else self.scenario(scenario)
        name = name or f"{self.count:02d}-{Path(sc).stem}"
        files = {k: self.dir / f"sipp-{name}.{k}" for k in ("messages", "errors", "screen", "stdout")}
        for f in files.values():
            f.unlink(missing_ok=True)
        mp = procs.free_port("media", count=4)
        cmd = ["timeout", "-s", "INT", "-k", "5", str(timeout_s + 5), "sipp"]
        if remote:
            cmd.append(remote)
        # -bind_local: really send from local_ip (127.0.0.2 ...), not just name it in headers
        cmd += ["-sf", str(sc), "-t", transport, "-i", local_ip, "-bind_local", "-mp", str(mp),
                "-m", str(calls), "-l", str(limit or calls), "-nostdin",
                "-recv_timeout", str(recv_timeout_ms), "-timeout", f"{timeout_s}s",
                "-timeout_error", "-max_recv_loops", "1000",
                "-trace_msg", "-message_file", str(files["messages"]),
                "-trace_err", "-error_file", str(files["errors"]),
                "-trace_screen", "-screen_file", str(files["screen"])]
        if port:
            cmd += ["-p", str(port)]
        if rate:
            cmd += ["-r", str(rate)]
        if service:
            cmd += ["-s", service]
        if auth:
            cmd += ["-au", auth[0], "-ap", auth[1]]
        if duration_ms is not None:
            cmd += ["-d", str(duration_ms)]
        if users:
            cmd += ["-inf", str(self.users_csv(users, f"sipp-{name}-users"))]
        for k, v in (keys or {}).items():
            cmd += ["-key", k, str(v)]
        cmd += extra or []
        p = self.registry.popen(cmd, log=files["stdout"], cwd=str(self.dir))
        return SippProc(name, p, files, cmd)

    def run(self, scenario: str | Path, remote: str | None = None, **kw) -> SippResult:
        timeout_s = kw.get("timeout_s", 40)
        proc = self.start(scenario, remote, **kw)
        return proc.wait(timeout=timeout_s + 15)

    def wait_listening(self, port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> None:
        procs.wait_until(lambda: procs.port_bound_udp(port, host), timeout,
                         what=f"sipp listening on {host}:{port}")
        time.sleep(0.1)


CHALLENGE_PREFIX = '''
  <!-- self-test: stand in for the PBX's 407 challenge -->
  <recv request="INVITE"/>
  <send>
    <![CDATA[

      SIP/2.0 407 Proxy Authentication Required
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]ch[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Proxy-Authenticate: Digest realm="ha-pbx", nonce="[pid]n[call_number]", qop="auth", algorithm=MD5
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
'''


def with_challenge(src: Path, dst_dir: Path) -> Path:
    """HARNESS SELF-TEST: derive from a UAS scenario one that first answers the INVITE
    with 407 (as the PBX does), so UAC scenarios can be run against sipp directly."""
    text = Path(src).read_text()
    i = text.index(">", text.index("<scenario")) + 1
    out = Path(dst_dir) / f"challenge_{Path(src).name}"
    out.write_text(text[:i] + CHALLENGE_PREFIX + text[i:])
    return out
