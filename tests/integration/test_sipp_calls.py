"""Call routing with sipp on both sides: sipp UAC (extension 101, answers the
407 challenge) -> PBX -> sipp UAS (registered as 102). Media is checked by
content with Python RTP endpoints that the sipp SDPs point at."""
from __future__ import annotations


import pytest

from harness import audio, flows, procs
from harness import sip as siplib


@pytest.fixture
def callee_port(pbx, sipp) -> int:
    """Extension 102 registered with the Contact port a sipp UAS will listen on."""
    port = procs.free_port()
    res = flows.sipp_register(sipp, pbx, "102", port=port, name="reg-102")
    assert res.ok, f"could not register 102: {res.summary()}"
    return port


def _routes_via_pbx(msg: siplib.SipMessage, pbx) -> bool:
    me = f"{pbx.host}:{pbx.sip_port}"
    rr = " ".join(msg.all("record-route"))
    contact = " ".join(msg.contacts())
    return me in rr or (not rr and me in contact)


def _uac_final(sipp, pbx, callee: str, code: int, caller: str = "101"):
    return sipp.run(sipp.scenario("uac_final.xml", FINAL=code), f"{pbx.host}:{pbx.sip_port}",
                    name=f"uac-{callee}-{code}", service=callee,
                    auth=(caller, pbx.passwords[caller]),
                    keys={"caller": caller, "rtp_port": procs.free_port("media")}, timeout_s=25)


@pytest.mark.timeout(120)
def test_call_connects_and_tones_cross_the_pbx(pbx, sipp, workdir, callee_port):
    call = flows.sipp_tone_call(sipp, pbx, workdir, caller="101", callee="102",
                                callee_port=callee_port, hold_ms=6000,
                                caller_hz=1000, callee_hz=440)
    assert call.uac.ok, call.uac.summary()
    assert call.uas.ok, call.uas.summary()
    # the INVITE was challenged with 407 Proxy-Authenticate (MD5, qop=auth)
    ch = [m for m in call.uac.received() if m.status == 407]
    assert ch, call.uac.summary()
    pa = siplib.parse_auth_params(ch[0].get("Proxy-Authenticate") or "")
    assert pa.get("realm") == "ha-pbx" and "auth" in pa.get("qop", ""), ch[0]
    # the PBX anchors media: both legs' SDP point at rtp.address and ports in rtp.ports
    for who, seen in (("caller", call.caller_sees), ("callee", call.callee_sees)):
        assert seen is not None, f"no SDP seen by the {who}"
        ip, port = seen
        assert ip == pbx.host and pbx.in_rtp_range(port), \
            f"{who} was offered media at {ip}:{port}, not in the PBX range {pbx.rtp_lo}-{pbx.rtp_hi}"
    # the PBX stays in the signalling path: each side's dialog routes back through
    # it (Record-Route naming the PBX as a proxy would, or the PBX as the Contact as a
    # B2BUA does), so ACK/BYE cannot bypass it
    inv = [m for m in call.uas.received() if m.method == "INVITE"][0]
    ok200 = [m for m in call.uac.received() if m.status == 200 and m.cseq()[1] == "INVITE"][0]
    for who, msg in (("callee (INVITE)", inv), ("caller (200 OK)", ok200)):
        assert _routes_via_pbx(msg, pbx), \
            f"{who}: neither Record-Route nor Contact names the PBX:\n{msg}"
    # RTP arrived from the PBX's ports, not from the other endpoint
    for who, ep in (("caller", call.caller_rtp), ("callee", call.callee_rtp)):
        srcs = ep.sources()
        assert srcs, f"{who} received no RTP"
        assert all(ip == pbx.host and pbx.in_rtp_range(p) for ip, p in srcs), \
            f"{who} got RTP from {srcs}, not from the PBX range"
    # and the audio is the other side's tone
    r_callee = audio.analyze_tone_samples(call.callee_rtp.decoded_float())
    r_caller = audio.analyze_tone_samples(call.caller_rtp.decoded_float())
    print(f"callee heard: {r_callee}\ncaller heard: {r_caller}")
    assert r_callee.ok(1000, min_seconds=3.0), f"callee heard: {r_callee}"
    assert r_caller.ok(440, min_seconds=3.0), f"caller heard: {r_caller}"


def test_cancel_before_answer(pbx, sipp, workdir, callee_port):
    uas = flows.start_uas(sipp, pbx, "102", callee_port, "uas_ring_cancel.xml",
                          procs.free_port("media"), workdir / "uas-media.txt", timeout_s=25)
    uac = sipp.run("uac_cancel.xml", f"{pbx.host}:{pbx.sip_port}", name="uac-cancel",
                   service="102", auth=("101", pbx.passwords["101"]),
                   keys={"caller": "101", "rtp_port": procs.free_port("media")}, timeout_s=25)
    r = uas.wait(30)
    assert 487 in uac.received_statuses(), f"caller did not get 487:\n{uac.summary()}"
    assert uac.ok, uac.summary()
    assert "CANCEL" in r.received_requests(), f"callee got no CANCEL:\n{r.summary()}"
    assert r.ok, r.summary()


def test_busy_callee_486_is_passed_back(pbx, sipp, workdir, callee_port):
    uas = flows.start_uas(sipp, pbx, "102", callee_port, "uas_busy.xml",
                          procs.free_port("media"), workdir / "uas-media.txt", timeout_s=25)
    uac = _uac_final(sipp, pbx, "102", 486)
    r = uas.wait(30)
    assert uac.ok, uac.summary()
    assert r.ok, r.summary()


def test_call_to_a_number_that_is_no_extension_gets_404(pbx, sipp):
    res = _uac_final(sipp, pbx, "555", 404)
    assert res.ok, res.summary()


def test_call_to_unregistered_extension_gets_480(pbx, sipp):
    res = _uac_final(sipp, pbx, "103", 480)
    assert res.ok, res.summary()


def test_invite_with_wrong_password_never_reaches_callee(pbx, sipp, workdir, callee_port):
    uas = flows.start_uas(sipp, pbx, "102", callee_port, "uas_answer.xml",
                          procs.free_port("media"), workdir / "uas-media.txt", timeout_s=10)
    uac = sipp.run("uac_wrong_password.xml", f"{pbx.host}:{pbx.sip_port}", name="uac-badpw",
                   service="102", auth=("101", "not-the-password"),
                   keys={"caller": "101", "rtp_port": procs.free_port("media")}, timeout_s=15)
    # and an INVITE that never answers the challenge does not ring the callee either
    with siplib.SipClient(pbx.host, pbx.sip_port) as c:
        resp = c.request("INVITE", f"sip:102@{pbx.host}:{pbx.sip_port}",
                         from_=f"<sip:101@{pbx.host}>;tag={c.tag}",
                         extra=[("Contact", f"<sip:101@{c.local[0]}:{c.local[1]}>")])
        if resp is not None:
            # ACK the final response (hop-by-hop: same Via branch as the INVITE)
            ack = (f"ACK sip:102@{pbx.host}:{pbx.sip_port} SIP/2.0\r\nVia: {resp.get('via')}\r\n"
                   f"Max-Forwards: 70\r\nFrom: {resp.get('from')}\r\nTo: {resp.get('to')}\r\n"
                   f"Call-ID: {resp.get('call-id')}\r\nCSeq: {resp.cseq()[0]} ACK\r\n"
                   f"Content-Length: 0\r\n\r\n")
            c.send_raw(ack.encode())
    r = uas.wait(20)
    assert uac.ok, f"wrong password was not refused with 407/403:\n{uac.summary()}"
    assert resp is not None and resp.status in (401, 407), f"INVITE without credentials: {resp}"
    assert "INVITE" not in r.received_requests(), f"callee got an INVITE:\n{r.summary()}"
