"""A fake Home Assistant Supervisor for the add-on tests: a small HTTP server on
127.0.0.1 speaking the real API's JSON shapes (supervisor/api/utils.py wraps
every answer as {"result": "ok", "data": ...}, errors as HTTP 400
{"result": "error", "message": ...}; a wrong token gets 401).

Serves GET /services/mqtt, /addons/self/info and /network/info, and records
every request (path, Authorization header)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "test-supervisor-token-0123456789abcdef"


class FakeSupervisor:
    def __init__(self, *, token: str = TOKEN, ingress_port: int | None = None,
                 mqtt: dict | None = None, interfaces: list[dict] | None = None):
        self.token = token
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

    # ------------------------------------------------------------ server
    def start(self) -> "FakeSupervisor":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                auth = self.headers.get("Authorization", "")
                fake.requests.append({"path": self.path, "authorization": auth})
                if auth != f"Bearer {fake.token}":
                    body, status, ctype = b"401: Unauthorized", 401, "text/plain"
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
