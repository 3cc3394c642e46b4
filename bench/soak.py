"""Soak: many short calls, then many registrations, against one ha-pbx, with
its RSS and open file descriptors sampled all along. Prints the figures and
whether each stayed flat (within 10 %) once settled: a leak per call or per
REGISTER shows as a steady climb.

Phases: CALLS calls (sipp caller 1000 with digest -> ha-pbx -> sipp callee
1001, each call INVITE/407/INVITE/180/200/ACK, held HOLD ms, BYE, an RTP relay
allocated and released), then REGS registrations (REGISTER/401/REGISTER/200)
spread over USERS extensions, then a rest of BENCH_SETTLE seconds (default 40,
past rsipstack's 32 s transaction timers). The reference is the median of the
samples taken during the SETTLE_AT seconds after the first phase has run for
SETTLE_AT seconds (default 20); "flat" means no later sample exceeds it by
more than 10 %.

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


def verdict(samples, ref_from: float, ref_len: float, column: int, unit: str, scale: float = 1.0) -> str:
    ref = [s[column] for s in samples if ref_from <= s[0] < ref_from + ref_len]
    later = [s[column] for s in samples if s[0] >= ref_from + ref_len]
    if not ref or not later:
        return "not enough samples"
    base = statistics.median(ref)
    peak, last = max(later), later[-1]
    over = (peak - base) / base if base else 0.0
    ok = "FLAT" if over <= FLAT else "NOT FLAT"
    return (f"{ok}: settled {base / scale:.1f} {unit}, later peak {peak / scale:.1f} {unit} ({over * 100:+.1f} %),"
            f" end {last / scale:.1f} {unit}")


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    regs = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    call_rate = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    reg_rate = int(sys.argv[4]) if len(sys.argv) > 4 else 500
    users = int(sys.argv[5]) if len(sys.argv) > 5 else 100
    hold = int(os.environ.get("BENCH_HOLD_MS", "0"))
    settle_at = float(os.environ.get("SETTLE_AT", "20"))
    rest = int(os.environ.get("BENCH_SETTLE", "40"))
    work = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    # extensions 1000 (caller), 1001 (callee), 1002.. (registrations)
    pbx = Pbx(2 + users, rtp_ports="20000-59999").start()
    sampler = Sampler(pbx)
    uas = None
    results = {}
    try:
        uas_port = free_port()
        reg = run_sipp([f"127.0.0.1:{pbx.sip_port}", "-sf", str(SIPP_DIR / "register.xml"),
                        "-inf", str(users_csv(work / "callee.csv", 1001, 1)), "-i", "127.0.0.1", "-p", str(free_port()),
                        "-key", "contact_port", str(uas_port), "-key", "expires", "3600", "-m", "1"], work, 30)
        assert num(reg, "SuccessfulCall(C)") == 1, "callee did not register"
        sampler.start()
        time.sleep(3)
        if calls:
            uas = subprocess.Popen(["timeout", str(int(calls / call_rate + hold / 1000 + 300)), "sipp", "-sf",
                                    str(HERE / "sipp" / "uas.xml"), "-i", "127.0.0.1", "-p", str(uas_port),
                                    "-mp", str(free_port()), "-m", str(calls), "-nostdin", "-max_socket", "60000"],
                                   cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            sampler.phase = "calls"
            cpu0 = pbx.cpu_seconds()
            st = run_sipp([f"127.0.0.1:{pbx.sip_port}", "-sf", str(HERE / "sipp" / "uac.xml"), "-s", "1001",
                           "-key", "caller", "1000", "-au", "1000", "-ap", "pw1000", "-i", "127.0.0.1",
                           "-p", str(free_port()), "-mp", str(free_port()), "-r", str(call_rate), "-m", str(calls),
                           "-d", str(hold), "-l", "30000"], work, timeout=calls / call_rate * 3 + hold / 1000 + 120)
            results["calls"] = (num(st, "SuccessfulCall(C)"), num(st, "FailedCall(C)"), st["_wall"],
                                pbx.cpu_seconds() - cpu0)
        if regs:
            sampler.phase = "registrations"
            cpu0 = pbx.cpu_seconds()
            st = run_sipp([f"127.0.0.1:{pbx.sip_port}", "-sf", str(SIPP_DIR / "register.xml"),
                           "-inf", str(users_csv(work / "users.csv", 1002, users)), "-i", "127.0.0.1",
                           "-p", str(free_port()), "-key", "contact_port", str(free_port()), "-key", "expires", "3600",
                           "-r", str(reg_rate), "-m", str(regs), "-l", "5000"], work, timeout=regs / reg_rate * 3 + 120)
            results["registrations"] = (num(st, "SuccessfulCall(C)"), num(st, "FailedCall(C)"), st["_wall"],
                                        pbx.cpu_seconds() - cpu0)
        sampler.phase = "rest"
        time.sleep(rest)
    finally:
        sampler.stop.set()
        if uas and uas.poll() is None:
            uas.kill()
        samples = sampler.samples
        pbx.stop()

    print(f"soak: {calls} calls at {call_rate}/s (held {hold} ms), {regs} registrations at {reg_rate}/s over {users} "
          f"extensions, then {rest} s at rest; {len(samples)} samples")
    for phase, (ok, failed, wall, cpu) in results.items():
        print(f"  {phase}: {ok} successful, {failed} failed in {wall:.0f} s ({ok / max(wall, 0.001):.0f}/s);"
              f" ha-pbx CPU {cpu:.1f} s")
    for phase in ("idle", "calls", "registrations", "rest"):
        ph = [s for s in samples if s[1] == phase]
        if ph:
            print(f"  {phase:>13}: RSS {min(s[2] for s in ph) / 1024:.1f}-{max(s[2] for s in ph) / 1024:.1f} MiB,"
                  f" open fds {min(s[3] for s in ph)}-{max(s[3] for s in ph)}")
    start = next((s[0] for s in samples if s[1] != "idle"), 0.0)
    print(f"  RSS {verdict(samples, start + settle_at, settle_at, 2, 'MiB', 1024)}")
    print(f"  open fds {verdict(samples, start + settle_at, settle_at, 3, '')}")


if __name__ == "__main__":
    main()
