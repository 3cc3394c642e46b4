"""Building blocks for tests whose SIP peers are `harness.ua.UA`s: a call set
up step by step, RTP endpoints with an RTCP socket next to them, /health,
audio received after a given moment."""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from dataclasses import dataclass

import numpy as np

from . import audio, procs
from .rtp import RtpEndpoint, tone_samples, ulaw_decode
from .sip import SipMessage
from .ua import UA, Dialog, OutgoingInvite, make_sdp, parse_sdp


def health(pbx) -> dict:
    with urllib.request.urlopen(pbx.http_base + "/health", timeout=2) as r:
        return json.loads(r.read())


def wait_health(pbx, timeout: float = 5.0, **want) -> dict:
    """Poll /health until every key in `want` has that value; returns the last answer."""
    end = time.monotonic() + timeout
    h = health(pbx)
    while time.monotonic() < end:
        if all(h.get(k) == v for k, v in want.items()):
            return h
        time.sleep(0.1)
        h = health(pbx)
    return h


class MediaPort:
    """An RTP endpoint on port P and a plain UDP socket on P+1 for RTCP."""

    def __init__(self, host: str = "127.0.0.1"):
        for _ in range(20):
            p = procs.free_port("media", count=2)
            try:
                self.rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.rtcp.bind((host, p + 1))
                self.rtp = RtpEndpoint(host, p)
                break
            except OSError:
                self.rtcp.close()
        else:
            raise RuntimeError("no free RTP/RTCP port pair")
        self.host, self.port = host, p
        self.rtcp.settimeout(0.2)
        self.rtcp_received: list[tuple[bytes, tuple[str, int]]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, src = self.rtcp.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            self.rtcp_received.append((data, src))

    def close(self) -> None:
        self._stop.set()
        self._t.join(timeout=2)
        self.rtcp.close()
        self.rtp.close()


def decoded_since(ep: RtpEndpoint, t0: float, pt: int = 0) -> np.ndarray:
    """PCMU received at or after t0, in arrival order, as float samples."""
    pk = [r.pkt.payload for r in ep.packets() if r.arrival >= t0 and r.pkt.pt == pt]
    if not pk:
        return np.zeros(0)
    return ulaw_decode(b"".join(pk)).astype(np.float64) / 32768.0


def tone_report(ep: RtpEndpoint, t0: float | None = None) -> audio.ToneReport:
    x = ep.decoded_float() if t0 is None else decoded_since(ep, t0)
    return audio.analyze_tone_samples(x)


@dataclass
class Connected:
    out: OutgoingInvite             # the caller's INVITE (final = the 200 it got)
    invite: SipMessage              # the INVITE the callee got
    caller: Dialog
    callee: Dialog
    callee_tag: str
    caller_sees: tuple[str, int]    # media address in the 200 the caller got
    callee_sees: tuple[str, int]    # media address in the INVITE the callee got



def connect(pbx, caller: UA, callee: UA, target: str, caller_port: int, callee_port: int,
            *, answer_extra: list[tuple[str, str]] | None = None, ring: bool = True,
            timeout: float = 8.0, caller_sdp_host: str | None = None) -> Connected:
    """caller INVITEs `target`; callee (already registered) rings and answers 200.
    `caller_sdp_host`: the address the caller's SDP names, when not the one it
    signals from (a device behind NAT writes its private address).
    Asserts every step; returns both dialogs once both ACKs are through."""
    out = caller.invite(target, make_sdp(caller_sdp_host or caller.local[0], caller_port))
    inv = callee.wait_request("INVITE", timeout)
    assert inv is not None, f"callee {callee.name} got no INVITE; caller got " \
                            f"{[m.start for m in caller.received()]}"
    tag = "cal" + str(abs(hash(inv.get("call-id"))) % 10**8)
    if ring:
        callee.respond(inv, 180, to_tag=tag)
    d_callee = callee.answer(inv, make_sdp(callee.local[0], callee_port), to_tag=tag,
                             extra=answer_extra)
    final = out.wait_final(timeout)
    assert final is not None and final.status == 200, f"caller's final response: {final}"
    ack = callee.wait_request("ACK", timeout, call_id=inv.get("call-id"))
    assert ack is not None, "the PBX did not ACK the callee's 200"
    assert out.dialog is not None
    return Connected(out, inv, out.dialog, d_callee, tag, parse_sdp(final.body).addr,
                     parse_sdp(inv.body).addr)


def start_tones(call: Connected, caller_rtp: RtpEndpoint, callee_rtp: RtpEndpoint,
                caller_hz: float = 1000.0, callee_hz: float = 440.0) -> None:
    caller_rtp.start_sending(tone_samples(caller_hz, 2.0), call.caller_sees)
    callee_rtp.start_sending(tone_samples(callee_hz, 2.0), call.callee_sees)


def hang_up(by: Dialog, other_ua: UA, call_id: str | None = None, timeout: float = 8.0):
    """`by` sends BYE in a thread; other_ua must get a BYE, answers 200; returns
    (final response to `by`, the BYE other_ua got)."""
    res: list = []
    t = threading.Thread(target=lambda: res.append(by.bye(timeout)), daemon=True)
    t.start()
    bye = other_ua.wait_request("BYE", timeout, call_id=call_id)
    if bye is not None:
        other_ua.respond(bye, 200)
    t.join(timeout + 1)
    return (res[0] if res else None), bye


def ua_factory(workdir, dumper):
    """Returns (make, close_all): make(pbx, ext, **kw) -> UA, its trace printed
    by the dumper on failure and written to workdir/NAME.trace at close."""
    made: list[UA] = []

    def make(pbx, ext: str | None = None, **kw) -> UA:
        kw.setdefault("trace_dir", workdir)
        u = UA(pbx, ext, **kw)
        if any(x.name == u.name for x in made):
            u.name = f"{u.name}-{len(made)}"
        made.append(u)
        dumper.add(f"SIP trace {u.name}", u)
        return u

    def close_all() -> None:
        for u in made:
            u.close()

    return make, close_all


def registered(*uas) -> None:
    """REGISTER each of the harness's Python UAs; each must get 200."""
    for ua in uas:
        r = ua.register()
        assert r is not None and r.status == 200, f"{ua.name}: REGISTER answered {r}"
