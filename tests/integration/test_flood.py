"""Floods and scanners (issue 17, item 10): a source sending requests faster
than `security.flood_rate` (beyond `flood_burst`) is ignored for
`flood_ban_secs`, over UDP and TCP, with one log line; other sources, trusted
ones and phones at a phone's pace are not affected; memory stays bounded
under a sipp flood of unauthenticated INVITEs; requests from scanners'
User-Agents (`security.blocked_user_agents`) get no answer.

Addresses: 127.0.0.1 trusted (the tests' own sipp runs), 127.0.0.2 the
flooder, 127.0.0.3 a phone."""
from __future__ import annotations

import re
import time

import pytest

from harness import procs
from harness import sip as siplib

FLOODER = "127.0.0.2"
PHONE = "127.0.0.3"
RATE, BURST, BAN_SECS = 20, 40, 4
LIMITED = {"security": {"trusted_sources": ["127.0.0.1"], "flood_rate": RATE, "flood_burst": BURST,
                        "flood_ban_secs": BAN_SECS}}
FLOOD_LOG = "SIP flood: source over the request rate limit"


def _flood_log_lines(pbx, source: str) -> list[str]:
    return [line for line in pbx.log_text().splitlines() if FLOOD_LOG in line and source in line]


def _options_burst(c: siplib.SipClient, pbx, n: int) -> float:
    uri = f"sip:{pbx.host}:{pbx.sip_port}"
    t0 = time.monotonic()
    for _ in range(n):
        c.send_raw(c.build("OPTIONS", uri)[0])
    return time.monotonic() - t0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_flooding_source_is_ignored_for_a_while_and_others_are_not(pbx_factory, transport):
    pbx = pbx_factory(overrides=LIMITED).start()
    with siplib.SipClient(pbx.host, pbx.sip_port, transport=transport, local_host=FLOODER) as f:
        took = _options_burst(f, pbx, 300)
        answers = [m for m in f.messages_within(2.0) if m.is_response]
        allowed = BURST + RATE * took + 2
        assert BURST - 5 <= len(answers) <= allowed, \
            f"{len(answers)} answers to 300 OPTIONS in {took:.2f}s (limit {BURST} + {RATE}/s)"
        assert f.options(timeout=1.5) is None, "the flooding source is still answered"
        lines = procs.wait_until(lambda: _flood_log_lines(pbx, FLOODER), 5, what="the flood log line")
        assert len(lines) == 1, lines
        assert re.search(r"requests_last_second=\d+", lines[0]), lines[0]

        # others are served meanwhile: a phone from another address, a trusted source
        with siplib.SipClient(pbx.host, pbx.sip_port, local_host=PHONE) as phone:
            r = phone.register("101", pbx.passwords["101"], expires=60)
            assert r is not None and r.status == 200, r
        with siplib.SipClient(pbx.host, pbx.sip_port) as trusted:
            _options_burst(trusted, pbx, 2 * BURST)
            assert len([m for m in trusted.messages_within(2.0) if m.is_response]) == 2 * BURST

        # the ban ends by itself
        procs.wait_until(lambda: f.options(timeout=1.0) is not None, BAN_SECS + 10,
                         what="the flooder answered again after the ban")
        assert len(_flood_log_lines(pbx, FLOODER)) == 1, "a second log line for the same ban"


@pytest.mark.timeout(60)
def test_phones_at_their_pace_are_never_limited_by_the_defaults(pbx_factory):
    """With the default limit (only loopback 127.0.0.1 trusted here): a phone
    re-registering 60 times in a row, and four phones behind one address
    registering at once, all get 200."""
    pbx = pbx_factory(overrides={"security": {"trusted_sources": ["127.0.0.1"]}}).start()
    with siplib.SipClient(pbx.host, pbx.sip_port, local_host=PHONE) as phone:
        for i in range(60):
            r = phone.register("101", pbx.passwords["101"], expires=60)
            assert r is not None and r.status == 200, (i, r)
    for ext in ("101", "102", "103", "104"):
        with siplib.SipClient(pbx.host, pbx.sip_port, local_host=PHONE) as c:
            r = c.register(ext, pbx.passwords[ext], expires=60)
            assert r is not None and r.status == 200, (ext, r)
    assert not _flood_log_lines(pbx, PHONE)


def _options_with_ua(pbx, ua: str | None, local_host: str = PHONE) -> siplib.SipMessage | None:
    with siplib.SipClient(pbx.host, pbx.sip_port, local_host=local_host) as c:
        extra = [("User-Agent", ua)] if ua else []
        return c.request("OPTIONS", f"sip:{pbx.host}:{pbx.sip_port}", timeout=1.5, extra=extra)


@pytest.mark.timeout(60)
def test_scanner_user_agents_get_no_answer(pbx_factory):
    pbx = pbx_factory().start()
    for ua in ("friendly-scanner", "sipvicious", "SIPCLI/v1.8", "pplsip"):
        assert _options_with_ua(pbx, ua) is None, f"{ua} answered"
    for ua in ("Yealink SIP-T46S", None):
        r = _options_with_ua(pbx, ua)
        assert r is not None and r.status == 200, (ua, r)

    open_pbx = pbx_factory("open", overrides={"security": {"blocked_user_agents": []}}).start()
    r = _options_with_ua(open_pbx, "friendly-scanner")
    assert r is not None and r.status == 200, r


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


@pytest.mark.timeout(120)
def test_memory_stays_bounded_under_an_invite_flood(pbx_factory, sipp):
    """20,000 unauthenticated INVITEs at 2,000/s from one untrusted source:
    the PBX's RSS grows by less than 20 MB (before the limit it grew by about
    40 MB: every INVITE got a transaction and a 407; bench/flood_rss.py)."""
    pbx = pbx_factory(overrides={"security": {"trusted_sources": ["127.0.0.1"]}, "log_level": "info"}).start()
    pid = pbx.proc.pid
    base = _rss_kb(pid)
    flood = sipp.start("invite_flood.xml", f"{pbx.host}:{pbx.sip_port}", name="flood", local_ip=FLOODER,
                       calls=20_000, limit=20_000, rate=2000, timeout_s=60)
    peak = base
    while flood.running():
        peak = max(peak, _rss_kb(pid))
        time.sleep(0.2)
    flood.wait(10)
    peak = max(peak, _rss_kb(pid))
    grew_mb = (peak - base) / 1024
    print(f"RSS {base / 1024:.1f} MB before, peak {peak / 1024:.1f} MB under the flood (+{grew_mb:.1f} MB)")
    assert len(_flood_log_lines(pbx, FLOODER)) >= 1, "the flood was not detected"
    assert grew_mb < 20, f"RSS grew by {grew_mb:.1f} MB under the flood"
    with siplib.SipClient(pbx.host, pbx.sip_port, local_host=PHONE) as phone:
        r = phone.register("101", pbx.passwords["101"], expires=60)
        assert r is not None and r.status == 200, r
