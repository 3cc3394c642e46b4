"""Soak: many short calls, then many registrations, against one ha-pbx, with
its RSS and open file descriptors sampled all along. Prints the figures and
whether each stayed flat (within 10 %) once settled: a leak per call or per
REGISTER shows as a steady climb.

Phases: CALLS calls (sipp caller 1000 with digest -> ha-pbx -> sipp callee
1001, each call INVITE/407/INVITE/180/200/ACK, held HOLD ms, BYE, an RTP relay
allocated and released), then REGS registrations (REGISTER/401/REGISTER/200)
spread over USERS extensions. Each load runs in two halves, each followed by a
rest of BENCH_SETTLE seconds (default 75, past rsipstack's 32 + 32 s of
transaction and dialog timers). Two verdicts, "flat" meaning within 10 %:
- under load: within each half, the median of the SETTLE_AT seconds (default
  70) after it has run SETTLE_AT seconds, against every later sample of it;
- at rest: the last 10 s of the rest after the second half against the last
  10 s of the rest after the first. A leak per call or per REGISTER shows in
  the second: the same work done again leaves more behind.

usage: nice -n 10 python3 bench/soak.py [CALLS] [REGS] [CALL_RATE] [REG_RATE] [USERS]
       (defaults 100000 100000 200 500 100)"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import SIPP_DIR, Pbx, free_port, num, run_sipp, users_csv

HERE = Path(__file__).resolve().parent
FLAT = 0.10


def fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


class Sampler(threading.Thread):
    """(seconds since start, phase, RSS KiB, open fds) every `every` seconds."""

    def __init__(self, pbx: Pbx, every: float = 1.0):
        super().__init__(daemon=True)
        self.pbx, self.every = pbx, every
        self.t0 = time.monotonic()
        self.phase = "idle"
        self.samples: list[tuple[float, str, int, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            pid = self.pbx.proc.pid
            self.samples.append((time.monotonic() - self.t0, self.phase, self.pbx.rss_kib(), fds(pid)))
            self.stop.wait(self.every)


def median_of(samples, phase: str, column: int, last: float) -> float | None:
    """Median of `column` over the last `last` seconds of `phase`'s samples."""
    ph = [s for s in samples if s[1] == phase]
    if not ph:
        return None
    tail = [s[column] for s in ph if s[0] >= ph[-1][0] - last]
    return statistics.median(tail)


def growth(a: float | None, b: float | None, unit: str, scale: float = 1.0) -> str:
    if a is None or b is None:
        return "not measured"
    over = (b - a) / a if a else 0.0
    ok = "FLAT" if over <= FLAT else "NOT FLAT"
    return f"{ok}: {a / scale:.1f} -> {b / scale:.1f} {unit} ({over * 100:+.1f} %)"


def steady(samples, phase: str, column: int, settle: float, unit: str, scale: float = 1.0) -> str:
    """Within a phase, once `settle` seconds into it: the median of the next
    `settle` seconds against every later sample of the phase."""
    ph = [s for s in samples if s[1] == phase]
    if not ph:
        return "not measured"
    t0 = ph[0][0]
    ref = [s[column] for s in ph if t0 + settle <= s[0] < t0 + 2 * settle]
    later = [s[column] for s in ph if s[0] >= t0 + 2 * settle]
    if not ref or not later:
        return "phase too short to settle"
    base = statistics.median(ref)
    peak = max(later)
    over = (peak - base) / base if base else 0.0
    ok = "FLAT" if over <= FLAT else "NOT FLAT"
    return f"{ok}: settled {base / scale:.1f} {unit}, later peak {peak / scale:.1f} {unit} ({over * 100:+.1f} %)"


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    regs = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    call_rate = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    reg_rate = int(sys.argv[4]) if len(sys.argv) > 4 else 500
    users = int(sys.argv[5]) if len(sys.argv) > 5 else 100
    hold = int(os.environ.get("BENCH_HOLD_MS", "0"))
    # rsipstack keeps a finished transaction 32 s, then its dialog's 32 s:
    # a phase's memory reaches its plateau after about 64 s.
    settle = float(os.environ.get("SETTLE_AT", "70"))
    rest = int(os.environ.get("BENCH_SETTLE", "75"))
    work = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    # extensions 1000 (caller), 1001 (callee), 1002.. (registrations)
    pbx = Pbx(2 + users, rtp_ports="20000-59999").start()
    sampler = Sampler(pbx)
    uas = None
    results: dict[str, tuple] = {}
    try:
        uas_port = free_port()
        reg = run_sipp([f"127.0.0.1:{pbx.sip_port}", "-sf", str(SIPP_DIR / "register.xml"),
                        "-inf", str(users_csv(work / "callee.csv", 1001, 1)), "-i", "127.0.0.1", "-p", str(free_port()),
                        "-key", "contact_port", str(uas_port), "-key", "expires", "3600", "-m", "1"], work, 30)
        assert num(reg, "SuccessfulCall(C)") == 1, "callee did not register"
        sampler.start()
        time.sleep(3)
        if calls:
            uas = subprocess.Popen(["timeout", str(int(calls / call_rate + hold / 1000 + 4 * rest + 600)), "sipp", "-sf",
                                    str(HERE / "sipp" / "uas.xml"), "-i", "127.0.0.1", "-p", str(uas_port),
                                    "-mp", str(free_port()), "-m", str(calls), "-nostdin", "-max_socket", "60000"],
                                   cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        # Each load in two halves, each followed by a rest: a leak shows as
        # the second rest sitting higher than the first.
        for half in (1, 2):
            n = calls // 2 if half == 1 else calls - calls // 2
            if n:
                sampler.phase = f"calls {half}"
                cpu0 = pbx.cpu_seconds()
                st = run_sipp([f"127.0.0.1:{pbx.sip_port}", "-sf", str(HERE / "sipp" / "uac.xml"), "-s", "1001",
                               "-key", "caller", "1000", "-au", "1000", "-ap", "pw1000", "-i", "127.0.0.1",
                               "-p", str(free_port()), "-mp", str(free_port()), "-r", str(call_rate), "-m", str(n),
                               "-d", str(hold), "-l", "30000"], work, timeout=n / call_rate * 3 + hold / 1000 + 120)
                results[f"calls {half}"] = (num(st, "SuccessfulCall(C)"), num(st, "FailedCall(C)"), st["_wall"],
                                            pbx.cpu_seconds() - cpu0)
                sampler.phase = f"rest after calls {half}"
                time.sleep(rest)
        for half in (1, 2):
            n = regs // 2 if half == 1 else regs - regs // 2
            if n:
                sampler.phase = f"registrations {half}"
                cpu0 = pbx.cpu_seconds()
                st = run_sipp([f"127.0.0.1:{pbx.sip_port}", "-sf", str(SIPP_DIR / "register.xml"),
                               "-inf", str(users_csv(work / "users.csv", 1002, users)), "-i", "127.0.0.1",
                               "-p", str(free_port()), "-key", "contact_port", str(free_port()), "-key", "expires", "3600",
                               "-r", str(reg_rate), "-m", str(n), "-l", "5000"], work, timeout=n / reg_rate * 3 + 120)
                results[f"registrations {half}"] = (num(st, "SuccessfulCall(C)"), num(st, "FailedCall(C)"), st["_wall"],
                                                    pbx.cpu_seconds() - cpu0)
                sampler.phase = f"rest after registrations {half}"
                time.sleep(rest)
    finally:
        sampler.stop.set()
        if uas and uas.poll() is None:
            uas.kill()
        samples = sampler.samples
        pbx.stop()

    print(f"soak: {calls} calls at {call_rate}/s (held {hold} ms), {regs} registrations at {reg_rate}/s over {users} "
          f"extensions, each in two halves followed by {rest} s at rest; {len(samples)} samples")
    for phase, (ok, failed, wall, cpu) in results.items():
        print(f"  {phase}: {ok} successful, {failed} failed in {wall:.0f} s ({ok / max(wall, 0.001):.0f}/s);"
              f" ha-pbx CPU {cpu:.1f} s")
    phases = list(dict.fromkeys(s[1] for s in samples))
    for phase in phases:
        ph = [s for s in samples if s[1] == phase]
        print(f"  {phase:>26}: RSS {min(s[2] for s in ph) / 1024:.1f}-{max(s[2] for s in ph) / 1024:.1f} MiB,"
              f" open fds {min(s[3] for s in ph)}-{max(s[3] for s in ph)}")
    print("  under load, once settled (no climb while the load goes on):")
    for phase in ("calls 1", "calls 2", "registrations 1", "registrations 2"):
        if phase in phases:
            print(f"    {phase}: RSS {steady(samples, phase, 2, settle, 'MiB', 1024)};"
                  f" open fds {steady(samples, phase, 3, settle, '')}")
    print("  at rest, after the first half and after the second (last 10 s of each rest):")
    for what in ("calls", "registrations"):
        a, b = f"rest after {what} 1", f"rest after {what} 2"
        print(f"    {what}: RSS {growth(median_of(samples, a, 2, 10), median_of(samples, b, 2, 10), 'MiB', 1024)};"
              f" open fds {growth(median_of(samples, a, 3, 10), median_of(samples, b, 3, 10), '')}")


if __name__ == "__main__":
    main()
