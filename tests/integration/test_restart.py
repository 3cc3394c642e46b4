"""Registrations survive a restart: they are kept in data_dir (SQLite), so a
device that registered with a long Expires is reachable after the PBX
restarts, without registering again."""
from __future__ import annotations

import pytest

from harness import flows, procs


@pytest.mark.timeout(120)
def test_registration_survives_restart(pbx, sipp, workdir):
    port = procs.free_port()
    res = flows.sipp_register(sipp, pbx, "102", port=port, expires=3600, name="reg-102")
    assert res.ok, res.summary()

    pbx.restart()
    assert pbx.alive() and pbx.starts == 2

    # no new REGISTER: call 102 and the INVITE must reach the sipp UAS at the old contact
    call = flows.sipp_tone_call(sipp, pbx, workdir, caller="101", callee="102",
                                callee_port=port, hold_ms=2000)
    assert "INVITE" in call.uas.received_requests(), \
        f"INVITE did not reach 102 after restart:\n{call.uas.summary()}\n{call.uac.summary()}"
    assert call.uac.ok, call.uac.summary()
    assert call.uas.ok, call.uas.summary()


def test_sigterm_stops_promptly(pbx):
    """SIGTERM (what a container stop sends) ends the process within the 5 s grace,
    without the SIGKILL fallback."""
    import time
    t0 = time.monotonic()
    rc = pbx.stop(grace=5.0)
    took = time.monotonic() - t0
    assert rc is not None and rc != -9 and took < 5.0, \
        f"ha-pbx did not stop on SIGTERM (rc={rc}, {took:.1f}s)\n{pbx.log_tail()}"


@pytest.mark.timeout(60)
def test_no_arguments_starts_on_the_embedded_defaults(workdir, registry):
    """The README's run command: `ha-pbx` with no arguments listens on SIP
    5060 (UDP and TCP) and HTTP 8088, with SQLite in ./data."""
    import json
    import urllib.request

    from harness import sip as siplib
    from harness.pbx import pbx_binary

    log = workdir / "default.log"
    proc = registry.popen([str(pbx_binary())], log=log, cwd=str(workdir))
    procs.wait_until(lambda: "ready" in log.read_text(errors="replace"), 15, what="ha-pbx ready")
    with urllib.request.urlopen("http://127.0.0.1:8088/health", timeout=5) as r:
        health = json.loads(r.read())
    assert r.status == 200 and health["status"] == "ok", health
    for transport in ("udp", "tcp"):
        with siplib.SipClient("127.0.0.1", 5060, transport=transport) as c:
            resp = c.options()
            assert resp is not None and resp.status == 200, f"{transport}: {resp}"
    assert (workdir / "data" / "ha-pbx.sqlite").is_file(), "no SQLite database in ./data"
    assert proc.poll() is None


@pytest.mark.timeout(90)
def test_a_call_open_at_sigkill_is_closed_in_the_history_at_the_next_start(pbx, uas, rtp):
    """kill -9 in the middle of an answered call leaves its history row open;
    the next start closes it (`pbx_stopped`, still answered) and logs how many."""
    import signal
    import sqlite3
    import time

    from harness.uaflows import connect

    caller, callee = uas(pbx, "101"), uas(pbx, "102")
    r = callee.register()
    assert r is not None and r.status == 200, r
    call = connect(pbx, caller, callee, "102", rtp().port, rtp().port)
    call_id = call.out.call_id  # the history keeps the caller's Call-ID
    db = pbx.data_dir / "ha-pbx.sqlite"

    def row():
        with sqlite3.connect(db) as c:
            return c.execute("SELECT answered_at, ended_at, disposition, end_reason FROM calls "
                             "WHERE call_id = ?", (call_id,)).fetchone()

    procs.wait_until(lambda: (x := row()) is not None and x[0] is not None, 5, what="the answered call's row")
    pbx.proc.send_signal(signal.SIGKILL)
    pbx.proc.wait(5)
    answered_at, ended_at, _, _ = row()
    assert ended_at is None, "the row was closed before the restart"
    t0 = time.time() * 1000
    pbx.start()
    answered_at2, ended_at, disposition, reason = row()
    assert (answered_at2, disposition, reason) == (answered_at, "answered", "pbx_stopped")
    assert ended_at is not None and ended_at >= t0 - 1000, ended_at
    assert "calls left open by the last run" in pbx.log_text()
