"""REGISTER with digest per second: sipp sends REGISTER, gets 401, sends it
again with credentials, expects 200. Prints achieved rate and failures.

usage: python3 bench/register_rate.py [--vs-kamailio [--runs N]] [RATE] [COUNT] [USERS]

--vs-kamailio runs the same sipp scenario against Kamailio (Debian package
`kamailio`, /usr/sbin/kamailio) with an equivalent in-memory registrar and
digest auth (bench/kamailio-registrar.cfg, 4 UDP workers), alternating
ha-pbx and Kamailio N times (default 3) so both see the same machine load,
and prints a side-by-side table with the ratio of the medians."""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import SIPP_DIR, Pbx, free_port, num, rss_kib, run_sipp, stop_and_clean, users_csv

HERE = Path(__file__).resolve().parent
KAMAILIO = os.environ.get("KAMAILIO", "/usr/sbin/kamailio")


class Kamailio:
    """Kamailio as an in-memory registrar with digest auth on a free UDP port."""

    def __init__(self, children: int = 4):
        self.dir = Path(tempfile.mkdtemp(prefix="bench-kamailio-"))
        self.sip_port = free_port()
        cfg = (HERE / "kamailio-registrar.cfg").read_text()
        cfg = cfg.replace("__PORT__", str(self.sip_port)).replace("__CHILDREN__", str(children))
        (self.dir / "kamailio.cfg").write_text(cfg)
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Kamailio":
        if not Path(KAMAILIO).exists():
            raise SystemExit(f"{KAMAILIO} missing: apt-get install kamailio")
        self.log = open(self.dir / "kamailio.log", "wb")
        self.proc = subprocess.Popen([KAMAILIO, "-f", str(self.dir / "kamailio.cfg"), "-P", str(self.dir / "k.pid"),
                                      "-Y", str(self.dir), "-m", "256", "-M", "16", "-DD", "-E"],
                                     cwd=self.dir, stdout=self.log, stderr=subprocess.STDOUT)
        time.sleep(1.5)
        if self.proc.poll() is not None:
            raise RuntimeError(f"kamailio did not start: {(self.dir / 'kamailio.log').read_text()[-2000:]}")
        return self

    def pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [self.proc.pid] + [int(p) for p in out.split()]

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            except OSError:
                pass
        return total

    def rss_kib(self) -> int:
        # shared memory counted once per process: an upper bound
        return sum(rss_kib(p) for p in self.pids())

    def stop(self) -> None:
        stop_and_clean(self.proc, self.dir)


def pbx(users: int) -> Pbx:
    """ha-pbx with the load generator's address trusted: like Kamailio here, no
    per-source flood limit (50 requests/s by default) between sipp and the
    registrar; digest auth, nonces and bans work as always."""
    return Pbx(users, security="ban_after_failures: 1000000, max_calls_per_extension: 100000, "
                               "trusted_sources: [127.0.0.1]")


def one_run(server, rate: int, count: int, users: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-reg-"))
    csv_path = users_csv(work / "users.csv", 1000, users)
    cpu0 = server.cpu_seconds()
    keep = bool(os.environ.get("BENCH_KEEP"))
    stats = run_sipp([f"127.0.0.1:{server.sip_port}", "-sf", str(SIPP_DIR / "register.xml"), "-inf", str(csv_path),
                      "-i", "127.0.0.1", "-p", str(free_port()), "-key", "contact_port", "5999",
                      "-key", "expires", "3600", "-r", str(rate), "-rp", "1000", "-m", str(count), "-l", "20000",
                      # sipp's own socket buffers (64 KiB by default) dropped responses at 10,000/s
                      "-buff_size", str(4 << 20),
                      # with BENCH_KEEP, sipp's account of each failed call (what it got instead)
                      *(["-trace_err", "-error_file", str(work / "sipp-errors.log")] if keep else [])],
                     work, timeout=count / max(rate, 1) * 3 + 60)
    if keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = stats["_wall"]
    ok = num(stats, "SuccessfulCall(C)")
    # sipp's failure counters by reason (a timeout, an unexpected message ...)
    why = {k[len("Failed"):-3]: num(stats, k) for k in stats
           if k.startswith("Failed") and k.endswith("(C)") and k != "FailedCall(C)" and num(stats, k)}
    return {"ok": ok, "failed": num(stats, "FailedCall(C)"), "retrans": num(stats, "Retransmissions(C)"),
            "why": why, "wall": elapsed, "rate": ok / elapsed, "cpu": server.cpu_seconds() - cpu0, "rss": server.rss_kib()}


def report(name: str, r: dict, rate: int, count: int, users: int) -> None:
    print(f"{name} REGISTER+digest: target {rate}/s, {count} attempts over {users} users")
    print(f"  successful {r['ok']}, failed {r['failed']} {r['why'] or ''}, retransmissions {r['retrans']}")
    print(f"  achieved {r['rate']:.0f} registrations/s over {r['wall']:.1f} s wall")
    print(f"  CPU {r['cpu']:.1f} s ({r['cpu'] / r['wall'] * 100:.0f} % of one core), RSS {r['rss'] / 1024:.1f} MiB")


def main() -> None:
    args = sys.argv[1:]
    vs = "--vs-kamailio" in args
    runs = 3
    if "--runs" in args:
        i = args.index("--runs")
        runs = int(args[i + 1])
        del args[i:i + 2]
    args = [a for a in args if a != "--vs-kamailio"]
    rate = int(args[0]) if len(args) > 0 else 16000
    count = int(args[1]) if len(args) > 1 else 100000
    users = int(args[2]) if len(args) > 2 else 5000
    if not vs:
        server = pbx(users).start()
        try:
            report("ha-pbx", one_run(server, rate, count, users), rate, count, users)
        finally:
            server.stop()
        return
    results: dict[str, list[dict]] = {"ha-pbx": [], "kamailio": []}
    for n in range(runs):
        for name in ("ha-pbx", "kamailio"):
            server = pbx(users) if name == "ha-pbx" else Kamailio()
            server.start()
            try:
                r = one_run(server, rate, count, users)
            finally:
                server.stop()
            results[name].append(r)
            print(f"run {n + 1}/{runs} {name:8}: {r['rate']:7.0f}/s  ok {r['ok']}  failed {r['failed']} {r['why'] or ''}  "
                  f"retrans {r['retrans']}  cpu {r['cpu']:.1f} s  rss {r['rss'] / 1024:.1f} MiB", flush=True)
    med = {k: statistics.median(r["rate"] for r in v) for k, v in results.items()}
    print(f"\nREGISTER+digest (401 then 200), offered {rate}/s, {count} per run, {users} users, {runs} runs each, "
          "interleaved")
    print(f"| server   | REGISTER/s (median) | runs (/s)               | failed | retrans | CPU s | RSS MiB |")
    print(f"|----------|---------------------|-------------------------|--------|---------|-------|---------|")
    for name, rs in results.items():
        each = ", ".join(f"{r['rate']:.0f}" for r in rs)
        print(f"| {name:8} | {med[name]:19.0f} | {each:23} | {sum(r['failed'] for r in rs):6} | "
              f"{sum(r['retrans'] for r in rs):7} | {statistics.median(r['cpu'] for r in rs):5.1f} | "
              f"{statistics.median(r['rss'] for r in rs) / 1024:7.1f} |")
    print(f"ratio ha-pbx / Kamailio: {med['ha-pbx'] / med['kamailio']:.2f}")


if __name__ == "__main__":
    main()
