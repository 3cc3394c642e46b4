"""Home Assistant core for the MQTT tests: started from the cached virtualenv
.venv-ha/ (scripts/install-test-deps.sh: homeassistant 2025.4.4 on pyenv's
Python 3.13.0, with paho-mqtt and the frontend pre-installed), onboarded
through its REST API, the MQTT integration added through its config flow.
Everything here is plain REST (urllib), so the test venv needs nothing new."""
from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path

from . import procs

REPO = Path(__file__).resolve().parents[3]
HA_VERSION = "2025.4.4"
HALLWAY_LIGHT = "input_boolean.hallway_light"   # made by the tests' `ha` fixture, exposed to Assist
DOORBELL_RANG = "input_boolean.doorbell_rang"   # in CONFIG, not exposed


def ha_venv() -> Path:
    return Path(os.environ.get("HA_PBX_HA_VENV", str(REPO / ".venv-ha")))


def require_ha() -> Path:
    hass = ha_venv() / "bin" / "hass"
    if not hass.exists():
        raise RuntimeError(f"Home Assistant is not installed at {hass.parent.parent} "
                           "(bash scripts/install-test-deps.sh)")
    return hass


CONFIG = """\
homeassistant:
  name: PBX Test
  latitude: 52.37
  longitude: 4.89
  elevation: 0
  unit_system: metric
  time_zone: UTC
  country: NL
  currency: EUR
http:
  server_host: 127.0.0.1
  server_port: {port}
api:
websocket_api:
config:
onboarding:
logger:
  default: warning
  logs:
    homeassistant.components.mqtt: info
input_boolean:
  doorbell_rang:
    name: Doorbell rang
counter:
  doorbell_rings:
    name: Doorbell rings
automation: !include automations.yaml
"""


class HaError(RuntimeError):
    pass


class HomeAssistant(procs.LogFile):
    log_tail_lines = 80

    def __init__(self, workdir: Path, registry: procs.ProcessRegistry, extra_yaml: str = ""):
        self.hass = require_ha()
        self.dir = Path(workdir) / "homeassistant"
        self.config_dir = self.dir / "config"
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.registry = registry
        self.port = procs.free_port("sip")
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = self.dir / "hass.log"
        self.token: str | None = None
        self.proc: subprocess.Popen | None = None
        (self.config_dir / "configuration.yaml").write_text(CONFIG.format(port=self.port) + extra_yaml)
        (self.config_dir / "automations.yaml").write_text("[]\n")

    # ------------------------------------------------------------ process
    def start(self, timeout: float = 180.0) -> "HomeAssistant":
        # --skip-pip: everything it needs is in the venv; a test never downloads.
        self.proc = self.registry.popen([str(self.hass), "-c", str(self.config_dir), "--skip-pip"],
                                        log=self.log_path, cwd=str(self.dir))
        procs.wait_until(self._http_up, timeout, interval=0.25, what="Home Assistant HTTP")
        return self

    def _http_up(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise HaError(f"hass exited ({self.proc.returncode}):\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(self.base + "/api/onboarding", timeout=1) as r:
                return r.status == 200
        except (OSError, urllib.error.HTTPError):
            return False

    def stop(self) -> None:
        if self.proc is not None:
            procs.ProcessRegistry.terminate(self.proc, grace=15.0)
            self.proc = None

    def log_tail(self, lines: int | None = None) -> str:
        """hass's output, then its own home-assistant.log."""
        own = procs.tail(self.config_dir / "home-assistant.log", self.log_tail_lines if lines is None else lines)
        return f"{super().log_tail(20)}\n--- home-assistant.log ---\n{own}"

    # ------------------------------------------------------------ REST
    def request(self, method: str, path: str, body=None, form: dict | None = None, auth: bool = True,
                timeout: float = 15.0):
        headers = {}
        data = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                text = r.read().decode()
        except urllib.error.HTTPError as e:
            raise HaError(f"{method} {path}: {e.code} {e.read().decode(errors='replace')[:500]}") from e
        try:
            return json.loads(text)
        except ValueError:
            return text

    def get(self, path: str):
        return self.request("GET", path)

    def post(self, path: str, body=None):
        return self.request("POST", path, body if body is not None else {})

    # ------------------------------------------------------------ set-up
    def onboard(self) -> None:
        """Owner user, its token, the remaining onboarding steps."""
        client_id = self.base + "/"
        r = self.request("POST", "/api/onboarding/users", {
            "client_id": client_id, "name": "Test Admin", "username": "admin",
            "password": "test-pass-123", "language": "en"}, auth=False)
        tok = self.request("POST", "/auth/token", form={
            "grant_type": "authorization_code", "code": r["auth_code"], "client_id": client_id}, auth=False)
        self.token = tok["access_token"]  # valid 30 min: longer than this module's tests
        # core_config is left out: it sets up weather, radio and TTS
        # integrations whose packages this venv does not carry.
        for step, body in (("analytics", {}),
                           ("integration", {"client_id": client_id, "redirect_uri": self.base + "/?auth_callback=1"})):
            self.post(f"/api/onboarding/{step}", body)
        procs.wait_until(lambda: self.get("/api/config").get("state") == "RUNNING", 60, interval=0.25,
                         what="Home Assistant RUNNING")

    def add_mqtt(self, broker_port: int) -> dict:
        flow = self.post("/api/config/config_entries/flow", {"handler": "mqtt", "show_advanced_options": False})
        if flow.get("type") == "menu":
            flow = self.post(f"/api/config/config_entries/flow/{flow['flow_id']}", {"next_step_id": "broker"})
        res = self.post(f"/api/config/config_entries/flow/{flow['flow_id']}",
                        {"broker": "127.0.0.1", "port": broker_port})
        if res.get("type") != "create_entry":
            raise HaError(f"MQTT config flow did not create an entry: {res}")
        return res

    # ------------------------------------------------------------ entities
    def states(self) -> dict[str, dict]:
        return {s["entity_id"]: s for s in self.get("/api/states")}

    def state(self, entity_id: str) -> dict | None:
        try:
            return self.get(f"/api/states/{entity_id}")
        except HaError as e:
            if ": 404 " in str(e):
                return None
            raise

    def wait_state(self, entity_id: str, pred=lambda s: True, timeout: float = 15.0) -> dict:
        last = {}

        def check():
            nonlocal last
            last = self.state(entity_id)
            return last if last is not None and pred(last) else None

        try:
            return procs.wait_until(check, timeout, interval=0.1, what=entity_id)
        except TimeoutError as e:
            raise TimeoutError(f"{e}; last state: {last}") from None

    def call(self, domain: str, service: str, **data):
        return self.post(f"/api/services/{domain}/{service}", data)

    def template(self, tpl: str) -> str:
        return self.post("/api/template", {"template": tpl})

    def device_id(self, entity_id: str) -> str:
        d = str(self.template("{{ device_id('%s') }}" % entity_id)).strip()
        if not d or d == "None":
            raise HaError(f"no device for {entity_id}")
        return d

    def create_automation(self, automation_id: str, config: dict) -> None:
        """Through the config API, as the UI does (writes automations.yaml, reloads)."""
        self.post(f"/api/config/automation/config/{automation_id}", {"id": automation_id, **config})


    # ------------------------------------------------------------ WebSocket API
    def ws(self) -> "HaWs":
        return HaWs(self)

    def long_lived_token(self, name: str = "ha-pbx-tests") -> str:
        with self.ws() as w:
            return w.call("auth/long_lived_access_token", client_name=name, lifespan=30)

    def create_input_boolean(self, name: str) -> str:
        """A UI-style (storage) input_boolean; returns its entity id."""
        with self.ws() as w:
            item = w.call("input_boolean/create", name=name)
        eid = "input_boolean." + item["id"]
        self.wait_state(eid, timeout=10)
        return eid

    def expose(self, *entity_ids: str, assistant: str = "conversation") -> None:
        """Expose entities to Assist (what Settings > Voice assistants > Expose does)."""
        with self.ws() as w:
            w.call("homeassistant/expose_entity", assistants=[assistant],
                   entity_ids=list(entity_ids), should_expose=True)

    def conversation_process(self, text: str, language: str = "en", agent_id: str | None = None) -> dict:
        """Assist's `conversation/process` over the WebSocket API."""
        kw = {"text": text, "language": language}
        if agent_id:
            kw["agent_id"] = agent_id
        with self.ws() as w:
            return w.call("conversation/process", **kw)


class HaWs:
    """Home Assistant's WebSocket API (/api/websocket) over the harness's own
    RFC 6455 client: auth, then numbered commands answered by `result`."""

    def __init__(self, ha: "HomeAssistant", timeout: float = 15.0):
        from .wsclient import WsClient

        if not ha.token:
            raise HaError("not onboarded: no token")
        self.timeout = timeout
        self.c = WsClient("127.0.0.1", ha.port, path="/api/websocket", protocol=None, timeout=timeout)
        if not self.c.upgraded:
            raise HaError(f"websocket upgrade failed: {self.c.status_line}")
        hello = self._recv()
        if hello.get("type") != "auth_required":
            raise HaError(f"unexpected greeting {hello}")
        self.c.send_text(json.dumps({"type": "auth", "access_token": ha.token}))
        ok = self._recv()
        if ok.get("type") != "auth_ok":
            raise HaError(f"websocket auth failed: {ok}")
        self._id = 0

    def _recv(self) -> dict:
        t = self.c.recv_text(self.timeout)
        if t is None:
            raise HaError("websocket closed or timed out")
        return json.loads(t)

    def call(self, typ: str, **kw):
        self._id += 1
        self.c.send_text(json.dumps({"id": self._id, "type": typ, **kw}))
        while True:
            m = self._recv()
            if m.get("id") == self._id and m.get("type") == "result":
                if not m.get("success"):
                    raise HaError(f"{typ}: {m.get('error')}")
                return m.get("result")

    def close(self) -> None:
        self.c.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def ha_time(iso: str) -> float:
    """A Home Assistant timestamp (ISO 8601 with offset) as unix seconds."""
    return datetime.fromisoformat(iso).timestamp()
