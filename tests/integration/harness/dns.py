"""A real DNS server for the tests: dnsmasq (Debian `dnsmasq-base`) on
127.0.0.1:53 of a `netns(resolv_conf=...)` test's namespace, authoritative
for the test's own domain only (nothing is forwarded anywhere). Its records
are replaced by restarting it (`serve`): dnsmasq reads SRV records from its
command line only. `--log-queries` lines show what was asked."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from . import procs


def udp_listening(port: int, ip_hex: str = "0100007F") -> bool:
    """A UDP socket of this namespace is bound to 127.0.0.1:port (read from
    /proc/net/udp, without binding anything)."""
    want = f"{ip_hex}:{port:04X}"
    with open("/proc/net/udp") as f:
        return any(line.split()[1] == want for line in list(f)[1:] if len(line.split()) > 1)


class Dnsmasq(procs.LogFile):
    """srv: (name, target, port, priority, weight) records; hosts: (name, ip).
    ttl: the TTL of every answer (seconds)."""
    log_tail_lines = 40

    def __init__(self, workdir: Path, registry: procs.ProcessRegistry, *, domain: str, ttl: int = 2):
        if shutil.which("dnsmasq") is None and not Path("/usr/sbin/dnsmasq").exists():
            raise RuntimeError("dnsmasq is not installed (scripts/install-test-deps.sh: dnsmasq-base)")
        self.dir = Path(workdir) / "dnsmasq"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.registry, self.domain, self.ttl = registry, domain, ttl
        self.log_path = self.dir / "dnsmasq.log"
        self.proc = None

    def serve(self, *, srv: list[tuple[str, str, int, int, int]] = (), hosts: list[tuple[str, str]] = ()) -> "Dnsmasq":
        self.stop()
        exe = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
        cmd = [exe, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--no-poll",
               "--user=root", "--bind-interfaces", "--listen-address=127.0.0.1", "--port=53",
               f"--pid-file={self.dir / 'dnsmasq.pid'}", "--log-queries", "--log-facility=-",
               f"--local=/{self.domain}/", f"--local-ttl={self.ttl}", f"--auth-ttl={self.ttl}"]
        cmd += [f"--srv-host={name},{target},{port},{prio},{weight}" for name, target, port, prio, weight in srv]
        cmd += [f"--host-record={name},{ip}" for name, ip in hosts]
        # Whether it listens is read from /proc/net/udp, not by binding the
        # port to see (a probe socket bound at the moment dnsmasq binds made
        # it exit with "Address already in use", once in ~30 runs under load).
        # Should the port still be held anyway (a TCP socket of the old
        # server's in TIME_WAIT lasts up to 60 s), it is started again.
        deadline = time.monotonic() + 70
        while True:
            self.proc = self.registry.popen(cmd, log=self.log_path)
            procs.wait_until(lambda: self.proc.poll() is not None or udp_listening(53), 10,
                             what="dnsmasq listening on 127.0.0.1:53")
            if self.proc.poll() is None:
                return self
            if "Address already in use" not in self.log_tail() or time.monotonic() > deadline:
                raise RuntimeError(f"dnsmasq exited ({self.proc.returncode}):\n{self.log_tail()}")
            print("dnsmasq: 127.0.0.1:53 still in use after the restart; trying again")
            time.sleep(0.2)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.registry.terminate(self.proc)
            procs.wait_until(lambda: not udp_listening(53), 5, what="dnsmasq gone from port 53")
        self.proc = None
