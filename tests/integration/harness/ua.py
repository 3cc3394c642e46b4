"""A small scriptable SIP user agent for tests that need exact control over
every message (forking, CANCEL races, stray provisionals, Record-Route,
re-INVITE/UPDATE, TCP connection reuse).

One `UA` owns one socket (UDP, or one TCP connection to the PBX). A reader
thread queues what arrives; the test takes messages with `wait_request()` /
`wait_response()` and answers them explicitly with `respond()`. Only the
transaction-layer chores a real UA must not skip are automatic:
retransmitted requests get the last response again, a retransmitted 2xx to
our INVITE gets the ACK again. Every message in and out is kept in `trace`
(printed on failure through the `dumper` fixture, written to a file).
"""
from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .sip import SipMessage, digest_header, parse_message, rand_token, split_header_list


# ------------------------------------------------------------------ SDP
def make_sdp(ip: str, port: int, *, direction: str | None = "sendrecv", version: int = 1,
             session: int | None = None, dtmf: bool = True, rtcp_port: int | None = None) -> bytes:
    """An audio offer/answer: PCMU (0) and, with dtmf, telephone-event (101)."""
    session = session if session is not None else (port * 7919) % 1000000 + 1
    pts = "0 101" if dtmf else "0"
    lines = [
        "v=0",
        f"o=- {session} {version} IN IP4 {ip}",
        "s=-",
        f"c=IN IP4 {ip}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {pts}",
        "a=rtpmap:0 PCMU/8000",
    ]
    if dtmf:
        lines += ["a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16"]
    lines.append("a=ptime:20")
    if rtcp_port is not None:
        lines.append(f"a=rtcp:{rtcp_port}")
    if direction:
        lines.append(f"a={direction}")
    return ("\r\n".join(lines) + "\r\n").encode()


@dataclass
class SdpInfo:
    ip: str | None
    port: int | None
    directions: list[str] = field(default_factory=list)   # a=sendrecv/sendonly/... anywhere
    payload_types: list[str] = field(default_factory=list)
    rtpmaps: list[str] = field(default_factory=list)

    @property
    def addr(self) -> tuple[str, int]:
        assert self.ip is not None and self.port is not None, "SDP without c=/m=audio"
        return self.ip, self.port


def parse_sdp(body: bytes | str) -> SdpInfo:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    ip = port = None
    dirs, pts, maps = [], [], []
    for ln in re.split(r"\r?\n", text):
        ln = ln.strip()
        if ln.startswith("c=IN IP4 "):
            ip = ln.split()[2]
        elif ln.startswith("m=audio "):
            parts = ln.split()
            port = int(parts[1])
            pts = parts[3:]
        elif ln in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"):
            dirs.append(ln[2:])
        elif ln.startswith("a=rtpmap:"):
            maps.append(ln[len("a=rtpmap:"):])
    return SdpInfo(ip, port, dirs, pts, maps)


# ------------------------------------------------------------------ helpers
def uri_of(header_value: str) -> str:
    """`"x" <sip:a@b;lr>;tag=1` -> `sip:a@b;lr`; a bare `sip:a@b;tag=1` -> `sip:a@b`."""
    m = re.search(r"<([^>]*)>", header_value)
    if m:
        return m.group(1)
    return header_value.strip().split(";")[0]


def tag_of(header_value: str | None) -> str | None:
    if not header_value:
        return None
    rest = header_value.split(">", 1)[1] if ">" in header_value else header_value
    m = re.search(r";\s*tag=([^;\s,]+)", rest)
    return m.group(1) if m else None


def branch_of(msg: SipMessage) -> str:
    via = msg.get("via") or ""
    m = re.search(r"branch=([^;,\s]+)", via)
    return m.group(1) if m else ""


def _fmt(msg: SipMessage | bytes) -> str:
    if isinstance(msg, bytes):
        return msg.decode("utf-8", "replace")
    return str(msg)


@dataclass
class TraceEntry:
    t: float
    direction: str          # "<<" received, ">>" sent
    peer: tuple[str, int] | None
    text: str
    msg: SipMessage | None = None


# ------------------------------------------------------------------ dialog
class Dialog:
    """One dialog as seen by this UA (RFC 3261 §12)."""

    def __init__(self, ua: "UA", *, call_id: str, local: str, local_tag: str, remote: str,
                 remote_tag: str | None, remote_target: str, route_set: list[str], cseq: int):
        self.ua = ua
        self.call_id = call_id
        self.local = local            # name-addr without tag, e.g. <sip:101@127.0.0.1:5060>
        self.local_tag = local_tag
        self.remote = remote
        self.remote_tag = remote_tag
        self.remote_target = remote_target
        self.route_set = route_set
        self.cseq = cseq

    def headers(self, method: str, cseq: int) -> list[tuple[str, str]]:
        to = self.remote + (f";tag={self.remote_tag}" if self.remote_tag else "")
        h = [("From", f"{self.local};tag={self.local_tag}"), ("To", to),
             ("Call-ID", self.call_id), ("CSeq", f"{cseq} {method}")]
        h += [("Route", r) for r in self.route_set]
        return h

    def request(self, method: str, body: bytes = b"", *, content_type: str = "application/sdp",
                extra: list[tuple[str, str]] | None = None, timeout: float = 8.0,
                ack: bool = True) -> SipMessage | None:
        """Send an in-dialog request; return its final response (a 2xx to a
        re-INVITE is ACKed unless ack=False)."""
        self.cseq += 1
        cseq = self.cseq
        hdrs = self.headers(method, cseq)
        if method in ("INVITE", "UPDATE"):
            hdrs.append(("Contact", f"<{self.ua.contact_uri}>"))
        if body:
            hdrs.append(("Content-Type", content_type))
        hdrs += extra or []
        final = self.ua.transaction(method, self.remote_target, hdrs, body, timeout=timeout)
        if method == "INVITE" and final is not None:
            if 200 <= final.status < 300 and ack:
                self.send_ack(cseq)
            elif final.status >= 300:
                self.ua.ack_non2xx(final)
        return final

    def send_ack(self, cseq: int) -> None:
        hdrs = self.headers("ACK", cseq)
        data, _ = self.ua.build("ACK", self.remote_target, hdrs)
        self.ua.acks_sent[(self.call_id, cseq)] = data
        self.ua.send(data)

    def bye(self, timeout: float = 8.0) -> SipMessage | None:
        return self.request("BYE", timeout=timeout)


class OutgoingInvite:
    """An INVITE this UA sent (after the 407 round): provisionals, final, dialog."""

    def __init__(self, ua: "UA", data: bytes, branch: str, uri: str, call_id: str,
                 local: str, local_tag: str, remote: str, cseq: int, sent_at: float):
        self.ua = ua
        self.data = data
        self.branch = branch
        self.uri = uri
        self.call_id = call_id
        self.local = local
        self.local_tag = local_tag
        self.remote = remote
        self.cseq = cseq
        self.sent_at = sent_at
        self.provisionals: list[SipMessage] = []
        self.final: SipMessage | None = None
        self.final_at: float | None = None
        self.dialog: Dialog | None = None
        self.challenge: SipMessage | None = None

    def _match(self, m: SipMessage) -> bool:
        return m.is_response and branch_of(m) == self.branch and m.cseq() == (self.cseq, "INVITE")

    def wait_provisional(self, status: int | None = None, timeout: float = 5.0) -> SipMessage | None:
        for p in self.provisionals:
            if status is None or p.status == status:
                return p
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = self.ua.wait(lambda m: self._match(m), end - time.monotonic())
            if m is None:
                return None
            if m.status < 200:
                self.provisionals.append(m)
                if status is None or m.status == status:
                    return m
            else:
                self._on_final(m)
                return None
        return None

    def wait_final(self, timeout: float = 10.0) -> SipMessage | None:
        if self.final is not None:
            return self.final
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = self.ua.wait(lambda m: self._match(m), end - time.monotonic())
            if m is None:
                break
            if m.status < 200:
                self.provisionals.append(m)
                continue
            self._on_final(m)
            return m
        return None

    def _on_final(self, m: SipMessage) -> None:
        self.final = m
        self.final_at = time.monotonic()
        if 200 <= m.status < 300:
            rr = []
            for v in m.all("record-route"):
                rr.extend(split_header_list(v))
            contacts = m.contacts()
            target = uri_of(contacts[0]) if contacts else self.uri
            self.dialog = Dialog(self.ua, call_id=self.call_id, local=self.local,
                                 local_tag=self.local_tag, remote=self.remote,
                                 remote_tag=tag_of(m.get("to")), remote_target=target,
                                 route_set=list(reversed(rr)), cseq=self.cseq)
            self.dialog.send_ack(self.cseq)
        else:
            self.ua.ack_non2xx(m, self.data)

    def cancel(self, timeout: float = 5.0) -> SipMessage | None:
        """CANCEL (same branch, RFC 3261 §9.1); returns the CANCEL's response."""
        via = [v for k, v in self.ua.header_lines(self.data) if k.lower() == "via"][0]
        hdrs = [("Via", via), ("Max-Forwards", "70"), ("From", f"{self.local};tag={self.local_tag}"),
                ("To", self.remote), ("Call-ID", self.call_id), ("CSeq", f"{self.cseq} CANCEL"),
                ("Content-Length", "0")]
        data = (f"CANCEL {self.uri} SIP/2.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs)
                + "\r\n").encode()
        self.ua.send(data)
        return self.ua.wait(lambda m: m.is_response and branch_of(m) == self.branch
                            and m.cseq()[1] == "CANCEL", timeout)


# ------------------------------------------------------------------ UA
class UA:
    def __init__(self, pbx, ext: str | None = None, *, transport: str = "udp",
                 host: str = "127.0.0.1", port: int = 0, password: str | None = None,
                 contact_port: int | None = None, name: str | None = None,
                 trace_dir: Path | None = None):
        self.pbx = pbx
        self.ext = ext
        self.password = password if password is not None else (pbx.passwords.get(ext) if ext else None)
        self.transport = transport
        self.server = (pbx.host, pbx.sip_port)
        self.name = name or f"ua-{ext}-{transport}"
        self.trace: list[TraceEntry] = []
        self.trace_dir = trace_dir
        self._q: list[SipMessage] = []
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._buf = b""
        self.responses_sent: dict[tuple[str, str], bytes] = {}
        self.acks_sent: dict[tuple[str, int], bytes] = {}
        self._seen_req: set[tuple[str, str, int]] = set()
        self.retransmissions_in = 0
        self.closed_by_peer = False
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((host, port))
        elif transport == "tcp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.bind((host, port))
            self.sock.settimeout(5)
            self.sock.connect(self.server)
        else:
            raise ValueError(transport)
        self.sock.settimeout(0.2)
        self.local = self.sock.getsockname()
        self.contact_port = contact_port or self.local[1]
        self.tag = rand_token(8)
        self.cseq = 1
        self._rx = threading.Thread(target=self._loop, daemon=True, name=self.name)
        self._rx.start()

    # -------------------------------------------------------------- basics
    @property
    def contact_uri(self) -> str:
        user = f"{self.ext}@" if self.ext else ""
        t = ";transport=tcp" if self.transport == "tcp" else ""
        return f"sip:{user}{self.local[0]}:{self.contact_port}{t}"

    @property
    def aor(self) -> str:
        return f"<sip:{self.ext}@{self.server[0]}:{self.server[1]}>"

    def close(self) -> None:
        self._stop.set()
        self._rx.join(timeout=2)
        try:
            self.sock.close()
        except OSError:
            pass
        if self.trace_dir is not None:
            try:
                (Path(self.trace_dir) / f"{self.name}.trace").write_text(self.trace_text())
            except OSError:
                pass

    def trace_text(self, last: int | None = None) -> str:
        entries = self.trace if last is None else self.trace[-last:]
        t0 = self.trace[0].t if self.trace else 0.0
        out = []
        for e in entries:
            peer = f"{e.peer[0]}:{e.peer[1]}" if e.peer else "?"
            out.append(f"----- {e.t - t0:8.3f}s {e.direction} {peer} [{self.name} "
                       f"{self.local[0]}:{self.local[1]}/{self.transport}]\n{e.text.rstrip()}\n")
        return "\n".join(out)

    def log_tail(self, lines: int = 80) -> str:
        """For the dumper fixture: the last messages (not lines) of the trace."""
        return self.trace_text(last=max(lines // 4, 12))

    def header_lines(self, data: bytes) -> list[tuple[str, str]]:
        m = parse_message(data)
        return m.headers if m else []

    def send(self, data: bytes, dest: tuple[str, int] | None = None) -> None:
        dest = dest or self.server
        with self._send_lock:
            self.trace.append(TraceEntry(time.monotonic(), ">>", dest, _fmt(data), parse_message(data)))
            if self.transport == "udp":
                self.sock.sendto(data, dest)
            else:
                self.sock.sendall(data)

    def build(self, method: str, uri: str, hdrs: list[tuple[str, str]], body: bytes = b"",
              branch: str | None = None) -> tuple[bytes, str]:
        branch = branch or "z9hG4bK" + rand_token(12)
        host, port = self.local
        via = f"SIP/2.0/{self.transport.upper()} {host}:{port};branch={branch};rport"
        all_h = [("Via", via), ("Max-Forwards", "70")] + hdrs + [("Content-Length", str(len(body)))]
        txt = f"{method} {uri} SIP/2.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in all_h) + "\r\n"
        return txt.encode() + body, branch

    # -------------------------------------------------------------- receiving
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.transport == "udp":
                    data, src = self.sock.recvfrom(70000)
                    if data.strip():
                        m = parse_message(data)
                        if m is not None:
                            self._on_message(m, src, data)
                    continue
                data = self.sock.recv(65536)
                if not data:
                    self.closed_by_peer = True
                    return
                self._buf += data
                while True:
                    raw = self._take_stream_message()
                    if raw is None:
                        break
                    m = parse_message(raw)
                    if m is not None:
                        self._on_message(m, self.server, raw)
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return

    def _take_stream_message(self) -> bytes | None:
        self._buf = self._buf.lstrip(b"\r\n")
        i = self._buf.find(b"\r\n\r\n")
        if i < 0:
            return None
        m = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", self._buf[:i])
        n = int(m.group(1)) if m else 0
        if len(self._buf) < i + 4 + n:
            return None
        data = self._buf[: i + 4 + n]
        self._buf = self._buf[i + 4 + n:]
        return data

    def _on_message(self, m: SipMessage, src: tuple[str, int], raw: bytes) -> None:
        m.src = src  # type: ignore[attr-defined]
        m.arrival = time.monotonic()  # type: ignore[attr-defined]
        with self._send_lock:
            self.trace.append(TraceEntry(m.arrival, "<<", src, _fmt(raw), m))  # type: ignore[attr-defined]
        if not m.is_response:
            n, meth = m.cseq()
            key = (branch_of(m), meth, n)
            if meth != "ACK" and key in self._seen_req:
                self.retransmissions_in += 1
                last = self.responses_sent.get((branch_of(m), meth))
                if last is not None:
                    self.send(last, src)
                return
            self._seen_req.add(key)
        elif 200 <= m.status < 300 and m.cseq()[1] == "INVITE":
            ack = self.acks_sent.get((m.get("call-id") or "", m.cseq()[0]))
            if ack is not None:  # retransmitted 2xx: ACK again
                self.retransmissions_in += 1
                self.send(ack)
                return
        with self._cond:
            self._q.append(m)
            self._cond.notify_all()

    def wait(self, pred, timeout: float) -> SipMessage | None:
        """Take the first queued message matching pred (waiting up to timeout)."""
        end = time.monotonic() + max(timeout, 0)
        with self._cond:
            while True:
                for i, m in enumerate(self._q):
                    if pred(m):
                        return self._q.pop(i)
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def wait_request(self, method: str, timeout: float = 5.0, call_id: str | None = None) -> SipMessage | None:
        return self.wait(lambda m: not m.is_response and m.method == method
                         and (call_id is None or m.get("call-id") == call_id), timeout)

    def wait_response(self, pred, timeout: float = 5.0) -> SipMessage | None:
        return self.wait(lambda m: m.is_response and pred(m), timeout)

    def pending(self) -> list[SipMessage]:
        with self._cond:
            return list(self._q)

    def received(self) -> list[SipMessage]:
        """Every message received so far (including retransmissions)."""
        with self._send_lock:
            return [e.msg for e in self.trace if e.direction == "<<" and e.msg is not None]

    def sent(self) -> list[SipMessage]:
        with self._send_lock:
            return [e.msg for e in self.trace if e.direction == ">>" and e.msg is not None]

    # -------------------------------------------------------------- UAS side
    def respond(self, req: SipMessage, status: int, reason: str | None = None, *,
                body: bytes = b"", to_tag: str | None = None,
                extra: list[tuple[str, str]] | None = None, contact: bool | None = None,
                content_type: str = "application/sdp") -> bytes:
        reasons = {100: "Trying", 180: "Ringing", 183: "Session Progress", 200: "OK",
                   481: "Call/Transaction Does Not Exist", 486: "Busy Here",
                   487: "Request Terminated", 488: "Not Acceptable Here", 501: "Not Implemented"}
        reason = reason or reasons.get(status, "Whatever")
        to = req.get("to") or ""
        if status > 100 and tag_of(to) is None:
            to = f"{to};tag={to_tag or self.tag}"
        hdrs = [("Via", v) for v in req.all("via")]
        hdrs += [("From", req.get("from") or ""), ("To", to), ("Call-ID", req.get("call-id") or ""),
                 ("CSeq", req.get("cseq") or "")]
        if req.method in ("INVITE", "UPDATE") and status < 300:
            for rr in req.all("record-route"):
                hdrs.append(("Record-Route", rr))
        if contact is None:
            contact = req.method in ("INVITE", "UPDATE", "OPTIONS") and 100 < status < 300
        if contact:
            hdrs.append(("Contact", f"<{self.contact_uri}>"))
        hdrs += extra or []
        if body:
            hdrs.append(("Content-Type", content_type))
        hdrs.append(("Content-Length", str(len(body))))
        data = (f"SIP/2.0 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs)
                + "\r\n").encode() + body
        self.responses_sent[(branch_of(req), req.method)] = data
        self.send(data, getattr(req, "src", None))
        return data

    def uas_dialog(self, invite: SipMessage, to_tag: str | None = None) -> Dialog:
        """The dialog this UA (callee) is in after answering `invite` with to_tag."""
        rr = []
        for v in invite.all("record-route"):
            rr.extend(split_header_list(v))
        contacts = invite.contacts()
        frm = invite.get("from") or ""
        to = invite.get("to") or ""
        return Dialog(self, call_id=invite.get("call-id") or "",
                      local=to.split(";tag=")[0], local_tag=to_tag or self.tag,
                      remote=frm.split(";tag=")[0], remote_tag=tag_of(frm),
                      remote_target=uri_of(contacts[0]) if contacts else "",
                      route_set=rr, cseq=1000)

    def answer(self, invite: SipMessage, sdp: bytes, *, to_tag: str | None = None,
               extra: list[tuple[str, str]] | None = None) -> Dialog:
        self.respond(invite, 200, body=sdp, to_tag=to_tag, extra=extra)
        return self.uas_dialog(invite, to_tag)

    def reject_cancelled(self, invite: SipMessage, cancel: SipMessage, to_tag: str | None = None) -> None:
        """200 to the CANCEL, 487 to the INVITE (RFC 3261 §9.2)."""
        self.respond(cancel, 200, to_tag=to_tag)
        self.respond(invite, 487, to_tag=to_tag)

    # -------------------------------------------------------------- UAC side
    def transaction(self, method: str, uri: str, hdrs: list[tuple[str, str]], body: bytes = b"",
                    timeout: float = 8.0) -> SipMessage | None:
        """Send a request (retransmitted over UDP until any response) and return
        its final response."""
        data, branch = self.build(method, uri, hdrs, body)
        n = int([v for k, v in hdrs if k == "CSeq"][0].split()[0])
        end = time.monotonic() + timeout
        t1, next_tx, got_any = 0.5, time.monotonic() + 0.5, False
        self.send(data)
        while time.monotonic() < end:
            wait = min(end, next_tx) - time.monotonic() if not got_any else end - time.monotonic()
            m = self.wait(lambda m: m.is_response and branch_of(m) == branch and m.cseq() == (n, method),
                          max(wait, 0.01))
            if m is None:
                if self.transport == "udp" and not got_any and time.monotonic() >= next_tx:
                    self.send(data)
                    t1 = min(t1 * 2, 4.0)
                    next_tx = time.monotonic() + t1
                continue
            got_any = True
            if m.status >= 200:
                return m
        return None

    def ack_non2xx(self, final: SipMessage, invite_data: bytes | None = None) -> None:
        """Hop-by-hop ACK for a non-2xx final response: same branch as the INVITE."""
        vias = final.all("via")
        n = final.cseq()[0]
        uri = None
        if invite_data is not None:
            uri = invite_data.split(b" ", 2)[1].decode()
        uri = uri or f"sip:{self.server[0]}:{self.server[1]}"
        hdrs = [("Via", vias[0]), ("Max-Forwards", "70"), ("From", final.get("from") or ""),
                ("To", final.get("to") or ""), ("Call-ID", final.get("call-id") or ""),
                ("CSeq", f"{n} ACK"), ("Content-Length", "0")]
        data = (f"ACK {uri} SIP/2.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs) + "\r\n").encode()
        self.send(data)

    def register(self, expires: int = 3600, contact: str | None = None,
                 timeout: float = 5.0) -> SipMessage | None:
        uri = f"sip:{self.server[0]}:{self.server[1]}"
        call_id = rand_token(16) + "@reg"
        contact = contact or f"<{self.contact_uri}>"
        auth: list[tuple[str, str]] = []
        for _ in range(2):
            self.cseq += 1
            hdrs = [("From", f"{self.aor};tag={self.tag}"), ("To", self.aor), ("Call-ID", call_id),
                    ("CSeq", f"{self.cseq} REGISTER"), ("Contact", contact),
                    ("Expires", str(expires))] + auth
            r = self.transaction("REGISTER", uri, hdrs, timeout=timeout)
            if r is None or r.status not in (401, 407):
                return r
            hname, aname = (("WWW-Authenticate", "Authorization") if r.status == 401
                            else ("Proxy-Authenticate", "Proxy-Authorization"))
            auth = [(aname, digest_header(r.get(hname) or "", "REGISTER", uri, self.ext,
                                          self.password))]
        return r

    def invite(self, target: str, sdp: bytes, *, timeout: float = 5.0,
               extra: list[tuple[str, str]] | None = None) -> OutgoingInvite:
        """INVITE sip:target@PBX; answers the 407 challenge (ACKing it) and returns
        the authenticated INVITE's handle once it is sent (the PBX's 100 Trying
        may or may not have arrived)."""
        uri = f"sip:{target}@{self.server[0]}:{self.server[1]}"
        call_id = rand_token(16) + "@ua"
        local = self.aor
        local_tag = rand_token(8)
        remote = f"<{uri}>"
        auth: list[tuple[str, str]] = []
        challenge = None
        for _ in range(2):
            self.cseq += 1
            hdrs = [("From", f"{local};tag={local_tag}"), ("To", remote), ("Call-ID", call_id),
                    ("CSeq", f"{self.cseq} INVITE"), ("Contact", f"<{self.contact_uri}>"),
                    ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO"),
                    ("Content-Type", "application/sdp")] + (extra or []) + auth
            data, branch = self.build("INVITE", uri, hdrs, sdp)
            sent_at = time.monotonic()
            self.send(data)
            out = OutgoingInvite(self, data, branch, uri, call_id, local, local_tag, remote,
                                 self.cseq, sent_at)
            out.challenge = challenge
            if auth:
                return out
            r = self._await_first_response(out, data, timeout)
            if r is None or r.status != 407:
                if r is not None:
                    if r.status >= 200:
                        out._on_final(r)
                    else:
                        out.provisionals.append(r)
                return out
            challenge = r
            self.ack_non2xx(r, data)
            auth = [("Proxy-Authorization",
                     digest_header(r.get("proxy-authenticate") or "", "INVITE", uri, self.ext,
                                   self.password))]
        return out  # not reached

    def _await_first_response(self, out: OutgoingInvite, data: bytes, timeout: float) -> SipMessage | None:
        end = time.monotonic() + timeout
        t1 = 0.5
        while time.monotonic() < end:
            m = self.wait(out._match, min(t1, end - time.monotonic()))
            if m is not None:
                if m.status == 100:
                    continue
                return m
            if self.transport == "udp":
                self.send(data)
                t1 = min(t1 * 2, 4.0)
        return None


def final_statuses(msgs: list[SipMessage], method: str = "INVITE") -> list[int]:
    return [m.status for m in msgs if m.is_response and m.cseq()[1] == method and m.status >= 200]
