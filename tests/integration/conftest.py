"""Fixtures for the ha-pbx integration tests.

Every test gets its own directory (config, data_dir, peer configs, logs,
recordings), its own free ports, and its processes are killed at teardown.
On failure the tails of the PBX's and the peers' logs are printed.

A test marked `netns` (the browser tests) is run by this file in a fresh
network namespace whose only interface is `lo`: pytest re-runs that one test
under `unshare -n`, and its setup, call and teardown reports come back as
the test's own. With `netns(resolv_conf="...")` the namespace has a mount
namespace too (`unshare -n -m`), where that text is bind-mounted over
/etc/resolv.conf: ha-pbx's DNS resolver asks a server the test runs there."""
from __future__ import annotations

import itertools
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import audio, procs, static_build, wyoming  # noqa: E402
from harness.baresip import Baresip  # noqa: E402
from harness.browser import WEBRTC_DIR, BrowserPhone  # noqa: E402
from harness.homeassistant import DOORBELL_RANG, HALLWAY_LIGHT, HomeAssistant  # noqa: E402
from harness.linphone import Linphone  # noqa: E402
from harness.mqtt import Mosquitto, Recorder  # noqa: E402
from harness.pbx import Pbx  # noqa: E402
from harness.rtp import RtpEndpoint  # noqa: E402
from harness.uaflows import MediaPort, ua_factory  # noqa: E402
from harness.sipp import Sipp  # noqa: E402

DEFAULT_TIMEOUT = int(os.environ.get("HA_PBX_TEST_TIMEOUT", "180"))
# Set in the namespace run of a `netns` test: the test runs here, and its
# reports go to the file NETNS_REPORTS names.
IN_NETNS = os.environ.get("HA_PBX_NETNS") == "1"
NETNS_REPORTS = os.environ.get("HA_PBX_NETNS_REPORTS")


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


# ------------------------------------------------------------------ netns: a loopback-only namespace
_config: pytest.Config | None = None
_netns_runs = itertools.count(1)


def pytest_configure(config):
    global _config
    _config = config


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    """A `netns` test is not run here: the same test id is run by a pytest
    inside `unshare -n` (its fixtures too: ha-pbx, peers and the browser all
    live in the namespace), and the reports it writes are this test's."""
    if IN_NETNS or item.get_closest_marker("netns") is None:
        return None
    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for rep in _netns_reports(item):
        ihook.pytest_runtest_logreport(report=rep)
    # What earlier tests set up here and the next one does not need is torn
    # down, as after any test (this test set up no fixture here).
    call = pytest.CallInfo.from_call(lambda: item.session._setupstate.teardown_exact(nextitem), "teardown")
    if call.excinfo is not None:
        ihook.pytest_runtest_logreport(report=pytest.TestReport.from_item_and_call(item, call))
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _netns_reports(item) -> list:
    """Run `item` in a new network namespace; its reports (setup, call,
    teardown), made up as failures if the run did not give them."""
    config = item.config
    m = item.get_closest_marker("timeout")
    limit = (int(m.args[0]) if m else DEFAULT_TIMEOUT) + 60  # the test's own limit applies inside
    # The inner run's basetemp: short, as baresip cuts longer recording paths.
    base = config._tmp_path_factory.getbasetemp() / f"netns{next(_netns_runs)}"
    reports_path, out_path = base.with_suffix(".reports.jsonl"), base.with_suffix(".out")
    problem = None
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        problem = "a `netns` test needs unshare and ip (util-linux, iproute2), and root"
    else:
        script = 'ip link set lo up && exec "$0" -m pytest "$1" --basetemp "$2"'
        unshare = ["unshare", "-n"]
        resolv = item.get_closest_marker("netns").kwargs.get("resolv_conf")
        if resolv is not None:
            # a private mount namespace: the bind mount is seen by this run only
            resolv_path = base.with_suffix(".resolv.conf")
            resolv_path.parent.mkdir(parents=True, exist_ok=True)
            resolv_path.write_text(resolv)
            script = f'mount --bind {shlex.quote(str(resolv_path))} /etc/resolv.conf && {script}'
            unshare = ["unshare", "-n", "-m", "--propagation", "private"]
        live = config.getoption("capture") == "no"  # -s: the inner run's output goes to the terminal
        env = dict(os.environ, HA_PBX_NETNS="1", HA_PBX_NETNS_REPORTS=str(reports_path))
        cmd = [*unshare, "bash", "-c", script + (" -s" if live else ""), sys.executable, item.nodeid,
               str(base)]
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(cmd, env=env, cwd=str(config.rootpath), stdin=subprocess.DEVNULL,
                                    stdout=None if live else out, stderr=None if live else subprocess.STDOUT)
            try:
                proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                problem = f"the namespace run took over {limit}s and was interrupted"
                proc.send_signal(signal.SIGINT)  # pytest tears the test down and stops
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    reports = []
    if reports_path.exists():
        for line in reports_path.read_text().splitlines():
            data = json.loads(line)
            if isinstance(data.get("longrepr"), list):  # a skip's (path, line, reason): JSON made it a list
                data["longrepr"] = tuple(data["longrepr"])
            rep = config.hook.pytest_report_from_serializable(config=config, data=data)
            if rep.nodeid == item.nodeid:
                reports.append(rep)
    whens = {r.when for r in reports}
    if problem is None and "call" not in whens and not any(r.failed or r.skipped for r in reports):
        problem = f"the namespace run gave no result for {item.nodeid} (pytest exit {proc.returncode})"
    if problem is not None:
        out = procs.tail(out_path, 200) if out_path.exists() else ""
        reports.append(_made_up_report(item, "call" if "call" not in whens else "teardown",
                                       f"{problem}\n{out}"))
        whens.add(reports[-1].when)
    if "teardown" not in whens:
        reports.append(_made_up_report(item, "teardown", None))
    return reports


def _made_up_report(item, when: str, failure: str | None):
    return pytest.TestReport(item.nodeid, item.location, {k: 1 for k in item.keywords},
                             "passed" if failure is None else "failed", failure, when)


def pytest_runtest_logreport(report):
    """Inside the namespace: each report goes to the outer run."""
    if NETNS_REPORTS and _config is not None:
        data = _config.hook.pytest_report_to_serializable(config=_config, report=report)
        with open(NETNS_REPORTS, "a") as f:
            f.write(json.dumps(data) + "\n")


@pytest.fixture(autouse=True)
def _netns_only_loopback(request):
    """A `netns` test sees no interface but `lo`."""
    if request.node.get_closest_marker("netns") is not None:
        names = [n for _, n in socket.if_nameindex()]
        assert names == ["lo"], f"not in a loopback-only namespace: {names}"


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
def house_phone(baresip_factory, signals):
    """A started baresip registered to `pbx` as extension `ext` (with its
    password), playing signal `src`, answering in `mode` (`auto`/`manual`)."""
    def make(pbx, ext: str, src: str, mode: str) -> Baresip:
        return baresip_factory(ext, user=ext, domain=f"{pbx.host}:{pbx.sip_port}", password=pbx.passwords[ext],
                               source=signals[src], answermode=mode).start()
    return make


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


@pytest.fixture
def browser_factory(workdir, registry, dumper):
    """Headless Chromium tabs running JsSIP (harness/browser.py), quit after
    the test. For `netns` tests: their ICE must see loopback only."""
    if not Path("/usr/bin/chromium").exists() or not (WEBRTC_DIR / "node_modules").is_dir():
        pytest.fail("needs /usr/bin/chromium and tests/integration/webrtc/node_modules: "
                    "run scripts/install-test-deps.sh")
    made: list[BrowserPhone] = []

    def make(name: str, source: Path) -> BrowserPhone:
        b = BrowserPhone(workdir, registry, name, source)
        made.append(b)
        dumper.add(f"browser {name}", b)
        return b

    yield make
    for b in made:
        b.quit()


# ------------------------------------------------------------------ the add-on's static builds
# test_addon_static.py's two builds take ~17 CPU-minutes; the rest of the run
# leaves CPU idle. Their tests run last, and the builds start with the first
# test at idle priority (harness/static_build.py).
_STATIC = {"static_binary": static_build.NATIVE, "aarch64_binary": static_build.AARCH64}


def pytest_collection_modifyitems(session, config, items):
    def static(item) -> bool:
        return any(f in getattr(item, "fixturenames", ()) for f in _STATIC)
    items[:] = [i for i in items if not static(i)] + [i for i in items if static(i)]


@pytest.fixture(scope="session", autouse=True)
def static_builds(request, tmp_path_factory):
    wanted = [t for f, t in _STATIC.items()
              if any(f in getattr(i, "fixturenames", ()) for i in request.session.items)]
    # a build needs x86_64 (the tests skip elsewhere) and another test to run beside
    if not IN_NETNS and wanted and len(request.session.items) > 8 and os.uname().machine == "x86_64":
        static_build.start(wanted, tmp_path_factory.mktemp("static-builds"))
    yield
    static_build.stop_all()


# ------------------------------------------------------------------ servers shared by the session
# Wyoming Piper + Whisper and Home Assistant take long to start: one of each
# serves every test that asks for it, and is stopped after the last such test
# of the run (not at the end of the session), so that the tests after it do
# not share the machine with idle servers.
_SHARED = ("voice", "ha_server", "ha_broker")
_last_user: dict[str, str] = {}                     # fixture -> nodeid of the last test using it
_shared_procs: dict[str, procs.ProcessRegistry] = {}


def pytest_collection_finish(session):
    for item in session.items:
        for name in _SHARED:
            if name in getattr(item, "fixturenames", ()):
                _last_user[name] = item.nodeid


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    for name in _SHARED:
        if _last_user.get(name) == item.nodeid and name in _shared_procs:
            _shared_procs.pop(name).kill_all()


@pytest.fixture(scope="session")
def voice(tmp_path_factory):
    """Real Wyoming Piper (TTS) and faster-whisper (STT), warmed up: (piper, whisper).
    Stateless servers: tests share them."""
    reg = _shared_procs["voice"] = procs.ProcessRegistry()
    d = tmp_path_factory.mktemp("wyoming")
    try:
        piper = wyoming.PiperServer(d, reg).start()
        whisper = wyoming.WhisperServer(d, reg).start()
        print(f"\nWyoming up: piper {piper.startup_seconds:.1f}s, whisper {whisper.startup_seconds:.1f}s")
        yield piper, whisper
    except Exception:
        for s in ("piper", "whisper"):
            print(procs.tail(d / f"wyoming-{s}" / f"{s}.log", 40))
        raise
    finally:
        reg.kill_all()


@pytest.fixture(scope="session")
def ha_server(tmp_path_factory):
    """One Home Assistant core for the session (harness/homeassistant.py):
    onboarded, with `conversation:` and HALLWAY_LIGHT exposed to Assist; its
    `token` is a long-lived one (the onboarding token lasts 30 minutes).
    Tests take it through `ha`. HA_PBX_SKIP_HA=1 skips the tests that need it."""
    if os.environ.get("HA_PBX_SKIP_HA") == "1":
        pytest.skip("HA_PBX_SKIP_HA=1")
    reg = _shared_procs["ha_server"] = procs.ProcessRegistry()
    h = HomeAssistant(tmp_path_factory.mktemp("ha"), reg, extra_yaml="conversation:\n")
    try:
        t0 = time.monotonic()
        h.start()
        h.onboard()
        h.token = h.long_lived_token()
        assert h.create_input_boolean("Hallway light") == HALLWAY_LIGHT
        h.expose(HALLWAY_LIGHT)
        print(f"\nHome Assistant up with {HALLWAY_LIGHT} exposed in {time.monotonic() - t0:.1f} s")
        yield h
    except Exception:
        print(f"\n===== Home Assistant (log tail) =====\n{h.log_tail()}")
        raise
    finally:
        reg.kill_all()


@pytest.fixture
def ha(ha_server, dumper) -> HomeAssistant:
    """The session's Home Assistant, with what a test may count on reset:
    HALLWAY_LIGHT and DOORBELL_RANG off. Its log is printed if the test fails.
    What a test adds (automations, notifications, states) stays: tests look
    only at what they made, or remove it first."""
    dumper.add("Home Assistant", ha_server)
    for entity in (HALLWAY_LIGHT, DOORBELL_RANG):
        ha_server.call("input_boolean", "turn_off", entity_id=entity)
    for entity in (HALLWAY_LIGHT, DOORBELL_RANG):
        ha_server.wait_state(entity, lambda s: s["state"] == "off")
    return ha_server


# A Mosquitto of the test's own, and a recorder of everything published on it
# (test_mqtt_homeassistant.py overrides `broker` with the one HA uses).
@pytest.fixture
def broker(workdir, registry, dumper):
    b = Mosquitto(workdir, registry).start()
    dumper.add("mosquitto", b)
    yield b
    b.stop()


@pytest.fixture
def rec(broker, registry, dumper):
    r = Recorder(broker, registry, "#").start()
    dumper.add("mqtt recorder", r)
    yield r
    r.stop()


@pytest.fixture(scope="session")
def ha_broker(ha_server, tmp_path_factory) -> Mosquitto:
    """A Mosquitto added to the session's Home Assistant as its MQTT integration
    (once: HA keeps the entry, also across a restart)."""
    reg = _shared_procs["ha_broker"] = procs.ProcessRegistry()
    broker = Mosquitto(tmp_path_factory.mktemp("ha-mqtt"), reg).start()
    try:
        t0 = time.monotonic()
        ha_server.add_mqtt(broker.port)
        print(f"\nMQTT added to Home Assistant in {time.monotonic() - t0:.1f} s")
        yield broker
    except Exception:
        print(f"\n===== mosquitto =====\n{broker.log_tail()}")
        raise
    finally:
        reg.kill_all()
