"""The add-on's binary: one statically linked musl executable, built by
scripts/build-static.sh from exactly the files the Dockerfile's builder stage
copies (so a Docker build would have all it needs), then run in add-on mode
from an options.json against the fake Supervisor.

Slow: the first run compiles every dependency for x86_64-unknown-linux-musl
(about 5 minutes on 2 cores; later runs rebuild only ha-pbx). Needs musl-tools
(scripts/install-test-deps.sh). Deselect with `-k "not static"`."""
from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from harness import procs
from harness.addon import AddonPbx
from harness.supervisor import TOKEN, FakeSupervisor

REPO = Path(__file__).resolve().parents[2]
PROXY = "127.0.0.2"


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


@pytest.fixture(scope="module")
def static_binary(tmp_path_factory) -> Path:
    if platform.machine() != "x86_64":
        pytest.skip("the static build test targets x86_64")
    ctx = tmp_path_factory.mktemp("docker-context")
    for src in builder_stage_sources():
        s, d = REPO / src, ctx / src
        d.parent.mkdir(parents=True, exist_ok=True)
        if s.is_dir():
            shutil.copytree(s, d)
        else:
            shutil.copy2(s, d)
    env = dict(os.environ)
    # reuse the repository's compiled dependencies; only ha-pbx is rebuilt
    env["CARGO_TARGET_DIR"] = str(REPO / "target")
    t0 = time.monotonic()
    r = subprocess.run(["bash", "scripts/build-static.sh"], cwd=ctx, env=env, capture_output=True, text=True,
                       timeout=1700)
    took = time.monotonic() - t0
    assert r.returncode == 0, f"build-static.sh failed ({took:.0f} s):\n{r.stderr[-4000:]}"
    binary = Path(r.stdout.strip().splitlines()[-1])
    assert binary.is_file(), r.stdout
    print(f"\nstatic build from the Docker context: {took:.0f} s")
    return binary


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
