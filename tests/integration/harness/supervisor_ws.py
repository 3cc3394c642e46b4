"""The fake Supervisor's WebSocket proxy to Home Assistant (/core/websocket),
as the real one does it: the add-on authenticates with its SUPERVISOR_TOKEN,
the proxy logs in to HA with its own token and hands HA's auth_ok back, then
text messages are relayed both ways until either side closes. RFC 6455 frames
by hand (text, close, ping; no fragmentation: neither side fragments here)."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import threading
from urllib.parse import urlparse

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


def read_frame(f) -> tuple[int, bytes]:
    """(opcode, payload) from a buffered binary reader; masked or not."""
    head = f.read(2)
    if len(head) < 2:
        raise ConnectionError("closed")
    n = head[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", f.read(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", f.read(8))[0]
    mask = f.read(4) if head[1] & 0x80 else None
    payload = f.read(n)
    if len(payload) < n:
        raise ConnectionError("closed")
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head[0] & 0x0F, payload


def frame(opcode: int, payload: bytes, masked: bool) -> bytes:
    """A client's frames are masked, a server's are not."""
    n = len(payload)
    head = bytes([0x80 | opcode])
    bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _connect_ha(base: str) -> socket.socket:
    u = urlparse(base)
    s = socket.create_connection((u.hostname, u.port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /api/websocket HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)  # byte by byte: nothing after the head may be swallowed here
        if not chunk:
            raise ConnectionError("Home Assistant closed during the upgrade")
        head += chunk
    if b" 101 " not in head.split(b"\r\n", 1)[0] + b" ":
        raise ConnectionError(f"Home Assistant refused the upgrade: {head[:80]!r}")
    s.settimeout(None)
    return s


def _pump(src, dst: socket.socket, masked: bool, back: socket.socket, back_masked: bool) -> None:
    """Relay text frames from `src` to `dst`; pings are answered on `back`."""
    try:
        while True:
            op, p = read_frame(src)
            if op == TEXT:
                dst.sendall(frame(TEXT, p, masked))
            elif op == PING:
                back.sendall(frame(PONG, p, back_masked))
            elif op == CLOSE:
                dst.sendall(frame(CLOSE, p, masked))
                return
    except (ConnectionError, OSError):
        return


def proxy(handler, token: str, core: tuple[str, str] | None, auth_users: list[dict] | None = None) -> None:
    """Serve one /core/websocket upgrade on a BaseHTTPRequestHandler. Without
    a core but with `auth_users`, it answers `config/auth/list` itself with
    that list (as HA would: id, name, is_active, group_ids...)."""
    handler.close_connection = True
    key = handler.headers.get("Sec-WebSocket-Key", "")
    canned = core is None and auth_users is not None
    if (core is None and not canned) or handler.headers.get("Upgrade", "").lower() != "websocket" or not key:
        handler.send_response(502 if core is None else 400)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
        return
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    addon_in, addon = handler.rfile, handler.connection
    # by hand: http.server would say HTTP/1.0, which WebSocket clients refuse
    addon.sendall((f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
    addon.sendall(frame(TEXT, json.dumps({"type": "auth_required", "ha_version": "2025.4.4"}).encode(), False))
    op, p = read_frame(addon_in)
    msg = json.loads(p) if op == TEXT else {}
    if msg.get("type") != "auth" or msg.get("access_token") != token:
        addon.sendall(frame(TEXT, json.dumps({"type": "auth_invalid", "message": "Invalid access"}).encode(), False))
        return
    if canned:
        _answer_auth_list(addon_in, addon, auth_users)
        return
    ha = _connect_ha(core[0])
    try:
        ha_in = ha.makefile("rb")
        read_frame(ha_in)  # auth_required
        ha.sendall(frame(TEXT, json.dumps({"type": "auth", "access_token": core[1]}).encode(), True))
        op, ok = read_frame(ha_in)
        addon.sendall(frame(TEXT, ok, False))
        if json.loads(ok).get("type") != "auth_ok":
            return
        t = threading.Thread(target=_pump, args=(ha_in, addon, False, ha, True), daemon=True)
        t.start()
        _pump(addon_in, ha, True, addon, False)
        t.join(timeout=5)
    finally:
        ha.close()


def _answer_auth_list(addon_in, addon: socket.socket, users: list[dict]) -> None:
    """HA's side of a WebSocket session that knows one command, config/auth/list."""
    addon.sendall(frame(TEXT, json.dumps({"type": "auth_ok", "ha_version": "2025.4.4"}).encode(), False))
    try:
        while True:
            op, p = read_frame(addon_in)
            if op == CLOSE:
                addon.sendall(frame(CLOSE, p, False))
                return
            if op != TEXT:
                continue
            msg = json.loads(p)
            if msg.get("type") == "config/auth/list":
                out = {"id": msg.get("id"), "type": "result", "success": True, "result": users}
            else:
                out = {"id": msg.get("id"), "type": "result", "success": False,
                       "error": {"code": "unknown_command", "message": "Unknown command."}}
            addon.sendall(frame(TEXT, json.dumps(out).encode(), False))
    except (ConnectionError, OSError):
        return
