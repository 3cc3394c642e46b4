"""The add-on's binary: one statically linked musl executable, built by
scripts/build-static.sh from exactly the files the Dockerfile's builder stage
copies (so a Docker build would have all it needs), then run in add-on mode
from an options.json against the fake Supervisor.

x86_64: built natively with musl-gcc. aarch64: cross-built with zig (PyPI's
ziglang, through scripts/zig-cc/, as the Dockerfile does for an arm64 target
on an amd64 builder), then run under qemu-aarch64 (user-mode emulation).

Slow: the first run compiles every dependency for x86_64-unknown-linux-musl
(about 5 minutes on 2 cores) and again for aarch64-unknown-linux-musl (29 minutes
from an empty target directory and zig cache on 2 cores shared with other builds:
16 CPU-minutes); later runs rebuild only ha-pbx. In a whole run both builds start
with the first test, in the background at idle priority, and these tests run last
(harness/static_build.py, conftest.py). Needs musl-tools, ziglang in
.venv-zig and qemu-user (scripts/install-test-deps.sh). Deselect with
`-k "not static"`, or only the aarch64 part with `-k "not aarch64"`."""
from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from harness import procs, s6, static_build
from harness import sip as siplib
from harness.addon import AddonPbx
from harness.pbx import Pbx
from harness.supervisor import TOKEN, FakeSupervisor

REPO = Path(__file__).resolve().parents[2]
PROXY = "127.0.0.2"
AARCH64 = static_build.AARCH64
ZIG_PYTHON = static_build.ZIG_PYTHON


@pytest.fixture(scope="module")
def static_binary(tmp_path_factory) -> Path:
    if platform.machine() != "x86_64":
        pytest.skip("the static build test targets x86_64")
    return static_build.result(static_build.NATIVE, tmp_path_factory.mktemp("static"), timeout=1700)


def qemu_aarch64() -> str | None:
    return shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")


@pytest.fixture(scope="module")
def aarch64_binary(tmp_path_factory) -> Path:
    """The aarch64 binary, cross-built as the Dockerfile does on an amd64 builder
    (scripts/zig-cc/ from the Docker context, zig from .venv-zig)."""
    if platform.machine() != "x86_64":
        pytest.skip("the aarch64 cross build test runs on x86_64 machines")
    # installed by scripts/install-test-deps.sh: missing is a failure, not a skip
    assert ZIG_PYTHON.is_file() and subprocess.run([str(ZIG_PYTHON), "-c", "import ziglang"]).returncode == 0, \
        f"no ziglang in {ZIG_PYTHON.parent.parent}: run scripts/install-test-deps.sh"
    assert qemu_aarch64(), "no qemu-aarch64 (Debian qemu-user): run scripts/install-test-deps.sh"
    return static_build.result(AARCH64, tmp_path_factory.mktemp("static"), timeout=3000)


@pytest.mark.timeout(1800)
def test_static_musl_binary_is_statically_linked(static_binary, tmp_path):
    desc = subprocess.run(["file", "-b", str(static_binary)], capture_output=True, text=True, check=True).stdout
    # Rust's musl targets make static-pie executables: statically linked, with ASLR
    assert "statically linked" in desc or "static-pie linked" in desc, desc
    ldd = subprocess.run(["ldd", str(static_binary)], capture_output=True, text=True)
    assert "not a dynamic executable" in ldd.stdout + ldd.stderr or "statically linked" in ldd.stdout, ldd
    if shutil.which("readelf"):
        dyn = subprocess.run(["readelf", "-d", str(static_binary)], capture_output=True, text=True).stdout
        assert "(NEEDED)" not in dyn, dyn
    size = static_binary.stat().st_size
    stripped = tmp_path / "ha-pbx.stripped"
    subprocess.run(["strip", "--strip-debug", "-o", str(stripped), str(static_binary)], check=True)
    print(f"\n{desc.strip()}\nsize {size / 1e6:.1f} MB as built, {stripped.stat().st_size / 1e6:.1f} MB "
          "without debug info (what the image ships)")
    out = subprocess.run([str(stripped), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("ha-pbx ")


@pytest.mark.timeout(1800)
def test_static_binary_runs_as_the_addon(static_binary, workdir, registry, dumper):
    sup = FakeSupervisor(ingress_port=procs.free_port("sip")).start()
    try:
        pbx = AddonPbx(workdir / "static", registry, binary=static_binary, supervisor_url=sup.url, token=TOKEN,
                       ingress_allow=PROXY, addon_flag=True,
                       options={"extensions": [{"extension": "101", "password": "secret101", "name": "Door"}]})
        dumper.add("static ha-pbx", pbx)
        pbx.launch()
        t0 = time.monotonic()
        while True:
            try:
                status, body = pbx.get(sup.ingress_port, "/health", source=PROXY)
                break
            except OSError:
                if pbx.proc.poll() is not None or time.monotonic() - t0 > 15:
                    raise AssertionError(f"no /health: {pbx.log_tail()}")
                time.sleep(0.02)
        ready_ms = (time.monotonic() - pbx.started_at) * 1000
        assert status == 200, body
        health = json.loads(body)
        assert health["status"] == "ok"
        assert pbx.get(sup.ingress_port, "/health", source="127.0.0.1")[0] == 403
        assert procs.port_bound_udp(pbx.sip_port)
        print(f"\nstatic binary, add-on mode: /health answered {ready_ms:.0f} ms after launch; "
              f"{health}")
        assert pbx.stop() == 0
    finally:
        sup.stop()


class ServicePbx(AddonPbx):
    """ha-pbx started by the s6 service's run script (harness/s6.py), with the
    container's HA_PBX_HEALTH_SOCKET."""

    def __init__(self, *args, health_socket: Path, **kw):
        super().__init__(*args, **kw)
        self.health_socket = health_socket

    def env(self) -> dict:
        return {**super().env(), "HA_PBX_HEALTH_SOCKET": str(self.health_socket)}


@pytest.mark.timeout(1800)
def test_static_binary_as_the_s6_service_with_healthcheck(static_binary, workdir, registry, dumper):
    """The image's way: the s6 run script execs the static binary in add-on mode with the
    Dockerfile's HA_PBX_HEALTH_SOCKET; the Dockerfile's HEALTHCHECK command (curl over that
    socket) answers with /health. Killed (SIGKILL, as the out-of-memory killer does) after
    running a while: the HEALTHCHECK fails, the finish script says why and lets s6 start it
    again, and the HEALTHCHECK answers again. A stop (SIGTERM) is a clean exit 0."""
    env_line = re.search(r"^ENV HA_PBX_HEALTH_SOCKET=(\S+)$", (REPO / "Dockerfile").read_text(), re.M)
    assert env_line, "Dockerfile: ENV HA_PBX_HEALTH_SOCKET"
    svc = s6.service(workdir / "s6", binary=static_binary)
    # a Unix socket path has at most 107 bytes: a short folder, same file name as in the image
    sock_dir = Path(tempfile.mkdtemp(prefix="ha-pbx-hc-", dir="/tmp"))
    health_socket = sock_dir / Path(env_line.group(1)).name
    hc_env = {"HA_PBX_HEALTH_SOCKET": str(health_socket)}
    sup = FakeSupervisor(ingress_port=procs.free_port("sip")).start()
    try:
        pbx = ServicePbx(workdir / "addon", registry, binary=svc.run, supervisor_url=sup.url, token=TOKEN,
                         ingress_allow=PROXY, addon_flag=False, health_socket=health_socket,
                         options={"extensions": [{"extension": "101", "password": "secret101", "name": "Door"}]})
        dumper.add("ha-pbx (s6 run script)", pbx)

        def start_and_check() -> dict:
            pbx.launch()
            pbx.wait_ready(timeout=20)
            r = s6.run_healthcheck(hc_env)
            assert r.returncode == 0, f"HEALTHCHECK: {r.returncode} {r.stderr}\n{pbx.log_tail()}"
            health = json.loads(r.stdout)
            assert health["status"] == "ok" and health["version"] == pbx_version(static_binary), health
            return health

        health = start_and_check()
        log = pbx.log_text()
        assert "INFO: Starting ha-pbx..." in log and f"/health also on the Unix socket {health_socket}" in log, log
        assert health_socket.is_socket()
        # the ingress port still answers only the proxy
        assert pbx.get(sup.ingress_port, "/health", source=PROXY)[0] == 200
        assert pbx.get(sup.ingress_port, "/health", source="127.0.0.1")[0] == 403

        # killed: run's exec made ha-pbx the supervised process itself
        os.kill(pbx.proc.pid, signal.SIGKILL)
        assert pbx.proc.wait(timeout=10) == -signal.SIGKILL
        r = s6.run_healthcheck(hc_env)
        assert r.returncode != 0, "HEALTHCHECK passed with ha-pbx dead"
        # what s6-supervise does next: finish 256 9 (as if it had run 2 minutes)
        started = int(svc.started_file.read_text())
        svc.started_file.write_text(f"{started - 120}\n")
        killed = svc.call_finish(256, signal.SIGKILL)
        assert re.search(r"ERROR: ha-pbx was killed by signal 9 \(SIGKILL\).* after running 1[2-9]\d s: "
                         r"starting it again", killed.stdout), killed.stdout + killed.stderr
        assert not svc.halted() and svc.container_exit_code() is None
        # ... and starts run again: the stale socket is replaced, the HEALTHCHECK answers
        start_and_check()

        # a stop: SIGTERM, ha-pbx exits 0, finish logs it and leaves the container to s6
        assert pbx.stop() == 0
        fin = svc.call_finish(0, 0)
        assert "INFO: ha-pbx exited with code 0" in fin.stdout and not svc.halted(), fin.stdout
        print(f"\ns6 service: HEALTHCHECK answered {health}\nSIGKILL: {killed.stdout.strip()}\n"
              f"SIGTERM: {fin.stdout.strip()}")
    finally:
        sup.stop()
        shutil.rmtree(sock_dir, ignore_errors=True)


def pbx_version(binary: Path) -> str:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True).stdout
    return out.split()[1]


@pytest.mark.timeout(3300)
def test_aarch64_static_binary_under_qemu(aarch64_binary, workdir, registry, dumper):
    """aarch64: a static ARM64 ELF with no dynamic section entries; stripped as the
    Dockerfile strips it; under qemu-aarch64 it answers /health, SIP OPTIONS and a
    digest REGISTER (a wrong password refused) over loopback, and stops on SIGTERM."""
    desc = subprocess.run(["file", "-b", str(aarch64_binary)], capture_output=True, text=True, check=True).stdout
    assert "ARM aarch64" in desc, desc
    assert "statically linked" in desc or "static-pie linked" in desc, desc
    dyn = subprocess.run(["readelf", "-d", str(aarch64_binary)], capture_output=True, text=True).stdout
    assert "(NEEDED)" not in dyn, dyn
    hdr = subprocess.run(["readelf", "-h", str(aarch64_binary)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"Machine:\s+AArch64", hdr), hdr
    stripped = workdir / "ha-pbx.aarch64"
    subprocess.run([str(REPO / "scripts" / "zig-cc" / "aarch64-linux-musl-strip"), "--strip-debug",
                    "-o", str(stripped), str(aarch64_binary)], check=True,
                   env={**os.environ, "ZIG": f"{ZIG_PYTHON} -m ziglang"})
    assert "ARM aarch64" in subprocess.run(["file", "-b", str(stripped)], capture_output=True, text=True).stdout
    print(f"\n{desc.strip()}\nsize {aarch64_binary.stat().st_size / 1e6:.1f} MB as built, "
          f"{stripped.stat().st_size / 1e6:.1f} MB without debug info (what the image ships)")
    # not an x86 program: without the emulator the kernel refuses it (unless binfmt_misc hands
    # aarch64 ELFs to QEMU, as qemu-user-binfmt sets up)
    if not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists():
        with pytest.raises(OSError):
            subprocess.run([str(stripped), "--version"], capture_output=True, timeout=10)
    qemu = qemu_aarch64()
    out = subprocess.run([qemu, str(stripped), "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("ha-pbx "), out

    pbx = Pbx(workdir / "aarch64", registry, binary=stripped, launcher=[qemu],
              extensions=[{"extension": "101", "password": "secret101", "name": "Door"}],
              overrides={"log_level": "info"})
    dumper.add("ha-pbx aarch64 (qemu)", pbx)
    t0 = time.monotonic()
    pbx.start(timeout=60)
    ready = time.monotonic() - t0
    assert pbx.health() == 200
    with urllib.request.urlopen(pbx.http_base + "/health", timeout=5) as r:
        health = json.loads(r.read())
    assert health["status"] == "ok", health
    with siplib.SipClient(pbx.host, pbx.sip_port, timeout=10) as c:
        opt = c.options()
        assert opt is not None and opt.status == 200, f"OPTIONS: {opt}\n{pbx.log_tail()}"
        bad = c.register("101", "wrong-password")
        assert bad is not None and bad.status in (401, 403), f"REGISTER, wrong password: {bad}"
    with siplib.SipClient(pbx.host, pbx.sip_port, timeout=10) as c:
        reg = c.register("101", "secret101", expires=300)
        assert reg is not None and reg.status == 200, f"REGISTER: {reg}\n{pbx.log_tail()}"
        assert any(f":{c.local[1]}" in ct for ct in reg.contacts()), reg
    print(f"aarch64 ha-pbx under {Path(qemu).name}: /health 200 {ready:.1f} s after launch; "
          f"OPTIONS {opt.status}, REGISTER {reg.status}; {health}")
    assert pbx.stop(grace=15) == 0, pbx.log_tail()
