"""Building blocks shared by the tests: sipp registration, sipp calls with
Python RTP endpoints on both sides, media checks."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from . import procs
from .rtp import RtpEndpoint, tone_samples
from .sipp import Sipp, SippProc, SippResult


def read_media_file(path: Path) -> tuple[str, int] | None:
    """Parse "c=IN IP4 ADDR m=audio PORT" written by a scenario's <exec>."""
    try:
        t = Path(path).read_text().split()
    except OSError:
        return None
    if len(t) >= 5 and t[0] == "c=IN" and t[3] == "m=audio":
        try:
            return t[2], int(t[4])
        except ValueError:
            return None
    return None


def wait_media_file(path: Path, timeout: float, what: str) -> tuple[str, int]:
    return procs.wait_until(lambda: read_media_file(path), timeout, what=what)


def sipp_register(sipp: Sipp, pbx, ext: str, *, port: int, password: str | None = None,
                  expires: int = 3600, local_ip: str = "127.0.0.1", transport: str = "u1",
                  scenario: str = "register.xml", name: str | None = None,
                  recv_timeout_ms: int = 5000, timeout_s: int = 20) -> SippResult:
    """Register extension `ext` with Contact port `port`, sent from that same port
    (so the binding works whether the PBX uses the Contact or the source address)."""
    pw = password if password is not None else pbx.passwords[ext]
    return sipp.run(scenario, f"{pbx.host}:{pbx.sip_port}", name=name, local_ip=local_ip,
                    port=port, transport=transport, users=[(ext, pw)],
                    keys={"contact_port": port, "expires": expires},
                    recv_timeout_ms=recv_timeout_ms, timeout_s=timeout_s)


@dataclass
class SippCall:
    uac: SippResult
    uas: SippResult | None
    caller_rtp: RtpEndpoint
    callee_rtp: RtpEndpoint
    caller_sees: tuple[str, int] | None   # media address in the 200 OK the caller got
    callee_sees: tuple[str, int] | None   # media address in the INVITE the callee got


def start_uas(sipp: Sipp, pbx, ext: str, port: int, scenario: str, rtp_port: int,
              media_file: Path, timeout_s: int = 40) -> SippProc:
    p = sipp.start(scenario, name=f"uas-{ext}-{Path(scenario).stem}", port=port,
                   keys={"callee": ext, "rtp_port": rtp_port, "media_file": media_file},
                   timeout_s=timeout_s)
    sipp.wait_listening(port)
    return p


def sipp_tone_call(sipp: Sipp, pbx, workdir: Path, *, caller: str, callee: str,
                   callee_port: int, hold_ms: int = 6000, caller_hz: float = 1000.0,
                   callee_hz: float = 440.0, uas_scenario: str = "uas_answer.xml",
                   dialled: str | None = None) -> SippCall:
    """sipp UAC (caller, answering 407) -> PBX -> sipp UAS (callee, already registered
    with Contact port callee_port). Both SDPs point at Python RTP endpoints that send
    tones (caller_hz one way, callee_hz the other) to the addresses the PBX offered,
    and record what the PBX relays. `dialled`: the number the caller dials when that
    is not the callee (a ring group the callee is a member of)."""
    caller_rtp = RtpEndpoint()
    callee_rtp = RtpEndpoint()
    uac_media = workdir / f"uac-media-{caller}-{time.monotonic_ns()}.txt"
    uas_media = workdir / f"uas-media-{callee}-{time.monotonic_ns()}.txt"
    uas = start_uas(sipp, pbx, callee, callee_port, uas_scenario, callee_rtp.port, uas_media)
    uac_proc = sipp.start("uac_call.xml", f"{pbx.host}:{pbx.sip_port}", name=f"uac-{caller}",
                          service=dialled or callee, auth=(caller, pbx.passwords[caller]),
                          keys={"caller": caller, "rtp_port": caller_rtp.port,
                                "media_file": uac_media},
                          duration_ms=hold_ms, timeout_s=40)
    # once the INVITE reached the callee, its RTP goes to the PBX's offer
    callee_sees = caller_sees = None
    end = time.monotonic() + 15
    while time.monotonic() < end and (callee_sees is None or caller_sees is None):
        if callee_sees is None:
            callee_sees = read_media_file(uas_media)
            if callee_sees:
                callee_rtp.start_sending(tone_samples(callee_hz, 2.0), callee_sees)
        if caller_sees is None:
            caller_sees = read_media_file(uac_media)
            if caller_sees:
                caller_rtp.start_sending(tone_samples(caller_hz, 2.0), caller_sees)
        if not uac_proc.running() and not uas.running():
            break
        time.sleep(0.02)
    uac = uac_proc.wait(60)
    uas_res = uas.wait(20)
    time.sleep(0.2)
    caller_rtp.close()
    callee_rtp.close()
    return SippCall(uac, uas_res, caller_rtp, callee_rtp, caller_sees, callee_sees)


@dataclass
class SippCaller:
    uac: SippResult
    rtp: RtpEndpoint
    sees: tuple[str, int] | None  # media address in the 200 OK


def sipp_caller_tone_call(sipp: Sipp, pbx, workdir: Path, *, caller: str, callee: str,
                          hold_ms: int = 6000, hz: float = 440.0) -> SippCaller:
    """sipp UAC -> PBX -> any callee (a real phone). The UAC's SDP points at a Python
    RTP endpoint that sends a tone to the PBX once answered and records what comes back."""
    ep = RtpEndpoint()
    media = workdir / f"uac-media-{caller}-{time.monotonic_ns()}.txt"
    proc = sipp.start("uac_call.xml", f"{pbx.host}:{pbx.sip_port}", name=f"uac-{caller}-{callee}",
                      service=callee, auth=(caller, pbx.passwords[caller]),
                      keys={"caller": caller, "rtp_port": ep.port, "media_file": media},
                      duration_ms=hold_ms, timeout_s=40)
    sees = None
    end = time.monotonic() + 20
    while time.monotonic() < end and proc.running():
        sees = read_media_file(media)
        if sees:
            ep.start_sending(tone_samples(hz, 2.0), sees)
            break
        time.sleep(0.02)
    res = proc.wait(60)
    time.sleep(0.2)
    ep.close()
    return SippCaller(res, ep, sees)
