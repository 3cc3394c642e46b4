"""SIP trunks against a real provider: a Kamailio configured by the test as
the phone provider (registrar with digest, 407 on the calls ha-pbx places,
routing to a "PSTN phone", a baresip registered there). Extensions are
baresips on ha-pbx. What ha-pbx sent is read at the provider (its xlog
lines), audio by its content (each side's tone). Here: registration, calls
in and out, toll fraud, the keep-alive, the trunks as Home Assistant devices
and un-registering at stop. The same rig (conftest.py) serves
test_trunk_media.py (early media, session refreshes), test_trunk_routes.py
(click-to-dial, announcements, the agent's DID, forwards, failover) and
test_trunk_tls.py (TLS and SRTP); test_trunk_dns.py starts its own."""
from __future__ import annotations

import json
import re
import time

import pytest

from harness import procs

from .common import (BAD_USER, CALLER_ID, DID, DIALLED, PSTN, SENT, TRUNK_USER, assert_heard, call_both_ways,
                     registration, trunk_state)


def _expect(rig, callee: str, code: int, *, claimed: str, local_ip: str = "127.0.0.1", port: int | None = None):
    scenario = rig.sipp.scenario("uac_expect.xml", FROM=claimed, FINAL=code)
    res = rig.sipp.run(scenario, f"127.0.0.1:{rig.pbx.sip_port}", service=callee, local_ip=local_ip, port=port,
                       keys={"rtp_port": procs.free_port("media")}, timeout_s=15)
    assert res.ok, res.summary()


@pytest.mark.timeout(60)
def test_registers_with_digest_and_refreshes_before_expiry(rig):
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15,
                     what="trunk registered in /health")
    first = rig.provider.wait_line("REG-OK", lambda d: d["au"] == TRUNK_USER)
    assert first["tU"] == TRUNK_USER and f"{TRUNK_USER}@127.0.0.1:{rig.pbx.sip_port}" in first["contact"], first
    # the first REGISTER came without credentials and was challenged (401), then digest
    tries = [d for d in rig.provider.lines("REGISTER") if d["fU"] == TRUNK_USER]
    assert tries[0]["au"] == "<null>" and tries[1]["au"] == TRUNK_USER, tries[:2]
    # expires_secs 6: refreshed within about 3 s, on its own
    n = len(rig.provider.lines("REG-OK"))
    rig.provider.wait_line("REG-OK", lambda d: d["au"] == TRUNK_USER, timeout=8, after=n)
    state = registration(rig.pbx, "provider")
    assert state["state"] == "registered" and state["last_error"] is None, state


@pytest.mark.timeout(60)
def test_wrong_password_shows_the_error_and_does_not_loop(rig):
    state = procs.wait_until(lambda: (s := registration(rig.pbx, "wrongpw")).get("state") == "failed" and s, 15,
                             what="wrongpw failed in /health")
    assert "401" in state["last_error"], state
    assert state["next_attempt_in"] >= 20, state
    assert "trunk registration failed" in rig.pbx.log_text()
    tries = lambda: [d for d in rig.provider.lines("REGISTER") if d["fU"] == BAD_USER]  # noqa: E731
    assert len(tries()) == 2, tries()  # unauthenticated, then digest once: no more
    time.sleep(3)  # nothing to wait for: the absence of a retry loop
    assert len(tries()) == 2, tries()
    assert not [d for d in rig.provider.lines("REG-OK") if d["au"] == BAD_USER]


@pytest.mark.timeout(90)
def test_call_out_with_digest_caller_id_and_strip_prepend(rig):
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15, what="registered")
    n_ch, n_ok = len(rig.provider.lines("OUT-CHALLENGE")), len(rig.provider.lines("OUT-OK"))
    call_both_ways(rig.ext["101"], rig.pstn, f"sip:{DIALLED}@127.0.0.1:{rig.pbx.sip_port}")
    challenged = rig.provider.lines("OUT-CHALLENGE")[n_ch:]
    assert challenged and challenged[0]["rU"] == SENT, challenged
    ok = rig.provider.lines("OUT-OK")[n_ok:]
    assert len(ok) == 1, ok
    assert ok[0]["au"] == TRUNK_USER, ok  # digest with the trunk's credentials
    assert ok[0]["rU"] == SENT, ok  # strip 1, prepend +49
    assert ok[0]["fU"] == CALLER_ID and CALLER_ID in ok[0]["pai"], ok  # caller ID
    assert_heard(rig.pstn, 440)
    assert_heard(rig.ext["101"], 1000)


@pytest.mark.timeout(90)
def test_call_in_to_a_did_rings_its_extension_with_the_callers_number(rig):
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15, what="registered")
    n = len(rig.provider.lines("CALL-TO-TRUNK"))
    mark = len(rig.ext["102"].log_text())
    call_both_ways(rig.pstn, rig.ext["102"], f"sip:{DID}@{rig.provider.addr}")
    assert rig.provider.lines("CALL-TO-TRUNK")[n:][0]["did"] == DID
    # the provider sent the INVITE to our registered Contact, the DID only in To;
    # 102 is shown the caller's number
    seen = rig.ext["102"].log_text()[mark:]
    assert re.search(rf"From: [^\r\n]*<sip:{re.escape(PSTN)}@", seen), seen[:3000]
    assert trunk_state(rig.pbx, "provider")["last_caller"] == PSTN
    # and Home Assistant gets it as the call's `caller`
    rig.mqtt.wait_for(lambda m: m.topic.endswith("/event") and f'"caller":"{PSTN}"' in m.payload
                      and '"callee":"102"' in m.payload, 10, what="MQTT event with the caller's number")
    assert_heard(rig.ext["102"], 1000)
    assert_heard(rig.pstn, 440)


@pytest.mark.timeout(60)
def test_ip_trunk_accepts_its_host_only(rig):
    # from the IP trunk's host: no digest, routed to its `inbound` (103, not registered: 480)
    _expect(rig, "4930555", 480, claimed=PSTN, port=rig.ip_host_port)
    assert "call from the trunk" in rig.pbx.log_text()
    # the same INVITE from another loopback address: an unknown device, challenged
    _expect(rig, "4930555", 407, claimed=PSTN, local_ip="127.0.0.2", port=rig.ip_host_port)


@pytest.mark.timeout(90)
def test_toll_fraud_is_refused_and_nothing_reaches_the_provider(rig):
    before = len(rig.provider.lines("INVITE"))
    trunk_calls = rig.pbx.log_text().count("call from the trunk")
    # an unauthenticated INVITE to an external number
    _expect(rig, DIALLED, 407, claimed="101")
    # an extension not in the route's `extensions`
    res = rig.sipp.run(rig.sipp.scenario("uac_final.xml", FINAL=403), f"127.0.0.1:{rig.pbx.sip_port}",
                       service=DIALLED, auth=("102", rig.pbx.passwords["102"]),
                       keys={"caller": "102", "rtp_port": procs.free_port("media")}, timeout_s=15)
    assert res.ok, res.summary()
    assert "not in this outbound route's `extensions`" in rig.pbx.log_text()
    # a number no route matches
    res = rig.sipp.run(rig.sipp.scenario("uac_final.xml", FINAL=404), f"127.0.0.1:{rig.pbx.sip_port}",
                       service="9123", auth=("101", rig.pbx.passwords["101"]),
                       keys={"caller": "101", "rtp_port": procs.free_port("media")}, timeout_s=15)
    assert res.ok, res.summary()
    # a REGISTER-less device claiming the trunk's user, from another address and another port
    _expect(rig, DID, 407, claimed=TRUNK_USER, local_ip="127.0.0.2")
    _expect(rig, TRUNK_USER, 407, claimed=TRUNK_USER)
    assert rig.pbx.log_text().count("call from the trunk") == trunk_calls
    assert len(rig.provider.lines("INVITE")) == before, rig.provider.lines("INVITE")[before:]


@pytest.mark.timeout(60)
def test_options_keepalive_shows_up_and_down(rig):
    procs.wait_until(lambda: trunk_state(rig.pbx, "provider").get("reachable") == "up", 15, what="provider up")
    probes = rig.provider.wait_line("OPTIONS", lambda d: d["fU"] == TRUNK_USER)
    assert probes["src"] == f"127.0.0.1:{rig.pbx.sip_port}", probes
    procs.wait_until(lambda: trunk_state(rig.pbx, "iptrunk").get("reachable") == "down", 15, what="iptrunk down")
    assert "trunk down" in rig.pbx.log_text() and "trunk up" in rig.pbx.log_text()
    assert trunk_state(rig.pbx, "wrongpw").get("reachable") is None  # keepalive_secs: 0


@pytest.mark.timeout(60)
def test_trunks_are_home_assistant_devices(rig):
    """Each trunk is an MQTT-discovered device whose retained state follows
    /health: registration (none for the IP trunk), the provider's
    reachability (only with the keep-alive), the last caller."""
    def states() -> dict:
        got = rig.broker.retained("ha_pbx/trunk/+/state")
        return {t.split("/")[2]: json.loads(p) for t, p in got.items() if p}
    s = procs.wait_until(lambda: (s := states()).get("provider", {}).get("registration") == "registered"
                         and s.get("wrongpw", {}).get("registration") == "failed"
                         and s.get("iptrunk", {}).get("reachable") == "down" and s, 20,
                         what="trunk states on MQTT")
    assert "401" in s["wrongpw"]["last_error"], s
    assert s["provider"]["reachable"] == "up" and s["wrongpw"]["reachable"] is None, s
    assert s["iptrunk"]["registration"] is None, s
    assert s["provider"]["last_caller"] == trunk_state(rig.pbx, "provider").get("last_caller"), s
    configs = {t.split("/")[2]: json.loads(p) for t, p in rig.broker.retained("homeassistant/device/+/config").items()
               if "_trunk_" in t and p}
    entities = {dev.split("_trunk_")[1]: sorted(c["cmps"]) for dev, c in configs.items()}
    assert entities == {"provider": ["last_caller", "reachable", "registration"],
                        "wrongpw": ["last_caller", "registration"],
                        "iptrunk": ["last_caller", "reachable"],
                        "tls": ["last_caller", "reachable", "registration"],
                        "untrusted": ["last_caller", "registration"],
                        "srtp": ["last_caller", "registration"],
                        "flaky": ["last_caller"]}, entities
    assert configs[next(d for d in configs if d.endswith("_provider"))]["dev"]["name"] == "Trunk provider"
    devices = json.loads(rig.broker.retained("ha_pbx/devices")["ha_pbx/devices"])
    assert {d for d in devices if "_trunk_" in d} == set(configs), devices


@pytest.mark.timeout(60)
def test_stopping_unregisters_the_trunk(rig):
    """Last in this package (conftest.py orders it: it stops the rig's ha-pbx): on SIGTERM a
    registered trunk sends REGISTER with Expires: 0, digest-authenticated,
    and the provider takes the binding back, so calls stop going to an
    address that no longer answers."""
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15,
                     what="trunk registered in /health")
    n_ok = len(rig.provider.lines("REG-OK"))
    rc = rig.pbx.stop(grace=10)
    assert rc == 0, f"ha-pbx exit status {rc}\n{rig.pbx.log_tail()}"
    gone = [d for d in rig.provider.lines("REG-OK")[n_ok:] if d["au"] == TRUNK_USER and d["expires"] == "0"]
    assert gone, f"no un-REGISTER reached the provider: {rig.provider.lines('REG-OK')[n_ok:]}\n{rig.pbx.log_tail()}"
    assert "trunk unregistered" in rig.pbx.log_text()
