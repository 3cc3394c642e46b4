"""A minimal SIP client over UDP/TCP/TLS for checks that need exact control
(OPTIONS liveness, REGISTER with digest, hostile input). Not a full UA."""
from __future__ import annotations

import hashlib
import random
import re
import socket
import ssl
import string
import time
from dataclasses import dataclass, field


def rand_token(n: int = 10) -> str:
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(n))


@dataclass
class SipMessage:
    start: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_response(self) -> bool:
        return self.start.startswith("SIP/2.0 ")

    @property
    def status(self) -> int:
        return int(self.start.split()[1]) if self.is_response else 0

    @property
    def reason(self) -> str:
        return self.start.split(" ", 2)[2] if self.is_response else ""

    @property
    def method(self) -> str:
        return "" if self.is_response else self.start.split()[0]

    _compact = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
                "l": "content-length", "c": "content-type", "k": "supported", "s": "subject"}

    def all(self, name: str) -> list[str]:
        name = name.lower()
        out = []
        for k, v in self.headers:
            k = k.lower()
            k = self._compact.get(k, k)
            if k == name:
                out.append(v)
        return out

    def get(self, name: str, default: str | None = None) -> str | None:
        a = self.all(name)
        return a[0] if a else default

    def cseq(self) -> tuple[int, str]:
        n, m = (self.get("cseq") or "0 X").split()
        return int(n), m

    def contacts(self) -> list[str]:
        """Every Contact value, comma-separated values split (outside <> and quotes)."""
        out = []
        for v in self.all("contact"):
            out.extend(split_header_list(v))
        return out

    def __str__(self) -> str:
        h = "\r\n".join(f"{k}: {v}" for k, v in self.headers)
        return f"{self.start}\r\n{h}\r\n\r\n{self.body.decode('utf-8', 'replace')}"


def split_header_list(v: str) -> list[str]:
    out, cur, depth, q = [], "", 0, False
    for ch in v:
        if ch == '"':
            q = not q
        elif not q and ch == "<":
            depth += 1
        elif not q and ch == ">":
            depth -= 1
        if ch == "," and depth == 0 and not q:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def parse_message(data: bytes) -> SipMessage | None:
    """Parse one complete message (datagram or framed stream message)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("latin-1")
    lines = re.split(r"\r?\n", text)
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        return None
    msg = SipMessage(lines[0].strip())
    for ln in lines[1:]:
        if ln[:1] in (" ", "\t") and msg.headers:
            k, v = msg.headers[-1]
            msg.headers[-1] = (k, v + " " + ln.strip())
            continue
        k, _, v = ln.partition(":")
        msg.headers.append((k.strip(), v.strip()))
    msg.body = body
    return msg


def parse_auth_params(value: str) -> dict[str, str]:
    """Digest realm="x", nonce="y", qop="auth" -> dict."""
    v = value.strip()
    if v.lower().startswith("digest"):
        v = v[6:]
    out = {}
    for m in re.finditer(r'([A-Za-z0-9_-]+)\s*=\s*("([^"]*)"|[^,\s]+)', v):
        out[m.group(1).lower()] = m.group(3) if m.group(3) is not None else m.group(2)
    return out


def digest_header(challenge: str, method: str, uri: str, user: str, password: str,
                  nc: int = 1) -> str:
    p = parse_auth_params(challenge)
    realm, nonce = p.get("realm", ""), p.get("nonce", "")
    algo = p.get("algorithm", "MD5")
    hfn = hashlib.sha256 if algo.upper() == "SHA-256" else hashlib.md5
    h = lambda s: hfn(s.encode()).hexdigest()  # noqa: E731
    ha1 = h(f"{user}:{realm}:{password}")
    ha2 = h(f"{method}:{uri}")
    parts = [f'username="{user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    qops = [q.strip() for q in p.get("qop", "").split(",") if q.strip()]
    if "auth" in qops:
        cnonce = rand_token(12)
        ncs = f"{nc:08x}"
        resp = h(f"{ha1}:{nonce}:{ncs}:{cnonce}:auth:{ha2}")
        parts += [f'response="{resp}"', "qop=auth", f"nc={ncs}", f'cnonce="{cnonce}"']
    else:
        resp = h(f"{ha1}:{nonce}:{ha2}")
        parts.append(f'response="{resp}"')
    parts.append(f"algorithm={algo}")
    if "opaque" in p:
        parts.append(f'opaque="{p["opaque"]}"')
    return "Digest " + ", ".join(parts)


class SipClient:
    """One local socket (UDP, or one TCP/TLS connection) to the PBX."""

    def __init__(self, pbx_host: str, pbx_port: int, transport: str = "udp",
                 local_host: str = "127.0.0.1", local_port: int = 0,
                 cafile: str | None = None, timeout: float = 5.0):
        self.transport = transport
        self.remote = (pbx_host, pbx_port)
        self.timeout = timeout
        self._buf = b""
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((local_host, local_port))
        else:
            raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            raw.bind((local_host, local_port))
            raw.settimeout(timeout)
            raw.connect(self.remote)
            if transport == "tls":
                ctx = ssl.create_default_context(cafile=cafile)
                if cafile is None:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                raw = ctx.wrap_socket(raw, server_hostname=pbx_host)
            self.sock = raw
        self.local = self.sock.getsockname()
        self.tag = rand_token(8)
        self.cseq = random.randint(1, 1000)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "SipClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def via_transport(self) -> str:
        return self.transport.upper()

    def send_raw(self, data: bytes) -> None:
        if self.transport == "udp":
            self.sock.sendto(data, self.remote)
        else:
            self.sock.sendall(data)

    def messages_within(self, within: float, method: str | None = None) -> list[SipMessage]:
        """Every message that arrives in the next `within` seconds (requests of
        `method` only, when given)."""
        got, end = [], time.monotonic() + within
        while (left := end - time.monotonic()) > 0:
            m = self.recv_message(timeout=left)
            if m is None:
                break
            if method is None or m.method == method:
                got.append(m)
        return got

    def recv_message(self, timeout: float | None = None) -> SipMessage | None:
        """Next message from the PBX, or None on timeout. Skips keep-alive CRLFs."""
        end = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if self.transport != "udp":
                m = self._take_stream_message()
                if m is not None:
                    return m
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                if self.transport == "udp":
                    data, _ = self.sock.recvfrom(70000)
                    if not data.strip():
                        continue
                    return parse_message(data)
                data = self.sock.recv(65536)
                if not data:
                    return self._take_stream_message(eof=True)
                self._buf += data
            except (socket.timeout, TimeoutError):
                return None
            except (ConnectionError, OSError):
                return None

    def _take_stream_message(self, eof: bool = False) -> SipMessage | None:
        self._buf = self._buf.lstrip(b"\r\n")
        i = self._buf.find(b"\r\n\r\n")
        if i < 0:
            return None
        head = self._buf[:i]
        m = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
        n = int(m.group(1)) if m else 0
        if len(self._buf) < i + 4 + n:
            return None
        data = self._buf[: i + 4 + n]
        self._buf = self._buf[i + 4 + n:]
        return parse_message(data)

    def build(self, method: str, uri: str, *, to: str | None = None, from_: str | None = None,
              call_id: str | None = None, cseq: int | None = None,
              extra: list[tuple[str, str]] | None = None, body: bytes = b"",
              branch: str | None = None) -> tuple[bytes, str]:
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        branch = branch or "z9hG4bK" + rand_token(12)
        call_id = call_id or rand_token(16) + "@test"
        host, port = self.local
        hdrs = [
            ("Via", f"SIP/2.0/{self.via_transport} {host}:{port};branch={branch};rport"),
            ("Max-Forwards", "70"),
            ("From", from_ or f"<sip:probe@{host}>;tag={self.tag}"),
            ("To", to or f"<{uri}>"),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} {method}"),
        ]
        hdrs += extra or []
        hdrs.append(("Content-Length", str(len(body))))
        txt = f"{method} {uri} SIP/2.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs) + "\r\n"
        return txt.encode() + body, branch

    def request(self, method: str, uri: str, timeout: float | None = None,
                **kw) -> SipMessage | None:
        """Send a request and return its final response (None if none came).
        UDP requests are retransmitted (500 ms, doubling) until a response."""
        data, branch = self.build(method, uri, **kw)
        timeout = self.timeout if timeout is None else timeout
        end = time.monotonic() + timeout
        t1 = 0.5
        self.send_raw(data)
        next_tx = time.monotonic() + t1
        while time.monotonic() < end:
            wait = min(end, next_tx) - time.monotonic() if self.transport == "udp" else end - time.monotonic()
            m = self.recv_message(max(wait, 0.01))
            if m is None:
                if self.transport == "udp" and time.monotonic() >= next_tx:
                    self.send_raw(data)
                    t1 = min(t1 * 2, 4.0)
                    next_tx = time.monotonic() + t1
                continue
            if not m.is_response:
                continue
            via = m.get("via") or ""
            if branch not in via:
                continue
            if m.status >= 200:
                return m
            next_tx = end  # provisional: stop retransmitting
        return None

    def options(self, uri: str | None = None, timeout: float | None = None) -> SipMessage | None:
        uri = uri or f"sip:{self.remote[0]}:{self.remote[1]}"
        return self.request("OPTIONS", uri, timeout=timeout,
                            extra=[("Accept", "application/sdp")])

    def register(self, user: str, password: str, *, domain: str | None = None,
                 contacts: list[str] | None = None, expires: int | None = 3600,
                 call_id: str | None = None, timeout: float | None = None,
                 extra: list[tuple[str, str]] | None = None,
                 algorithm: str | None = None) -> SipMessage | None:
        """REGISTER with digest (answers a 401 or 407 once, to its first
        challenge or the one for `algorithm`). Returns the final response."""
        domain = domain or f"{self.remote[0]}:{self.remote[1]}"
        uri = f"sip:{domain}"
        host, port = self.local
        if contacts is None:
            contacts = [f"<sip:{user}@{host}:{port};transport={self.transport}>"]
        aor = f"<sip:{user}@{domain}>"
        call_id = call_id or rand_token(16) + "@reg"
        hdrs = [("Contact", c) for c in contacts]
        if expires is not None:
            hdrs.append(("Expires", str(expires)))
        hdrs += extra or []
        r = self.request("REGISTER", uri, to=aor, from_=f"{aor};tag={self.tag}",
                         call_id=call_id, extra=hdrs, timeout=timeout)
        if r is None or r.status not in (401, 407):
            return r
        hname, aname = (("WWW-Authenticate", "Authorization") if r.status == 401
                        else ("Proxy-Authenticate", "Proxy-Authorization"))
        ch = r.get(hname)
        if algorithm is not None:
            ch = next((c for c in r.all(hname)
                       if parse_auth_params(c).get("algorithm", "MD5").upper() == algorithm.upper()), None)
        if not ch:
            return r
        auth = digest_header(ch, "REGISTER", uri, user, password)
        return self.request("REGISTER", uri, to=aor, from_=f"{aor};tag={self.tag}",
                            call_id=call_id, extra=hdrs + [(aname, auth)], timeout=timeout)
