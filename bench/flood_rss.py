"""Memory under a flood of unauthenticated INVITEs from one address.

sipp on 127.0.0.2 sends COUNT INVITEs (no credentials) at RATE per second
(`tests/integration/sipp/invite_flood.xml`, one INVITE per call, answers not
awaited) to a ha-pbx on 127.0.0.1 whose flood limit applies to 127.0.0.2
(`trusted_sources: [127.0.0.1]`). Prints the PBX's RSS before, at the peak,
right after and SETTLE seconds later, and how many requests it answered.

usage: python3 bench/flood_rss.py [COUNT] [RATE]
  HA_PBX_BIN=old-binary BENCH_OLD=1 python3 bench/flood_rss.py   (a binary without the flood keys)"""
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import BIN, SIPP_DIR, Pbx, free_port


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    rate = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000
    settle = int(os.environ.get("BENCH_SETTLE", "60"))
    security = "ban_after_failures: 1000000"
    if not os.environ.get("BENCH_OLD"):
        security += ", trusted_sources: [127.0.0.1]"
    work = Path(tempfile.mkdtemp(prefix="bench-flood-"))
    pbx = Pbx(2, security=security).start()
    try:
        time.sleep(1)
        before = pbx.rss_kib()
        peak = [before]
        cmd = ["timeout", str(int(count / rate) + 60), "sipp", f"127.0.0.1:{pbx.sip_port}", "-sf",
               str(SIPP_DIR / "invite_flood.xml"), "-i", "127.0.0.2", "-p", str(free_port()), "-m", str(count),
               "-r", str(rate), "-l", str(count), "-nostdin", "-max_socket", "60000", "-trace_stat", "-stf",
               str(work / "stat.csv"), "-fd", "1"]
        t0 = time.time()
        sipp = subprocess.Popen(cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def sample():
            while sipp.poll() is None:
                peak[0] = max(peak[0], pbx.rss_kib())
                time.sleep(0.1)
        t = threading.Thread(target=sample, daemon=True)
        t.start()
        sipp.wait()
        wall = time.time() - t0
        t.join()
        after = pbx.rss_kib()
        peak[0] = max(peak[0], after)
        for _ in range(20):  # the PBX works off its backlog
            time.sleep(0.5)
            peak[0] = max(peak[0], pbx.rss_kib())
        time.sleep(max(settle - 10, 0))
        later = pbx.rss_kib()
        print(f"flood: {count} unauthenticated INVITEs at {rate}/s from 127.0.0.2 in {wall:.1f} s ({BIN})")
        print(f"  RSS before {before / 1024:.1f} MiB, peak {peak[0] / 1024:.1f} MiB (+{(peak[0] - before) / 1024:.1f}),"
              f" at the end {after / 1024:.1f} MiB, {settle} s later {later / 1024:.1f} MiB")
    finally:
        pbx.stop()


if __name__ == "__main__":
    main()
