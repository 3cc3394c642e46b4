"""REGISTER with digest per second: sipp sends REGISTER, gets 401, sends it
again with credentials, expects 200. Prints achieved rate and failures.

usage: python3 bench/register_rate.py [RATE] [COUNT] [USERS]"""
import sys
import tempfile
from pathlib import Path

from common import SIPP_DIR, Pbx, free_port, num, run_sipp, users_csv


def main() -> None:
    rate = int(sys.argv[1]) if len(sys.argv) > 1 else 16000
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
    users = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
    pbx = Pbx(users).start()
    try:
        work = Path(tempfile.mkdtemp(prefix="bench-reg-"))
        csv_path = users_csv(work / "users.csv", 1000, users)
        cpu0 = pbx.cpu_seconds()
        stats = run_sipp([f"127.0.0.1:{pbx.sip_port}", "-sf", str(SIPP_DIR / "register.xml"), "-inf", str(csv_path),
                          "-i", "127.0.0.1", "-p", str(free_port()), "-key", "contact_port", "5999",
                          "-key", "expires", "3600", "-r", str(rate), "-rp", "1000", "-m", str(count), "-l", "20000"],
                         work, timeout=count / max(rate, 1) * 3 + 60)
        cpu = pbx.cpu_seconds() - cpu0
        ok, failed = num(stats, "SuccessfulCall(C)"), num(stats, "FailedCall(C)")
        retrans = num(stats, "Retransmissions(C)")
        elapsed = stats["_wall"]
        print(f"REGISTER+digest: target {rate}/s, {count} attempts over {users} users")
        print(f"  successful {ok}, failed {failed}, retransmissions {retrans}")
        print(f"  achieved {ok / elapsed:.0f} registrations/s over {elapsed:.1f} s wall")
        print(f"  ha-pbx CPU {cpu:.1f} s ({cpu / elapsed * 100:.0f} % of one core), RSS {pbx.rss_kib() / 1024:.1f} MiB")
    finally:
        pbx.stop()


if __name__ == "__main__":
    main()
