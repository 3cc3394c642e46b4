"""The add-on's s6 service when ha-pbx ends (rootfs/etc/s6-overlay/s6-rc.d/ha-pbx/finish,
DOCS.md "When ha-pbx fails"): the finish script's own text run with each exit s6 can
report. A failure after a minute's running is restarted in place (the add-on comes back
by itself), a failure at start stops the add-on with ha-pbx's exit code (a restart
would fail the same way), a stop stays a stop; the log says which and why.
tests/integration/test_addon_static.py runs the service with the real binary, kills it
and starts it again as s6 would. No PBX process is started here."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from harness import s6

NOW = 1_780_000_000


@pytest.fixture
def svc(tmp_path):
    return s6.service(tmp_path / "root")


def started(svc: s6.Service, secs_ago: int) -> None:
    svc.started_file.parent.mkdir(parents=True, exist_ok=True)
    svc.started_file.write_text(f"{NOW - secs_ago}\n")


@pytest.mark.parametrize("code,signal,uptime,restarted,container_code,log", [
    # crashes after running a while: s6 starts ha-pbx again, the container stays up
    (1, 0, 600, True, None, r"ERROR: ha-pbx exited with code 1 after running 600 s: starting it again"),
    (256, 9, 3600, True, None,
     r"ERROR: ha-pbx was killed by signal 9 \(SIGKILL\), perhaps by the kernel for want of memory, after running 3600 s: starting it again"),
    (256, 11, 60, True, None, r"ERROR: ha-pbx was killed by signal 11 \(SIGSEGV\) after running 60 s: starting it again"),
    (101, 0, 86400, True, None, r"ERROR: ha-pbx exited with code 101 after running 86400 s"),  # a Rust panic
    # failures at start: the add-on stops, with ha-pbx's exit code as the container's
    (1, 0, 5, False, "1", r"ERROR: ha-pbx exited with code 1 5 s after its start: stopping the add-on"),
    (256, 6, 59, False, "134", r"ERROR: ha-pbx was killed by signal 6 \(SIGABRT\) 59 s after its start: stopping"),
    # bad options fail the same way however long the add-on ran (options change only with a restart)
    (2, 0, 5, False, "2", r"ERROR: ha-pbx exited with code 2 \(its options are wrong: see the lines above\) 5 s after"),
    (2, 0, 900, False, "2", r"ERROR: ha-pbx exited with code 2 \(its options are wrong"),
    # a stop
    (256, 15, 600, False, "143", r"INFO: ha-pbx stopped \(SIGTERM\)"),
    (0, 0, 600, True, None, r"INFO: ha-pbx exited with code 0"),
])
def test_finish(svc, code, signal, uptime, restarted, container_code, log):
    started(svc, uptime)
    r = svc.call_finish(code, signal, now=NOW)
    assert r.returncode == 0, r.stderr
    assert re.search(log, r.stdout), r.stdout
    assert len(r.stdout.strip().splitlines()) == 1, "one log line: " + r.stdout
    assert svc.halted() is (not restarted), ("halted" if svc.halted() else "not halted", r.stdout)
    assert svc.container_exit_code() == container_code


def test_finish_without_start_time_stops(svc):
    """No record of the start (the run script did not get that far): treated as a failure
    at start, not restarted in a loop."""
    r = svc.call_finish(1, 0, now=NOW)
    assert "ERROR: ha-pbx exited with code 1 -1 s after its start: stopping the add-on" in r.stdout, r.stdout
    assert svc.halted() and svc.container_exit_code() == "1"


def test_finish_keeps_the_first_exit_code(svc):
    """The container's exit code is the first failure's (as s6-overlay's own scripts keep it)."""
    started(svc, 5)
    svc.results_file.write_text("2\n")
    svc.call_finish(256, 15, now=NOW)
    assert svc.halted() and svc.container_exit_code() == "2"


def test_run_records_its_start_and_execs_ha_pbx(tmp_path):
    """The run script notes when it started (the finish script reads it) and then execs
    ha-pbx --addon (the process s6 supervises is ha-pbx itself)."""
    fake = tmp_path / "fake-ha-pbx"
    fake.write_text('#!/bin/sh\necho "pid $$ args $*"\n')
    fake.chmod(0o755)
    svc = s6.service(tmp_path / "root", binary=fake)
    r = subprocess.run(["bash", "-c", f'echo "shell $$"; exec "{svc.run}"'], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    shell_pid = lines[0].split()[1]
    assert re.search(r"INFO: Starting ha-pbx\.\.\.", lines[1]), lines
    assert lines[2] == f"pid {shell_pid} args --addon", lines  # exec: same process
    assert abs(int(svc.started_file.read_text()) - int(subprocess.check_output(["date", "+%s"]))) <= 5


def test_service_scripts_pass_shellcheck():
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck not installed: scripts/install-test-deps.sh installs it (Debian shellcheck)")
    r = subprocess.run(["shellcheck", "-s", "bash", str(s6.SERVICE / "run"), str(s6.SERVICE / "finish")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
