"""Registrar: REGISTER with digest (401 WWW-Authenticate, MD5, qop=auth) from
sipp, refusal of wrong passwords, banning of a source after repeated failures,
removal of all bindings (Contact: *, Expires: 0), several contacts per extension."""
from __future__ import annotations

import re

import pytest

from harness import flows, procs
from harness import sip as siplib


def _contact_expires(contact: str) -> int | None:
    m = re.search(r";\s*expires\s*=\s*(\d+)", contact, re.I)
    return int(m.group(1)) if m else None


def test_register_right_password_gets_200_listing_the_contact(pbx, sipp):
    port = procs.free_port()
    res = flows.sipp_register(sipp, pbx, "101", port=port, expires=600)
    assert res.ok, res.summary()
    challenge = [m for m in res.received() if m.status == 401][0]
    www = challenge.get("WWW-Authenticate") or ""
    params = siplib.parse_auth_params(www)
    assert www.lower().startswith("digest"), www
    assert params.get("realm") == "ha-pbx", www
    assert "auth" in [q.strip() for q in params.get("qop", "").split(",")], www
    assert params.get("algorithm", "MD5").upper() == "MD5", www
    ok = res.received()[-1]
    assert ok.status == 200
    contacts = ok.contacts()
    mine = [c for c in contacts if f"127.0.0.1:{port}" in c]
    assert mine, f"200 OK does not list the registered contact: {contacts}"
    exp = _contact_expires(mine[0])
    if exp is None and ok.get("expires"):
        exp = int(ok.get("expires"))
    assert exp is not None and 0 < exp <= 600, f"no expires for the contact: {mine[0]!r}"


def test_register_wrong_password_is_refused(pbx, sipp):
    res = flows.sipp_register(sipp, pbx, "101", port=procs.free_port(), password="wrong",
                              scenario="register_wrong.xml")
    assert res.ok, res.summary()
    assert res.received_statuses()[-1] in (401, 403), res.summary()
    # and the right-password scenario does not pass with a wrong password
    res = flows.sipp_register(sipp, pbx, "101", port=procs.free_port(), password="wrong")
    assert not res.ok, res.summary()
    # unknown extension is refused as well
    res = flows.sipp_register(sipp, pbx, "999", port=procs.free_port(), password="whatever",
                              scenario="register_wrong.xml")
    assert res.received_statuses() and res.received_statuses()[-1] in (401, 403, 404), res.summary()


@pytest.mark.timeout(240)
def test_source_is_banned_after_repeated_failures(pbx_factory, sipp):
    failures = 5
    pbx = pbx_factory(overrides={"security": {"ban_after_failures": failures,
                                              "ban_window_secs": 120,
                                              "ban_secs": 300}}).start()
    attacker_port = procs.free_port(host="127.0.0.2")
    answered = []
    for i in range(failures):
        res = flows.sipp_register(sipp, pbx, "101", port=attacker_port, password=f"guess{i}",
                                  local_ip="127.0.0.2", scenario="register_wrong.xml",
                                  name=f"attack-{i}", recv_timeout_ms=3000, timeout_s=12)
        answered.append(res.received_statuses())
        if not res.received_statuses():
            break
    assert answered[0] and answered[0][-1] in (401, 403), \
        f"first wrong attempts should be answered 401/403: {answered}"
    # now the source gets no answer at all, even with the right password
    res = flows.sipp_register(sipp, pbx, "101", port=attacker_port, local_ip="127.0.0.2",
                              name="banned", recv_timeout_ms=4000, timeout_s=12)
    assert not res.ok and res.received() == [], \
        f"banned source still gets answers: {res.summary()}"
    # a raw OPTIONS from the banned source goes unanswered too
    with siplib.SipClient(pbx.host, pbx.sip_port, local_host="127.0.0.2") as c:
        assert c.options(timeout=2.0) is None, "banned source still gets OPTIONS answered"
    # the real device on 127.0.0.1 still registers
    res = flows.sipp_register(sipp, pbx, "101", port=procs.free_port(), name="device")
    assert res.ok, res.summary()
    assert pbx.alive()


def test_unregister_all_with_star_contact(pbx, sipp):
    port = procs.free_port()
    res = flows.sipp_register(sipp, pbx, "102", port=port, expires=3600)
    assert res.ok, res.summary()
    res = flows.sipp_register(sipp, pbx, "102", port=procs.free_port(), scenario="unregister.xml")
    assert res.ok, res.summary()
    ok = res.received()[-1]
    left = [c for c in ok.contacts() if _contact_expires(c) not in (0, None) or c.strip() == "*"]
    assert not left, f"bindings left after Contact: * / Expires: 0: {ok.contacts()}"
    # the extension is now unreachable: a call to it gets 480
    res = sipp.run(sipp.scenario("uac_final.xml", FINAL=480), f"{pbx.host}:{pbx.sip_port}",
                   service="102", auth=("101", pbx.passwords["101"]),
                   keys={"caller": "101", "rtp_port": procs.free_port("media")}, timeout_s=20)
    assert res.ok, res.summary()


def test_six_contacts_for_one_extension_are_all_listed(pbx, sipp):
    ports = [procs.free_port() for _ in range(6)]
    last = None
    for i, port in enumerate(ports):
        last = flows.sipp_register(sipp, pbx, "104", port=port, expires=1800, name=f"dev{i}")
        assert last.ok, last.summary()
    contacts = last.received()[-1].contacts()
    for port in ports:
        hit = [c for c in contacts if f"127.0.0.1:{port}" in c]
        assert hit, f"contact :{port} missing from the 200 OK: {contacts}"
        exp = _contact_expires(hit[0])
        assert exp is not None and 0 < exp <= 1800, f"bad expires in {hit[0]!r}"
    # a query REGISTER (no Contact) lists the same six bindings
    with siplib.SipClient(pbx.host, pbx.sip_port) as c:
        q = c.register("104", pbx.passwords["104"], contacts=[], expires=None)
    assert q is not None and q.status == 200, q
    listed = q.contacts()
    assert all(any(f":{p}" in c for c in listed) for p in ports), listed


def test_register_over_tcp_with_python_client(pbx):
    """The same digest handshake over TCP (one connection)."""
    with siplib.SipClient(pbx.host, pbx.sip_port, transport="tcp") as c:
        r = c.register("103", pbx.passwords["103"], expires=300)
        assert r is not None and r.status == 200, r
        host, port = c.local
        assert any(f":{port}" in x for x in r.contacts()), r.contacts()


def _openssl_cert(d) -> tuple:
    import subprocess
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=ha-pbx-test",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def test_tls_with_configured_certificate(pbx_factory, workdir):
    """sip.tls {cert, key} from the config is served; OPTIONS and REGISTER work over
    TLS with the certificate verified (hostname 127.0.0.1 against its SAN)."""
    cert, key = _openssl_cert(workdir)
    pbx = pbx_factory(tls=True, tls_files=(cert, key)).start()
    with siplib.SipClient(pbx.host, pbx.tls_port, transport="tls", cafile=str(cert)) as c:
        r = c.options()
        assert r is not None and r.status == 200, r
        r = c.register("101", pbx.passwords["101"], expires=300)
        assert r is not None and r.status == 200, r


def test_tls_self_signed_certificate_is_generated(pbx_factory):
    """Without sip.tls, a tls:// listener gets a self-signed pair in data_dir/tls/
    whose SAN covers 127.0.0.1 and localhost: a client that trusts that file verifies it."""
    import subprocess
    pbx = pbx_factory(tls=True).start()
    cert = pbx.data_dir / "tls" / "cert.pem"
    assert cert.exists() and (pbx.data_dir / "tls" / "key.pem").exists()
    text = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-text"],
                          check=True, capture_output=True, text=True, timeout=30).stdout
    assert "IP Address:127.0.0.1" in text and "DNS:localhost" in text, text
    with siplib.SipClient(pbx.host, pbx.tls_port, transport="tls", cafile=str(cert)) as c:
        r = c.options()
        assert r is not None and r.status == 200, r
