"""What the trunk tests share: the numbers and accounts of the provider
(a Kamailio, harness/kamailio.py) and of the trunks the rig configures, and
the checks they all make (a call with tones both ways, /health's trunk state,
SRTP on the wire)."""
from __future__ import annotations

import json
import time
import urllib.request

from harness import audio, procs
from harness import rtp as rtp_audio
from harness.baresip import Baresip
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
    """The package's provider, ha-pbx, broker and phones (conftest.py's `rig`)."""


def health(pbx) -> dict:
    with urllib.request.urlopen(pbx.http_base + "/health", timeout=2) as resp:
        return json.loads(resp.read())


def trunk_state(pbx, name: str) -> dict:
    return health(pbx)["trunks"].get(name) or {}


def registration(pbx, name: str) -> dict:
    return trunk_state(pbx, name).get("registration") or {}


def call_both_ways(caller: Baresip, callee: Baresip, uri: str, seconds: float = 5.0):
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


def assert_heard(phone: Baresip, hz: float):
    rep = audio.analyze_tone(phone.recordings()[-1])
    assert rep.ok(hz, min_seconds=3), f"{phone.name} heard {rep}, expected {hz} Hz"


def srtp_call(rig, caller: Baresip, callee: Baresip, uri: str) -> list[tuple[int, bytes]]:
    """A call with tones both ways, and what crossed the wire toward the SRTP
    PSTN phone's RTP ports meanwhile."""
    ports = range(rig.pstn_srtp.rtp_lo, rig.pstn_srtp.rtp_lo + 20)
    with UdpSniffer(ports) as wire:
        call_both_ways(caller, callee, uri, seconds=4)
    return wire.packets()


def assert_srtp_on_the_wire(packets: list[tuple[int, bytes]]):
    """RTP toward the SRTP phone carries an 80-bit tag after its 160 bytes of
    G.711, and those 160 bytes are not the 440 Hz tone the extension sends:
    decoded as G.711 they are noise, while the phone itself hears the tone."""
    rtp = [p for _, p in packets if len(p) >= 12 and p[0] >> 6 == 2 and p[1] & 0x7F == 0]
    assert len(rtp) >= 150, f"{len(rtp)} RTP packets toward the SRTP phone"
    sizes = {len(p) for p in rtp}
    assert sizes == {12 + 160 + 10}, f"packet sizes {sizes}: not PCMU with an 80-bit SRTP tag"
    wire = audio.analyze_tone_samples(rtp_audio.ulaw_decode(b"".join(p[12:172] for p in rtp)).astype("float64") / 32768.0)
    assert not wire.ok(440, min_seconds=1), f"the wire carries the tone in the clear: {wire}"
