"""Digest auth against a hostile network (issue 17, items 1-3): a captured
Authorization/Proxy-Authorization header cannot be replayed (from another
address, or again from the same one), a success for one extension never
forgives guesses for another from the same address, and forged-source
REGISTERs with wrong passwords never ban the address they forge. Phones that
reuse a nonce with a rising nc keep working, a reused nc gets `stale=true`.

Addresses: 127.0.0.1 the real devices, 127.0.0.2 the attacker, 127.0.0.3 a
victim whose address the attacker forges (its socket never reads: a spoofer
does not receive what is sent to the address it forges)."""
from __future__ import annotations

import socket
import time

import pytest

from harness import sip as siplib

ATTACKER = "127.0.0.2"
VICTIM = "127.0.0.3"
SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=audio 17000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


def _registered(pbx, ext: str, host: str = "127.0.0.1") -> siplib.SipClient:
    """A device registered as `ext`, whose socket the PBX sends calls to."""
    c = siplib.SipClient(pbx.host, pbx.sip_port, local_host=host)
    r = c.register(ext, pbx.passwords[ext], expires=300)
    assert r is not None and r.status == 200, r
    return c


def _invite(c: siplib.SipClient, pbx, callee: str, auth: str | None = None, call_id: str | None = None):
    uri = f"sip:{callee}@{pbx.host}:{pbx.sip_port}"
    host, port = c.local
    extra = [("Contact", f"<sip:101@{host}:{port}>"), ("Content-Type", "application/sdp")]
    if auth:
        extra.append(("Proxy-Authorization", auth))
    r = c.request("INVITE", uri, to=f"<{uri}>", from_=f"<sip:101@{pbx.host}>;tag={c.tag}",
                  call_id=call_id or siplib.rand_token(16) + "@replay", extra=extra, body=SDP,
                  timeout=4.0)
    return r, uri


def _register_with(c: siplib.SipClient, pbx, ext: str, auth: str | None, *, contact_host: str,
                   expires: int = 300, call_id: str | None = None):
    uri = f"sip:{pbx.host}:{pbx.sip_port}"
    aor = f"<sip:{ext}@{pbx.host}:{pbx.sip_port}>"
    hdrs = [("Contact", f"<sip:{ext}@{contact_host}:{c.local[1]}>"), ("Expires", str(expires))]
    if auth:
        hdrs.append(("Authorization", auth))
    return c.request("REGISTER", uri, to=aor, from_=f"{aor};tag={c.tag}",
                     call_id=call_id or siplib.rand_token(16) + "@reg", extra=hdrs, timeout=4.0)


def _bindings(pbx, ext: str) -> list[str]:
    """The contacts the PBX holds for `ext` (a query REGISTER by the owner)."""
    with siplib.SipClient(pbx.host, pbx.sip_port) as c:
        r = c.register(ext, pbx.passwords[ext], contacts=[], expires=None)
    assert r is not None and r.status == 200, r
    return r.contacts()


# ----------------------------------------------------------------- item 1: replay
def test_invite_credentials_replayed_from_another_address_ring_nobody(pbx):
    callee, other = _registered(pbx, "102"), _registered(pbx, "103")
    try:
        with siplib.SipClient(pbx.host, pbx.sip_port) as caller:
            r, uri = _invite(caller, pbx, "102")
            assert r is not None and r.status == 407, r
            auth = siplib.digest_header(r.get("proxy-authenticate"), "INVITE", uri, "101", pbx.passwords["101"])
            caller.send_raw(caller.build("INVITE", uri, to=f"<{uri}>", from_=f"<sip:101@{pbx.host}>;tag={caller.tag}",
                                         extra=[("Contact", f"<sip:101@127.0.0.1:{caller.local[1]}>"),
                                                ("Content-Type", "application/sdp"), ("Proxy-Authorization", auth)],
                                         body=SDP)[0])
            assert callee.messages_within(4.0, "INVITE"), "the legitimate INVITE did not ring 102"
        # the captured header, from another address, in a new INVITE to another extension
        with siplib.SipClient(pbx.host, pbx.sip_port, local_host=ATTACKER) as attacker:
            r, _ = _invite(attacker, pbx, "103", auth=auth)
            assert r is not None and r.status == 407, f"replayed INVITE not challenged: {r}"
            params = siplib.parse_auth_params(r.get("proxy-authenticate") or "")
            assert params.get("stale", "false").lower() != "true", r
            # ... and to the same extension
            r, _ = _invite(attacker, pbx, "102", auth=auth)
            assert r is not None and r.status == 407, f"replayed INVITE not challenged: {r}"
        assert not other.messages_within(1.5, "INVITE"), "a replayed INVITE rang 103"
        assert not callee.messages_within(0.5, "INVITE"), "a replayed INVITE rang 102 again"
    finally:
        callee.close()
        other.close()
    assert pbx.alive()


def test_invite_credentials_replayed_from_the_same_address_are_spent(pbx):
    """Behind the same NAT as the caller: the same header (same nc) again, in a new
    INVITE, gets a stale challenge and rings nobody."""
    callee = _registered(pbx, "102")
    try:
        with siplib.SipClient(pbx.host, pbx.sip_port) as caller:
            r, uri = _invite(caller, pbx, "102")
            assert r is not None and r.status == 407, r
            auth = siplib.digest_header(r.get("proxy-authenticate"), "INVITE", uri, "101", pbx.passwords["101"])
            r, _ = _invite(caller, pbx, "102", auth=auth)
            assert callee.messages_within(4.0, "INVITE"), "the legitimate INVITE did not ring 102"
        with siplib.SipClient(pbx.host, pbx.sip_port) as neighbour:
            r, _ = _invite(neighbour, pbx, "102", auth=auth)
            assert r is not None and r.status == 407, f"replayed INVITE not challenged: {r}"
            params = siplib.parse_auth_params(r.get("proxy-authenticate") or "")
            assert params.get("stale", "").lower() == "true", r
        assert not callee.messages_within(1.5, "INVITE"), "the replayed INVITE rang 102 again"
    finally:
        callee.close()


def test_register_credentials_replayed_from_another_address_change_no_binding(pbx):
    with siplib.SipClient(pbx.host, pbx.sip_port) as phone:
        r = _register_with(phone, pbx, "101", None, contact_host="127.0.0.1")
        assert r is not None and r.status == 401, r
        uri = f"sip:{pbx.host}:{pbx.sip_port}"
        auth = siplib.digest_header(r.get("www-authenticate"), "REGISTER", uri, "101", pbx.passwords["101"])
        ok = _register_with(phone, pbx, "101", auth, contact_host="127.0.0.1")
        assert ok is not None and ok.status == 200, ok
        phone_port = phone.local[1]
    with siplib.SipClient(pbx.host, pbx.sip_port, local_host=ATTACKER) as attacker:
        r = _register_with(attacker, pbx, "101", auth, contact_host=ATTACKER)
        assert r is not None and r.status == 401, f"replayed REGISTER not challenged: {r}"
        # nor can the same header remove the phone's binding
        r = _register_with(attacker, pbx, "101", auth, contact_host="127.0.0.1", expires=0)
        assert r is not None and r.status == 401, f"replayed un-REGISTER not challenged: {r}"
    contacts = _bindings(pbx, "101")
    assert not any(ATTACKER in c for c in contacts), f"the attacker got a binding: {contacts}"
    assert any(f"127.0.0.1:{phone_port}" in c for c in contacts), f"the phone's binding went: {contacts}"


def test_digest_uri_must_be_the_request_uri(pbx):
    """A digest computed for one Request-URI is refused (400) in a request to another."""
    with siplib.SipClient(pbx.host, pbx.sip_port) as c:
        r, uri = _invite(c, pbx, "102")
        assert r is not None and r.status == 407, r
        other = f"sip:103@{pbx.host}:{pbx.sip_port}"
        auth = siplib.digest_header(r.get("proxy-authenticate"), "INVITE", other, "101", pbx.passwords["101"])
        r, _ = _invite(c, pbx, "102", auth=auth)
        assert r is not None and r.status == 400, r


def test_phones_reusing_a_nonce_with_rising_nc_keep_working(pbx):
    """REGISTER refreshes on the same Call-ID with the first nonce and nc 2, 3
    (as baresip and linphone do) get 200; a repeated nc gets stale=true, and the
    new nonce works."""
    with siplib.SipClient(pbx.host, pbx.sip_port) as c:
        call_id = siplib.rand_token(16) + "@refresh"
        r = _register_with(c, pbx, "101", None, contact_host="127.0.0.1", call_id=call_id)
        assert r is not None and r.status == 401, r
        challenge = r.get("www-authenticate")
        uri = f"sip:{pbx.host}:{pbx.sip_port}"
        for nc in (1, 2, 3):
            auth = siplib.digest_header(challenge, "REGISTER", uri, "101", pbx.passwords["101"], nc=nc)
            ok = _register_with(c, pbx, "101", auth, contact_host="127.0.0.1", call_id=call_id)
            assert ok is not None and ok.status == 200, f"nc={nc}: {ok}"
        auth = siplib.digest_header(challenge, "REGISTER", uri, "101", pbx.passwords["101"], nc=2)
        stale = _register_with(c, pbx, "101", auth, contact_host="127.0.0.1", call_id=call_id)
        assert stale is not None and stale.status == 401, stale
        assert siplib.parse_auth_params(stale.get("www-authenticate") or "").get("stale", "").lower() == "true", stale
        auth = siplib.digest_header(stale.get("www-authenticate"), "REGISTER", uri, "101", pbx.passwords["101"])
        ok = _register_with(c, pbx, "101", auth, contact_host="127.0.0.1", call_id=call_id)
        assert ok is not None and ok.status == 200, ok


# ----------------------------------------------------------------- item 2: ban bypass
def _guess(c: siplib.SipClient, pbx, ext: str, password: str):
    r = _register_with(c, pbx, ext, None, contact_host=c.local[0])
    if r is None or r.status != 401:
        return r
    uri = f"sip:{pbx.host}:{pbx.sip_port}"
    auth = siplib.digest_header(r.get("www-authenticate"), "REGISTER", uri, ext, password)
    return _register_with(c, pbx, ext, auth, contact_host=c.local[0])


def test_a_success_for_one_extension_does_not_forgive_guesses_for_another(pbx_factory):
    pbx = pbx_factory(overrides={"security": {"ban_after_failures": 5, "ban_window_secs": 120,
                                              "ban_secs": 300}}).start()
    with siplib.SipClient(pbx.host, pbx.sip_port, local_host=ATTACKER) as c:
        r = _guess(c, pbx, "103", pbx.passwords["103"])
        assert r is not None and r.status == 200, r
        for i in range(12):
            r = _guess(c, pbx, "101", f"guess{i}")
            assert r is not None and r.status == 403, f"guess {i}: {r}"
        # the right password, found after the ban started, is worth nothing now
        r = _guess(c, pbx, "101", pbx.passwords["101"])
        assert r is not None and r.status == 403, f"guessing went on after the limit: {r}"
        # the extension that authenticated from here still works from here
        r = _guess(c, pbx, "103", pbx.passwords["103"])
        assert r is not None and r.status == 200, r
    # and the real 101 elsewhere is untouched
    with siplib.SipClient(pbx.host, pbx.sip_port) as phone:
        r = phone.register("101", pbx.passwords["101"], expires=120)
        assert r is not None and r.status == 200, r
    assert "too many failed authentications for this user" in pbx.log_text()


# ----------------------------------------------------------------- item 3: spoofed bans
def _forge(pbx, data: bytes) -> None:
    """Send from the victim's address; never read what comes back."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((VICTIM, 0))
        s.sendto(data, (pbx.host, pbx.sip_port))


def test_forged_source_failures_do_not_ban_the_victim(pbx_factory):
    failures = 5
    pbx = pbx_factory(overrides={"security": {"ban_after_failures": failures, "ban_window_secs": 120,
                                              "ban_secs": 300}}).start()
    uri = f"sip:{pbx.host}:{pbx.sip_port}"
    aor = f"<sip:101@{pbx.host}:{pbx.sip_port}>"
    forger = siplib.SipClient(pbx.host, pbx.sip_port, local_host=VICTIM)  # builds; its socket never reads
    try:
        with siplib.SipClient(pbx.host, pbx.sip_port, local_host=ATTACKER) as real:
            for i in range(failures * 3):
                # a nonce the attacker did receive (at its own address), a made-up
                # one, and none at all
                r = _register_with(real, pbx, "101", None, contact_host=ATTACKER)
                assert r is not None and r.status == 401, r
                for challenge in (r.get("www-authenticate"),
                                  'Digest realm="ha-pbx", nonce="6760d2a1.1.00112233445566778899aabb", qop="auth"'):
                    auth = siplib.digest_header(challenge, "REGISTER", uri, "101", f"guess{i}")
                    data, _ = forger.build("REGISTER", uri, to=aor, from_=f"{aor};tag=f{i}",
                                           extra=[("Contact", f"<sip:101@{VICTIM}:5060>"),
                                                  ("Authorization", auth)])
                    _forge(pbx, data)
                data, _ = forger.build("REGISTER", uri, to=aor, from_=f"{aor};tag=g{i}",
                                       extra=[("Contact", f"<sip:101@{VICTIM}:5060>")])
                _forge(pbx, data)
        time.sleep(0.5)
        # the real phone at the forged address registers and answers OPTIONS
        with siplib.SipClient(pbx.host, pbx.sip_port, local_host=VICTIM) as victim:
            r = victim.register("101", pbx.passwords["101"], expires=300)
            assert r is not None and r.status == 200, f"the victim was banned by forged failures: {r}"
            assert victim.options(timeout=2.0) is not None
        assert "source ignored" not in pbx.log_text()
    finally:
        forger.close()


@pytest.mark.timeout(120)
def test_wrong_passwords_from_the_real_source_still_ban_it(pbx_factory):
    """The counterpart: failures on nonces the source did receive still count."""
    pbx = pbx_factory(overrides={"security": {"ban_after_failures": 4, "ban_window_secs": 120,
                                              "ban_secs": 300}}).start()
    with siplib.SipClient(pbx.host, pbx.sip_port, local_host=VICTIM) as c:
        statuses = [getattr(_guess(c, pbx, f"10{i % 4 + 1}", "wrong"), "status", None) for i in range(4)]
        assert statuses == [403] * 4, statuses
        assert c.options(timeout=2.0) is None, "a source with 4 failures is still answered"


# ----------------------------------------------------------------- API tokens (item 9)
def _api_get(pbx, token: str | None, source: str) -> tuple[int, dict]:
    import http.client
    import json
    conn = http.client.HTTPConnection(pbx.host, pbx.http_port, timeout=5, source_address=(source, 0))
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        conn.request("GET", "/api/calls", headers=headers)
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"{}")
    finally:
        conn.close()


def test_wrong_api_tokens_are_limited_per_address(pbx_factory):
    token = "a-long-and-right-api-token"
    pbx = pbx_factory(overrides={"http": {"api_token": token},
                                 "security": {"ban_after_failures": 5, "ban_window_secs": 120,
                                              "ban_secs": 300}}).start()
    statuses = [_api_get(pbx, f"guess{i}", ATTACKER)[0] for i in range(5)]
    assert statuses == [401] * 5, statuses
    status, body = _api_get(pbx, "guess-more", ATTACKER)
    assert status == 429, (status, body)
    # guessing on tells nothing: the right token from there is refused too
    assert _api_get(pbx, token, ATTACKER)[0] == 429
    # the right token from elsewhere is unaffected, as are many right requests
    for _ in range(20):
        status, body = _api_get(pbx, token, "127.0.0.1")
        assert status == 200 and "calls" in body, (status, body)
