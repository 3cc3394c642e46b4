"""A retransmitted first REGISTER must get the same 401 (same nonce and To
tag) however many challenges went out in between: sends N distinct first
REGISTERs (no credentials) from one trusted socket, then the same N datagrams
again, and compares the two 401s per Call-ID byte for byte. Prints how many
differ (sipp aborts such a call: `UnexpectedMessage`) and the PBX's CPU per
round (the second round is all retransmissions).

usage: python3 bench/retransmit_challenge.py [N]   (HA_PBX_BIN= another binary)"""
import re
import socket
import sys
import time

from common import Pbx

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
pbx = Pbx(2000, security="ban_after_failures: 1000000, max_calls_per_extension: 100000, trusted_sources: [127.0.0.1]").start()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8<<20)
lp = s.getsockname()[1]
def req(i):
    u = 1000 + i % 2000
    return (f"REGISTER sip:127.0.0.1:{pbx.sip_port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lp};branch=z9hG4bK-r-{i}-0;rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:{u}@127.0.0.1>;tag=t{i}\r\nTo: <sip:{u}@127.0.0.1>\r\nCall-ID: {i}-repro@127.0.0.1\r\n"
            f"CSeq: 1 REGISTER\r\nContact: <sip:{u}@127.0.0.1:5999>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n").encode()
got = {}
def drain(until):
    s.settimeout(0.05)
    while time.time() < until:
        try: d, _ = s.recvfrom(65536)
        except socket.timeout: continue
        cid = re.search(rb"Call-ID: (\S+)", d).group(1)
        got.setdefault(cid, []).append(d)
try:
    for rnd in range(2):
        c0 = pbx.cpu_seconds()
        for i in range(N):
            s.sendto(req(i), ("127.0.0.1", pbx.sip_port))
            if i % 200 == 199: drain(time.time() + 0.02)
        drain(time.time() + 3)
        print("round", rnd, "pbx cpu", round(pbx.cpu_seconds() - c0, 2), "s")
    diff = sum(1 for v in got.values() if len(set(v)) > 1)
    print("calls", len(got), "answers", sum(map(len, got.values())), "calls with differing 401s", diff)
    bad = [v for v in got.values() if len(set(v)) > 1][:1]
    for v in bad: print(b"\n---\n".join(set(v)).decode())
finally:
    pbx.stop()
