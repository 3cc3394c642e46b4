"""The add-on's static builds (scripts/build-static.sh), started at the beginning
of the run and waited for by the tests that need them.

The two builds (x86_64 musl natively, aarch64 musl through zig) are most of
test_addon_static.py's time: about 17 minutes of a 2-core machine from an empty
target directory, while the rest of the integration run leaves much of its CPU
idle (tests wait on peers, timers and real-time audio). So conftest.py starts
them when the first test starts, one after the other, as SCHED_IDLE processes
at nice 19 (they get only CPU time no test wants, so they do not slow a test),
and moves the tests that use them to the end of the run. A test then waits for
its build's result; run alone, a test starts its build itself and waits.

Each build works on a copy of exactly what the Dockerfile's builder stage
copies from the build context, so a Docker build would have all it needs."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
NATIVE = "native"
AARCH64 = "aarch64-unknown-linux-musl"
ZIG_PYTHON = REPO / ".venv-zig" / "bin" / "python"


def builder_stage_sources() -> list[str]:
    """Paths the Dockerfile's builder stage COPYs from the build context."""
    text = (REPO / "Dockerfile").read_text()
    stage = re.split(r"^FROM\s", text, flags=re.M)[1]  # [0] preamble (ARG), [1] builder, [2] add-on
    out = []
    for line in stage.splitlines():
        m = re.match(r"COPY\s+(?!--)(.+?)\s+\S+$", line)
        if m:
            out += m.group(1).split()
    return out


def docker_context(into: Path) -> Path:
    """A copy of what the Dockerfile's builder stage gets from the build context."""
    into.mkdir(parents=True, exist_ok=True)
    for src in builder_stage_sources():
        s, d = REPO / src, into / src
        d.parent.mkdir(parents=True, exist_ok=True)
        if s.is_dir():
            shutil.copytree(s, d)
        else:
            shutil.copy2(s, d)
    return into


def _args_env(target: str) -> tuple[list[str], dict]:
    env = dict(os.environ)
    # reuse the repository's compiled dependencies; only ha-pbx is rebuilt
    env["CARGO_TARGET_DIR"] = str(REPO / "target")
    if target == AARCH64:
        env["ZIG"] = f"{ZIG_PYTHON} -m ziglang"
        return ["bash", "scripts/build-static.sh", AARCH64], env
    return ["bash", "scripts/build-static.sh"], env


def _idle() -> None:
    """In the child before exec: the lowest CPU priority there is (inherited by
    cargo and every rustc it starts)."""
    os.setsid()
    os.nice(19)
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        pass


@dataclass
class _Build:
    target: str
    ctx: Path
    done: threading.Event = field(default_factory=threading.Event)
    proc: subprocess.Popen | None = None
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    queued_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    took: float = 0.0

    def run(self, background: bool) -> None:
        args, env = _args_env(self.target)
        if background and shutil.which("ionice"):
            args = ["ionice", "-c", "3", *args]
        self.started_at = time.monotonic()
        try:
            self.proc = subprocess.Popen(args, cwd=self.ctx, env=env, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True,
                                         preexec_fn=_idle if background else os.setsid)
            self.stdout, self.stderr = self.proc.communicate()
            self.returncode = self.proc.returncode
        except Exception as e:  # noqa: BLE001: reported by the test that waits
            self.returncode, self.stderr = -1, f"{self.stderr}\n{e!r}"
        finally:
            self.took = time.monotonic() - self.started_at
            self.done.set()


_lock = threading.Lock()
_builds: dict[str, _Build] = {}
_worker: threading.Thread | None = None


def start(targets: list[str], workdir: Path) -> None:
    """Queue these builds (in order, one at a time) in the background."""
    global _worker
    with _lock:
        todo = [_Build(t, docker_context(workdir / f"context-{t}")) for t in targets if t not in _builds]
        for b in todo:
            _builds[b.target] = b
    if not todo:
        return

    def work() -> None:
        for b in todo:
            b.run(background=True)

    _worker = threading.Thread(target=work, name="static-builds", daemon=True)
    _worker.start()


def result(target: str, workdir: Path, timeout: float) -> Path:
    """The built binary: waits for the background build (or runs the build now
    when none was started)."""
    with _lock:
        b = _builds.get(target)
        if b is None:
            b = _builds[target] = _Build(target, docker_context(workdir / f"context-{target}"))
            mine = True
        else:
            mine = False
    if mine:
        b.run(background=False)
    t0 = time.monotonic()
    assert b.done.wait(timeout), f"static build {target} not done after {timeout:.0f} s more"
    waited = time.monotonic() - t0
    name = "(native)" if target == NATIVE else target
    assert b.returncode == 0, f"build-static.sh {name} failed ({b.took:.0f} s):\n{b.stderr[-4000:]}"
    binary = Path(b.stdout.strip().splitlines()[-1])
    assert binary.is_file(), b.stdout
    how = "in the background at idle priority" if not mine else "in the foreground"
    print(f"\nstatic build {name} from the Docker context: {b.took:.0f} s {how}; "
          f"this test waited {waited:.0f} s for it")
    return binary


def stop_all() -> None:
    """Kill builds still running (the session ends)."""
    with _lock:
        builds = list(_builds.values())
    for b in builds:
        p = b.proc
        if p is not None and p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
