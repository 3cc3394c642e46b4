"""Hostile and broken input must not crash or wedge the PBX.

Each corpus case (hostile_corpus.py, 50+ cases) is sent over UDP and over a
fresh TCP connection from 127.0.0.3; after each one the process must be alive
and a valid OPTIONS from 127.0.0.1 must still get 200 over UDP and TCP. (The
garbage comes from another address so that a PBX that bans garbage senders
is not penalised by its own liveness check.) One PBX serves the whole module."""
from __future__ import annotations

import socket
import time

import pytest

import hostile_corpus
from harness import procs
from harness import sip as siplib
from harness.pbx import Pbx

ATTACKER = "127.0.0.3"
CASES = hostile_corpus.corpus("127.0.0.1", 5060)  # names only; bytes rebuilt per PBX


@pytest.fixture(scope="module")
def hpbx(tmp_path_factory):
    reg = procs.ProcessRegistry()
    # a TLS listener too (self-signed pair made at start), for the Request-Line checks on every transport
    p = Pbx(tmp_path_factory.mktemp("hostile"), reg, tls=True)
    p.start()
    yield p
    reg.kill_all()


def _check_alive(pbx: Pbx, after: str) -> None:
    assert pbx.alive(), f"ha-pbx died after {after} (rc={pbx.proc.returncode})\n{pbx.log_tail()}"
    for transport in ("udp", "tcp"):
        with siplib.SipClient(pbx.host, pbx.sip_port, transport=transport) as c:
            r = c.options(timeout=5.0)
        assert r is not None and r.status == 200, \
            f"valid OPTIONS over {transport} got {r and r.start!r} after {after}\n{pbx.log_tail(40)}"


def _send_udp(pbx: Pbx, data: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((ATTACKER, 0))
        s.sendto(hostile_corpus.udp_payload(data), (pbx.host, pbx.sip_port))
        s.settimeout(0.15)
        try:
            while True:
                s.recvfrom(70000)  # drain whatever the PBX answers
        except OSError:
            pass


def _send_tcp(pbx: Pbx, data: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((ATTACKER, 0))
        s.settimeout(3)
        s.connect((pbx.host, pbx.sip_port))
        try:
            if data:
                s.sendall(data)
            s.settimeout(0.2)
            while s.recv(65536):
                pass
        except OSError:
            pass  # the PBX may close the connection on garbage: fine


@pytest.mark.parametrize("name", [n for n, _ in CASES])
def test_hostile_case(hpbx, name):
    data = dict(hostile_corpus.corpus(hpbx.host, hpbx.sip_port))[name]
    _send_udp(hpbx, data)
    _send_tcp(hpbx, data)
    _check_alive(hpbx, f"case {name!r}")


def test_tcp_half_message_then_stall(hpbx):
    """Connections that send half a message and then nothing must not block others."""
    stalled = []
    half = (f"INVITE sip:102@{hpbx.host}:{hpbx.sip_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/TCP {ATTACKER}:5999;branch=z9hG4bKstall\r\nFrom: <sip:x@y>;tag=1\r\n"
            "To: <sip:102@x>\r\nCall-ID: stall\r\nCSeq: 1 INVITE\r\nContent-Len").encode()
    try:
        for _ in range(5):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((ATTACKER, 0))
            s.settimeout(3)
            s.connect((hpbx.host, hpbx.sip_port))
            s.sendall(half)
            stalled.append(s)
        # a body that never comes: Content-Length promises more than is sent
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((ATTACKER, 0))
        s.settimeout(3)
        s.connect((hpbx.host, hpbx.sip_port))
        s.sendall(half.replace(b"Content-Len", b"Content-Length: 4000\r\n\r\nv=0\r\n"))
        stalled.append(s)
        time.sleep(0.5)
        _check_alive(hpbx, "six stalled TCP connections")
    finally:
        for s in stalled:
            s.close()
    _check_alive(hpbx, "closing the stalled connections")


def test_tcp_many_messages_in_one_write(hpbx):
    """30 valid OPTIONS sent back to back in one TCP write: each gets its 200."""
    with siplib.SipClient(hpbx.host, hpbx.sip_port, transport="tcp") as c:
        batch = b""
        cseqs = []
        for i in range(1, 31):
            data, _ = c.build("OPTIONS", f"sip:{hpbx.host}:{hpbx.sip_port}", cseq=i,
                              call_id=f"batch-{i}@test")
            batch += data
            cseqs.append(i)
        c.send_raw(batch)
        got = {}
        end = time.monotonic() + 10
        while time.monotonic() < end and len(got) < len(cseqs):
            m = c.recv_message(timeout=end - time.monotonic())
            if m is None:
                break
            if m.is_response:
                got[m.cseq()[0]] = m.status
    assert sorted(got) == cseqs, f"responses for CSeqs {sorted(got)} of 1..30"
    assert set(got.values()) == {200}, got
    _check_alive(hpbx, "a batch of 30 messages")


def test_udp_garbage_flood(hpbx):
    """3000 garbage datagrams as fast as possible (bounded), then business as usual."""
    import random
    rnd = random.Random(7)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((ATTACKER, 0))
        for i in range(3000):
            s.sendto(rnd.randbytes(rnd.randint(1, 1400)), (hpbx.host, hpbx.sip_port))
    time.sleep(0.5)
    _check_alive(hpbx, "a flood of 3000 garbage datagrams")


def test_after_corpus_register_still_works(hpbx):
    _check_alive(hpbx, "the whole corpus")
    for transport in ("udp", "tcp"):
        with siplib.SipClient(hpbx.host, hpbx.sip_port, transport=transport) as c:
            r = c.register("101", hpbx.passwords["101"], expires=120)
        assert r is not None and r.status == 200, f"REGISTER over {transport}: {r}"


def test_require_and_mangled_name_addrs_are_refused_on_every_transport(hpbx):
    """RFC 4475 3.3.5 (an unknown option tag in Require: 420 naming it in
    Unsupported), 3.1.2.14/15 (spaces inside <>, an unquoted comma in a
    display name: 400) and an INVITE without a From tag (400), on the wire
    over UDP and TCP."""
    for transport in ("udp", "tcp"):
        with siplib.SipClient(hpbx.host, hpbx.sip_port, transport=transport) as c:
            uri = f"sip:{hpbx.host}:{hpbx.sip_port}"
            r = c.request("OPTIONS", uri, extra=[("Require", "nothingSupportsThis, 100rel")], timeout=5.0)
            assert r is not None and r.status == 420, f"{transport}: {r and r.start!r}"
            assert r.get("unsupported") == "nothingSupportsThis, 100rel", f"{transport}: {r}"
            r = c.request("OPTIONS", uri, to=f"\"Watson, Thomas\" < {uri} >", timeout=5.0)
            assert r is not None and r.status == 400, f"{transport}: {r and r.start!r}"
            r = c.request("OPTIONS", uri, to=f"Watson, Thomas <{uri}>", timeout=5.0)
            assert r is not None and r.status == 400, f"{transport}: {r and r.start!r}"
            r = c.request("OPTIONS", uri, to=f"K\u00fcche Door <{uri}>", timeout=5.0)
            assert r is not None and r.status == 200, f"{transport}: a UTF-8 display name is taken: {r and r.start!r}"
            # no From tag (RFC 2543 style): 400, where it used to go unanswered
            r = c.request("INVITE", f"sip:101@{hpbx.host}:{hpbx.sip_port}", from_=f"<sip:probe@{hpbx.host}>", timeout=5.0)
            assert r is not None and r.status == 400, f"{transport}: INVITE without a From tag: {r and r.start!r}"
    _check_alive(hpbx, "Require and name-addr refusals")


# Request-Lines that RFC 3261 25.1 makes malformed, with the answer every
# transport must give (RFC 4475 3.1.2.x; the version: 8.2.2 / 21.5.7).
BAD_REQUEST_LINES = [
    ("OPTIONS {uri} SIP/1.0", 505),
    ("OPTIONS {uri} SIP/2.0x", 400),
    ("OPTIONS {uri} SIP/7.0", 505),
    ("OPT@ONS {uri} SIP/2.0", None),  # a bad method token: 400 or 501, the same everywhere
    ("OPTIONS sip:user name@127.0.0.1 SIP/2.0", 400),
    ("OPTIONS  {uri} SIP/2.0", 400),
    ("OPTIONS <{uri}> SIP/2.0", 400),
    ("OPTIONS sip:%zz%@127.0.0.1 SIP/2.0", 400),  # an escape that is not one
]


def _raw_options(line: str, via: str, uri: str) -> bytes:
    method = line.split(" ", 1)[0]
    return (f"{line.format(uri=uri)}\r\nVia: SIP/2.0/{via};branch=z9hG4bK{siplib.rand_token(10)};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag={siplib.rand_token(6)}\r\nTo: <sip:probe@127.0.0.1>\r\n"
            f"Call-ID: {siplib.rand_token(12)}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n").encode()


def test_malformed_request_lines_get_the_same_answer_on_every_transport(hpbx):
    """The raw Request-Line checks UDP datagrams get (505 for another
    version, 400 for spaces in the Request-URI or a Request-URI in <>, 400/501
    for what does not parse) apply to TCP, TLS and WebSocket messages too, and
    the connection stays usable: rsipstack closed a TCP/TLS connection on a
    message it could not parse and answered lenient parses (extra spaces) with 200."""
    from harness.wsclient import WsClient
    uri = f"sip:{hpbx.host}:{hpbx.sip_port}"
    answers: dict[str, dict[str, int | None]] = {}
    with siplib.SipClient(hpbx.host, hpbx.sip_port, transport="udp") as udp, \
            siplib.SipClient(hpbx.host, hpbx.sip_port, transport="tcp") as tcp, \
            siplib.SipClient(hpbx.host, hpbx.tls_port, transport="tls", cafile=str(hpbx.cert_path)) as tls:
        ws = WsClient(hpbx.host, hpbx.http_port)
        try:
            assert ws.upgraded, ws.status_line
            for line, _ in BAD_REQUEST_LINES:
                got = {}
                for name, client in (("udp", udp), ("tcp", tcp), ("tls", tls)):
                    try:
                        client.send_raw(_raw_options(line, f"{name.upper()} {client.local[0]}:{client.local[1]}", uri))
                        r = client.recv_message(timeout=3.0)
                    except OSError as e:  # the PBX closed the connection
                        r = None
                        got[name + " error"] = str(e)
                    got[name] = r and r.status
                ws.send_text(_raw_options(line, "WS h7x2.invalid", uri))
                text = ws.recv_text(3.0)
                r = siplib.parse_message(text.encode()) if text else None
                got["ws"] = r and r.status
                answers[line] = got
            for line, expected in BAD_REQUEST_LINES:
                got = answers[line]
                want = expected if expected is not None else got["udp"]
                assert want in (400, 501, 505), f"{line!r} over UDP got {got['udp']}"
                assert got == {"udp": want, "tcp": want, "tls": want, "ws": want}, \
                    f"{line!r}: {got} (every transport must answer {want})\n{answers}\n{hpbx.log_tail(30)}"
            # the TCP connection and the WebSocket still carry requests
            tcp.send_raw(_raw_options("OPTIONS {uri} SIP/2.0", f"TCP {tcp.local[0]}:{tcp.local[1]}", uri))
            r = tcp.recv_message(timeout=3.0)
            assert r is not None and r.status == 200, f"TCP connection after the bad lines: {r and r.start!r}"
            tls.send_raw(_raw_options("OPTIONS {uri} SIP/2.0", f"TLS {tls.local[0]}:{tls.local[1]}", uri))
            r = tls.recv_message(timeout=3.0)
            assert r is not None and r.status == 200, f"TLS connection after the bad lines: {r and r.start!r}"
            ws.send_text(_raw_options("OPTIONS {uri} SIP/2.0", "WS h7x2.invalid", uri))
            text = ws.recv_text(3.0)
            r = siplib.parse_message(text.encode()) if text else None
            assert r is not None and r.status == 200, f"WebSocket after the bad lines: {r and r.start!r}"
        finally:
            ws.close()
    _check_alive(hpbx, "malformed Request-Lines")


def test_an_invite_written_like_rfc4475_wsinv_rings_and_is_answered(hpbx):
    """RFC 4475 3.1.1.1 (`wsinv`) is valid SIP: header names in odd case and with
    spaces before the colon, folded values, a CSeq with leading zeros, and
    parameters with whitespace around `;` and `=` (`tag = 98asjd8`). A call made
    of such an INVITE over UDP is challenged, rings the callee and is answered
    like any other; ha-pbx answered 400 ("no From tag") before rsipstack's
    parameter parser took the whitespace (vendor/rsipstack/HA-PBX-PATCH.md 6)."""
    from harness.ua import UA, OutgoingInvite, make_sdp
    callee, caller = UA(hpbx, "102"), UA(hpbx, "101")
    try:
        r = callee.register(expires=120)
        assert r is not None and r.status == 200, r
        uri = f"sip:102@{hpbx.host}:{hpbx.sip_port}"
        call_id = f"wsinv.{siplib.rand_token(10)}@192.0.2.1"
        ftag = siplib.rand_token(8)
        local = f'"J Rosenberg \\\\\\""       <sip:101@{hpbx.host}:{hpbx.sip_port}>'

        def invite(cseq: int, auth: list[tuple[str, str]]) -> tuple[bytes, str]:
            hdrs = [("TO ", f"\r\n {uri} ;   x-wsinv    = 1918181833n"),
                    ("from   ", f"{local}\r\n  ;\r\n  tag = {ftag}"),
                    ("Call-ID", call_id),
                    ("cseq", f"{cseq:04d}\r\n  INVITE"),
                    ("s ", ""),
                    ("NewFangledHeader", "  newfangled value\r\n continued newfangled value"),
                    ("UnknownHeaderWithUnusualValue", ";;,,;;,;"),
                    ("m", f'"Quoted string \\"\\"" <{caller.contact_uri}> ; newparam =\r\n      newvalue ;\r\n  secondparam ; q = 0.33'),
                    ("Content-Type", "application/sdp")] + auth
            data, branch = caller.build("INVITE", uri, hdrs, make_sdp("127.0.0.1", 40000))
            # the Via folded and spaced as wsinv's (the harness still finds the branch in the answers)
            return data.replace(b"Via: SIP/2.0/UDP ", b"Via  : SIP  /   2.0\r\n /UDP\r\n    ", 1), branch

        data, branch = invite(9, [])
        caller.send(data)
        first = OutgoingInvite(caller, data, branch, uri, call_id, local, ftag, f"<{uri}>", 9, time.monotonic())
        r = first.wait_final(timeout=5.0)
        assert r is not None and r.status == 407, f"wsinv-style INVITE: {r and r.start!r}\n{hpbx.log_tail(20)}"
        auth = [("Proxy-Authorization", siplib.digest_header(r.get("proxy-authenticate") or "", "INVITE", uri,
                                                              "101", hpbx.passwords["101"]))]
        data, branch = invite(10, auth)
        caller.send(data)
        out = OutgoingInvite(caller, data, branch, uri, call_id, local, ftag, f"<{uri}>", 10, time.monotonic())
        inv = callee.wait_request("INVITE", timeout=5.0)
        assert inv is not None, f"the callee never rang\n{caller.trace_text(10)}\n{hpbx.log_tail(20)}"
        callee.respond(inv, 180)
        assert out.wait_provisional(180, timeout=5.0) is not None, caller.trace_text(10)
        callee.answer(inv, make_sdp("127.0.0.1", 40002))
        final = out.wait_final(timeout=5.0)
        assert final is not None and final.status == 200, f"{final and final.start!r}\n{caller.trace_text(10)}"
        assert b"m=audio " in final.body and tag_param(final.get("to")), final
        # the caller's display name and tag as the callee sees them: the call is 101's
        assert "sip:101@" in (inv.get("from") or ""), inv
        bye = out.dialog.bye()
        assert bye is not None and bye.status == 200, bye
    finally:
        caller.close()
        callee.close()
    _check_alive(hpbx, "a wsinv-style call")


def tag_param(value: str | None) -> bool:
    from harness.ua import tag_of
    return bool(tag_of(value))
