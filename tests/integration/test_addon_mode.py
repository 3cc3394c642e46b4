"""ha-pbx as a Home Assistant add-on (src/addon/): started from an options.json
with a fake Supervisor (harness/supervisor.py, the real API's JSON shapes) and a
real Mosquitto. Everything on 127.0.0.x: the ingress proxy's 172.30.32.2 is
played by 127.0.0.2 (HA_PBX_INGRESS_ALLOW)."""
from __future__ import annotations

import json
import socket
import time

import pytest

from harness import procs
from harness import sip as siplib
from harness.addon import AddonPbx, default_options
from harness.mqtt import Mosquitto, Recorder
from harness.supervisor import TOKEN, FakeSupervisor

PROXY = "127.0.0.2"   # plays the Supervisor's ingress proxy
LAN = "127.0.0.1"     # plays any other host on the LAN

EXTENSIONS = [{"extension": "101", "password": "secret101", "name": "Front door"},
              {"extension": "102", "password": "secret102"}]


@pytest.fixture
def supervisor():
    s = FakeSupervisor(ingress_port=procs.free_port("sip"))
    s.start()
    yield s
    s.stop()


@pytest.fixture
def addon_factory(workdir, registry, dumper):
    made: list[AddonPbx] = []

    def make(name: str = "addon", **kw) -> AddonPbx:
        a = AddonPbx(workdir / name, registry, **kw)
        made.append(a)
        dumper.add(f"ha-pbx add-on {name}", a)
        return a

    yield make
    for a in made:
        a.stop()


def test_addon_mode_gets_the_broker_from_the_supervisor(workdir, registry, dumper, supervisor, addon_factory):
    broker = Mosquitto(workdir, registry).start()
    dumper.add("mosquitto", broker)
    rec = Recorder(broker, registry, "#").start()
    dumper.add("mqtt recorder", rec)
    # the Mosquitto add-on's answer (anonymous access on the test broker: the credentials are sent, not checked)
    supervisor.mqtt = {"host": "127.0.0.1", "port": broker.port, "ssl": False, "protocol": "3.1.1",
                       "username": "addons", "password": "Zu7ahmoo", "addon": "core_mosquitto"}

    # add-on mode from SUPERVISOR_TOKEN alone (no --addon, no --config), as in the container;
    # a security option (the config's default bans after 10 failures, this install after 2)
    pbx = addon_factory(options={"extensions": EXTENSIONS, "ban_after_failures": 2, "ban_window_secs": 120},
                        supervisor_url=supervisor.url, token=TOKEN, ingress_allow=PROXY)
    pbx.launch()
    ready_s = pbx.wait_ready()

    # connected to the broker the Supervisor named
    online = rec.wait_topic("ha_pbx/status", lambda p: p == "online", timeout=15)
    print(f"\nadd-on launch -> ready {ready_s * 1000:.0f} ms, -> ha_pbx/status online "
          f"{(online.at - pbx.launched_unix) * 1000:.0f} ms")
    # the options' extensions reached the PBX (and Home Assistant's discovery)
    for ext in ("101", "102"):
        rec.wait_for(lambda m, e=ext: m.topic.endswith(f"/ha_pbx_ext_{e}/config") and m.payload != "",
                     timeout=10, what=f"discovery of extension {ext}")
    log = pbx.log_text()
    assert "MQTT broker from the Supervisor: 127.0.0.1:" in log and "core_mosquitto" in log
    assert "ingress port from the Supervisor" in log

    # it asked with the token, for what the spec names
    assert all(r["authorization"] == f"Bearer {TOKEN}" for r in supervisor.requests)
    assert {"/services/mqtt", "/addons/self/info", "/network/info"} <= set(supervisor.paths())

    # HTTP is on the ingress port the Supervisor gave, for the proxy only
    status, body = pbx.get(supervisor.ingress_port, "/health", source=PROXY)
    assert status == 200, body
    assert json.loads(body)["status"] == "ok"

    # ban_after_failures: 2 took effect: two wrong passwords and that address gets no answer
    # (the default, 10, would still answer); another address still registers
    with siplib.SipClient(pbx.host, pbx.sip_port, local_host="127.0.0.5") as c:
        statuses = [getattr(c.register("101", "wrong-password", expires=60), "status", None) for _ in range(2)]
        assert statuses == [403, 403], statuses
        assert c.options(timeout=2.0) is None, "an address with 2 failures is still answered"
    pbx.wait_log("too many failed authentications: source ignored for 300 s")
    assert pbx.register("102", "secret102") == 200


def test_ingress_port_refuses_other_addresses(supervisor, addon_factory):
    pbx = addon_factory(supervisor_url=supervisor.url, token=TOKEN, ingress_allow=PROXY, addon_flag=True)
    pbx.launch()
    pbx.wait_ready()
    port = supervisor.ingress_port

    status, body = pbx.get(port, "/health", source=LAN)
    assert status == 403, body
    pbx.wait_log(f"ingress: refused GET /health from {LAN} (403)")

    status, body = pbx.get(port, "/health", source=PROXY)
    assert status == 200 and json.loads(body)["status"] == "ok"
    # the panel page at / (what the sidebar shows through ingress)
    status, body = pbx.get(port, "/", source=PROXY)
    assert status == 200 and b"ha-pbx" in body
    status, _ = pbx.get(port, "/", source=LAN)
    assert status == 403


def test_no_mqtt_service_still_starts(supervisor, addon_factory):
    supervisor.mqtt = None  # no broker add-on: HTTP 400 "Service not enabled"
    pbx = addon_factory(supervisor_url=supervisor.url, token=TOKEN, ingress_allow=PROXY)
    pbx.launch()
    pbx.wait_ready()
    log = pbx.log_text()
    assert "no MQTT broker in Home Assistant (GET /services/mqtt: Service not enabled)" in log
    assert "MQTT bridge starting" not in log
    assert pbx.get(supervisor.ingress_port, "/health", source=PROXY)[0] == 200


# The fallback ingress port is fixed (8099): each of these two runs in a
# namespace of its own, where nothing else can hold it.
@pytest.mark.netns
def test_wrong_token_is_logged_and_not_fatal(supervisor, addon_factory):
    supervisor.mqtt = {"host": "127.0.0.1", "port": 1883}
    pbx = addon_factory(supervisor_url=supervisor.url, token="not-the-token", ingress_allow=PROXY)
    assert procs._free(8099, "127.0.0.1"), "port 8099 is taken inside the test's own namespace"
    pbx.launch()
    pbx.wait_ready()
    log = pbx.log_text()
    assert "cannot get the MQTT broker from the Supervisor (GET /services/mqtt): Supervisor answered HTTP 401" in log
    assert "cannot get the ingress port from the Supervisor" in log and "HTTP on port 8099" in log


@pytest.mark.netns
def test_unreachable_supervisor_still_starts(addon_factory):
    # a port where nothing listens
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    assert procs._free(8099, "127.0.0.1"), "port 8099 is taken inside the test's own namespace"
    pbx = addon_factory(supervisor_url=f"http://127.0.0.1:{dead}", token=TOKEN, ingress_allow=PROXY,
                        options={"external_address": "127.0.0.1"})
    pbx.launch()
    t = pbx.wait_ready()
    log = pbx.log_text()
    assert "Supervisor not reachable" in log and "MQTT off" in log
    assert procs.port_bound_udp(pbx.sip_port)
    print(f"\nready {t * 1000:.0f} ms after launch with the Supervisor unreachable")


def agent_on(**changes) -> dict:
    """config.yaml's default agent group, enabled, with `changes`."""
    return {"agent": {**default_options()["agent"], "enabled": True, **changes}}


@pytest.mark.parametrize("bad, field", [
    (agent_on(stt={"kind": "wyoming", "port": 10300}), "agent.stt.host: missing"),
    (agent_on(brain={"kind": "openai", "url": "http://127.0.0.1:1"}), "agent.brain.model: missing"),
    (agent_on(allowed_entities=["Hallway light"]), "agent.allowed_entities[0]: `Hallway light`"),
    ({"extensions": [{"extension": "101"}]}, "extensions[0].password: missing"),
    ({"extensions": [{"extension": "101", "password": "secret101"}, {"extension": "101", "password": "x" * 8}]},
     "extensions[1].extension: `101` is already extensions[0]"),
    ({"sip_udp_port": None, "sip_tcp_port": None, "sip_tls_port": None}, "sip_udp_port, sip_tcp_port, sip_tls_port"),
    ({"external_address": "doorbell.local"}, "external_address: `doorbell.local` is not an IP address"),
    ({"rtp_port_min": 30000, "rtp_port_max": 29000}, "rtp_port_min: 30000"),
    ({"ban_after_failures": 0}, "ban_after_failures: must be > 0"),
    ({"trusted_sources": ["192.168.1.0/33"]}, "trusted_sources[0]:"),
])
def test_bad_options_stop_start_up_naming_the_field(addon_factory, bad, field):
    pbx = addon_factory(token=TOKEN, options=bad, addon_flag=True)
    proc = pbx.launch()
    rc = proc.wait(timeout=10)
    assert rc == 2, pbx.log_text()
    log = pbx.log_text()
    assert "add-on configuration error" in log and field in log, log
