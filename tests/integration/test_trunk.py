"""SIP trunks against a real provider: a Kamailio configured by the test as
the phone provider (registrar with digest, 407 on the calls ha-pbx places,
routing to a "PSTN phone", a baresip registered there). Extensions are
baresips on ha-pbx. What ha-pbx sent is read at the provider (its xlog
lines), audio by its content (each side's tone).

One provider, one ha-pbx and the phones are shared by the module (start-up
is most of the cost); each test marks the provider's log before it acts."""
from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request

import pytest

from harness import agent, audio, openai_mock, procs
from harness import rtp as rtp_audio
from harness.baresip import Baresip
from harness.dns import Dnsmasq
from harness.kamailio import Provider, Refuser, make_pki
from harness.mqtt import Mosquitto, Recorder, mqtt_overrides
from harness.pbx import Pbx
from harness.sipp import Sipp
from harness.sniff import UdpSniffer

TRUNK_USER, TRUNK_PW = "4930123456", "trunk-secret"
CALLER_ID = "+4930123456"
DID = "4930123457"          # rings 102 (dids); anything else on the trunk rings 101 (inbound)
PSTN, PSTN_PW = "4917012345", "pstn-secret"   # the phone out in the network
BAD_USER = "4930999000"     # a second trunk whose password is wrong
DIALLED, SENT = "0301234567", "+49301234567"  # prefix 0, strip 1, prepend +49
ABROAD = "0043123456"       # prefix 00: 101 may call it, the agent may not
AGENT_DID = "4930123458"    # the AI agent answers this number
# the TLS trunk (its own account at the provider): calls to TLS_DID reach it
TLS_USER, TLS_PW, TLS_DID = "4930123460", "tls-secret", "4930123461"
TLS_DIALLED, TLS_SENT = "8301234567", "+49301234567"  # prefix 8 goes out over TLS
UNTRUSTED_USER, UNTRUSTED_DIALLED = "4930123470", "7301234567"  # the same, without tls_ca
# the SRTP trunk (TLS, srtp: mandatory, its own account): calls to SRTP_DID reach it, and
# prefix 6 goes out over it to a PSTN phone that speaks SDES-SRTP only
SRTP_USER, SRTP_PW, SRTP_DID = "4930123480", "srtp-secret", "4930123481"
SRTP_DIALLED, SRTP_SENT = "6401234567", "0049401234567"
PSTN_SRTP, PSTN_SRTP_PW = "4917099999", "pstn-srtp-secret"
API_TOKEN = "trunk-test-token-0123456789"
FAILOVER_DIALLED = "5301234567"  # prefix 5: out on `flaky` (a sipp server), failing over to `provider`
SRTP_FAILOVER_DIALLED = "3401234567"  # prefix 3 (104 only): out on `flaky`, failing over to `srtp` (SRTP_SENT)


class Rig:
    pass


@pytest.fixture(scope="module")
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


def health(pbx) -> dict:
    with urllib.request.urlopen(pbx.http_base + "/health", timeout=2) as resp:
        return json.loads(resp.read())


def trunk_state(pbx, name: str) -> dict:
    return health(pbx)["trunks"].get(name) or {}


def registration(pbx, name: str) -> dict:
    return trunk_state(pbx, name).get("registration") or {}


def _call(caller: Baresip, callee: Baresip, uri: str, seconds: float = 5.0):
    marks = len(caller.ctrl.events), len(callee.ctrl.events)
    caller.clear_recordings()
    callee.clear_recordings()
    caller.dial(uri)
    caller.ctrl.wait_event("CALL_ESTABLISHED", 20, since=marks[0])
    callee.ctrl.wait_event("CALL_ESTABLISHED", 10, since=marks[1])
    time.sleep(seconds)  # the audio being measured
    caller.hangup()
    caller.ctrl.wait_event("CALL_CLOSED", 10, since=marks[0])
    callee.ctrl.wait_event("CALL_CLOSED", 10, since=marks[1])
    procs.wait_until(lambda: caller.recordings() and callee.recordings(), 5, what="recordings")


def _heard(phone: Baresip, hz: float):
    rep = audio.analyze_tone(phone.recordings()[-1])
    assert rep.ok(hz, min_seconds=3), f"{phone.name} heard {rep}, expected {hz} Hz"


def _expect(rig, callee: str, code: int, *, claimed: str, local_ip: str = "127.0.0.1", port: int | None = None):
    scenario = rig.sipp.scenario("uac_expect.xml", FROM=claimed, FINAL=code)
    res = rig.sipp.run(scenario, f"127.0.0.1:{rig.pbx.sip_port}", service=callee, local_ip=local_ip, port=port,
                       keys={"rtp_port": procs.free_port("media")}, timeout_s=15)
    assert res.ok, res.summary()


@pytest.mark.timeout(60)
def test_registers_with_digest_and_refreshes_before_expiry(rig):
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15,
                     what="trunk registered in /health")
    first = rig.provider.wait_line("REG-OK", lambda d: d["au"] == TRUNK_USER)
    assert first["tU"] == TRUNK_USER and f"{TRUNK_USER}@127.0.0.1:{rig.pbx.sip_port}" in first["contact"], first
    # the first REGISTER came without credentials and was challenged (401), then digest
    tries = [d for d in rig.provider.lines("REGISTER") if d["fU"] == TRUNK_USER]
    assert tries[0]["au"] == "<null>" and tries[1]["au"] == TRUNK_USER, tries[:2]
    # expires_secs 6: refreshed within about 3 s, on its own
    n = len(rig.provider.lines("REG-OK"))
    rig.provider.wait_line("REG-OK", lambda d: d["au"] == TRUNK_USER, timeout=8, after=n)
    state = registration(rig.pbx, "provider")
    assert state["state"] == "registered" and state["last_error"] is None, state


@pytest.mark.timeout(60)
def test_wrong_password_shows_the_error_and_does_not_loop(rig):
    state = procs.wait_until(lambda: (s := registration(rig.pbx, "wrongpw")).get("state") == "failed" and s, 15,
                             what="wrongpw failed in /health")
    assert "401" in state["last_error"], state
    assert state["next_attempt_in"] >= 20, state
    assert "trunk registration failed" in rig.pbx.log_text()
    tries = lambda: [d for d in rig.provider.lines("REGISTER") if d["fU"] == BAD_USER]  # noqa: E731
    assert len(tries()) == 2, tries()  # unauthenticated, then digest once: no more
    time.sleep(3)  # nothing to wait for: the absence of a retry loop
    assert len(tries()) == 2, tries()
    assert not [d for d in rig.provider.lines("REG-OK") if d["au"] == BAD_USER]


@pytest.mark.timeout(90)
def test_call_out_with_digest_caller_id_and_strip_prepend(rig):
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15, what="registered")
    n_ch, n_ok = len(rig.provider.lines("OUT-CHALLENGE")), len(rig.provider.lines("OUT-OK"))
    _call(rig.ext["101"], rig.pstn, f"sip:{DIALLED}@127.0.0.1:{rig.pbx.sip_port}")
    challenged = rig.provider.lines("OUT-CHALLENGE")[n_ch:]
    assert challenged and challenged[0]["rU"] == SENT, challenged
    ok = rig.provider.lines("OUT-OK")[n_ok:]
    assert len(ok) == 1, ok
    assert ok[0]["au"] == TRUNK_USER, ok  # digest with the trunk's credentials
    assert ok[0]["rU"] == SENT, ok  # strip 1, prepend +49
    assert ok[0]["fU"] == CALLER_ID and CALLER_ID in ok[0]["pai"], ok  # caller ID
    _heard(rig.pstn, 440)
    _heard(rig.ext["101"], 1000)


@pytest.mark.timeout(90)
def test_call_in_to_a_did_rings_its_extension_with_the_callers_number(rig):
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15, what="registered")
    n = len(rig.provider.lines("CALL-TO-TRUNK"))
    mark = len(rig.ext["102"].log_text())
    _call(rig.pstn, rig.ext["102"], f"sip:{DID}@{rig.provider.addr}")
    assert rig.provider.lines("CALL-TO-TRUNK")[n:][0]["did"] == DID
    # the provider sent the INVITE to our registered Contact, the DID only in To;
    # 102 is shown the caller's number
    seen = rig.ext["102"].log_text()[mark:]
    assert re.search(rf"From: [^\r\n]*<sip:{re.escape(PSTN)}@", seen), seen[:3000]
    assert trunk_state(rig.pbx, "provider")["last_caller"] == PSTN
    # and Home Assistant gets it as the call's `caller`
    rig.mqtt.wait_for(lambda m: m.topic.endswith("/event") and f'"caller":"{PSTN}"' in m.payload
                      and '"callee":"102"' in m.payload, 10, what="MQTT event with the caller's number")
    _heard(rig.ext["102"], 1000)
    _heard(rig.pstn, 440)


@pytest.mark.timeout(60)
def test_ip_trunk_accepts_its_host_only(rig):
    # from the IP trunk's host: no digest, routed to its `inbound` (103, not registered: 480)
    _expect(rig, "4930555", 480, claimed=PSTN, port=rig.ip_host_port)
    assert "call from the trunk" in rig.pbx.log_text()
    # the same INVITE from another loopback address: an unknown device, challenged
    _expect(rig, "4930555", 407, claimed=PSTN, local_ip="127.0.0.2", port=rig.ip_host_port)


@pytest.mark.timeout(90)
def test_toll_fraud_is_refused_and_nothing_reaches_the_provider(rig):
    before = len(rig.provider.lines("INVITE"))
    trunk_calls = rig.pbx.log_text().count("call from the trunk")
    # an unauthenticated INVITE to an external number
    _expect(rig, DIALLED, 407, claimed="101")
    # an extension not in the route's `extensions`
    res = rig.sipp.run(rig.sipp.scenario("uac_final.xml", FINAL=403), f"127.0.0.1:{rig.pbx.sip_port}",
                       service=DIALLED, auth=("102", rig.pbx.passwords["102"]),
                       keys={"caller": "102", "rtp_port": procs.free_port("media")}, timeout_s=15)
    assert res.ok, res.summary()
    assert "not in this outbound route's `extensions`" in rig.pbx.log_text()
    # a number no route matches
    res = rig.sipp.run(rig.sipp.scenario("uac_final.xml", FINAL=404), f"127.0.0.1:{rig.pbx.sip_port}",
                       service="9123", auth=("101", rig.pbx.passwords["101"]),
                       keys={"caller": "101", "rtp_port": procs.free_port("media")}, timeout_s=15)
    assert res.ok, res.summary()
    # a REGISTER-less device claiming the trunk's user, from another address and another port
    _expect(rig, DID, 407, claimed=TRUNK_USER, local_ip="127.0.0.2")
    _expect(rig, TRUNK_USER, 407, claimed=TRUNK_USER)
    assert rig.pbx.log_text().count("call from the trunk") == trunk_calls
    assert len(rig.provider.lines("INVITE")) == before, rig.provider.lines("INVITE")[before:]


@pytest.mark.timeout(90)
def test_early_media_and_a_non_101_telephone_event_from_the_provider(rig, workdir):
    """The network callee answers 183 with SDP and plays an announcement (1000 Hz)
    for about 3 s, then 200 and another tone (600 Hz); its key presses use payload type 96
    (its own number, where RFC 3264 says 101, the extension's): they reach the extension
    as 101, and the extension's key press reaches the network callee as 96."""
    from harness.rtp import RtpEndpoint, tone_samples
    import numpy as np
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15, what="registered")
    caller = rig.ext["101"]
    media_file = workdir / "early-media.txt"
    net = RtpEndpoint()
    try:
        uas = rig.sipp.start("uas_early_media.xml", name="uas-early", port=rig.provider.uas_port,
                             keys={"rtp_port": net.port, "media_file": media_file}, timeout_s=40)
        rig.sipp.wait_listening(rig.provider.uas_port)
        mark = len(caller.ctrl.events)
        caller.clear_recordings()
        caller.dial(f"sip:0891234567@127.0.0.1:{rig.pbx.sip_port}")
        from harness.flows import wait_media_file
        peer = wait_media_file(media_file, 15, "the provider's INVITE at the network callee")
        announcement = np.concatenate([tone_samples(1000, 2.6), tone_samples(600, 60)])
        net.start_sending(announcement, peer, loop=False)
        caller.ctrl.wait_event("CALL_ESTABLISHED", 20, since=mark)
        # a key press from the network with payload type 96
        keys = len(caller.ctrl.events)
        net.send_key(5, pt=96)
        # ha-pbx reads it (the call's key press event) and passes it on as 101,
        # the number the extension offered: baresip knows events only by that
        procs.wait_until(lambda: re.search(r"Dtmf \{[^}]*from: \"0891234567\", digit: '5'", rig.pbx.log_text()), 5,
                         what="the provider's key press seen by ha-pbx")
        got = caller.ctrl.wait_event("CALL_DTMF_START", 5, since=keys)
        assert got.get("param") == "5", got
        # the extension's key press reaches the network as the 96 it answered with
        caller.ctrl.command("sndcode", "8")
        is_event = lambda r: r.pkt.payload[:1] == b"\x08" and len(r.pkt.payload) == 4  # noqa: E731
        procs.wait_until(lambda: [r for r in net.packets() if r.pkt.pt == 96 and is_event(r)], 5,
                         what="the extension's key 8 at the network callee as payload type 96")
        assert not [r for r in net.packets() if r.pkt.pt == 101], "payload type 101 reached the provider's side"
        time.sleep(3)  # the audio after the answer being measured
        caller.hangup()
        caller.ctrl.wait_event("CALL_CLOSED", 10, since=mark)
        res = uas.wait(15)
        assert res.ok, res.summary()
    finally:
        net.close()
    # the caller heard the announcement before the answer, then the callee
    procs.wait_until(caller.recordings, 5, what="recording")
    x, fs = audio.load(caller.recordings()[-1])
    early = audio.analyze_tone_samples(x[: int(2.0 * fs)])
    assert early.ok(1000, min_seconds=1), f"early media: {early}"
    later = audio.analyze_tone_samples(x[int(4.0 * fs):])
    assert later.ok(600, min_seconds=1), f"after the answer: {later}"
    # and the network callee heard the extension (440 Hz) through the relay
    heard = audio.analyze_tone_samples(net.decoded_float())
    assert heard.ok(440, min_seconds=1), heard


def _sdp_tokens(path) -> list[str] | None:
    """The c=/m=/o= lines a scenario's <exec> wrote, as tokens (None until written)."""
    try:
        t = path.read_text().split()
    except OSError:
        return None
    return t if "m=audio" in t and any(x.startswith("o=") for x in t) else None


def _port_and_origin(tokens: list[str]) -> tuple[int, str, str, int]:
    """(m= port, o= user, session id, version)."""
    m, o = tokens.index("m=audio"), next(i for i, x in enumerate(tokens) if x.startswith("o="))
    return int(tokens[m + 1]), tokens[o][2:], tokens[o + 1], int(tokens[o + 2])


def _heard_after(net, since: float, hz: float) -> None:
    """The RTP endpoint heard `hz` in what arrived after `since` (time.monotonic)."""
    from harness.rtp import ulaw_decode
    payload = b"".join(r.pkt.payload for r in net.packets() if r.arrival > since and r.pkt.pt == 0)
    rep = audio.analyze_tone_samples(ulaw_decode(payload).astype("float64") / 32768.0)
    assert rep.ok(hz, min_seconds=1.5), f"after the refresh the network side heard {rep}, expected {hz} Hz"


def _heard_at_the_end(phone: Baresip, hz: int, who: str):
    """The last 2.5 s of the phone's last recording (after a session refresh) hold the tone."""
    procs.wait_until(phone.recordings, 5, what="recording")
    x, fs = audio.load(phone.recordings()[-1])
    rep = audio.analyze_tone_samples(x[-int(2.5 * fs):-int(0.3 * fs)])
    assert rep.ok(hz, min_seconds=1.5), f"after the refresh {who} heard {rep}"


def _check_refresh(offer: list[str], answer: list[str]) -> None:
    """Our answer to the provider's re-INVITE: the same relay port, the same
    session, its o= version higher (RFC 4566: the SDP we send is a new version)."""
    print(f"our SDP to the provider before: {' '.join(offer)}; after the refresh: {' '.join(answer)}")
    port0, user0, sid0, ver0 = _port_and_origin(offer)
    port1, user1, sid1, ver1 = _port_and_origin(answer)
    assert (port1, user1, sid1) == (port0, user0, sid0), (offer, answer)
    assert ver1 > ver0, (offer, answer)


@pytest.mark.timeout(120)
def test_a_session_refresh_from_the_provider_keeps_the_call(rig, workdir):
    """A re-INVITE from the phone network (a session refresh passed on by the
    provider, same SDP), during a call out and during a call in: answered 200
    with SDP naming the same relay port toward the provider and a higher o=
    version of the same session; the call goes on, tones heard both ways after it."""
    from harness.flows import wait_media_file
    from harness.rtp import RtpEndpoint, tone_samples
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15, what="registered")
    # a call out, to a network callee that refreshes 2.5 s after its answer
    ext, net = rig.ext["101"], RtpEndpoint()
    offer_file, answer_file = workdir / "refresh-out-offer.txt", workdir / "refresh-out-answer.txt"
    try:
        uas = rig.sipp.start("uas_refresh.xml", name="uas-refresh", port=rig.provider.uas_port, duration_ms=2500,
                             keys={"rtp_port": net.port, "media_file": offer_file, "refresh_file": answer_file},
                             timeout_s=40)
        rig.sipp.wait_listening(rig.provider.uas_port)
        mark = len(ext.ctrl.events)
        ext.clear_recordings()
        ext.dial(f"sip:0891234567@127.0.0.1:{rig.pbx.sip_port}")
        net.start_sending(tone_samples(1000, 60), wait_media_file(offer_file, 15, "the INVITE at the network callee"))
        ext.ctrl.wait_event("CALL_ESTABLISHED", 20, since=mark)
        answer = procs.wait_until(lambda: _sdp_tokens(answer_file), 15, what="our answer to the provider's re-INVITE")
        refreshed = time.monotonic()
        time.sleep(3)  # the audio after the refresh being measured
        assert "CALL_CLOSED" not in ext.ctrl.event_types()[mark:], "the refresh ended the call"
        ext.hangup()
        ext.ctrl.wait_event("CALL_CLOSED", 10, since=mark)
        res = uas.wait(15)
        assert res.ok, res.summary()
    finally:
        net.close()
    _check_refresh(_sdp_tokens(offer_file), answer)
    _heard_after(net, refreshed, 440)
    _heard_at_the_end(ext, 1000, "101")

    # a call in: the network caller refreshes 2.5 s after the answer, hangs up 3 s later
    phone, net = rig.ext["102"], RtpEndpoint()
    answer0_file, answer_file = workdir / "refresh-in-answer0.txt", workdir / "refresh-in-answer.txt"
    try:
        mark = len(phone.ctrl.events)
        phone.clear_recordings()
        uac = rig.sipp.start("uac_refresh.xml", rig.provider.addr, name="uac-refresh", service=DID, duration_ms=2500,
                             keys={"caller": PSTN, "rtp_port": net.port, "media_file": answer0_file,
                                   "refresh_file": answer_file}, timeout_s=40)
        net.start_sending(tone_samples(1000, 60), wait_media_file(answer0_file, 20, "ha-pbx's answer at the caller"))
        phone.ctrl.wait_event("CALL_ESTABLISHED", 10, since=mark)
        answer = procs.wait_until(lambda: _sdp_tokens(answer_file), 15, what="our answer to the provider's re-INVITE")
        refreshed = time.monotonic()
        res = uac.wait(20)  # its BYE 3 s after the refresh, answered
        assert res.ok, res.summary()
        phone.ctrl.wait_event("CALL_CLOSED", 10, since=mark)
    finally:
        net.close()
    _check_refresh(_sdp_tokens(answer0_file), answer)
    _heard_after(net, refreshed, 440)
    _heard_at_the_end(phone, 1000, "102")


def _heard_between(net, since: float, until: float, hz: float, seconds: float) -> None:
    """The RTP endpoint heard `hz` for `seconds` in what arrived in [since, until] (time.monotonic)."""
    from harness.rtp import ulaw_decode
    payload = b"".join(r.pkt.payload for r in net.packets() if since < r.arrival <= until and r.pkt.pt == 0)
    rep = audio.analyze_tone_samples(ulaw_decode(payload).astype("float64") / 32768.0)
    assert rep.ok(hz, min_seconds=seconds), f"from {since:.2f} to {until:.2f} the network side heard {rep}, expected {hz} Hz"


@pytest.mark.timeout(120)
def test_a_reinvite_without_sdp_from_the_provider_gets_our_offer_and_the_ack_answer_moves_the_media(rig, workdir):
    """RFC 3261 14.2: a re-INVITE without SDP from the phone network (through
    the provider's Record-Route), during a call out and during a call in. Our
    200 carries the offer (the same relay port and session toward the
    provider, a higher o= version), and the answer comes in the ACK: it moves
    the network side's media to a new port, and the tones go on both ways at
    once (the relay follows the answer; without it the new port would be
    dropped as untrusted until the old one had been silent for 2 s). The
    extension's phone is not involved (ha-pbx answers for the call)."""
    from harness.flows import wait_media_file
    from harness.rtp import RtpEndpoint, tone_samples
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15, what="registered")

    def moved(net, net2, refresh_file, what):
        """After our offer: the old endpoint goes quiet, the new one (named in the ACK) talks."""
        offer = procs.wait_until(lambda: _sdp_tokens(refresh_file), 15, what=f"our offer in the 200 ({what})")
        moved_at = time.monotonic()
        net2.start_sending(tone_samples(1000, 60), ("127.0.0.1", _port_and_origin(offer)[0]))
        net.close()
        return offer, moved_at

    mark = len(rig.pbx.log_text())
    # a call out, to a network callee that sends the re-INVITE 2.5 s after its answer
    ext, net, net2 = rig.ext["101"], RtpEndpoint(), RtpEndpoint()
    offer_file, refresh_file = workdir / "late-out-offer.txt", workdir / "late-out-refresh.txt"
    try:
        uas = rig.sipp.start("uas_refresh_late.xml", name="uas-refresh-late", port=rig.provider.uas_port,
                             duration_ms=2500, timeout_s=40,
                             keys={"rtp_port": net.port, "rtp_port2": net2.port, "media_file": offer_file,
                                   "refresh_file": refresh_file})
        rig.sipp.wait_listening(rig.provider.uas_port)
        since = len(ext.ctrl.events)
        ext.clear_recordings()
        ext.dial(f"sip:0891234567@127.0.0.1:{rig.pbx.sip_port}")
        net.start_sending(tone_samples(1000, 60), wait_media_file(offer_file, 15, "the INVITE at the network callee"))
        ext.ctrl.wait_event("CALL_ESTABLISHED", 20, since=since)
        offer, moved_at = moved(net, net2, refresh_file, "call out")
        time.sleep(3)  # the audio after the refresh being measured
        assert "CALL_CLOSED" not in ext.ctrl.event_types()[since:], "the re-INVITE ended the call"
        ext.hangup()
        ext.ctrl.wait_event("CALL_CLOSED", 10, since=since)
        res = uas.wait(15)
        assert res.ok, res.summary()
    finally:
        net.close()
        net2.close()
    _check_refresh(_sdp_tokens(offer_file), offer)
    _heard_between(net2, moved_at, moved_at + 2.5, 440, 2.0)
    _heard_at_the_end(ext, 1000, "101")

    # a call in: the network caller sends the re-INVITE 2.5 s after the answer, hangs up 3 s later
    phone, net, net2 = rig.ext["102"], RtpEndpoint(), RtpEndpoint()
    answer_file, refresh_file = workdir / "late-in-answer.txt", workdir / "late-in-refresh.txt"
    try:
        since = len(phone.ctrl.events)
        phone.clear_recordings()
        uac = rig.sipp.start("uac_refresh_late.xml", rig.provider.addr, name="uac-refresh-late", service=DID,
                             duration_ms=2500, timeout_s=40,
                             keys={"caller": PSTN, "rtp_port": net.port, "rtp_port2": net2.port,
                                   "media_file": answer_file, "refresh_file": refresh_file})
        net.start_sending(tone_samples(1000, 60), wait_media_file(answer_file, 20, "ha-pbx's answer at the caller"))
        phone.ctrl.wait_event("CALL_ESTABLISHED", 10, since=since)
        offer, moved_at = moved(net, net2, refresh_file, "call in")
        res = uac.wait(20)  # its BYE 3 s after the re-INVITE, answered
        assert res.ok, res.summary()
        phone.ctrl.wait_event("CALL_CLOSED", 10, since=since)
    finally:
        net.close()
        net2.close()
    _check_refresh(_sdp_tokens(answer_file), offer)
    _heard_between(net2, moved_at, moved_at + 2.5, 440, 2.0)
    _heard_at_the_end(phone, 1000, "102")
    log = rig.pbx.log_text()[mark:]
    assert log.count("re-INVITE without SDP: the answer in the ACK taken") == 2, rig.pbx.log_tail()


@pytest.mark.timeout(60)
def test_options_keepalive_shows_up_and_down(rig):
    procs.wait_until(lambda: trunk_state(rig.pbx, "provider").get("reachable") == "up", 15, what="provider up")
    probes = rig.provider.wait_line("OPTIONS", lambda d: d["fU"] == TRUNK_USER)
    assert probes["src"] == f"127.0.0.1:{rig.pbx.sip_port}", probes
    procs.wait_until(lambda: trunk_state(rig.pbx, "iptrunk").get("reachable") == "down", 15, what="iptrunk down")
    assert "trunk down" in rig.pbx.log_text() and "trunk up" in rig.pbx.log_text()
    assert trunk_state(rig.pbx, "wrongpw").get("reachable") is None  # keepalive_secs: 0


@pytest.mark.timeout(60)
def test_trunks_are_home_assistant_devices(rig):
    """Each trunk is an MQTT-discovered device whose retained state follows
    /health: registration (none for the IP trunk), the provider's
    reachability (only with the keep-alive), the last caller."""
    def states() -> dict:
        got = rig.broker.retained("ha_pbx/trunk/+/state")
        return {t.split("/")[2]: json.loads(p) for t, p in got.items() if p}
    s = procs.wait_until(lambda: (s := states()).get("provider", {}).get("registration") == "registered"
                         and s.get("wrongpw", {}).get("registration") == "failed"
                         and s.get("iptrunk", {}).get("reachable") == "down" and s, 20,
                         what="trunk states on MQTT")
    assert "401" in s["wrongpw"]["last_error"], s
    assert s["provider"]["reachable"] == "up" and s["wrongpw"]["reachable"] is None, s
    assert s["iptrunk"]["registration"] is None, s
    assert s["provider"]["last_caller"] == trunk_state(rig.pbx, "provider").get("last_caller"), s
    configs = {t.split("/")[2]: json.loads(p) for t, p in rig.broker.retained("homeassistant/device/+/config").items()
               if "_trunk_" in t and p}
    entities = {dev.split("_trunk_")[1]: sorted(c["cmps"]) for dev, c in configs.items()}
    assert entities == {"provider": ["last_caller", "reachable", "registration"],
                        "wrongpw": ["last_caller", "registration"],
                        "iptrunk": ["last_caller", "reachable"],
                        "tls": ["last_caller", "reachable", "registration"],
                        "untrusted": ["last_caller", "registration"],
                        "srtp": ["last_caller", "registration"],
                        "flaky": ["last_caller"]}, entities
    assert configs[next(d for d in configs if d.endswith("_provider"))]["dev"]["name"] == "Trunk provider"
    devices = json.loads(rig.broker.retained("ha_pbx/devices")["ha_pbx/devices"])
    assert {d for d in devices if "_trunk_" in d} == set(configs), devices


def _api_dial(pbx, frm: str, to: str) -> tuple[int, dict]:
    req = urllib.request.Request(pbx.http_base + "/api/calls", method="POST",
                                 data=json.dumps({"from": frm, "to": to}).encode(),
                                 headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@pytest.mark.timeout(60)
def test_click_to_dial_an_external_number_follows_the_routes(rig):
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15, what="registered")
    before = len(rig.provider.lines("INVITE"))
    status, body = _api_dial(rig.pbx, "102", DIALLED)
    assert status == 403 and "outbound route" in body["error"], (status, body)
    status, body = _api_dial(rig.pbx, "101", "9123")
    assert status == 404, (status, body)
    assert len(rig.provider.lines("INVITE")) == before, "a refused dial reached the provider"
    ext, pstn = rig.ext["101"], rig.pstn
    marks = len(ext.ctrl.events), len(pstn.ctrl.events)
    n_ok = len(rig.provider.lines("OUT-OK"))
    status, body = _api_dial(rig.pbx, "101", DIALLED)
    assert status == 202, (status, body)
    # 101 rings first and answers (auto), then the number is called over the trunk
    ext.ctrl.wait_event("CALL_ESTABLISHED", 15, since=marks[0])
    pstn.ctrl.wait_event("CALL_ESTABLISHED", 15, since=marks[1])
    ok = rig.provider.lines("OUT-OK")[n_ok:]
    assert ok and ok[0]["rU"] == SENT and ok[0]["fU"] == CALLER_ID and ok[0]["au"] == TRUNK_USER, ok
    pstn.hangup()
    pstn.ctrl.wait_event("CALL_CLOSED", 10, since=marks[1])
    ext.ctrl.wait_event("CALL_CLOSED", 10, since=marks[0])


def _transcript(rig, phone: Baresip) -> str:
    time.sleep(0.5)  # sndfile closes the WAV
    return agent.words(rig.whisper.transcribe_wav(agent.recording(phone)))


@pytest.mark.timeout(90)
def test_announce_to_an_external_number_over_mqtt(rig):
    """Home Assistant calls a mobile and speaks a text: `ha_pbx/cmd/announce`
    with a number outside. The agent's extension must be in the route's
    `extensions`; a number no route lets it call rings nothing."""
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15, what="registered")
    pstn = rig.pstn
    before = len(rig.provider.lines("INVITE"))
    mark = len(rig.pbx.log_text())
    rig.broker.publish("ha_pbx/cmd/announce", json.dumps({"to": ABROAD, "text": "Not for abroad."}))
    rig.broker.publish("ha_pbx/cmd/announce", json.dumps({"to": "9123", "text": "No route."}))
    rig.broker.publish("ha_pbx/cmd/announce", "The alarm went off")  # not JSON
    refusals = (f"extension {agent.AGENT_EXT} may not call {ABROAD}", "`9123` is not an extension", "payload is not the JSON")
    procs.wait_until(lambda: all(r in rig.pbx.log_text()[mark:] for r in refusals), 10, what=f"log lines {refusals}")
    assert len(rig.provider.lines("INVITE")) == before, "a refused announcement reached the provider"
    marks = len(pstn.ctrl.events)
    n_ok = len(rig.provider.lines("OUT-OK"))
    pstn.clear_recordings()
    rig.broker.publish("ha_pbx/cmd/announce", json.dumps({"to": DIALLED, "text": "The alarm in the garage went off."}))
    pstn.ctrl.wait_event("CALL_ESTABLISHED", 20, since=marks)
    ok = rig.provider.lines("OUT-OK")[n_ok:]
    assert ok and ok[0]["rU"] == SENT and ok[0]["fU"] == CALLER_ID and ok[0]["au"] == TRUNK_USER, ok
    pstn.ctrl.wait_event("CALL_CLOSED", 45, since=marks)  # the agent hangs up by itself
    heard = _transcript(rig, pstn)
    print(f"the mobile heard: {heard!r}")
    assert "alarm" in heard and "garage" in heard, heard


@pytest.mark.timeout(90)
def test_a_did_routed_to_the_agent_is_answered_by_it(rig):
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15, what="registered")
    pstn = rig.pstn
    marks = len(pstn.ctrl.events)
    pstn.clear_recordings()
    pstn.dial(f"sip:{AGENT_DID}@{rig.provider.addr}")
    pstn.ctrl.wait_event("CALL_ESTABLISHED", 20, since=marks)
    procs.wait_until(lambda: pstn.recordings(), 5, what="a recording")
    # the greeting (~3 s of speech) has been played once the recording holds 6 s
    procs.wait_until(lambda: len(agent.live(pstn)) >= 6 * 8000, 20, what="6 s of the call recorded")
    pstn.hangup()
    pstn.ctrl.wait_event("CALL_CLOSED", 10, since=marks)
    greeting = _transcript(rig, pstn)
    print(f"the caller heard: {greeting!r}")
    assert "your home" in greeting or "how can i help" in greeting, greeting


def _forward(rig, ext: str, field: str, target: str) -> None:
    """Sets a forward as Home Assistant does (MQTT), and waits for the settings it publishes."""
    since = len(rig.mqtt.messages())
    rig.broker.publish(f"ha_pbx/ext/{ext}/cmd/{field}", target)
    rig.mqtt.wait_for(lambda m: m.topic == f"ha_pbx/ext/{ext}/settings" and f'"{field}":"{target}"' in m.payload, 10,
                      what=f"{ext}'s {field} = {target!r}", since=since)


@pytest.mark.timeout(120)
def test_forward_to_a_mobile_goes_out_as_the_forwarding_extension(rig, workdir, signals):
    """"Nobody home: the door goes to my mobile". A forward may name a number
    outside when an outbound route lets the forwarding extension call it: 104
    may, 102 may not (refused, with the reason). Always: 101 calls 104 and the
    PSTN phone rings, tones both ways. No answer: 104's desk phone rings, does
    not answer, and after forward_no_answer_secs the mobile takes the call."""
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15, what="registered")
    mark = len(rig.pbx.log_text())
    rig.broker.publish("ha_pbx/ext/102/cmd/forward_always", DIALLED)
    procs.wait_until(lambda: "no outbound route lets extension 102 call it" in rig.pbx.log_text()[mark:], 10,
                     what="102's forward outside refused")
    door, pstn = rig.ext["101"], rig.pstn
    try:
        _forward(rig, "104", "forward_always", DIALLED)
        n_ok = len(rig.provider.lines("OUT-OK"))
        _call(door, pstn, "sip:104@127.0.0.1:%d" % rig.pbx.sip_port)
        ok = rig.provider.lines("OUT-OK")[n_ok:]
        assert ok and ok[0]["rU"] == SENT and ok[0]["fU"] == CALLER_ID, ok
        _heard(pstn, 440)
        _heard(door, 1000)
        # no answer: 104's phone rings 2 s, then the mobile
        _forward(rig, "104", "forward_always", "")
        rig.broker.publish("ha_pbx/ext/104/cmd/forward_no_answer_secs", "2")
        _forward(rig, "104", "forward_no_answer", DIALLED)
        desk = Baresip(workdir, rig.registry, "desk104", user="104", domain=f"127.0.0.1:{rig.pbx.sip_port}",
                       password=rig.pbx.passwords["104"], source=signals["tone440"], answermode="manual").start()
        desk.wait_registered(15)
        marks = len(door.ctrl.events), len(pstn.ctrl.events), len(desk.ctrl.events)
        door.clear_recordings()
        pstn.clear_recordings()
        door.dial("sip:104@127.0.0.1:%d" % rig.pbx.sip_port)
        desk.ctrl.wait_event("CALL_INCOMING", 10, since=marks[2])
        pstn.ctrl.wait_event("CALL_ESTABLISHED", 20, since=marks[1])
        door.ctrl.wait_event("CALL_ESTABLISHED", 10, since=marks[0])
        desk.ctrl.wait_event("CALL_CLOSED", 10, since=marks[2])  # its ringing stopped
        time.sleep(5.0)  # the audio being measured
        door.hangup()
        pstn.ctrl.wait_event("CALL_CLOSED", 10, since=marks[1])
        procs.wait_until(lambda: door.recordings() and pstn.recordings(), 5, what="recordings")
        _heard(pstn, 440)
        _heard(door, 1000)
        desk.stop()
    finally:
        _forward(rig, "104", "forward_always", "")
        _forward(rig, "104", "forward_no_answer", "")


@pytest.mark.timeout(120)
def test_tls_trunk_registers_and_calls_both_ways_over_tls(rig):
    """`transport: tls` with `tls_ca`: ha-pbx opens one TLS connection to the
    provider's TLS port, checks its certificate against the CA for the
    configured name (`localhost`), and REGISTERs, keeps alive and calls out
    over it; the provider's call to the trunk comes back over the same
    connection (its source is the provider's TLS port) and rings 102. Tones
    are heard both ways each time."""
    state = procs.wait_until(lambda: (s := registration(rig.pbx, "tls")).get("state") == "registered" and s, 20,
                             what="tls trunk registered in /health")
    assert state["last_error"] is None, state
    reg_ok = rig.provider.wait_line("REG-OK", lambda d: d["au"] == TLS_USER)
    assert reg_ok["dst"] == str(rig.provider.tls_port) and reg_ok["pr"] == "tls", reg_ok
    assert re.search(rf"trunk TLS connection up \(certificate verified\) trunk=tls server=127\.0\.0\.1:{rig.provider.tls_port}",
                     rig.pbx.log_text()), rig.pbx.log_tail()
    procs.wait_until(lambda: trunk_state(rig.pbx, "tls").get("reachable") == "up", 15, what="tls trunk up (OPTIONS)")
    # a call out: over TLS, with digest, strip/prepend; tones both ways
    n_ok = len(rig.provider.lines("OUT-OK"))
    _call(rig.ext["101"], rig.pstn, f"sip:{TLS_DIALLED}@127.0.0.1:{rig.pbx.sip_port}", seconds=4)
    ok = rig.provider.lines("OUT-OK")[n_ok:]
    assert len(ok) == 1 and ok[0]["pr"] == "tls" and ok[0]["dst"] == str(rig.provider.tls_port), ok
    assert ok[0]["au"] == TLS_USER and ok[0]["rU"] == TLS_SENT and ok[0]["fU"] == TLS_USER, ok
    _heard(rig.pstn, 440)
    _heard(rig.ext["101"], 1000)
    # a call in from the provider, over the trunk's own connection: the trunk's, rings 102
    calls_in = rig.pbx.log_text().count("call from the trunk trunk=tls")
    _call(rig.pstn, rig.ext["102"], f"sip:{TLS_DID}@{rig.provider.addr}", seconds=4)
    log = rig.pbx.log_text()
    assert log.count("call from the trunk trunk=tls") == calls_in + 1, rig.pbx.log_tail()
    assert re.search(rf"call from the trunk trunk=tls caller={PSTN} .*source=127\.0\.0\.1:{rig.provider.tls_port}", log), \
        rig.pbx.log_tail()
    assert trunk_state(rig.pbx, "tls")["last_caller"] == PSTN
    _heard(rig.ext["102"], 1000)
    _heard(rig.pstn, 440)
    # still the one connection it registered over
    assert log.count("trunk TLS connection up (certificate verified) trunk=tls") == 1, log


@pytest.mark.timeout(60)
def test_tls_trunk_whose_certificate_does_not_verify_sends_nothing(rig):
    """The same provider without `tls_ca`: its CA is in no trust store, so the
    handshake fails; the registration fails with an error saying so (/health,
    MQTT, the log naming the trunk), a call out over it gets 503, and not one
    SIP message of it reached the provider."""
    state = procs.wait_until(lambda: (s := registration(rig.pbx, "untrusted")).get("state") == "failed" and s, 20,
                             what="untrusted trunk failed in /health")
    assert "TLS: the certificate of `localhost` was refused: it is not signed by a trusted CA" in state["last_error"] \
        and "tls_ca" in state["last_error"], state
    assert re.search(r"trunk registration failed trunk=untrusted error=\"?TLS: the certificate of `localhost` was refused",
                     rig.pbx.log_text()), rig.pbx.log_tail()
    rig.mqtt.wait_for(lambda m: m.topic.endswith("/trunk/untrusted/state") and "not signed by a trusted CA" in m.payload,
                      10, what="the certificate error on MQTT")
    before = len(rig.provider.lines("INVITE"))
    res = rig.sipp.run(rig.sipp.scenario("uac_final.xml", FINAL=503), f"127.0.0.1:{rig.pbx.sip_port}",
                       service=UNTRUSTED_DIALLED, auth=("101", rig.pbx.passwords["101"]),
                       keys={"caller": "101", "rtp_port": procs.free_port("media")}, timeout_s=15)
    assert res.ok, res.summary()
    assert re.search(r"call out refused with 503: the provider cannot be reached caller=101 trunk=untrusted error=\"?TLS: "
                     r"the certificate of `localhost` was refused", rig.pbx.log_text()), rig.pbx.log_tail()
    assert len(rig.provider.lines("INVITE")) == before, rig.provider.lines("INVITE")[before:]
    assert not [line for line in rig.provider.log_text().splitlines() if UNTRUSTED_USER in line], \
        "a message of the untrusted trunk reached the provider"


@pytest.mark.timeout(90)
def test_tls_trunk_reconnects_and_registers_again_when_the_provider_drops_the_connection(rig):
    """The provider's side of the `tls` trunk's connection is reset (`ss -K`,
    as a provider restart or a NAT that forgot the flow would). ha-pbx notices
    at its next keep-alive or registration refresh, dials a new connection
    (certificate verified again), REGISTERs over it (the provider's
    registration named the connection that is gone), and a call in from the
    phone network reaches 102 over the new connection, tones heard both ways."""
    import subprocess
    procs.wait_until(lambda: registration(rig.pbx, "tls").get("state") == "registered", 20, what="tls trunk registered")
    port = rig.provider.tls_port
    mark, n_reg = len(rig.pbx.log_text()), len(rig.provider.lines("REG-OK"))
    killed = subprocess.run(["ss", "-K", "-t", "state", "established", f"( sport = :{port} )"], capture_output=True,
                            text=True, check=True)
    assert f"127.0.0.1:{port}" in killed.stdout, f"no connection of the tls trunk to reset:\n{killed.stdout}"
    # the next keep-alive (2 s) or registration refresh (3 s), whichever comes first, dials again
    procs.wait_until(lambda: "trunk TLS connection up (certificate verified) trunk=tls" in rig.pbx.log_text()[mark:],
                     15, what="the tls trunk's connection dialled again")
    reg = rig.provider.wait_line("REG-OK", lambda d: d["au"] == TLS_USER, timeout=15, after=n_reg)
    assert reg["pr"] == "tls" and reg["dst"] == str(port), reg
    state = procs.wait_until(lambda: (s := registration(rig.pbx, "tls")).get("state") == "registered" and s, 15,
                             what="tls trunk registered again")
    assert state["last_error"] is None, state
    calls_in = rig.pbx.log_text().count("call from the trunk trunk=tls")
    _call(rig.pstn, rig.ext["102"], f"sip:{TLS_DID}@{rig.provider.addr}", seconds=4)
    assert rig.pbx.log_text().count("call from the trunk trunk=tls") == calls_in + 1, rig.pbx.log_tail()
    _heard(rig.ext["102"], 1000)
    _heard(rig.pstn, 440)


def _srtp_call(rig, caller: Baresip, callee: Baresip, uri: str) -> list[tuple[int, bytes]]:
    """A call with tones both ways, and what crossed the wire toward the SRTP
    PSTN phone's RTP ports meanwhile."""
    ports = range(rig.pstn_srtp.rtp_lo, rig.pstn_srtp.rtp_lo + 20)
    with UdpSniffer(ports) as wire:
        _call(caller, callee, uri, seconds=4)
    return wire.packets()


def _assert_srtp_on_the_wire(packets: list[tuple[int, bytes]]):
    """RTP toward the SRTP phone carries an 80-bit tag after its 160 bytes of
    G.711, and those 160 bytes are not the 440 Hz tone the extension sends:
    decoded as G.711 they are noise, while the phone itself hears the tone."""
    rtp = [p for _, p in packets if len(p) >= 12 and p[0] >> 6 == 2 and p[1] & 0x7F == 0]
    assert len(rtp) >= 150, f"{len(rtp)} RTP packets toward the SRTP phone"
    sizes = {len(p) for p in rtp}
    assert sizes == {12 + 160 + 10}, f"packet sizes {sizes}: not PCMU with an 80-bit SRTP tag"
    wire = audio.analyze_tone_samples(rtp_audio.ulaw_decode(b"".join(p[12:172] for p in rtp)).astype("float64") / 32768.0)
    assert not wire.ok(440, min_seconds=1), f"the wire carries the tone in the clear: {wire}"


@pytest.mark.timeout(120)
def test_srtp_trunk_encrypts_the_providers_leg_both_ways(rig):
    """A TLS trunk with `srtp: mandatory` and a PSTN phone (baresip) that
    speaks SDES-SRTP only (`mediaenc=srtp-mand`): a call out and a call in,
    tones heard both ways (the phone decrypts what the relay protected, the
    extension hears what the relay unprotected), and what crossed the wire
    toward the phone was SRTP, not the extension's G.711 tone."""
    state = procs.wait_until(lambda: (s := registration(rig.pbx, "srtp")).get("state") == "registered" and s, 20,
                             what="srtp trunk registered in /health")
    assert state["last_error"] is None, state
    n_ok = len(rig.provider.lines("OUT-OK"))
    wire = _srtp_call(rig, rig.ext["101"], rig.pstn_srtp, f"sip:{SRTP_DIALLED}@127.0.0.1:{rig.pbx.sip_port}")
    ok = rig.provider.lines("OUT-OK")[n_ok:]
    assert len(ok) == 1 and ok[0]["pr"] == "tls" and ok[0]["au"] == SRTP_USER and ok[0]["rU"] == SRTP_SENT, ok
    _heard(rig.pstn_srtp, 440)
    _heard(rig.ext["101"], 1000)
    _assert_srtp_on_the_wire(wire)
    # a call in: the provider offers RTP/SAVP with its key, 102 answers plain RTP
    calls_in = rig.pbx.log_text().count("call from the trunk trunk=srtp")
    wire = _srtp_call(rig, rig.pstn_srtp, rig.ext["102"], f"sip:{SRTP_DID}@{rig.provider.addr}")
    assert rig.pbx.log_text().count("call from the trunk trunk=srtp") == calls_in + 1, rig.pbx.log_tail()
    _heard(rig.ext["102"], 1000)
    _heard(rig.pstn_srtp, 440)
    _assert_srtp_on_the_wire(wire)


@pytest.mark.timeout(90)
def test_srtp_trunk_refuses_unusable_keys_with_488(rig):
    """Offers to the `srtp: mandatory` trunk through the provider that it
    cannot use: a broken key, a suite it does not speak, an MKI, and plain
    RTP. Each gets 488 with a log line naming why, and no relay stays."""
    procs.wait_until(lambda: registration(rig.pbx, "srtp").get("state") == "registered", 20, what="srtp trunk registered")
    key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"
    cases = [("1 AES_CM_128_HMAC_SHA1_80 inline:%%not-base64%%", "a=crypto: key-params: the key is not base64"),
             ("1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQF", "the key and salt are 6 bytes, not 30"),
             (f"1 AEAD_AES_256_GCM inline:{key}", "AEAD_AES_256_GCM\\\": not supported"),
             (f"1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^31|1:4", "an MKI is not supported")]
    for crypto, why in cases:
        before = rig.pbx.log_text().count("INVITE refused: unusable SDP offer")
        res = rig.sipp.run(rig.sipp.scenario("uac_crypto.xml", FROM=PSTN, CRYPTO=crypto, FINAL=488), rig.provider.addr,
                           service=SRTP_DID, keys={"rtp_port": procs.free_port("media")}, timeout_s=15)
        assert res.ok, res.summary()
        log = rig.pbx.log_text()
        assert log.count("INVITE refused: unusable SDP offer") == before + 1, rig.pbx.log_tail()
        assert why.replace("\\", "") in log.replace("\\", ""), f"{why!r} not in\n{rig.pbx.log_tail()}"
        assert key not in log, "a key reached the log"
    # plain RTP to a mandatory trunk
    res = rig.sipp.run(rig.sipp.scenario("uac_expect.xml", FROM=PSTN, FINAL=488), rig.provider.addr,
                       service=SRTP_DID, keys={"rtp_port": procs.free_port("media")}, timeout_s=15)
    assert res.ok, res.summary()
    assert "plain RTP, but this trunk has srtp: mandatory" in rig.pbx.log_text(), rig.pbx.log_tail()
    h = procs.wait_until(lambda: (h := health(rig.pbx))["active_calls"] == 0 and h["media_relays"] == 0 and h, 5,
                         what="no call and no relay left")
    assert h["media_relays"] == 0, h


def _flaky(rig, final: int):
    """The `flaky` trunk's server: a sipp that answers one INVITE with `final`."""
    proc = rig.sipp.start(rig.sipp.scenario("uas_final.xml", FINAL=final), name=f"flaky-{final}",
                          port=rig.flaky_port, keys={"callee": "flaky"}, timeout_s=30)
    rig.sipp.wait_listening(rig.flaky_port)
    return proc


@pytest.mark.timeout(90)
def test_a_call_out_fails_over_to_the_routes_next_trunk_only_when_the_provider_fails(rig):
    """Route `5` goes out on `flaky` (its server a sipp) with `failover: [provider]`.
    flaky answers 503: the same call goes out on `provider` (digest, caller ID,
    strip/prepend; tones both ways). flaky answers 486 (the callee is busy):
    the caller gets 486 and nothing reaches `provider`."""
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15, what="registered")

    def flaky(final: int):
        return _flaky(rig, final)

    uas = flaky(503)
    n_ok, mark = len(rig.provider.lines("OUT-OK")), len(rig.pbx.log_text())
    _call(rig.ext["101"], rig.pstn, f"sip:{FAILOVER_DIALLED}@127.0.0.1:{rig.pbx.sip_port}", seconds=4)
    res = uas.wait(10)
    assert res.ok and res.received_requests() == ["INVITE", "ACK"], res.summary()
    ok = rig.provider.lines("OUT-OK")[n_ok:]
    assert len(ok) == 1 and ok[0]["rU"] == SENT and ok[0]["fU"] == CALLER_ID and ok[0]["au"] == TRUNK_USER, ok
    assert re.search(r"call out not taken by the provider: trying the route's next trunk .*status=503 trunk=provider",
                     rig.pbx.log_text()[mark:]), rig.pbx.log_tail()
    _heard(rig.pstn, 440)
    _heard(rig.ext["101"], 1000)

    uas = flaky(486)
    before = len(rig.provider.lines("INVITE"))
    res = rig.sipp.run(rig.sipp.scenario("uac_final.xml", FINAL=486), f"127.0.0.1:{rig.pbx.sip_port}",
                       service=FAILOVER_DIALLED, auth=("101", rig.pbx.passwords["101"]),
                       keys={"caller": "101", "rtp_port": procs.free_port("media")}, timeout_s=15)
    assert res.ok, res.summary()
    assert uas.wait(10).ok
    assert len(rig.provider.lines("INVITE")) == before, rig.provider.lines("INVITE")[before:]


def _ext_registered(rig, ext: str) -> bool | None:
    """What ha-pbx last published on MQTT about `ext`'s registration."""
    states = [m for m in rig.mqtt.messages() if m.topic == f"ha_pbx/ext/{ext}/state"]
    return json.loads(states[-1].payload).get("registered") if states else None


def _forward_call_over_srtp(rig, door: Baresip, phone: Baresip, expect_log: str) -> None:
    """101 calls 104, whose forward takes the call out to the SRTP PSTN phone:
    it answers, tones are heard both ways, the provider got an SDES offer on
    the `srtp` trunk's account, and what crossed the wire toward the phone was
    SRTP. `expect_log`: the ha-pbx log line that says which way the call took."""
    n_ok, mark = len(rig.provider.lines("OUT-OK")), len(rig.pbx.log_text())
    wire = _srtp_call(rig, door, phone, f"sip:104@127.0.0.1:{rig.pbx.sip_port}")
    ok = rig.provider.lines("OUT-OK")[n_ok:]
    assert len(ok) == 1 and ok[0]["au"] == SRTP_USER and ok[0]["rU"] == SRTP_SENT and ok[0]["pr"] == "tls", ok
    assert ok[0]["sdes"] == "yes", f"the provider got no RTP/SAVP offer with a=crypto: {ok}"
    assert expect_log in rig.pbx.log_text()[mark:], rig.pbx.log_tail()
    _heard(phone, 440)
    _heard(door, 1000)
    _assert_srtp_on_the_wire(wire)


@pytest.mark.timeout(150)
def test_forwards_outside_go_out_as_their_route_says_srtp_and_failover_included(rig, workdir, signals):
    """A forward to a number outside takes its route's trunk as a dialled call
    does, whichever way it leaves: the trunk's SRTP and the route's failover.
    104 forwards on no answer (2 s) to numbers behind the `srtp` trunk
    (`srtp: mandatory`; the PSTN phone speaks SDES-SRTP only):
    - 104 is not registered: the forward goes out at once, to route `3`
      (`flaky` answers 503, failover to `srtp`): a plain trunk first, then an
      SRTP one, whose offer carries RTP/SAVP and a key;
    - 104's desk phone rings and does not answer: the fallback rings route `6`
      (the `srtp` trunk itself), then route `3` again (503, then `srtp`).
    Each time the phone answers, tones are heard both ways, the provider saw
    RTP/SAVP with an a=crypto line, and the wire toward the phone is SRTP."""
    procs.wait_until(lambda: registration(rig.pbx, "srtp").get("state") == "registered", 20, what="srtp trunk registered")
    door, phone = rig.ext["101"], rig.pstn_srtp
    desk = None
    try:
        procs.wait_until(lambda: _ext_registered(rig, "104") in (None, False), 10, what="104 not registered")
        rig.broker.publish("ha_pbx/ext/104/cmd/forward_no_answer_secs", "2")
        _forward(rig, "104", "forward_no_answer", SRTP_FAILOVER_DIALLED)
        uas = _flaky(rig, 503)
        _forward_call_over_srtp(rig, door, phone, "nobody to ring is registered: calling the forward outside")
        res = uas.wait(10)
        assert res.ok and res.received_requests() == ["INVITE", "ACK"], res.summary()
        assert re.search(r"call out not taken by the provider: trying the route's next trunk .*status=503 trunk=srtp",
                         rig.pbx.log_text()), rig.pbx.log_tail()
        desk = Baresip(workdir, rig.registry, "desk104-srtp", user="104", domain=f"127.0.0.1:{rig.pbx.sip_port}",
                       password=rig.pbx.passwords["104"], source=signals["tone440"], answermode="manual").start()
        desk.wait_registered(15)
        for target, flaky in ((SRTP_DIALLED, None), (SRTP_FAILOVER_DIALLED, 503)):
            _forward(rig, "104", "forward_no_answer", target)
            uas = _flaky(rig, flaky) if flaky else None
            since = len(desk.ctrl.events)
            _forward_call_over_srtp(rig, door, phone, "nobody in the group answered: calling the fallback outside")
            assert desk.ctrl.wait_event("CALL_INCOMING", 1, since=since), "104's desk phone did not ring first"
            if uas:
                res = uas.wait(10)
                assert res.ok and res.received_requests() == ["INVITE", "ACK"], res.summary()
    finally:
        if desk:
            desk.stop()
        _forward(rig, "104", "forward_no_answer", "")


DOMAIN = "trunk.test"  # served by the test's own dnsmasq, in the test's namespace only


@pytest.mark.netns(resolv_conf="nameserver 127.0.0.1\noptions timeout:1 attempts:2\n")
@pytest.mark.timeout(120)
def test_server_found_by_dns_srv_with_failover_then_a_fallback(workdir, registry, signals):
    """RFC 3263 against a real DNS server: dnsmasq on 127.0.0.1:53 of this
    test's namespace (its /etc/resolv.conf names it) serves `_sip._udp.trunk.test`
    with two targets: priority 10, a server answering 503 (a Kamailio), and
    priority 20, the provider. The trunk (`server: trunk.test`, no port)
    registers through the second after the first failed, calls out through it
    (tones heard both ways), takes a call in from it as the trunk's, and, when
    the SRV records are gone, follows the domain's A record to port 5060 at its
    next re-registration (TTL 2 s)."""
    provider = Provider(workdir, registry, users={TRUNK_USER: TRUNK_PW, PSTN: PSTN_PW}, trunk=TRUNK_USER, pstn=PSTN,
                        extra_ports=(5060,)).start()
    refuser = Refuser(workdir, registry).start()
    srv_name = f"_sip._udp.{DOMAIN}"
    hosts = [(f"sip1.{DOMAIN}", "127.0.0.1"), (f"sip2.{DOMAIN}", "127.0.0.1"), (DOMAIN, "127.0.0.1")]
    dns = Dnsmasq(workdir, registry, domain=DOMAIN, ttl=2).serve(
        srv=[(srv_name, f"sip1.{DOMAIN}", refuser.port, 10, 0), (srv_name, f"sip2.{DOMAIN}", provider.port, 20, 0)],
        hosts=hosts)
    trunks = [{"name": "srv", "server": DOMAIN, "username": TRUNK_USER, "password": TRUNK_PW, "caller_id": CALLER_ID,
               "inbound": "101", "expires_secs": 6, "keepalive_secs": 0}]
    routes = [{"prefix": "0", "trunk": "srv", "strip": 1, "prepend": "+49", "extensions": ["101"]}]
    pbx = Pbx(workdir / "pbx", registry, overrides={"trunks": trunks, "outbound_routes": routes}).start()
    ext = Baresip(workdir, registry, "101", user="101", domain=f"127.0.0.1:{pbx.sip_port}",
                  password=pbx.passwords["101"], source=signals["tone440"]).start()
    pstn = Baresip(workdir, registry, "pstn", user=PSTN, domain=provider.addr, password=PSTN_PW,
                   source=signals["tone1000"]).start()
    try:
        # the priority-10 target refused (503), the priority-20 one holds the registration
        state = procs.wait_until(lambda: (s := trunk_state(pbx, "srv")).get("registration", {}).get("state")
                                 == "registered" and s, 20, what="trunk registered through SRV")
        assert state["server"] == f"127.0.0.1:{provider.port}", state
        assert state["server_via"].startswith(f"SRV {srv_name} priority 20 weight 0: sip2.{DOMAIN}:"), state
        assert sorted(state["resolved"]) == sorted([f"127.0.0.1:{refuser.port}", f"127.0.0.1:{provider.port}"]), state
        assert refuser.methods()[:1] == ["REGISTER"], refuser.log_tail()
        reg_ok = provider.wait_line("REG-OK", lambda d: d["au"] == TRUNK_USER)
        assert reg_ok["dst"] == str(provider.port), reg_ok
        log = pbx.log_text()
        assert "trunk server failed: trying the next target" in log and "503" in log, log[-3000:]
        # a call out goes to the target in use, with digest and caller ID
        for phone in (ext, pstn):
            phone.wait_registered(15)
        n_ok = len(provider.lines("OUT-OK"))
        _call(ext, pstn, f"sip:{DIALLED}@127.0.0.1:{pbx.sip_port}", seconds=4)
        out = provider.lines("OUT-OK")[n_ok:]
        assert out and out[0]["dst"] == str(provider.port) and out[0]["rU"] == SENT, out
        assert out[0]["fU"] == CALLER_ID and out[0]["au"] == TRUNK_USER, out
        assert "INVITE" not in refuser.methods(), refuser.log_tail()
        _heard(pstn, 440)
        _heard(ext, 1000)
        # a call in from the provider's SRV target is the trunk's (no digest): it rings `inbound`
        calls_in = pbx.log_text().count("call from the trunk")
        _call(pstn, ext, f"sip:{DID}@{provider.addr}", seconds=4)
        assert pbx.log_text().count("call from the trunk") == calls_in + 1, pbx.log_tail()
        assert re.search(rf"call from the trunk trunk=srv caller={PSTN} .*source=127\.0\.0\.1:{provider.port}",
                         pbx.log_text()), pbx.log_tail()
        _heard(ext, 1000)
        # the SRV records are gone: A of the domain, port 5060, at the next refresh
        n = len(provider.lines("REG-OK"))
        dns.serve(hosts=hosts)
        provider.wait_line("REG-OK", lambda d: d["au"] == TRUNK_USER and d["dst"] == "5060", timeout=15, after=n)
        state = procs.wait_until(lambda: (s := trunk_state(pbx, "srv")).get("server") == "127.0.0.1:5060" and s, 5,
                                 what="/health shows the A fallback")
        assert state["server_via"] == f"A/AAAA {DOMAIN} port 5060 (no SRV {srv_name})", state
        assert state["registration"]["state"] == "registered", state
    except BaseException:
        for name, p in (("provider", provider), ("refuser", refuser), ("dnsmasq", dns), ("ha-pbx", pbx),
                        ("101", ext), ("pstn", pstn)):
            print(f"----- {name} log tail -----\n{p.log_tail()}")
        raise


@pytest.mark.timeout(60)
def test_stopping_unregisters_the_trunk(rig):
    """Last in this module (it stops the shared ha-pbx): on SIGTERM a
    registered trunk sends REGISTER with Expires: 0, digest-authenticated,
    and the provider takes the binding back, so calls stop going to an
    address that no longer answers."""
    procs.wait_until(lambda: registration(rig.pbx, "provider").get("state") == "registered", 15,
                     what="trunk registered in /health")
    n_ok = len(rig.provider.lines("REG-OK"))
    rc = rig.pbx.stop(grace=10)
    assert rc == 0, f"ha-pbx exit status {rc}\n{rig.pbx.log_tail()}"
    gone = [d for d in rig.provider.lines("REG-OK")[n_ok:] if d["au"] == TRUNK_USER and d["expires"] == "0"]
    assert gone, f"no un-REGISTER reached the provider: {rig.provider.lines('REG-OK')[n_ok:]}\n{rig.pbx.log_tail()}"
    assert "trunk unregistered" in rig.pbx.log_text()
