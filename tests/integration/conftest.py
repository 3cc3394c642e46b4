"""Fixtures for the ha-pbx integration tests.

Every test gets its own directory (config, data_dir, peer configs, logs,
recordings), its own free ports, and its processes are killed at teardown.
On failure the tails of the PBX's and the peers' logs are printed."""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import audio, procs  # noqa: E402
from harness.baresip import Baresip  # noqa: E402
from harness.linphone import Linphone  # noqa: E402
from harness.pbx import Pbx  # noqa: E402
from harness.rtp import RtpEndpoint  # noqa: E402
from harness.uaflows import MediaPort, ua_factory  # noqa: E402
from harness.sipp import Sipp  # noqa: E402

DEFAULT_TIMEOUT = int(os.environ.get("HA_PBX_TEST_TIMEOUT", "180"))


class TestTimeout(Exception):
    pass


# ------------------------------------------------------------------ outcome + timeout
@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request) -> bool:
    for when in ("setup", "call"):
        rep = getattr(request.node, "rep_" + when, None)
        if rep is not None and rep.failed:
            return True
    return False


@pytest.fixture(autouse=True)
def _per_test_timeout(request):
    """SIGALRM guard: a test (with its fixtures) that runs longer than its limit
    fails with TestTimeout instead of hanging the suite. @pytest.mark.timeout(S)."""
    m = request.node.get_closest_marker("timeout")
    secs = int(m.args[0]) if m else DEFAULT_TIMEOUT

    def on_alarm(signum, frame):
        raise TestTimeout(f"test exceeded its {secs}s time limit")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(secs)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ------------------------------------------------------------------ basics
@pytest.fixture
def workdir(tmp_path) -> Path:
    return tmp_path


@pytest.fixture
def registry(request):
    reg = procs.ProcessRegistry()
    yield reg
    reg.kill_all()


@pytest.fixture(scope="session")
def signals(tmp_path_factory) -> dict[str, Path]:
    """Test audio, 8 kHz mono s16: tones longer than any call, and speech."""
    d = tmp_path_factory.mktemp("signals")
    return {
        "tone440": audio.make_tone(d / "tone440.wav", 440, seconds=90),
        "tone1000": audio.make_tone(d / "tone1000.wav", 1000, seconds=90),
        "speech": audio.make_speech(d / "speech.wav", total_seconds=90, lead_silence=1.0),
    }


class _Dumper:
    """Things whose logs are printed if the test fails."""

    def __init__(self):
        self.items: list[tuple[str, object]] = []

    def add(self, label: str, obj) -> None:
        self.items.append((label, obj))

    def dump(self, workdir: Path) -> None:
        print(f"\n===== test directory: {workdir}")
        for label, obj in self.items:
            tail = obj.log_tail(80) if hasattr(obj, "log_tail") else ""
            print(f"\n===== {label} (log tail) =====\n{tail}")


@pytest.fixture
def dumper(request, workdir):
    d = _Dumper()
    yield d
    if _failed(request):
        d.dump(workdir)


# ------------------------------------------------------------------ PBX
@pytest.fixture
def pbx_factory(workdir, registry, dumper):
    """pbx_factory(**kw) -> Pbx (not started). kw: tls, tls_files, extensions,
    overrides (merged into the YAML config)."""
    made: list[Pbx] = []

    def make(name: str = "pbx", **kw) -> Pbx:
        p = Pbx(workdir / name, registry, **kw)
        made.append(p)
        dumper.add(f"ha-pbx {name}", p)
        return p

    yield make
    for p in made:
        p.stop()


@pytest.fixture
def pbx(pbx_factory) -> Pbx:
    return pbx_factory().start()


# ------------------------------------------------------------------ peers
@pytest.fixture
def sipp(workdir, registry, dumper) -> Sipp:
    return Sipp(workdir, registry)


@pytest.fixture
def baresip_factory(workdir, registry, dumper):
    made: list[Baresip] = []

    def make(name: str, **kw) -> Baresip:
        b = Baresip(workdir, registry, name, **kw)
        made.append(b)
        dumper.add(f"baresip {name}", b)
        return b

    yield make
    for b in made:
        b.stop()


@pytest.fixture
def linphone_factory(workdir, registry, dumper):
    made: list[Linphone] = []

    def make(name: str, **kw) -> Linphone:
        lp = Linphone(workdir, registry, name, **kw)
        made.append(lp)
        dumper.add(f"linphonec {name}", lp)
        return lp

    yield make
    for lp in made:
        lp.stop()


@pytest.fixture
def uas(workdir, dumper):
    """Python SIP UAs (harness/ua.py), closed after the test."""
    make, close_all = ua_factory(workdir, dumper)
    yield make
    close_all()


@pytest.fixture
def rtp():
    """RTP endpoints (`pair=True`: an RTP/RTCP port pair), closed after the test."""
    made: list = []

    def make(pair: bool = False):
        e = MediaPort() if pair else RtpEndpoint()
        made.append(e)
        return e

    yield make
    for e in made:
        e.close()
