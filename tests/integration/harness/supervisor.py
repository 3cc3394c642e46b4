"""A fake Home Assistant Supervisor for the add-on tests: a small HTTP server on
127.0.0.1 speaking the real API's JSON shapes (supervisor/api/utils.py wraps
every answer as {"result": "ok", "data": ...}, errors as HTTP 400
{"result": "error", "message": ...}; a wrong token gets 401).

Serves GET /services/mqtt, /addons/self/info and /network/info, and records
every request (method, path, Authorization header). Like the real one it
proxies /core/api/... and the WebSocket API at /core/websocket and
/core/api/websocket (harness/supervisor_ws.py) to Home Assistant core (`core=(base_url, token)`: a
real HA started by harness/homeassistant.py), with its own token towards HA;
without a core, or while HA is down, that answers 502."""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import supervisor_ws

TOKEN = "test-supervisor-token-0123456789abcdef"


class FakeSupervisor:
    def __init__(self, *, token: str = TOKEN, ingress_port: int | None = None,
                 mqtt: dict | None = None, interfaces: list[dict] | None = None,
                 core: tuple[str, str] | None = None, auth_users: list[dict] | None = None):
        self.token = token
        self.core = core
        # without a core: the users config/auth/list answers on /core/websocket
        self.auth_users = auth_users
        self.ingress_port = ingress_port
        # None: no add-on provides MQTT ("Service not enabled")
        self.mqtt = mqtt
        self.interfaces = interfaces if interfaces is not None else [
            {"interface": "eth0", "type": "ethernet", "enabled": True, "connected": True,
             "primary": True, "mac": "02:42:AC:11:00:02",
             "ipv4": {"method": "auto", "address": ["127.0.0.1/8"], "nameservers": [],
                      "gateway": None, "ready": True},
             "ipv6": None, "wifi": None, "vlan": None}]
        self.requests: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ answers
    def answer(self, path: str) -> tuple[int, Any]:
        if path == "/services/mqtt":
            if self.mqtt is None:
                return 400, {"result": "error", "message": "Service not enabled"}
            return 200, {"result": "ok", "data": self.mqtt}
        if path == "/addons/self/info":
            return 200, {"result": "ok", "data": {
                "name": "ha-pbx", "slug": "ha_pbx", "hostname": "ha-pbx",
                "description": "SIP PBX for Home Assistant", "version": "0.1.0",
                "version_latest": "0.1.0", "update_available": False, "state": "started",
                "boot": "auto", "options": {}, "arch": ["aarch64", "amd64"], "machine": [],
                "homeassistant": None, "host_network": True, "ingress": True,
                "ingress_entry": "/api/hassio_ingress/Fq1Lg4B2", "ingress_url": "/api/hassio_ingress/Fq1Lg4B2/",
                "ingress_port": self.ingress_port, "ingress_panel": True,
                "ip_address": "172.30.32.1", "services_role": ["mqtt:want"]}}
        if path == "/network/info":
            return 200, {"result": "ok", "data": {
                "interfaces": self.interfaces,
                "docker": {"interface": "hassio", "address": "172.30.32.0/23",
                           "gateway": "172.30.32.1", "dns": "172.30.32.3"},
                "host_internet": True, "supervisor_internet": True}}
        return 404, {"result": "error", "message": f"{path} not found"}

    def proxy_core(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes, str]:
        """/core/api/<rest> -> HA's /api/<rest>, as the Supervisor's HomeAssistant API proxy does."""
        if self.core is None:
            return 502, b"502: Bad Gateway", "text/plain"
        base, token = self.core
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        req = urllib.request.Request(base + path[len("/core"):], data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read(), r.headers.get("Content-Type", "application/json")
        except urllib.error.HTTPError as e:
            return e.code, e.read(), e.headers.get("Content-Type", "application/json")
        except OSError:
            return 502, b"502: Bad Gateway", "text/plain"  # HA down or restarting

    # ------------------------------------------------------------ server
    def start(self) -> "FakeSupervisor":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                self._handle("GET")

            def do_POST(self):  # noqa: N802
                self._handle("POST")

            def _handle(self, method: str):
                auth = self.headers.get("Authorization", "")
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else None
                fake.requests.append({"method": method, "path": self.path, "authorization": auth,
                                      "body": data})
                # both paths, as supervisor/api/__init__.py routes them; authenticated by the first message
                if self.path in ("/core/websocket", "/core/api/websocket"):
                    supervisor_ws.proxy(self, fake.token, fake.core, fake.auth_users)
                    return
                if auth != f"Bearer {fake.token}":
                    body, status, ctype = b"401: Unauthorized", 401, "text/plain"
                elif self.path.startswith("/core/api/"):
                    status, body, ctype = fake.proxy_core(method, self.path, data)
                elif method != "GET":
                    status, body, ctype = 405, b"405: Method Not Allowed", "text/plain"
                else:
                    status, payload = fake.answer(self.path)
                    body, ctype = json.dumps(payload).encode(), "application/json"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def paths(self) -> list[str]:
        return [r["path"] for r in self.requests]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
