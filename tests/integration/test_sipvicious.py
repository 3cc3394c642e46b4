"""The SIPVicious scanners (PyPI `sipvicious`, tests/integration/requirements.txt)
against ha-pbx, as an attacker on the network would run them (from
127.0.0.2; 127.0.0.1 stays trusted for the flood limit):

- svmap: with the default `security.blocked_user_agents` its probes (User-Agent
  `friendly-scanner`) get no answer, so it finds nothing; with the list empty
  it finds the PBX (the tool works here; the block is what hides the PBX).
- svwar (list empty: a scanner that changed its User-Agent): the PBX answers an
  existing and a missing extension alike, so it reports none of them.
- svcrack (list empty): the source is banned after `ban_after_failures` wrong
  passwords, long before its dictionary reaches the right one.

The tools keep sessions under $HOME/.sipvicious: HOME is the test's directory."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ATTACKER = "127.0.0.2"
BIN = Path(sys.executable).parent
OPEN = {"security": {"blocked_user_agents": [], "trusted_sources": ["127.0.0.1"]}}


def _tool(name: str, args: list[str], workdir: Path, timeout: float = 90, tag: str = "") -> str:
    exe = BIN / f"sipvicious_{name}"
    if not exe.exists():
        pytest.fail(f"{exe} missing: scripts/install-test-deps.sh installs sipvicious")
    env = dict(os.environ, HOME=str(workdir))
    p = subprocess.run([str(exe), *args], cwd=workdir, env=env, capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    out = p.stdout + p.stderr
    (workdir / f"{name}{tag}.out").write_text(out)
    return out


def _svmap(pbx, workdir, tag: str) -> str:
    return _tool("svmap", ["-b", ATTACKER, "-p", str(pbx.sip_port), "-t", "0.5", pbx.host], workdir, tag=tag)


@pytest.mark.timeout(120)
def test_svmap_finds_nothing_while_its_user_agent_is_blocked(pbx_factory, workdir):
    blocked = pbx_factory().start()
    out = _svmap(blocked, workdir, "-blocked")
    assert f"{blocked.host}:{blocked.sip_port}" not in out, out
    assert "ha-pbx" not in out, out

    shown = pbx_factory("open", overrides=OPEN).start()
    out = _svmap(shown, workdir, "-open")
    assert f"{shown.host}:{shown.sip_port}" in out and "ha-pbx" in out, \
        f"svmap does not find a PBX that answers it:\n{out}"


@pytest.mark.timeout(150)
def test_svwar_cannot_tell_extensions_from_missing_ones(pbx_factory, workdir):
    """svwar first probes a number that surely does not exist; the PBX
    challenges it like any other, so svwar gives up. Forced on (--force), it
    rates every number of the range the same way: it cannot name the real
    ones (101-104)."""
    pbx = pbx_factory(overrides=OPEN).start()
    args = ["-b", ATTACKER, "-p", str(pbx.sip_port), "-e", "95-110", "-m", "REGISTER", "-t", "0.2", pbx.host]
    out = _tool("svwar", args, workdir)
    assert "authentication request for an unknown extension" in out, out
    out = _tool("svwar", [*args, "--force"], workdir, tag="-force")
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].isdigit():
            rows[cells[0]] = cells[1]
    scanned = {str(n) for n in range(95, 111)}
    assert set(rows) in (set(), scanned), f"svwar listed only some numbers: {sorted(rows)}\n{out}"
    if not rows:
        # An empty table only counts when svwar says so, having had our
        # challenge: not when it never ran or its output changed shape.
        assert "found nothing" in out and "SIP/2.0 401" in out, f"svwar's output is not understood:\n{out}"
    assert len(set(rows.values())) <= 1, f"svwar saw different answers: {rows}\n{out}"


@pytest.mark.timeout(150)
def test_svcrack_is_banned_before_it_reaches_the_password(pbx_factory, workdir):
    password = "kitchen-7f3q"
    pbx = pbx_factory(overrides=OPEN, extensions=[
        {"extension": "101", "password": password, "name": "Front door"},
        {"extension": "102", "password": "secret102", "name": "Kitchen"},
    ]).start()
    words = [f"guess{i:03d}" for i in range(60)] + [password]
    dictionary = workdir / "words.txt"
    dictionary.write_text("\n".join(words) + "\n")
    out = _tool("svcrack", ["-b", ATTACKER, "-p", str(pbx.sip_port), "-u", "101", "-d", str(dictionary),
                            "-t", "0.2", "--maximumtime", "30", pbx.host], workdir)
    assert password not in out, f"svcrack found the password:\n{out}"
    assert "too many failed authentications" in pbx.log_text(), "the cracker was never banned"
