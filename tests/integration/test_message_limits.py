"""Message size and version limits on every transport (issue 17, items 8 and 9):
UDP datagrams are read whole (never cut at 8 KB and processed truncated),
`security.max_message_bytes` counts the whole message on UDP and TCP, a request
over it gets 513 Message Too Large, and a request that is not SIP/2.0 gets 505."""
from __future__ import annotations

import socket
import time

import pytest

from harness import sip as siplib


def _options(c: siplib.SipClient, pbx, *, pad_header: int = 0, body: bytes = b"", version: str = "SIP/2.0"):
    uri = f"sip:{pbx.host}:{pbx.sip_port}"
    extra = [("Accept", "application/sdp")]
    if pad_header:
        extra.append(("X-Pad", "p" * pad_header))
    if body:
        extra.append(("Content-Type", "text/plain"))
    data, branch = c.build("OPTIONS", uri, extra=extra, body=body)
    if version != "SIP/2.0":
        data = data.replace(b" SIP/2.0\r\n", f" {version}\r\n".encode(), 1)
    c.send_raw(data)
    end = time.monotonic() + 3.0
    while (left := end - time.monotonic()) > 0:
        m = c.recv_message(timeout=left)
        if m is None:
            return None, len(data)
        if m.is_response and branch in (m.get("via") or ""):
            return m, len(data)
    return None, len(data)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_sip_1_0_gets_505(pbx, transport):
    with siplib.SipClient(pbx.host, pbx.sip_port, transport=transport) as c:
        r, _ = _options(c, pbx, version="SIP/1.0")
        assert r is not None and r.start.startswith("SIP/2.0 505"), r
        ok, _ = _options(c, pbx)
        assert ok is not None and ok.status == 200, ok


def test_udp_datagram_over_8k_is_refused_whole_not_truncated(pbx):
    """Default limit 16384, rsipstack's UDP buffer 8192: a 9.7 KB INVITE must not
    reach the callee cut short; it gets 513, and so does any datagram over the
    limit. Smaller ones still work."""
    callee = siplib.SipClient(pbx.host, pbx.sip_port)
    try:
        assert callee.register("102", pbx.passwords["102"], expires=300).status == 200
        with siplib.SipClient(pbx.host, pbx.sip_port) as c:
            uri = f"sip:102@{pbx.host}:{pbx.sip_port}"
            sdp = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                   + b"".join(b"a=x-pad:%s\r\n" % (b"%04d" % i * 24) for i in range(85))
                   + b"m=audio 17000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
            extra = [("Contact", f"<sip:101@127.0.0.1:{c.local[1]}>"), ("Content-Type", "application/sdp")]
            r = c.request("INVITE", uri, to=f"<{uri}>", from_=f"<sip:101@{pbx.host}>;tag={c.tag}",
                          extra=extra, body=sdp, timeout=4.0)
            data, _ = c.build("INVITE", uri, extra=extra, body=sdp)
            assert 9000 < len(data) < 10500, len(data)
            assert r is not None and r.status == 513, f"a {len(data)}-byte INVITE got {r}"
            for size in (9000, 20000, 60000):
                r, n = _options(c, pbx, body=b"b" * size)
                assert r is not None and r.status == 513, f"{n}-byte OPTIONS: {r}"
            r, n = _options(c, pbx, body=b"b" * 6000)
            assert r is not None and r.status == 200, f"{n}-byte OPTIONS: {r}"
        assert not callee.messages_within(1.0, "INVITE"), "the big INVITE reached the callee"
    finally:
        callee.close()
    assert pbx.alive()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_max_message_bytes_counts_the_whole_message(pbx_factory, transport):
    """With a 4000-byte limit, 5000 bytes of headers (no body) get 513 on UDP and TCP;
    3000 bytes pass."""
    pbx = pbx_factory(overrides={"security": {"max_message_bytes": 4000}}).start()
    with siplib.SipClient(pbx.host, pbx.sip_port, transport=transport) as c:
        r, n = _options(c, pbx, pad_header=5000)
        assert r is not None and r.status == 513, f"{n}-byte OPTIONS over {transport}: {r}"
        r, n = _options(c, pbx, pad_header=3000)
        assert r is not None and r.status == 200, f"{n}-byte OPTIONS over {transport}: {r}"


def test_tcp_body_over_the_limit_gets_513(pbx):
    with siplib.SipClient(pbx.host, pbx.sip_port, transport="tcp") as c:
        r, n = _options(c, pbx, body=b"b" * 20000)
        assert r is not None and r.status == 513, f"{n}-byte OPTIONS over TCP: {r}"
        ok, _ = _options(c, pbx)
        assert ok is not None and ok.status == 200, ok


def test_oversized_datagram_without_headers_is_dropped_quietly(pbx):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.3", 0))
        s.sendto(b"x" * 30000, (pbx.host, pbx.sip_port))
        s.settimeout(1.0)
        with pytest.raises(OSError):
            s.recvfrom(70000)
    with siplib.SipClient(pbx.host, pbx.sip_port) as c:
        assert c.options(timeout=3.0).status == 200


def test_udp_body_shorter_than_its_content_length_gets_400(pbx):
    """RFC 3261 18.3: a datagram that ends before the body its Content-Length
    announces is an error; a request gets 400 (not processed with what is there)."""
    with siplib.SipClient(pbx.host, pbx.sip_port) as c:
        uri = f"sip:{pbx.host}:{pbx.sip_port}"
        data, branch = c.build("OPTIONS", uri, extra=[("Content-Type", "text/plain")], body=b"0123456789")
        c.send_raw(data.replace(b"Content-Length: 10\r\n", b"Content-Length: 5000\r\n"))
        r = c.recv_message(timeout=3.0)
        assert r is not None and r.status == 400 and branch in (r.get("via") or ""), r
        ok, _ = _options(c, pbx)
        assert ok is not None and ok.status == 200, ok
