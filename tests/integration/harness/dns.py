"""A real DNS server for the tests: dnsmasq (Debian `dnsmasq-base`) on
127.0.0.1:53 of a `netns(resolv_conf=...)` test's namespace, authoritative
for the test's own domain only (nothing is forwarded anywhere). Its records
are replaced by restarting it (`serve`): dnsmasq reads SRV records from its
command line only. `--log-queries` lines show what was asked."""
from __future__ import annotations

import shutil
from pathlib import Path

from . import procs


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
        self.proc = self.registry.popen(cmd, log=self.log_path)
        procs.wait_until(lambda: self.proc.poll() is not None or procs.port_bound_udp(53), 10,
                         what="dnsmasq listening on 127.0.0.1:53")
        if self.proc.poll() is not None:
            raise RuntimeError(f"dnsmasq exited ({self.proc.returncode}):\n{self.log_tail()}")
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.registry.terminate(self.proc)
            procs.wait_until(lambda: not procs.port_bound_udp(53), 5, what="dnsmasq gone from port 53")
        self.proc = None
