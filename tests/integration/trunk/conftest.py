"""The trunk tests' rig: one provider (Kamailio with TLS), one ha-pbx with
every trunk and route the tests need, Mosquitto and the phones, shared by
every test file of this package (start-up is most of the cost); each test
marks the provider's log before it acts. test_trunk_dns.py starts its own."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness import agent, openai_mock, procs
from harness.baresip import Baresip
from harness.kamailio import Provider, make_pki
from harness.mqtt import Mosquitto, Recorder, mqtt_overrides
from harness.pbx import Pbx
from harness.sipp import Sipp

from .common import (AGENT_DID, API_TOKEN, BAD_USER, CALLER_ID, DID, PSTN, PSTN_PW, PSTN_SRTP, PSTN_SRTP_PW, SRTP_DID,
                     SRTP_PW, SRTP_SENT, SRTP_USER, TLS_DID, TLS_PW, TLS_USER, TRUNK_PW, TRUNK_USER, UNTRUSTED_USER,
                     Rig)


@pytest.fixture(scope="package")
def rig(tmp_path_factory, signals, voice):
    workdir = tmp_path_factory.mktemp("trunk")
    reg = procs.ProcessRegistry()
    r = Rig()
    r.llm = openai_mock.OpenAIMock().start()
    try:
        # the provider's TLS certificate, for the name `localhost`, from a CA only the `tls` trunk trusts
        r.pki = make_pki(workdir / "pki", "localhost")
        r.provider = Provider(workdir, reg, users={TRUNK_USER: TRUNK_PW, PSTN: PSTN_PW, BAD_USER: "the-right-one",
                                                   TLS_USER: TLS_PW, UNTRUSTED_USER: TLS_PW, SRTP_USER: SRTP_PW,
                                                   PSTN_SRTP: PSTN_SRTP_PW},
                              trunk=TRUNK_USER, pstn=PSTN, tls=r.pki, dids={TLS_DID: TLS_USER, SRTP_DID: SRTP_USER},
                              phones={SRTP_SENT: PSTN_SRTP}).start()
        tls_server = f"localhost:{r.provider.tls_port}"  # verified as the name `localhost`
        r.ip_host_port = procs.free_port("sip")
        r.flaky_port = procs.free_port("sip")  # the `flaky` trunk's server: a sipp started by the test
        trunks = [
            {"name": "provider", "server": r.provider.addr, "username": TRUNK_USER, "password": TRUNK_PW,
             "caller_id": CALLER_ID, "inbound": "101", "dids": {DID: "102", AGENT_DID: agent.AGENT_EXT}, "expires_secs": 6,
             "keepalive_secs": 2},
            {"name": "wrongpw", "server": r.provider.addr, "username": BAD_USER, "password": "not-it",
             "keepalive_secs": 0},
            # its server answers nothing: the keep-alive finds it down
            {"name": "iptrunk", "server": f"127.0.0.1:{procs.free_port('sip')}", "register": False, "keepalive_secs": 2,
             "inbound_hosts": [f"127.0.0.1:{r.ip_host_port}"], "inbound": "103"},
            {"name": "tls", "server": tls_server, "transport": "tls", "tls_ca": str(r.pki["ca"]),
             "username": TLS_USER, "password": TLS_PW, "inbound": "102", "expires_secs": 6, "keepalive_secs": 2},
            # the same provider, its CA not trusted: nothing may reach it
            {"name": "untrusted", "server": tls_server, "transport": "tls", "username": UNTRUSTED_USER,
             "password": TLS_PW, "inbound": "102", "keepalive_secs": 0},
            {"name": "srtp", "server": f"localhost:{r.provider.tls_port2}", "transport": "tls", "tls_ca": str(r.pki["ca"]), "srtp": "mandatory",
             "username": SRTP_USER, "password": SRTP_PW, "inbound": "102", "keepalive_secs": 0},
            {"name": "flaky", "server": f"127.0.0.1:{r.flaky_port}", "register": False, "keepalive_secs": 0,
             "caller_id": CALLER_ID},
        ]
        # the agent may call numbers at home (announcements), not abroad;
        # 104 may forward its calls to numbers at home
        routes = [{"prefix": "0", "trunk": "provider", "strip": 1, "prepend": "+49", "extensions": ["101", "104", agent.AGENT_EXT]},
                  {"prefix": "00", "trunk": "provider", "strip": 2, "prepend": "+", "extensions": ["101"]},
                  {"prefix": "8", "trunk": "tls", "strip": 1, "prepend": "+49", "extensions": ["101"]},
                  {"prefix": "7", "trunk": "untrusted", "strip": 1, "prepend": "+49", "extensions": ["101"]},
                  {"prefix": "6", "trunk": "srtp", "strip": 1, "prepend": "0049", "extensions": ["101", "104"]},
                  {"prefix": "3", "trunk": "flaky", "failover": ["srtp"], "strip": 1, "prepend": "0049",
                   "extensions": ["104"]},
                  {"prefix": "5", "trunk": "flaky", "failover": ["provider"], "strip": 1, "prepend": "+49",
                   "extensions": ["101"]}]
        piper, whisper = voice
        r.whisper = whisper
        section = agent.agent_overrides(stt_url=whisper.url, tts_url=piper.url, brain=agent.openai_brain(r.llm))["agent"]
        r.broker = Mosquitto(workdir, reg).start()
        r.mqtt = Recorder(r.broker, reg, "ha_pbx/#").start()
        r.pbx = Pbx(workdir / "pbx", reg, overrides={"trunks": trunks, "outbound_routes": routes,
                                                     "http": {"api_token": API_TOKEN}, "agent": section,
                                                     **mqtt_overrides(r.broker)}).start()
        agent.wait_agent_ready(r.pbx)
        r.ext = {}
        for ext, src in (("101", signals["tone440"]), ("102", signals["tone440"])):
            r.ext[ext] = Baresip(workdir, reg, ext, user=ext, domain=f"127.0.0.1:{r.pbx.sip_port}",
                                 password=r.pbx.passwords[ext], source=src).start()
        r.pstn = Baresip(workdir, reg, "pstn", user=PSTN, domain=r.provider.addr, password=PSTN_PW,
                         source=signals["tone1000"]).start()
        r.pstn_srtp = Baresip(workdir, reg, "pstn-srtp", user=PSTN_SRTP, domain=r.provider.addr, password=PSTN_SRTP_PW,
                              source=signals["tone1000"], mediaenc="srtp-mand").start()
        for b in (*r.ext.values(), r.pstn, r.pstn_srtp):
            b.wait_registered(15)
        r.sipp = Sipp(workdir / "sipp", reg)
        r.registry = reg
        yield r
    finally:
        reg.kill_all()
        r.llm.stop()


@pytest.fixture(autouse=True)
def _logs_on_failure(request):
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed and "rig" in request.fixturenames:
        rig = request.getfixturevalue("rig")
        for name, p in (("provider", rig.provider), ("ha-pbx", rig.pbx), *rig.ext.items(), ("pstn", rig.pstn),
                        ("pstn-srtp", rig.pstn_srtp)):
            print(f"----- {name} log tail -----\n{p.log_tail()}")


def pytest_collection_modifyitems(session, config, items):
    """test_stopping_unregisters_the_trunk stops the rig's ha-pbx: it runs
    after every other test of this package."""
    here = Path(__file__).parent
    stop = [i for i in items if i.name == "test_stopping_unregisters_the_trunk" and here in Path(i.path).parents]
    if not stop:
        return
    items.remove(stop[0])
    ours = [n for n, i in enumerate(items) if here in Path(i.path).parents]
    items.insert(ours[-1] + 1 if ours else len(items), stop[0])
