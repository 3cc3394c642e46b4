"""Digest details beyond the common MD5 case: SHA-256 (RFC 8760) when the PBX
is told to offer it, and `stale=true` when a device answers with a nonce that
has expired (the right password then gets a fresh challenge, not a refusal)."""
from __future__ import annotations

import time

from harness import sip as siplib


def _challenge(client: siplib.SipClient, user: str):
    aor = f"<sip:{user}@{client.remote[0]}:{client.remote[1]}>"
    uri = f"sip:{client.remote[0]}:{client.remote[1]}"
    call_id = siplib.rand_token(16) + "@digest"
    hdrs = [("Contact", f"<sip:{user}@{client.local[0]}:{client.local[1]}>"), ("Expires", "300")]
    r = client.request("REGISTER", uri, to=aor, from_=f"{aor};tag={client.tag}", call_id=call_id, extra=hdrs)
    assert r is not None and r.status == 401, r
    return r, uri, aor, call_id, hdrs


def _answer(client, uri, aor, call_id, hdrs, challenge: str, user: str, password: str):
    auth = siplib.digest_header(challenge, "REGISTER", uri, user, password)
    return client.request("REGISTER", uri, to=aor, from_=f"{aor};tag={client.tag}", call_id=call_id,
                          extra=hdrs + [("Authorization", auth)])


def test_sha256_offered_first_and_accepted(pbx_factory):
    pbx = pbx_factory(overrides={"sip": {"digest_algorithms": ["SHA-256", "MD5"]}}).start()
    with siplib.SipClient(pbx.host, pbx.sip_port) as c:
        r, uri, aor, call_id, hdrs = _challenge(c, "101")
        algos = [siplib.parse_auth_params(v).get("algorithm") for v in r.all("www-authenticate")]
        assert algos == ["SHA-256", "MD5"], r
        sha = r.all("www-authenticate")[0]
        ok = _answer(c, uri, aor, call_id, hdrs, sha, "101", pbx.passwords["101"])
        assert ok is not None and ok.status == 200, ok
        assert any("101@" in x for x in ok.contacts()), ok
    with siplib.SipClient(pbx.host, pbx.sip_port) as c:
        r, uri, aor, call_id, hdrs = _challenge(c, "101")
        bad = _answer(c, uri, aor, call_id, hdrs, r.all("www-authenticate")[0], "101", "not-the-password")
        assert bad is not None and bad.status == 403, bad


def test_md5_only_by_default(pbx):
    with siplib.SipClient(pbx.host, pbx.sip_port) as c:
        r, *_ = _challenge(c, "101")
        algos = [siplib.parse_auth_params(v).get("algorithm") for v in r.all("www-authenticate")]
        assert algos == ["MD5"], r


def test_expired_nonce_gets_stale_true(pbx_factory):
    pbx = pbx_factory(overrides={"sip": {"nonce_ttl_secs": 10}}).start()
    with siplib.SipClient(pbx.host, pbx.sip_port) as c:
        r, uri, aor, call_id, hdrs = _challenge(c, "101")
        old = r.get("www-authenticate")
        time.sleep(12)
        stale = _answer(c, uri, aor, call_id, hdrs, old, "101", pbx.passwords["101"])
        assert stale is not None and stale.status == 401, stale
        params = siplib.parse_auth_params(stale.get("www-authenticate") or "")
        assert params.get("stale", "").lower() == "true", stale
        assert params.get("nonce") != siplib.parse_auth_params(old).get("nonce")
        ok = _answer(c, uri, aor, call_id, hdrs, stale.get("www-authenticate"), "101", pbx.passwords["101"])
        assert ok is not None and ok.status == 200, ok
