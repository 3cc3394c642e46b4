"""Home Assistant's ingress as a browser meets it, for the panel tests: pages at
http://127.0.0.1:PORT/api/hassio_ingress/<token>/..., each request forwarded to
the add-on's ingress port from the Supervisor proxy's address (127.0.0.2 in the
tests) with the path prefix taken off, and the headers HA's proxy adds
(X-Remote-User-Id/-Name/-Display-Name of the signed-in user, X-Ingress-Path,
X-Forwarded-Host/-Proto); copies of those a client sends are dropped, as HA
does. WebSocket upgrades are spliced through both ways. One request per
connection (Connection: close) so every request's path is rewritten.

`user` is the signed-in Home Assistant user's (id, login, display name); set it
to switch users (None: requests carry no user, as HA never does)."""
from __future__ import annotations

import select
import socket
import threading

from .panel import ENTRY

DROPPED = {"host", "connection", "keep-alive", "x-remote-user-id", "x-remote-user-name",
           "x-remote-user-display-name", "x-ingress-path", "x-forwarded-host", "x-forwarded-proto",
           "x-forwarded-for"}


class IngressProxy:
    def __init__(self, target: tuple[str, int], source: str, user: tuple[str, str, str] | None):
        self.target = target
        self.source = source
        self.user = user
        self.requests: list[str] = []   # "METHOD /path" as forwarded
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        """The panel's address through ingress (with the trailing slash HA's sidebar uses)."""
        return f"http://127.0.0.1:{self.port}{ENTRY}/"

    def stop(self) -> None:
        self._stop = True
        self._sock.close()

    def _accept(self) -> None:
        while not self._stop:
            try:
                c, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _head(self, method: str, path: str, headers: list[tuple[str, str]], upgrade: bool) -> bytes:
        out = [f"{method} {path} HTTP/1.1", f"Host: {self.target[0]}:{self.target[1]}"]
        out += [f"{k}: {v}" for k, v in headers if k.lower() not in DROPPED]
        out.append("Connection: Upgrade" if upgrade else "Connection: close")
        if self.user:
            uid, login, display = self.user
            out += [f"X-Remote-User-Id: {uid}", f"X-Remote-User-Name: {login}"]
        out += [f"X-Ingress-Path: {ENTRY}", f"X-Forwarded-Host: 127.0.0.1:{self.port}", "X-Forwarded-Proto: http"]
        head = ("\r\n".join(out)).encode()
        if self.user:  # display names go as UTF-8 bytes, as aiohttp sends them
            head += b"\r\nX-Remote-User-Display-Name: " + self.user[2].encode()
        return head + b"\r\n\r\n"

    def _serve(self, client: socket.socket) -> None:
        upstream = None
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = client.recv(65536)
                if not chunk or len(data) > 65536:
                    return
                data += chunk
            head, rest = data.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if ":" in line]
            if path != ENTRY and not path.startswith(ENTRY + "/"):
                client.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            path = path[len(ENTRY):] or "/"
            upgrade = any(k.lower() == "upgrade" and v.lower() == "websocket" for k, v in headers)
            self.requests.append(f"{method} {path}")
            upstream = socket.create_connection(self.target, timeout=10, source_address=(self.source, 0))
            upstream.settimeout(None)
            upstream.sendall(self._head(method, path, headers, upgrade) + rest)
            socks = [client, upstream]
            while True:
                ready, _, _ = select.select(socks, [], [], 60)
                if not ready:
                    return
                for s in ready:
                    chunk = s.recv(65536)
                    if not chunk:
                        return
                    (upstream if s is client else client).sendall(chunk)
        except OSError:
            return
        finally:
            client.close()
            if upstream is not None:
                upstream.close()
