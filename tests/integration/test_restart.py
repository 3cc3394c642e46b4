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


@pytest.mark.timeout(150)
def test_kill_9_under_load_loses_nothing_committed(pbx, sipp, workdir):
    """kill -9 while sipp places calls (several at once) and phones keep
    re-registering: the database is intact, and after the restart every
    registration (the callee's, and each re-registering phone's latest
    binding), every finished call and every stored message are there as
    before, and no history row is left open (those open at the kill are
    closed as pbx_stopped)."""
    import signal
    import sqlite3
    import threading

    from harness import sip as siplib

    db = pbx.data_dir / "ha-pbx.sqlite"

    def query(sql: str, *args):
        with sqlite3.connect(db, timeout=10) as c:
            return c.execute(sql, args).fetchall()

    callee_port = procs.free_port()
    res = flows.sipp_register(sipp, pbx, "102", port=callee_port, expires=3600, name="reg-102")
    assert res.ok, res.summary()
    uas = sipp.start("uas_answer.xml", name="uas-102", port=callee_port, calls=100_000,
                     keys={"callee": "102", "rtp_port": 17_000, "media_file": workdir / "uas-media.txt"},
                     timeout_s=120)
    sipp.wait_listening(callee_port)
    uac = sipp.start("uac_call.xml", f"{pbx.host}:{pbx.sip_port}", name="uac-101", service="102",
                     auth=("101", pbx.passwords["101"]), calls=100_000, limit=4, rate=10, duration_ms=700,
                     keys={"caller": "101", "rtp_port": 17_002, "media_file": workdir / "uac-media.txt"},
                     timeout_s=120)
    # a message stored while the PBX writes (the AI agent's messages table)
    query("INSERT INTO messages (call_id, caller, callee, transcript, created_at) "
          "VALUES ('m1', '101', '200', 'please call back', 1)")

    stop = threading.Event()
    registered: dict[str, int] = {}

    def churn(ext: str):
        with siplib.SipClient(pbx.host, pbx.sip_port) as c:
            while not stop.is_set():
                r = c.register(ext, pbx.passwords[ext], expires=3600, timeout=2.0)
                if r is not None and r.status == 200:
                    registered[ext] = registered.get(ext, 0) + 1

    threads = [threading.Thread(target=churn, args=(e,), daemon=True) for e in ("103", "104")]
    for t in threads:
        t.start()
    try:
        procs.wait_until(lambda: query("SELECT count(*) FROM calls WHERE ended_at IS NOT NULL")[0][0] >= 5
                         and query("SELECT count(*) FROM calls WHERE ended_at IS NULL")[0][0] >= 1
                         and min(registered.get("103", 0), registered.get("104", 0)) >= 5,
                         60, interval=0.02, what="finished and open calls, and re-registrations")
        pbx.proc.send_signal(signal.SIGKILL)
        pbx.proc.wait(5)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert uac.running(), "the load had stopped before the kill"
    uac.stop()  # no new calls after the restart: every row open now was open at the kill

    assert query("PRAGMA integrity_check") == [("ok",)]
    finished = query("SELECT * FROM calls WHERE ended_at IS NOT NULL ORDER BY call_id")
    left_open = [r[0] for r in query("SELECT call_id FROM calls WHERE ended_at IS NULL")]
    bindings = query("SELECT extension, contact_uri, call_id FROM bindings ORDER BY extension, contact_uri")
    assert {b[0] for b in bindings} >= {"102", "103", "104"}, bindings

    pbx.start()
    assert query("PRAGMA integrity_check") == [("ok",)]
    assert query("SELECT * FROM calls WHERE ended_at IS NOT NULL AND call_id IN "
                 f"({','.join('?' * len(finished))}) ORDER BY call_id", *[r[0] for r in finished]) == finished
    assert query("SELECT count(*) FROM calls WHERE ended_at IS NULL") == [(0,)], "history rows left open"
    if left_open:
        reasons = query(f"SELECT DISTINCT end_reason FROM calls WHERE call_id IN ({','.join('?' * len(left_open))})",
                        *left_open)
        assert reasons == [("pbx_stopped",)], reasons
    assert query("SELECT extension, contact_uri, call_id FROM bindings ORDER BY extension, contact_uri") == bindings
    assert query("SELECT call_id, transcript FROM messages") == [("m1", "please call back")]
    # the restored registrations are served: the owner's query lists them
    for ext in ("103", "104"):
        with siplib.SipClient(pbx.host, pbx.sip_port) as c:
            r = c.register(ext, pbx.passwords[ext], contacts=[], expires=None)
        assert r is not None and r.status == 200 and r.contacts(), (ext, r)
    uas.stop()
