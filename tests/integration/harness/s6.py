"""The add-on's s6-overlay service scripts (rootfs/etc/s6-overlay/s6-rc.d/ha-pbx/),
made runnable outside the image: bash instead of `with-contenv bashio`, bashio's log
functions as bashio prints them, and the image's fixed paths (/usr/bin/ha-pbx, /run/...)
moved into a test folder. Everything else is the scripts' own text, run as s6-supervise
runs it: `run` (which execs ha-pbx), then `finish EXITCODE SIGNAL` when ha-pbx ends."""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SERVICE = REPO / "rootfs" / "etc" / "s6-overlay" / "s6-rc.d" / "ha-pbx"

# bashio::log.* print "[time] LEVEL: message" (bashio's default format), to stdout
BASHIO_STUB = """\
bashio::log.info() { echo "[$(date +%H:%M:%S)] INFO: $*"; }
bashio::log.warning() { echo "[$(date +%H:%M:%S)] WARNING: $*"; }
bashio::log.error() { echo "[$(date +%H:%M:%S)] ERROR: $*"; }
"""


@dataclass
class Service:
    root: Path            # stands for / : run/ha-pbx, run/s6-linux-init-container-results, ...
    run: Path
    finish: Path

    @property
    def started_file(self) -> Path:
        return self.root / "run" / "ha-pbx" / "started"

    @property
    def results_file(self) -> Path:
        return self.root / "run" / "s6-linux-init-container-results" / "exitcode"

    @property
    def halted_file(self) -> Path:
        return self.root / "halted"

    def halted(self) -> bool:
        return self.halted_file.exists()

    def container_exit_code(self) -> str | None:
        return self.results_file.read_text().strip() if self.results_file.exists() else None

    def call_finish(self, code: int, signal: int = 0, now: int | None = None) -> subprocess.CompletedProcess:
        """What s6-supervise does when ha-pbx ends: `finish EXITCODE SIGNAL` (256 and the
        signal's number when a signal ended it). `now`: the clock `date +%s` reads."""
        env = dict(os.environ)
        if now is not None:
            fake = self.root / "fake-date"
            fake.mkdir(exist_ok=True)
            (fake / "date").write_text(f'#!/bin/sh\n[ "$1" = "+%s" ] && echo {now} && exit 0\nexec /bin/date "$@"\n')
            (fake / "date").chmod(0o755)
            env["PATH"] = f"{fake}:{env['PATH']}"
        return subprocess.run([str(self.finish), str(code), str(signal)], capture_output=True, text=True,
                              timeout=30, env=env)


def _runnable(script: Path, out: Path, moves: dict[str, str]) -> Path:
    text = script.read_text()
    first, body = text.split("\n", 1)
    assert first == "#!/command/with-contenv bashio", first
    for old, new in moves.items():
        if old in body:
            body = body.replace(old, new)
    out.write_text("#!/bin/bash\n" + BASHIO_STUB + body)
    out.chmod(0o755)
    return out


def service(root: Path, binary: Path | None = None) -> Service:
    """The service's run and finish scripts, runnable, with / moved to `root`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "run" / "s6-linux-init-container-results").mkdir(parents=True, exist_ok=True)
    halt = root / "halt"
    halt.write_text(f"#!/bin/sh\ntouch '{root / 'halted'}'\n")
    halt.chmod(0o755)
    moves = {
        "/run/s6-linux-init-container-results/": f"{root}/run/s6-linux-init-container-results/",
        "/run/s6/basedir/bin/halt": str(halt),
        "/run/ha-pbx": f"{root}/run/ha-pbx",
        "/usr/bin/ha-pbx": str(binary or "/nonexistent/ha-pbx"),
    }
    return Service(root=root, run=_runnable(SERVICE / "run", root / "service-run", moves),
                   finish=_runnable(SERVICE / "finish", root / "service-finish", moves))


def dockerfile_healthcheck(dockerfile: Path | None = None) -> tuple[dict, str]:
    """The Dockerfile's HEALTHCHECK: its options (--interval=30s ...) and its CMD in shell
    form, continuation lines joined as Docker joins them."""
    import re

    text = (dockerfile or REPO / "Dockerfile").read_text()
    joined = re.sub(r"\\\n\s*", " ", text)
    m = re.search(r"^HEALTHCHECK\s+(.*?)\s*CMD\s+(.+)$", joined, re.M)
    assert m, "Dockerfile: no HEALTHCHECK ... CMD"
    return dict(re.findall(r"--([a-z-]+)=(\S+)", m.group(1))), m.group(2).strip()


def run_healthcheck(env: dict, timeout: float = 30) -> subprocess.CompletedProcess:
    """The HEALTHCHECK command as Docker runs a shell-form CMD (/bin/sh -c), in `env`."""
    _, cmd = dockerfile_healthcheck()
    return subprocess.run(["/bin/sh", "-c", cmd], capture_output=True, text=True, timeout=timeout,
                          env={"PATH": "/usr/local/bin:/usr/bin:/bin", **env})
