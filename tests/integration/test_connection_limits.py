"""Connections and resources a client can hold (issue 17, items 6 and 7).

Item 6: a phone registered over TCP that sends nothing keeps its connection
for the registration's lifetime (calls reach it), while a connection no
registration uses is closed after `security.idle_connection_secs`; a
double-CRLF ping gets a CRLF pong (RFC 5626 3.5.1).

Item 7: SIP TCP connections and WebSockets are capped per source address
(`security.max_sip_connections_per_ip`, `security.max_websockets_per_ip`, both
50 by default, so these tests run against a binary without the settings too)
and in all (`max_sip_connections`, `max_websockets`, set low here);
a WebSocket frame over 64 KB is refused from its header, before its payload
is buffered (the PBX's RSS is measured); an HTTP client that trickles its
header is cut off after `security.http_header_timeout_secs` (10 by default)."""
from __future__ import annotations

import socket
import struct
import time

import pytest

from harness import sip as siplib
from harness.wsclient import WsClient

SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=audio 17000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


def _closed_by_peer(sock: socket.socket, within: float) -> bool:
    """True once the PBX closes `sock` (EOF or reset) within `within` seconds;
    whatever it sends before that is read and dropped."""
    end = time.monotonic() + within
    while (left := end - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except (socket.timeout, TimeoutError):
            return False
        except (ConnectionError, OSError):
            return True
    return False


def _options_answered(c: siplib.SipClient, pbx, timeout: float = 3.0) -> bool:
    try:
        r = c.options(f"sip:{pbx.host}:{pbx.sip_port}", timeout=timeout)
    except OSError:
        return False
    return r is not None and r.status == 200


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


# ------------------------------------------------------------ item 6
def test_tcp_registration_keeps_its_idle_connection(pbx_factory):
    pbx = pbx_factory(overrides={"security": {"idle_connection_secs": 2}}).start()
    phone = siplib.SipClient(pbx.host, pbx.sip_port, transport="tcp")
    try:
        r = phone.register("102", pbx.passwords["102"], expires=3600)
        assert r is not None and r.status == 200, r
        # A connection opened after the phone fell silent, carrying no
        # registration: once it is closed as idle, the phone's (quiet longer)
        # has outlived the idle timeout too.
        idle = socket.create_connection((pbx.host, pbx.sip_port), timeout=5)
        try:
            idle.sendall(b"\r\n\r\n")
            assert _closed_by_peer(idle, 20.0), "a connection without a registration was never closed as idle"
        finally:
            idle.close()
        # RFC 5626 keep-alive on the quiet, registered connection
        phone.sock.settimeout(3.0)
        phone.sock.sendall(b"\r\n\r\n")
        assert phone.sock.recv(16) == b"\r\n", "no CRLF pong to a double-CRLF ping"
        # and a call reaches the phone over it
        with siplib.SipClient(pbx.host, pbx.sip_port) as caller:
            uri = f"sip:102@{pbx.host}:{pbx.sip_port}"
            extra = [("Contact", f"<sip:101@127.0.0.1:{caller.local[1]}>"), ("Content-Type", "application/sdp")]
            r = caller.request("INVITE", uri, to=f"<{uri}>", from_=f"<sip:101@{pbx.host}>;tag={caller.tag}",
                               extra=extra, body=SDP, timeout=4.0)
            assert r is not None and r.status == 407, r
            auth = siplib.digest_header(r.get("proxy-authenticate"), "INVITE", uri, "101", pbx.passwords["101"])
            caller.send_raw(caller.build("INVITE", uri, to=f"<{uri}>", from_=f"<sip:101@{pbx.host}>;tag={caller.tag}",
                                         extra=extra + [("Proxy-Authorization", auth)], body=SDP)[0])
            assert phone.messages_within(5.0, "INVITE"), "the call did not reach the phone over its TCP connection"
    finally:
        phone.close()


# ------------------------------------------------------------ item 7: SIP over TCP
def test_tcp_connections_over_the_per_address_cap_are_closed(pbx):
    cap = 50  # security.max_sip_connections_per_ip's default
    held = []
    try:
        for _ in range(cap):
            c = siplib.SipClient(pbx.host, pbx.sip_port, transport="tcp")
            held.append(c)
            assert _options_answered(c, pbx), f"connection {len(held)} of {cap} not served"
        extra = siplib.SipClient(pbx.host, pbx.sip_port, transport="tcp")
        try:
            assert _closed_by_peer(extra.sock, 5.0), f"connection {cap + 1} from one address was not closed"
        finally:
            extra.close()
        # another address is not affected
        with siplib.SipClient(pbx.host, pbx.sip_port, transport="tcp", local_host="127.0.0.2") as other:
            assert _options_answered(other, pbx), "a connection from another address was refused"
        # a slot freed is a slot usable again (the close is seen asynchronously)
        held.pop().close()
        end = time.monotonic() + 10.0
        while True:
            with siplib.SipClient(pbx.host, pbx.sip_port, transport="tcp") as again:
                if _options_answered(again, pbx, timeout=1.0):
                    break
            assert time.monotonic() < end, "a freed connection slot was never given back"
        assert pbx.alive()
        assert "security.max_sip_connections_per_ip (50) reached" in pbx.log_path.read_text()
    finally:
        for c in held:
            c.close()


def test_sip_and_websocket_totals_are_capped_across_addresses(pbx_factory):
    pbx = pbx_factory(overrides={"security": {"max_sip_connections": 3, "max_websockets": 3}}).start()
    held, sockets = [], []
    try:
        for i in range(3):
            c = siplib.SipClient(pbx.host, pbx.sip_port, transport="tcp", local_host=f"127.0.0.{i + 1}")
            held.append(c)
            assert _options_answered(c, pbx), f"connection {i + 1} of 3 not served"
            ws = WsClient(pbx.host, pbx.http_port, source=f"127.0.0.{i + 1}")
            sockets.append(ws)
            assert ws.upgraded, ws.status_line
        extra = siplib.SipClient(pbx.host, pbx.sip_port, transport="tcp", local_host="127.0.0.9")
        try:
            assert _closed_by_peer(extra.sock, 5.0), "a fourth SIP connection (from a fourth address) was not closed"
        finally:
            extra.close()
        ws = WsClient(pbx.host, pbx.http_port, source="127.0.0.9")
        ws.close()
        assert " 503 " in ws.status_line + " ", f"a fourth websocket was not refused: {ws.status_line}"
        log = pbx.log_path.read_text()
        assert "security.max_sip_connections (3) reached" in log and "security.max_websockets (3) reached" in log
    finally:
        for c in held:
            c.close()
        for w in sockets:
            w.close()


# ------------------------------------------------------------ item 7: WebSockets
def test_websockets_over_the_per_address_cap_get_503(pbx):
    cap = 50  # security.max_websockets_per_ip's default
    held = []
    try:
        for _ in range(cap):
            ws = WsClient(pbx.host, pbx.http_port)
            held.append(ws)
            assert ws.upgraded, ws.status_line
        extra = WsClient(pbx.host, pbx.http_port)
        try:
            assert not extra.upgraded and " 503 " in extra.status_line + " ", extra.status_line
        finally:
            extra.close()
        other = WsClient(pbx.host, pbx.http_port, source="127.0.0.2")
        try:
            assert other.upgraded, f"another address was refused: {other.status_line}"
        finally:
            other.close()
        held.pop().close()
        end = time.monotonic() + 10.0
        while True:
            again = WsClient(pbx.host, pbx.http_port)
            again.close()
            if again.upgraded:
                break
            assert time.monotonic() < end, "a freed websocket slot was never given back"
        assert "security.max_websockets_per_ip (50) reached" in pbx.log_path.read_text()
    finally:
        for ws in held:
            ws.close()


def _send_big_frame_head(ws: WsClient, announced: int, send: int) -> int:
    """A masked text frame announcing `announced` bytes, then up to `send` of
    them; returns how many were sent before the PBX closed the socket."""
    head = bytes([0x81, 0x80 | 127]) + struct.pack("!Q", announced) + b"\x00\x00\x00\x00"
    chunk = b"x" * 65536
    sent = 0
    try:
        ws.sock.settimeout(5.0)
        ws.sock.sendall(head)
        while sent < send:
            ws.sock.sendall(chunk)
            sent += len(chunk)
    except (ConnectionError, OSError):
        pass
    return sent


def test_big_websocket_frame_is_refused_before_it_is_buffered(pbx):
    """Ten sockets each announce a 16 MB frame and send 15 MB of it: the PBX must
    close them at the header, not buffer 150 MB first."""
    pid = pbx.proc.pid
    before = _rss_kib(pid)
    sockets = [WsClient(pbx.host, pbx.http_port) for _ in range(10)]
    try:
        assert all(ws.upgraded for ws in sockets)
        sent = [_send_big_frame_head(ws, 16 * 1024 * 1024, 15 * 1024 * 1024) for ws in sockets]
        after = _rss_kib(pid)
        grown_mb = (after - before) / 1024
        print(f"RSS before {before} KiB, after {after} KiB (+{grown_mb:.1f} MB); sent {sum(sent) >> 20} MB")
        assert grown_mb < 20, f"the PBX grew {grown_mb:.1f} MB reading oversized frames"
        for ws in sockets:
            assert _closed_by_peer(ws.sock, 5.0), "a socket with an oversized frame stayed open"
    finally:
        for ws in sockets:
            ws.close()
    # still serving
    ok = WsClient(pbx.host, pbx.http_port)
    try:
        assert ok.upgraded
    finally:
        ok.close()


# ------------------------------------------------------------ item 7: HTTP header timeout
@pytest.mark.timeout(60)
def test_slowloris_http_header_is_cut_off(pbx):
    """A header trickled a line a second never ends; the PBX closes the
    connection once security.http_header_timeout_secs (10) has passed."""
    s = socket.create_connection((pbx.host, pbx.http_port), timeout=5)
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        start = time.monotonic()
        closed = False
        while time.monotonic() - start < 20.0:
            try:
                s.sendall(b"X-Slow: 1\r\n")
            except (ConnectionError, OSError):
                closed = True
                break
            if _closed_by_peer(s, 1.0):
                closed = True
                break
        took = time.monotonic() - start
        assert closed, "a trickled HTTP header held its connection for 20 s"
        assert 8.0 <= took <= 15.0, f"closed after {took:.1f} s, expected about 10"
    finally:
        s.close()
    # normal requests are unaffected
    assert pbx.health() == 200


# ------------------------------------------------------------ item 7: RTP ports
def _sdp(streams: int) -> bytes:
    head = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    return head + b"".join(b"m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n" % (17000 + 2 * i) for i in range(streams))


def _authorized_invite(caller: siplib.SipClient, pbx, callee: str, sdp: bytes, *, wait_final: bool):
    """INVITE from 101, answering the 407 once. With wait_final, the final
    response (None if none came within 4 s); otherwise sent and not waited for."""
    uri = f"sip:{callee}@{pbx.host}:{pbx.sip_port}"
    call_id = siplib.rand_token(16) + "@caps"
    kw = dict(to=f"<{uri}>", from_=f"<sip:101@{pbx.host}>;tag={siplib.rand_token(8)}", call_id=call_id)
    extra = [("Contact", f"<sip:101@127.0.0.1:{caller.local[1]}>"), ("Content-Type", "application/sdp")]
    r = caller.request("INVITE", uri, extra=extra, body=sdp, timeout=4.0, **kw)
    assert r is not None and r.status == 407, r
    auth = siplib.digest_header(r.get("proxy-authenticate"), "INVITE", uri, "101", pbx.passwords["101"])
    extra.append(("Proxy-Authorization", auth))
    if wait_final:
        return caller.request("INVITE", uri, extra=extra, body=sdp, timeout=4.0, **kw)
    caller.send_raw(caller.build("INVITE", uri, extra=extra, body=sdp, **kw)[0])
    return None


def _call_ids_seen(callee: siplib.SipClient, seen: set, within: float) -> set:
    for m in callee.messages_within(within, "INVITE"):
        seen.add(m.get("call-id"))
    return seen


def test_offer_with_more_media_streams_than_the_cap_gets_488(pbx):
    """security.max_media_per_call (4): one call must not take 16 relays (16 m=
    lines is what the SDP parser itself accepts; 17 it refuses as bad SDP)."""
    callee = siplib.SipClient(pbx.host, pbx.sip_port)
    try:
        assert callee.register("102", pbx.passwords["102"], expires=300).status == 200
        with siplib.SipClient(pbx.host, pbx.sip_port) as caller:
            r = _authorized_invite(caller, pbx, "102", _sdp(16), wait_final=True)
            assert r is not None and r.status == 488, f"a 16-stream offer was not refused: {r}"
            assert not _call_ids_seen(callee, set(), 1.0), "a 16-stream offer rang the callee"
            assert "security.max_media_per_call" in pbx.log_path.read_text()
            # four streams are still fine
            _authorized_invite(caller, pbx, "102", _sdp(4), wait_final=False)
            end = time.monotonic() + 5.0
            seen: set = set()
            while not seen and time.monotonic() < end:
                _call_ids_seen(callee, seen, 0.5)
            assert seen, "a 4-stream offer did not ring the callee"
    finally:
        callee.close()


def _calls_past_a_cap_get_503(pbx, cap: int, logged: str) -> None:
    """101 rings 102 `cap` times at once; the next call gets 503, rings
    nobody, and the log names the limit."""
    callee = siplib.SipClient(pbx.host, pbx.sip_port)
    try:
        assert callee.register("102", pbx.passwords["102"], expires=300).status == 200
        with siplib.SipClient(pbx.host, pbx.sip_port) as caller:
            seen: set = set()
            for n in range(1, cap + 1):
                _authorized_invite(caller, pbx, "102", _sdp(1), wait_final=False)
                end = time.monotonic() + 5.0
                while len(seen) < n and time.monotonic() < end:
                    _call_ids_seen(callee, seen, 0.3)
                assert len(seen) == n, f"call {n} did not ring the callee"
            r = _authorized_invite(caller, pbx, "102", _sdp(1), wait_final=True)
            assert r is not None and r.status == 503, f"call {cap + 1} at once was not refused: {r}"
            assert len(_call_ids_seen(callee, seen, 1.0)) == cap, f"call {cap + 1} rang the callee"
            assert logged in pbx.log_path.read_text()
    finally:
        callee.close()


def test_calls_one_extension_places_at_once_are_capped(pbx):
    """security.max_calls_per_extension (8): the ninth call 101 has ringing at
    once gets 503."""
    _calls_past_a_cap_get_503(pbx, 8, "security.max_calls_per_extension (8) reached for this extension")


def test_calls_the_pbx_carries_at_once_are_capped(pbx_factory):
    """security.max_calls (3 here, 200 by default): past it a call gets 503,
    whoever places it (one extension here, below its own cap of 8)."""
    pbx = pbx_factory(overrides={"security": {"max_calls": 3}}).start()
    _calls_past_a_cap_get_503(pbx, 3, "security.max_calls (3) reached")
