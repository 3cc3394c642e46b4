"""Call setups per second with media anchored, and memory per concurrent call.

sipp (caller 1000, digest) -> ha-pbx -> sipp (callee 1001, registered). Each
call: INVITE/407/INVITE/180/200/ACK, held for HOLD ms, BYE. ha-pbx allocates
and releases an RTP relay for every call. Prints achieved rate, failures, CPU,
and RSS idle vs. at the peak number of concurrent calls.

usage: python3 bench/call_rate.py [RATE] [CALLS] [HOLD_MS]"""
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import SIPP_DIR, Pbx, free_port, num, run_sipp, users_csv

HERE = Path(__file__).resolve().parent


def main() -> None:
    rate = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    hold = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    work = Path(tempfile.mkdtemp(prefix="bench-call-"))
    pbx = Pbx(2, rtp_ports="20000-59999").start()
    uas = None
    try:
        uas_port = free_port()
        reg = run_sipp([f"127.0.0.1:{pbx.sip_port}", "-sf", str(SIPP_DIR / "register.xml"),
                        "-inf", str(users_csv(work / "u.csv", 1001, 1)), "-i", "127.0.0.1", "-p", str(free_port()),
                        "-key", "contact_port", str(uas_port), "-key", "expires", "3600", "-m", "1"], work, 30)
        assert num(reg, "SuccessfulCall(C)") == 1, "callee did not register"
        uas_stat = work / "uas.csv"
        uas = subprocess.Popen(["timeout", str(int(calls / rate + hold / 1000 + 90)), "sipp", "-sf", str(HERE / "sipp" / "uas.xml"),
                                "-i", "127.0.0.1", "-p", str(uas_port), "-mp", str(free_port()), "-m", str(calls),
                                "-nostdin", "-max_socket", "60000", "-trace_stat", "-stf", str(uas_stat), "-fd", "1"],
                               cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(0.5)
        idle = pbx.rss_kib()
        peak = {"rss": idle, "relays": 0, "max": idle}

        def sample():
            import json, urllib.request
            while uas.poll() is None:
                try:
                    h = json.load(urllib.request.urlopen(f"http://127.0.0.1:{pbx.http_port}/health", timeout=1))
                    peak["max"] = max(peak["max"], pbx.rss_kib())
                    peak["backlog"] = max(peak.get("backlog", 0), h.get("sip_backlog", 0))
                    if h["media_relays"] >= peak["relays"]:
                        peak.update(relays=h["media_relays"], rss=pbx.rss_kib(), calls=h["active_calls"])
                except OSError:
                    pass
                time.sleep(0.5)
        t = threading.Thread(target=sample, daemon=True)
        t.start()
        cpu0 = pbx.cpu_seconds()
        stats = run_sipp([f"127.0.0.1:{pbx.sip_port}", "-sf", str(HERE / "sipp" / "uac.xml"), "-s", "1001",
                          "-key", "caller", "1000", "-au", "1000", "-ap", "pw1000", "-i", "127.0.0.1",
                          "-p", str(free_port()), "-mp", str(free_port()), "-r", str(rate), "-m", str(calls),
                          "-d", str(hold), "-l", "30000"], work, timeout=calls / rate + hold / 1000 + 60)
        cpu = pbx.cpu_seconds() - cpu0
        ok, failed = num(stats, "SuccessfulCall(C)"), num(stats, "FailedCall(C)")
        wall = stats["_wall"] - hold / 1000
        print(f"call setups: target {rate}/s, {calls} calls held {hold} ms")
        print(f"  successful {ok}, failed {failed}, retransmissions {num(stats, 'Retransmissions(C)')}")
        print(f"  achieved {ok / max(wall, 0.001):.0f} setups/s; ha-pbx CPU {cpu:.1f} s = {cpu / max(ok, 1) * 1e6:.0f} us per call")
        extra = peak["rss"] - idle
        per = extra / peak["relays"] if peak["relays"] else 0
        import json, urllib.request
        time.sleep(1)
        after = json.load(urllib.request.urlopen(f"http://127.0.0.1:{pbx.http_port}/health", timeout=15))
        print(f"  after the run: {after['active_calls']} calls and {after['media_relays']} relays still held;"
              f" rsipstack: {after.get('sip_dialogs')} dialogs, {after.get('sip_transactions')} transactions,"
              f" {after.get('sip_finished_transactions')} finished, {after.get('sip_waiting_ack')} waiting for ACK")
        print(f"  overload shedding: {after.get('sip_shed_refused', 'n/a')} new requests refused with 503,"
              f" {after.get('sip_shed_dropped', 'n/a')} dropped; highest SIP queue sampled {peak.get('backlog', 'n/a')}")
        print(f"  RSS idle {idle / 1024:.1f} MiB; at {peak['relays']} concurrent relayed calls {peak['rss'] / 1024:.1f} MiB"
              f" ({per:.1f} KiB per call); highest RSS sampled during the run {peak['max'] / 1024:.1f} MiB")
        settle = int(os.environ.get("BENCH_SETTLE", "40"))
        if settle:
            time.sleep(settle)  # past rsipstack's 32 s transaction timers
            later = json.load(urllib.request.urlopen(f"http://127.0.0.1:{pbx.http_port}/health", timeout=15))
            print(f"  {settle} s later: RSS {pbx.rss_kib() / 1024:.1f} MiB; rsipstack: {later.get('sip_dialogs')} dialogs,"
                  f" {later.get('sip_transactions')} transactions, {later.get('sip_finished_transactions')} finished"
                  f" ({later.get('sip_finished_evicted', 'n/a')} pushed out by the bound)")
    finally:
        if uas and uas.poll() is None:
            # `timeout` and the sipp under it: a callee some calls never reached
            # would otherwise wait for them until the timeout, after the run
            os.killpg(uas.pid, signal.SIGKILL)
        pbx.stop()


if __name__ == "__main__":
    main()
