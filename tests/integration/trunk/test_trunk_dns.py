"""A trunk whose server is found by DNS SRV (RFC 3263), with failover
between the targets and the A record as the fallback. Its own provider,
refuser, dnsmasq and ha-pbx, in a network namespace of its own (not the
package's rig)."""
from __future__ import annotations

import re

import pytest

from harness import procs
from harness.baresip import Baresip
from harness.dns import Dnsmasq
from harness.kamailio import Provider, Refuser
from harness.pbx import Pbx

from .common import (CALLER_ID, DID, DIALLED, PSTN, PSTN_PW, SENT, TRUNK_PW, TRUNK_USER, assert_heard,
                     call_both_ways, trunk_state)


DOMAIN = "trunk.test"  # served by the test's own dnsmasq, in the test's namespace only


@pytest.mark.netns(resolv_conf="nameserver 127.0.0.1\noptions timeout:1 attempts:2\n")
@pytest.mark.timeout(120)
def test_server_found_by_dns_srv_with_failover_then_a_fallback(workdir, registry, signals):
    """RFC 3263 against a real DNS server: dnsmasq on 127.0.0.1:53 of this
    test's namespace (its /etc/resolv.conf names it) serves `_sip._udp.trunk.test`
    with two targets: priority 10, a server answering 503 (a Kamailio), and
    priority 20, the provider. The trunk (`server: trunk.test`, no port)
    registers through the second after the first failed, calls out through it
    (tones heard both ways), takes a call in from it as the trunk's, and, when
    the SRV records are gone, follows the domain's A record to port 5060 at its
    next re-registration (TTL 2 s)."""
    provider = Provider(workdir, registry, users={TRUNK_USER: TRUNK_PW, PSTN: PSTN_PW}, trunk=TRUNK_USER, pstn=PSTN,
                        extra_ports=(5060,)).start()
    refuser = Refuser(workdir, registry).start()
    srv_name = f"_sip._udp.{DOMAIN}"
    hosts = [(f"sip1.{DOMAIN}", "127.0.0.1"), (f"sip2.{DOMAIN}", "127.0.0.1"), (DOMAIN, "127.0.0.1")]
    dns = Dnsmasq(workdir, registry, domain=DOMAIN, ttl=2).serve(
        srv=[(srv_name, f"sip1.{DOMAIN}", refuser.port, 10, 0), (srv_name, f"sip2.{DOMAIN}", provider.port, 20, 0)],
        hosts=hosts)
    trunks = [{"name": "srv", "server": DOMAIN, "username": TRUNK_USER, "password": TRUNK_PW, "caller_id": CALLER_ID,
               "inbound": "101", "expires_secs": 6, "keepalive_secs": 0}]
    routes = [{"prefix": "0", "trunk": "srv", "strip": 1, "prepend": "+49", "extensions": ["101"]}]
    pbx = Pbx(workdir / "pbx", registry, overrides={"trunks": trunks, "outbound_routes": routes}).start()
    ext = Baresip(workdir, registry, "101", user="101", domain=f"127.0.0.1:{pbx.sip_port}",
                  password=pbx.passwords["101"], source=signals["tone440"]).start()
    pstn = Baresip(workdir, registry, "pstn", user=PSTN, domain=provider.addr, password=PSTN_PW,
                   source=signals["tone1000"]).start()
    try:
        # the priority-10 target refused (503), the priority-20 one holds the registration
        state = procs.wait_until(lambda: (s := trunk_state(pbx, "srv")).get("registration", {}).get("state")
                                 == "registered" and s, 20, what="trunk registered through SRV")
        assert state["server"] == f"127.0.0.1:{provider.port}", state
        assert state["server_via"].startswith(f"SRV {srv_name} priority 20 weight 0: sip2.{DOMAIN}:"), state
        assert sorted(state["resolved"]) == sorted([f"127.0.0.1:{refuser.port}", f"127.0.0.1:{provider.port}"]), state
        assert refuser.methods()[:1] == ["REGISTER"], refuser.log_tail()
        reg_ok = provider.wait_line("REG-OK", lambda d: d["au"] == TRUNK_USER)
        assert reg_ok["dst"] == str(provider.port), reg_ok
        log = pbx.log_text()
        assert "trunk server failed: trying the next target" in log and "503" in log, log[-3000:]
        # a call out goes to the target in use, with digest and caller ID
        for phone in (ext, pstn):
            phone.wait_registered(15)
        n_ok = len(provider.lines("OUT-OK"))
        call_both_ways(ext, pstn, f"sip:{DIALLED}@127.0.0.1:{pbx.sip_port}", seconds=4)
        out = provider.lines("OUT-OK")[n_ok:]
        assert out and out[0]["dst"] == str(provider.port) and out[0]["rU"] == SENT, out
        assert out[0]["fU"] == CALLER_ID and out[0]["au"] == TRUNK_USER, out
        assert "INVITE" not in refuser.methods(), refuser.log_tail()
        assert_heard(pstn, 440)
        assert_heard(ext, 1000)
        # a call in from the provider's SRV target is the trunk's (no digest): it rings `inbound`
        calls_in = pbx.log_text().count("call from the trunk")
        call_both_ways(pstn, ext, f"sip:{DID}@{provider.addr}", seconds=4)
        assert pbx.log_text().count("call from the trunk") == calls_in + 1, pbx.log_tail()
        assert re.search(rf"call from the trunk trunk=srv caller={PSTN} .*source=127\.0\.0\.1:{provider.port}",
                         pbx.log_text()), pbx.log_tail()
        assert_heard(ext, 1000)
        # the SRV records are gone: A of the domain, port 5060, at the next refresh
        n = len(provider.lines("REG-OK"))
        dns.serve(hosts=hosts)
        provider.wait_line("REG-OK", lambda d: d["au"] == TRUNK_USER and d["dst"] == "5060", timeout=15, after=n)
        state = procs.wait_until(lambda: (s := trunk_state(pbx, "srv")).get("server") == "127.0.0.1:5060" and s, 5,
                                 what="/health shows the A fallback")
        assert state["server_via"] == f"A/AAAA {DOMAIN} port 5060 (no SRV {srv_name})", state
        assert state["registration"]["state"] == "registered", state
    except BaseException:
        for name, p in (("provider", provider), ("refuser", refuser), ("dnsmasq", dns), ("ha-pbx", pbx),
                        ("101", ext), ("pstn", pstn)):
            print(f"----- {name} log tail -----\n{p.log_tail()}")
        raise
