"""The REGISTER hot path (issue 19): many challenges in flight from one
address all stay good (the nonce table once kept 64 per address, so a host
with more outstanding challenges got `stale=true` for the oldest), and a
retransmitted REGISTER gets the response already sent, not a second pass
(which would find its nonce count spent and answer 401); a retransmitted
first REGISTER gets the same 401 (the same nonce and To tag), made again
rather than kept, so sipp and phones see a retransmission of the challenge
they answered, not a second challenge."""
from __future__ import annotations

from harness import sip as siplib


def _challenges(c: siplib.SipClient, user: str, n: int):
    aor = f"<sip:{user}@{c.remote[0]}:{c.remote[1]}>"
    uri = f"sip:{c.remote[0]}:{c.remote[1]}"
    hdrs = [("Contact", f"<sip:{user}@{c.local[0]}:{c.local[1]}>"), ("Expires", "300")]
    out = []
    for i in range(n):
        call_id = siplib.rand_token(16) + f"@hot{i}"
        r = c.request("REGISTER", uri, to=aor, from_=f"{aor};tag={c.tag}", call_id=call_id, cseq=1, extra=hdrs)
        assert r is not None and r.status == 401, r
        out.append((call_id, r.get("www-authenticate")))
    return aor, uri, hdrs, out


def test_many_challenges_in_flight_from_one_address(pbx_factory):
    # one busy host: trusted, so the per-source flood limit stays out of it
    pbx = pbx_factory(overrides={"security": {"trusted_sources": ["127.0.0.1"]}}).start()
    with siplib.SipClient(pbx.host, pbx.sip_port) as c:
        aor, uri, hdrs, pending = _challenges(c, "101", 150)
        for call_id, challenge in pending:
            auth = siplib.digest_header(challenge, "REGISTER", uri, "101", pbx.passwords["101"])
            ok = c.request("REGISTER", uri, to=aor, from_=f"{aor};tag={c.tag}", call_id=call_id, cseq=2,
                           extra=hdrs + [("Authorization", auth)])
            assert ok is not None and ok.status == 200, f"{call_id}: {ok}"


def test_a_retransmitted_register_gets_the_same_200(pbx):
    with siplib.SipClient(pbx.host, pbx.sip_port) as c:
        aor, uri, hdrs, [(call_id, challenge)] = _challenges(c, "101", 1)
        auth = siplib.digest_header(challenge, "REGISTER", uri, "101", pbx.passwords["101"])
        data, branch = c.build("REGISTER", uri, to=aor, from_=f"{aor};tag={c.tag}", call_id=call_id, cseq=2,
                               extra=hdrs + [("Authorization", auth)])
        answers = []
        for _ in range(3):
            c.send_raw(data)
            m = c.recv_message(timeout=3)
            assert m is not None and m.is_response and branch in (m.get("via") or ""), m
            answers.append(m)
        assert [m.status for m in answers] == [200, 200, 200], [str(m) for m in answers]
        assert answers[0].get("to") == answers[1].get("to") == answers[2].get("to"), "one To tag: one response"
        # a new transaction (new branch) with the spent count is a replay: challenged again
        again, _ = c.build("REGISTER", uri, to=aor, from_=f"{aor};tag={c.tag}", call_id=call_id, cseq=3,
                           extra=hdrs + [("Authorization", auth)])
        c.send_raw(again)
        m = c.recv_message(timeout=3)
        assert m is not None and m.status == 401, m



def test_a_retransmitted_first_register_gets_the_same_challenge(pbx):
    with siplib.SipClient(pbx.host, pbx.sip_port) as c:
        aor = f"<sip:101@{c.remote[0]}:{c.remote[1]}>"
        uri = f"sip:{c.remote[0]}:{c.remote[1]}"
        hdrs = [("Contact", f"<sip:101@{c.local[0]}:{c.local[1]}>"), ("Expires", "300")]
        call_id = siplib.rand_token(16) + "@again"
        first, branch = c.build("REGISTER", uri, to=aor, from_=f"{aor};tag={c.tag}", call_id=call_id, cseq=1, extra=hdrs)

        def send_first():
            c.send_raw(first)
            m = c.recv_message(timeout=3)
            assert m is not None and m.status == 401 and branch in (m.get("via") or ""), m
            return m

        a, b = send_first(), send_first()
        assert a == b, f"a retransmission got another challenge:\n{a}\n{b}"
        assert ";tag=" in (a.get("to") or ""), a
        # another transaction of the same call (new branch): another challenge
        other, _ = c.build("REGISTER", uri, to=aor, from_=f"{aor};tag={c.tag}", call_id=call_id, cseq=1, extra=hdrs)
        c.send_raw(other)
        o = c.recv_message(timeout=3)
        assert o is not None and o.status == 401, o
        assert o.get("www-authenticate") != a.get("www-authenticate") and o.get("to") != a.get("to")
        # the challenge answered once: 200; a late copy of the first REGISTER
        # still gets the same 401, and the spent count stays spent
        auth = siplib.digest_header(a.get("www-authenticate"), "REGISTER", uri, "101", pbx.passwords["101"])
        ok = c.request("REGISTER", uri, to=aor, from_=f"{aor};tag={c.tag}", call_id=call_id, cseq=2,
                       extra=hdrs + [("Authorization", auth)])
        assert ok is not None and ok.status == 200, ok
        assert send_first() == a
        replay = c.request("REGISTER", uri, to=aor, from_=f"{aor};tag={c.tag}", call_id=call_id, cseq=3,
                           extra=hdrs + [("Authorization", auth)])
        assert replay is not None and replay.status == 401 and "stale=true" in (replay.get("www-authenticate") or "").lower(), replay
