"""Memory a burst of calls leaves behind: CALLS short calls at RATE/s (sipp
caller 1000 with digest -> ha-pbx -> sipp callee 1001, media anchored, as
call_rate.py), then the PBX's RSS every 5 s for REST seconds at rest. Shows
the peak (the finished calls' SIP transactions and dialogs, kept 32 s each)
and how much comes back while idle. `HA_PBX_BIN=old` compares a binary.

usage: python3 bench/call_memory.py [CALLS] [RATE] [REST]   (defaults 8000 100 60)"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from common import SIPP_DIR, Pbx, free_port, num, run_sipp, users_csv

HERE = Path(__file__).resolve().parent


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    rate = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    rest = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    pbx = Pbx(2, rtp_ports="20000-59999").start()
    work = pbx.dir
    uas = None
    try:
        uas_port = free_port()
        run_sipp([f"127.0.0.1:{pbx.sip_port}", "-sf", str(SIPP_DIR / "register.xml"),
                  "-inf", str(users_csv(work / "callee.csv", 1001, 1)), "-i", "127.0.0.1", "-p", str(free_port()),
                  "-key", "contact_port", str(uas_port), "-key", "expires", "3600", "-m", "1"], work, 30)
        uas = subprocess.Popen(["timeout", str(int(calls / rate + rest + 300)), "sipp", "-sf", str(HERE / "sipp" / "uas.xml"),
                                "-i", "127.0.0.1", "-p", str(uas_port), "-mp", str(free_port()), "-m", str(calls),
                                "-nostdin", "-max_socket", "60000"], cwd=work,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        idle = pbx.rss_kib() // 1024
        st = run_sipp([f"127.0.0.1:{pbx.sip_port}", "-sf", str(HERE / "sipp" / "uac.xml"), "-s", "1001",
                       "-key", "caller", "1000", "-au", "1000", "-ap", "pw1000", "-i", "127.0.0.1",
                       "-p", str(free_port()), "-mp", str(free_port()), "-r", str(rate), "-m", str(calls),
                       "-d", "0", "-l", "30000"], work, timeout=calls / rate * 3 + 120)
        peak = pbx.rss_kib() // 1024
        print(f"{calls} calls at {rate}/s: {num(st, 'SuccessfulCall(C)')} ok, {num(st, 'FailedCall(C)')} failed")
        print(f"  RSS idle {idle} MiB, at the last call {peak} MiB", flush=True)
        for i in range(rest // 5):
            time.sleep(5)
            print(f"  +{(i + 1) * 5:>3} s at rest: RSS {pbx.rss_kib() // 1024} MiB", flush=True)
    finally:
        if uas and uas.poll() is None:
            uas.kill()
        pbx.stop()


if __name__ == "__main__":
    main()
