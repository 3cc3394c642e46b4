"""A small RFC 6455 WebSocket client for poking /ws: the handshake as JsSIP
does it (subprotocol `sip`), masked frames of any opcode (including broken
ones), and reading text frames back."""
from __future__ import annotations

import base64
import os
import socket
import ssl
import struct
import time


class WsClient:
    def __init__(self, host: str, port: int, path: str = "/ws", protocol: str | None = "sip",
                 timeout: float = 5.0, tls: bool = False, source: str | None = None,
                 headers: dict | None = None):
        # source: connect from this local address (e.g. the ingress proxy's)
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        if tls:  # wss: the PBX's certificate is self-signed here, not checked
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.sock = ctx.wrap_socket(self.sock, server_hostname=host)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        if protocol:
            lines.append(f"Sec-WebSocket-Protocol: {protocol}")
        # bytes values are sent as they are (UTF-8 names, as aiohttp sends them)
        lines += [f"{k}: {v.decode() if isinstance(v, bytes) else v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            head += chunk
        text, _, self._buf = head.partition(b"\r\n\r\n")
        self.status_line, *hdrs = text.decode(errors="replace").split("\r\n")
        self.headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in hdrs)}

    @property
    def upgraded(self) -> bool:
        return " 101 " in self.status_line + " "

    def send_frame(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def send_text(self, text: str | bytes) -> None:
        self.send_frame(0x1, text.encode() if isinstance(text, str) else text)

    def _read(self, n: int, deadline: float) -> bytes:
        while len(self._buf) < n:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self._buf += chunk
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def recv_text(self, timeout: float = 5.0) -> str | None:
        """The next text frame; None on close or timeout."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                b0, b1 = self._read(2, deadline)
                n = b1 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", self._read(2, deadline))[0]
                elif n == 127:
                    n = struct.unpack("!Q", self._read(8, deadline))[0]
                payload = self._read(n, deadline)
                opcode = b0 & 0x0F
                if opcode == 0x1:
                    return payload.decode(errors="replace")
                if opcode == 0x8:
                    return None
        except (socket.timeout, ConnectionError, OSError):
            return None

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
