"""Shared pieces of the benchmarks: start a release ha-pbx with N extensions,
run sipp bounded in time, read its statistics, read a process's memory."""
from __future__ import annotations

import csv
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("HA_PBX_BIN", REPO / "target" / "release" / "ha-pbx"))
SIPP_DIR = REPO / "tests" / "integration" / "sipp"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
        for _ in range(200):
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            try:
                t.bind(("127.0.0.1", port))
                return port
            except OSError:
                u.close()
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    raise RuntimeError("no free port")


def _default_security() -> str:
    """No per-extension or total call cap (the load client is one extension),
    unless BENCH_MAX_CALLS sets `security.max_calls` (a binary before 0.14.0
    has no such key: leave BENCH_MAX_CALLS unset, or `BENCH_OLD=1`)."""
    s = "ban_after_failures: 1000000, max_calls_per_extension: 100000"
    if not os.environ.get("BENCH_OLD"):
        s += ", max_calls: " + os.environ.get("BENCH_MAX_CALLS", "100000")
    return s


class Pbx:
    def __init__(self, extensions: int, rtp_ports: str = "40000-49999", media_timeout: int = 120,
                 security: str | None = None):
        security = security if security is not None else _default_security()
        self.dir = Path(tempfile.mkdtemp(prefix="ha-pbx-bench-"))
        self.sip_port = free_port()
        self.http_port = free_port()
        exts = "\n".join(f'  - {{extension: "{1000 + i}", password: "pw{1000 + i}"}}' for i in range(extensions))
        (self.dir / "pbx.yaml").write_text(
            f"""data_dir: ./data
log_level: {os.environ.get("BENCH_LOG", "warn")}
sip:
  listen: [udp://127.0.0.1:{self.sip_port}]
  registration: {{max_contacts: 10}}
rtp: {{ports: {rtp_ports}, address: 127.0.0.1, media_timeout_secs: {media_timeout}}}
http: {{listen: 127.0.0.1:{self.http_port}}}
security: {{{security}}}
extensions:
{exts}
""")
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Pbx":
        if not BIN.exists():
            raise SystemExit(f"{BIN} missing: cargo build --release first")
        self.log = open(self.dir / "pbx.log", "wb")
        env = dict(os.environ)
        self.proc = subprocess.Popen([str(BIN), "--config", str(self.dir / "pbx.yaml")], cwd=self.dir,
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        end = time.time() + 20
        while time.time() < end:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/health", timeout=1)
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("ha-pbx did not start")

    def rss_kib(self) -> int:
        return rss_kib(self.proc.pid)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        stop_and_clean(self.proc, self.dir)


def stop_and_clean(proc: subprocess.Popen | None, workdir: Path) -> None:
    """SIGTERM (then SIGKILL after 10 s) and remove its work folder, unless
    BENCH_KEEP is set (then it is kept and named)."""
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    if not os.environ.get("BENCH_KEEP"):
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"kept {workdir}")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def users_csv(path: Path, first: int, count: int) -> Path:
    rows = ["SEQUENTIAL"] + [f"{first + i};[authentication username={first + i} password=pw{first + i}]" for i in range(count)]
    path.write_text("\n".join(rows) + "\n")
    return path


def run_sipp(args: list[str], workdir: Path, timeout: float) -> dict:
    """Run sipp (bounded), return its last statistics row as a dict."""
    stat = workdir / f"stat-{time.time_ns()}.csv"
    cmd = ["sipp", *args, "-trace_stat", "-stf", str(stat), "-fd", "1", "-nostdin", "-recv_timeout", "5000",
           "-max_socket", "60000"]
    start = time.time()
    proc = subprocess.run(["timeout", str(int(timeout)), *cmd], cwd=workdir, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    wall = time.time() - start
    rows = list(csv.reader(stat.open(), delimiter=";")) if stat.exists() else []
    if len(rows) < 2:
        raise RuntimeError(f"sipp wrote no statistics (rc {proc.returncode}): {proc.stderr[-2000:]}")
    header, last = rows[0], rows[-1]
    out = dict(zip(header, last))
    out["_wall"] = wall
    out["_rc"] = proc.returncode
    return out


def num(stats: dict, key: str) -> int:
    return int(float(stats.get(key, "0") or 0))
