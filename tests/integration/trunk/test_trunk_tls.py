"""Trunks over TLS, and SDES-SRTP on a trunk (the package's rig,
conftest.py): registering and calling over a verified TLS connection, a
certificate that does not verify, reconnecting after the provider drops the
connection, SRTP both ways, and offers with keys it cannot use."""
from __future__ import annotations

import re

import pytest

from harness import procs

from .common import (PSTN, SRTP_DID, SRTP_DIALLED, SRTP_SENT, SRTP_USER, TLS_DID, TLS_DIALLED, TLS_SENT, TLS_USER,
                     UNTRUSTED_DIALLED, UNTRUSTED_USER, assert_heard, assert_srtp_on_the_wire, call_both_ways,
                     health, registration, srtp_call, trunk_state)


@pytest.mark.timeout(120)
def test_tls_trunk_registers_and_calls_both_ways_over_tls(rig):
    """`transport: tls` with `tls_ca`: ha-pbx opens one TLS connection to the
    provider's TLS port, checks its certificate against the CA for the
    configured name (`localhost`), and REGISTERs, keeps alive and calls out
    over it; the provider's call to the trunk comes back over the same
    connection (its source is the provider's TLS port) and rings 102. Tones
    are heard both ways each time."""
    state = procs.wait_until(lambda: (s := registration(rig.pbx, "tls")).get("state") == "registered" and s, 20,
                             what="tls trunk registered in /health")
    assert state["last_error"] is None, state
    reg_ok = rig.provider.wait_line("REG-OK", lambda d: d["au"] == TLS_USER)
    assert reg_ok["dst"] == str(rig.provider.tls_port) and reg_ok["pr"] == "tls", reg_ok
    assert re.search(rf"trunk TLS connection up \(certificate verified\) trunk=tls server=127\.0\.0\.1:{rig.provider.tls_port}",
                     rig.pbx.log_text()), rig.pbx.log_tail()
    procs.wait_until(lambda: trunk_state(rig.pbx, "tls").get("reachable") == "up", 15, what="tls trunk up (OPTIONS)")
    # a call out: over TLS, with digest, strip/prepend; tones both ways
    n_ok = len(rig.provider.lines("OUT-OK"))
    call_both_ways(rig.ext["101"], rig.pstn, f"sip:{TLS_DIALLED}@127.0.0.1:{rig.pbx.sip_port}", seconds=4)
    ok = rig.provider.lines("OUT-OK")[n_ok:]
    assert len(ok) == 1 and ok[0]["pr"] == "tls" and ok[0]["dst"] == str(rig.provider.tls_port), ok
    assert ok[0]["au"] == TLS_USER and ok[0]["rU"] == TLS_SENT and ok[0]["fU"] == TLS_USER, ok
    assert_heard(rig.pstn, 440)
    assert_heard(rig.ext["101"], 1000)
    # a call in from the provider, over the trunk's own connection: the trunk's, rings 102
    calls_in = rig.pbx.log_text().count("call from the trunk trunk=tls")
    call_both_ways(rig.pstn, rig.ext["102"], f"sip:{TLS_DID}@{rig.provider.addr}", seconds=4)
    log = rig.pbx.log_text()
    assert log.count("call from the trunk trunk=tls") == calls_in + 1, rig.pbx.log_tail()
    assert re.search(rf"call from the trunk trunk=tls caller={PSTN} .*source=127\.0\.0\.1:{rig.provider.tls_port}", log), \
        rig.pbx.log_tail()
    assert trunk_state(rig.pbx, "tls")["last_caller"] == PSTN
    assert_heard(rig.ext["102"], 1000)
    assert_heard(rig.pstn, 440)
    # still the one connection it registered over
    assert log.count("trunk TLS connection up (certificate verified) trunk=tls") == 1, log


@pytest.mark.timeout(60)
def test_tls_trunk_whose_certificate_does_not_verify_sends_nothing(rig):
    """The same provider without `tls_ca`: its CA is in no trust store, so the
    handshake fails; the registration fails with an error saying so (/health,
    MQTT, the log naming the trunk), a call out over it gets 503, and not one
    SIP message of it reached the provider."""
    state = procs.wait_until(lambda: (s := registration(rig.pbx, "untrusted")).get("state") == "failed" and s, 20,
                             what="untrusted trunk failed in /health")
    assert "TLS: the certificate of `localhost` was refused: it is not signed by a trusted CA" in state["last_error"] \
        and "tls_ca" in state["last_error"], state
    assert re.search(r"trunk registration failed trunk=untrusted error=\"?TLS: the certificate of `localhost` was refused",
                     rig.pbx.log_text()), rig.pbx.log_tail()
    rig.mqtt.wait_for(lambda m: m.topic.endswith("/trunk/untrusted/state") and "not signed by a trusted CA" in m.payload,
                      10, what="the certificate error on MQTT")
    before = len(rig.provider.lines("INVITE"))
    res = rig.sipp.run(rig.sipp.scenario("uac_final.xml", FINAL=503), f"127.0.0.1:{rig.pbx.sip_port}",
                       service=UNTRUSTED_DIALLED, auth=("101", rig.pbx.passwords["101"]),
                       keys={"caller": "101", "rtp_port": procs.free_port("media")}, timeout_s=15)
    assert res.ok, res.summary()
    assert re.search(r"call out refused with 503: the provider cannot be reached caller=101 trunk=untrusted error=\"?TLS: "
                     r"the certificate of `localhost` was refused", rig.pbx.log_text()), rig.pbx.log_tail()
    assert len(rig.provider.lines("INVITE")) == before, rig.provider.lines("INVITE")[before:]
    assert not [line for line in rig.provider.log_text().splitlines() if UNTRUSTED_USER in line], \
        "a message of the untrusted trunk reached the provider"


@pytest.mark.timeout(90)
def test_tls_trunk_reconnects_and_registers_again_when_the_provider_drops_the_connection(rig):
    """The provider's side of the `tls` trunk's connection is reset (`ss -K`,
    as a provider restart or a NAT that forgot the flow would). ha-pbx notices
    at its next keep-alive or registration refresh, dials a new connection
    (certificate verified again), REGISTERs over it (the provider's
    registration named the connection that is gone), and a call in from the
    phone network reaches 102 over the new connection, tones heard both ways."""
    import subprocess
    procs.wait_until(lambda: registration(rig.pbx, "tls").get("state") == "registered", 20, what="tls trunk registered")
    port = rig.provider.tls_port
    mark, n_reg = len(rig.pbx.log_text()), len(rig.provider.lines("REG-OK"))
    killed = subprocess.run(["ss", "-K", "-t", "state", "established", f"( sport = :{port} )"], capture_output=True,
                            text=True, check=True)
    assert f"127.0.0.1:{port}" in killed.stdout, f"no connection of the tls trunk to reset:\n{killed.stdout}"
    # the next keep-alive (2 s) or registration refresh (3 s), whichever comes first, dials again
    procs.wait_until(lambda: "trunk TLS connection up (certificate verified) trunk=tls" in rig.pbx.log_text()[mark:],
                     15, what="the tls trunk's connection dialled again")
    reg = rig.provider.wait_line("REG-OK", lambda d: d["au"] == TLS_USER, timeout=15, after=n_reg)
    assert reg["pr"] == "tls" and reg["dst"] == str(port), reg
    state = procs.wait_until(lambda: (s := registration(rig.pbx, "tls")).get("state") == "registered" and s, 15,
                             what="tls trunk registered again")
    assert state["last_error"] is None, state
    calls_in = rig.pbx.log_text().count("call from the trunk trunk=tls")
    call_both_ways(rig.pstn, rig.ext["102"], f"sip:{TLS_DID}@{rig.provider.addr}", seconds=4)
    assert rig.pbx.log_text().count("call from the trunk trunk=tls") == calls_in + 1, rig.pbx.log_tail()
    assert_heard(rig.ext["102"], 1000)
    assert_heard(rig.pstn, 440)


@pytest.mark.timeout(120)
def test_srtp_trunk_encrypts_the_providers_leg_both_ways(rig):
    """A TLS trunk with `srtp: mandatory` and a PSTN phone (baresip) that
    speaks SDES-SRTP only (`mediaenc=srtp-mand`): a call out and a call in,
    tones heard both ways (the phone decrypts what the relay protected, the
    extension hears what the relay unprotected), and what crossed the wire
    toward the phone was SRTP, not the extension's G.711 tone."""
    state = procs.wait_until(lambda: (s := registration(rig.pbx, "srtp")).get("state") == "registered" and s, 20,
                             what="srtp trunk registered in /health")
    assert state["last_error"] is None, state
    n_ok = len(rig.provider.lines("OUT-OK"))
    wire = srtp_call(rig, rig.ext["101"], rig.pstn_srtp, f"sip:{SRTP_DIALLED}@127.0.0.1:{rig.pbx.sip_port}")
    ok = rig.provider.lines("OUT-OK")[n_ok:]
    assert len(ok) == 1 and ok[0]["pr"] == "tls" and ok[0]["au"] == SRTP_USER and ok[0]["rU"] == SRTP_SENT, ok
    assert_heard(rig.pstn_srtp, 440)
    assert_heard(rig.ext["101"], 1000)
    assert_srtp_on_the_wire(wire)
    # a call in: the provider offers RTP/SAVP with its key, 102 answers plain RTP
    calls_in = rig.pbx.log_text().count("call from the trunk trunk=srtp")
    wire = srtp_call(rig, rig.pstn_srtp, rig.ext["102"], f"sip:{SRTP_DID}@{rig.provider.addr}")
    assert rig.pbx.log_text().count("call from the trunk trunk=srtp") == calls_in + 1, rig.pbx.log_tail()
    assert_heard(rig.ext["102"], 1000)
    assert_heard(rig.pstn_srtp, 440)
    assert_srtp_on_the_wire(wire)


@pytest.mark.timeout(90)
def test_srtp_trunk_refuses_unusable_keys_with_488(rig):
    """Offers to the `srtp: mandatory` trunk through the provider that it
    cannot use: a broken key, a suite it does not speak, an MKI, and plain
    RTP. Each gets 488 with a log line naming why, and no relay stays."""
    procs.wait_until(lambda: registration(rig.pbx, "srtp").get("state") == "registered", 20, what="srtp trunk registered")
    key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"
    cases = [("1 AES_CM_128_HMAC_SHA1_80 inline:%%not-base64%%", "a=crypto: key-params: the key is not base64"),
             ("1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQF", "the key and salt are 6 bytes, not 30"),
             (f"1 AEAD_AES_256_GCM inline:{key}", "AEAD_AES_256_GCM\\\": not supported"),
             (f"1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^31|1:4", "an MKI is not supported")]
    for crypto, why in cases:
        before = rig.pbx.log_text().count("INVITE refused: unusable SDP offer")
        res = rig.sipp.run(rig.sipp.scenario("uac_crypto.xml", FROM=PSTN, CRYPTO=crypto, FINAL=488), rig.provider.addr,
                           service=SRTP_DID, keys={"rtp_port": procs.free_port("media")}, timeout_s=15)
        assert res.ok, res.summary()
        log = rig.pbx.log_text()
        assert log.count("INVITE refused: unusable SDP offer") == before + 1, rig.pbx.log_tail()
        assert why.replace("\\", "") in log.replace("\\", ""), f"{why!r} not in\n{rig.pbx.log_tail()}"
        assert key not in log, "a key reached the log"
    # plain RTP to a mandatory trunk
    res = rig.sipp.run(rig.sipp.scenario("uac_expect.xml", FROM=PSTN, FINAL=488), rig.provider.addr,
                       service=SRTP_DID, keys={"rtp_port": procs.free_port("media")}, timeout_s=15)
    assert res.ok, res.summary()
    assert "plain RTP, but this trunk has srtp: mandatory" in rig.pbx.log_text(), rig.pbx.log_tail()
    h = procs.wait_until(lambda: (h := health(rig.pbx))["active_calls"] == 0 and h["media_relays"] == 0 and h, 5,
                         what="no call and no relay left")
    assert h["media_relays"] == 0, h
