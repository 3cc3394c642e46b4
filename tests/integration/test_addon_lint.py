"""The add-on's files at the repository root, checked as Home Assistant's add-on
linter (frenck/action-addon-linter) checks them, plus what the Supervisor and
the image build need: config.yaml and build.yaml against the linter's schemas
(tests/addon-linter/, copies of shared/addon-linter/), no key at its default,
options vs schema vs translations, Dockerfile, s6 service, AppArmor, images,
blueprint and dashboard. No PBX process is started here."""
from __future__ import annotations

import copy
import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from harness import s6

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "tests" / "addon-linter"
SHARED = REPO.parent / "shared" / "addon-linter"


def load_yaml(name: str):
    return yaml.safe_load((REPO / name).read_text())


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / name).read_text())


CONFIG = load_yaml("config.yaml")
BUILD = load_yaml("build.yaml")


# ------------------------------------------------------------------ the linter's rules
def schema_errors(instance, sch) -> list[str]:
    v = jsonschema.Draft7Validator(sch)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in sorted(v.iter_errors(instance), key=str)]


def keys_at_default(instance, sch, path: str = "") -> list[str]:
    """Every key whose value equals its schema `default` (the linter: "'x' should
    be removed, it uses a default value"), at any depth the schema describes."""
    found: list[str] = []
    if not isinstance(instance, dict) or not isinstance(sch, dict):
        return found
    for key, sub in (sch.get("properties") or {}).items():
        if key not in instance:
            continue
        here = f"{path}{key}"
        if "default" in sub and instance[key] == sub["default"]:
            found.append(here)
        found += keys_at_default(instance[key], sub, here + ".")
    for branch in ("anyOf", "oneOf", "allOf"):
        for sub in sch.get(branch, []):
            found += keys_at_default(instance, sub, path)
    return sorted(set(found))


DEPRECATED_ARCHS = ("armhf", "armv7", "i386")  # the linter warns; here they fail


def _mapped(config: dict, folder: str) -> bool:
    return any(m in (folder, f"{folder}:rw", f"{folder}:ro") for m in config.get("map") or [])


def extra_rules(config: dict, build: dict) -> list[str]:
    """The linter's checks that are not in the schema (src/lint.py of
    frenck/action-addon-linter v2.21.0, the version .github/workflows/pull-request.yaml
    runs), its warnings made errors, and the architectures of config.yaml and
    build.yaml matching (its community mode)."""
    errs = []
    if config.get("ingress") and config.get("webui"):
        errs.append("'webui' should be removed, Ingress is enabled")
    if config.get("ingress") and not config.get("host_network") and config.get("ingress_port", 8099) == 0:
        errs.append("'ingress_port' 0 is only for add-ons on the host network")
    if config.get("full_access") and any(k in config for k in ("devices", "gpio", "uart", "usb")):
        errs.append("'full_access': no 'devices', 'uart', 'usb' or 'gpio' with it")
    if config.get("full_access"):
        errs.append("'full_access': use narrower options such as 'devices'")
    if config.get("advanced"):
        errs.append("'advanced' is deprecated")
    if "auto_uart" in config:
        errs.append("'auto_uart' is deprecated")
    if any(":" in d for d in config.get("devices") or []):
        errs.append("'devices' uses the deprecated host:container format")
    if not isinstance(config.get("tmpfs", False), bool):
        errs.append("'tmpfs' is a boolean now")
    if config.get("backup", "hot") == "cold":
        errs += [f"'{k}' is not valid with cold backups" for k in ("backup_pre", "backup_post") if k in config]
    if config.get("watchdog"):
        errs.append("'watchdog' is obsolete: the Dockerfile's HEALTHCHECK replaces it")
    if "codenotary" in config:
        errs.append("'codenotary' is deprecated")
    if _mapped(config, "config"):
        errs.append("'map': 'config' is replaced by 'homeassistant_config'")
    errs += [f"architecture '{a}' is deprecated" for a in config.get("arch") or [] if a in DEPRECATED_ARCHS]
    if "codenotary" in build:
        errs.append("build.yaml: 'codenotary' is deprecated")
    if "squash" in build:
        errs.append("build.yaml: 'squash' is not supported with BuildKit")
    bf = build.get("build_from")
    if isinstance(bf, dict):
        errs += [f"build.yaml: architecture '{a}' is deprecated" for a in bf if a in DEPRECATED_ARCHS]
        if set(config["arch"]) != set(bf):
            errs.append(f"architectures differ: config.yaml {sorted(config['arch'])}, build.yaml {sorted(bf)}")
    return errs


# The Supervisor's check of `image:` (supervisor/validate.py docker_image): a registry in
# lowercase, no tag (the Supervisor adds `version`), path parts of lowercase letters, digits,
# `.`, `-`, `_` and the {arch}/{machine} templates.
_IMAGE_PART = re.compile(r"^[a-z0-9{][a-z0-9.\-_{}]*$")


def image_errors(image) -> list[str]:
    if not isinstance(image, str) or not image:
        return [f"image: {image!r} is not an image name"]
    first, _, rest = image.partition("/")
    registry, path = (first, rest) if rest and ("." in first or ":" in first or first == "localhost") else ("", image)
    errs = []
    if registry and registry != registry.lower():
        errs.append(f"image: registry {registry!r} must be lowercase")
    if ":" in path:
        errs.append(f"image: {image!r} has a tag; the Supervisor adds config.yaml's version")
    errs += [f"image: {part!r} in {image!r} is not a valid path part (lowercase, digits, . - _)"
             for part in path.split("/") if not _IMAGE_PART.match(part)]
    return errs


def test_config_yaml_passes_the_linter_schema():
    errs = schema_errors(CONFIG, schema("config.schema.json"))
    assert not errs, "config.yaml:\n" + "\n".join(errs)


def test_build_yaml_passes_the_linter_schema():
    errs = schema_errors(BUILD, schema("build.schema.json"))
    assert not errs, "build.yaml:\n" + "\n".join(errs)


def test_no_key_is_set_to_its_default():
    for name, inst, sch in (("config.yaml", CONFIG, "config.schema.json"), ("build.yaml", BUILD, "build.schema.json")):
        at_default = keys_at_default(inst, schema(sch))
        assert not at_default, f"{name}: remove {', '.join(repr(k) for k in at_default)}: set to the default value"


def test_the_default_rule_and_schema_catch_mistakes():
    """The checks above fail when they should (so a green run means something)."""
    c = copy.deepcopy(CONFIG)
    c.update({"init": True, "boot": "auto", "ingress_port": 8099})
    assert keys_at_default(c, schema("config.schema.json")) == ["boot", "ingress_port", "init"]
    b = copy.deepcopy(BUILD)
    b["build_from"] = {"amd64": "homeassistant/amd64-base:latest"}
    b["squash"] = False
    assert keys_at_default(b, schema("build.schema.json")) == ["build_from.amd64", "squash"]
    c = copy.deepcopy(CONFIG)
    c["services"] = ["mqtt:maybe"]
    c["arch"] = ["amd64", "sparc"]
    errs = schema_errors(c, schema("config.schema.json"))
    assert any(e.startswith("services/0") for e in errs) and any(e.startswith("arch/1") for e in errs), errs
    c = copy.deepcopy(CONFIG)
    c.update({"webui": "http://[HOST]:[PORT:80]/", "host_network": False})
    assert len(extra_rules(c, BUILD)) == 2


def test_linter_rules_beyond_the_schema():
    assert extra_rules(CONFIG, BUILD) == []


def test_the_2_21_rules_catch_mistakes():
    """Each rule of linter 2.21 beyond the schema fails when it should."""
    cases = {
        "watchdog": ({"watchdog": "http://[HOST]:[PORT:8099]/health"}, {}),
        "codenotary": ({"codenotary": "dev@example.com"}, {}),
        "auto_uart": ({"auto_uart": True}, {}),
        "devices": ({"devices": ["/dev/ttyUSB0:/dev/ttyUSB0"]}, {}),
        "tmpfs": ({"tmpfs": "size=10m"}, {}),
        "backup_pre": ({"backup": "cold", "backup_pre": "true"}, {}),
        "full_access": ({"full_access": True, "usb": True}, {}),
        "'config'": ({"map": ["config:rw"]}, {}),
        "armv7": ({"arch": ["aarch64", "amd64", "armv7"]}, {}),
        "squash": ({}, {"squash": True}),
        "build.yaml: 'codenotary'": ({}, {"codenotary": {"signer": "dev@example.com"}}),
        "architectures differ": ({}, {"build_from": {"amd64": "ghcr.io/home-assistant/base:3.24"}}),
    }
    for want, (conf_change, build_change) in cases.items():
        c, b = copy.deepcopy(CONFIG), copy.deepcopy(BUILD)
        c.update(conf_change)
        b.update(build_change)
        errs = extra_rules(c, b)
        assert any(want in e for e in errs), (want, errs)
    # the schema itself: watchdog must be a URL pattern string, image a string
    c = copy.deepcopy(CONFIG)
    c["image"] = ["ghcr.io/ha-pbx/ha-pbx"]
    assert any(e.startswith("image:") for e in schema_errors(c, schema("config.schema.json")))


def test_image_is_the_published_manifest():
    """config.yaml's image: one multi-arch manifest on ghcr.io (no {arch}), valid for the
    Supervisor, named after the owner in repository.yaml's url (a fork changes both), and
    the name the release workflow publishes."""
    image = CONFIG["image"]
    assert image_errors(image) == []
    m = re.fullmatch(r"ghcr\.io/([a-z0-9][a-z0-9-]*)/ha-pbx", image)
    assert m, f"image: {image}: want ghcr.io/<owner>/ha-pbx (one multi-arch manifest)"
    url = load_yaml("repository.yaml")["url"]
    owner = re.fullmatch(r"https://github\.com/([^/]+)/[^/]+/?", url)
    assert owner and owner.group(1).lower() == m.group(1), \
        f"repository.yaml's url {url} and config.yaml's image {image} name different owners"
    release = (REPO / ".github" / "workflows" / "release.yaml").read_text()
    assert re.search(r"^  IMAGE_NAME: ha-pbx$", release, re.M), "release.yaml publishes another name"
    # what the Supervisor refuses, refused here too
    for bad, why in (("ghcr.io/OWNER/ha-pbx", "not a valid path part"), ("ghcr.io/ha-pbx/ha-pbx:0.1.0", "has a tag"),
                     ("GHCR.io/ha-pbx/ha-pbx", "lowercase")):
        assert any(why in e for e in image_errors(bad)), (bad, image_errors(bad))
    assert image_errors("ghcr.io/ha-pbx/{arch}-ha-pbx") == []


def test_schema_copies_match_shared():
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (CI clone without shared/): the copies in {SCHEMAS} are used")
    for name in ("config.schema.json", "build.schema.json"):
        assert (SCHEMAS / name).read_bytes() == (SHARED / name).read_bytes(), \
            f"tests/addon-linter/{name} differs from {SHARED / name}: copy the new one"


# ------------------------------------------------------------------ the add-on's own facts
def test_identity_and_version():
    cargo = (REPO / "Cargo.toml").read_text()
    version = re.search(r'^version\s*=\s*"([^"]+)"', cargo, re.M).group(1)
    assert CONFIG["version"] == version, "config.yaml version must match Cargo.toml"
    assert CONFIG["slug"] == "ha_pbx"
    assert sorted(CONFIG["arch"]) == ["aarch64", "amd64"]
    assert CONFIG["init"] is False and CONFIG["host_network"] is True and CONFIG["ingress"] is True
    assert CONFIG["homeassistant_api"] is True and "mqtt:want" in CONFIG["services"]
    assert CONFIG["panel_icon"].startswith("mdi:") and CONFIG["panel_title"]
    assert "ingress_port" in CONFIG
    assert load_yaml("repository.yaml")["name"]


BASE_IMAGE = re.compile(r"ghcr\.io/home-assistant/base:(?P<alpine>\d+\.\d+)-(?P<release>\d{4}\.\d{1,2}\.\d+)")


def test_base_image_is_pinned_and_multi_arch():
    """One multi-arch base (ghcr.io/home-assistant/base, not {arch}-base), pinned to a
    release build of home-assistant/docker-base (`<alpine>-<release>`, not a moving tag)."""
    image = BUILD["build_from"]
    assert isinstance(image, str), f"build.yaml: build_from is one multi-arch image, not per arch: {image}"
    assert BASE_IMAGE.fullmatch(image), f"build.yaml: {image}: want ghcr.io/home-assistant/base:<alpine>-<release>"


_SUPERVISOR_TYPE = re.compile(
    r"^(?:(?P<simple>str|bool|email|url|port|password|float|int)(?:\((?P<lo>-?[\d.]*),(?P<hi>-?[\d.]*)\))?"
    r"|match\((?P<re>.*)\)|list\((?P<list>[^)]*)\))(?P<opt>\?)?$")


def check_value(key: str, value, typ: str) -> None:
    """A value against one of the Supervisor's option types (addons/options.py)."""
    m = _SUPERVISOR_TYPE.match(typ)
    assert m, f"{key}: `{typ}` is not a Supervisor option type"
    if value is None:
        assert m.group("opt"), f"{key}: empty but `{typ}` is required"
        return
    if m.group("re") is not None:
        assert re.fullmatch(m.group("re").strip("^$"), str(value)), f"{key}: {value!r} !~ {typ}"
    elif m.group("list") is not None:
        assert value in m.group("list").split("|"), f"{key}: {value!r} not in {typ}"
    else:
        simple = m.group("simple")
        if simple == "bool":
            assert isinstance(value, bool), f"{key}: {value!r} is not a bool"
        elif simple in ("int", "port"):
            assert isinstance(value, int) and not isinstance(value, bool), f"{key}: {value!r} is not an int"
            lo, hi = (1, 65535) if simple == "port" else (m.group("lo"), m.group("hi"))
            if lo not in (None, ""):
                assert value >= int(lo), f"{key}: {value} < {lo}"
            if hi not in (None, ""):
                assert value <= int(hi), f"{key}: {value} > {hi}"
        else:
            assert isinstance(value, str), f"{key}: {value!r} is not text"


def options_errors(opts: dict, sch: dict, path: str = "") -> list[str]:
    """options against schema as the Supervisor checks them (addons/options.py):
    groups (dicts) and lists recurse; a missing group or list of groups is an
    error, a missing `?` value is not."""
    errs = [f"{path}{k}: an option without a schema entry" for k in set(opts) - set(sch)]
    for key, typ in sch.items():
        here = f"{path}{key}"
        if isinstance(typ, dict):
            if not isinstance(opts.get(key), dict):
                errs.append(f"{here}: a group needs a default (the Supervisor requires it)")
            else:
                errs += options_errors(opts[key], typ, here + ".")
        elif isinstance(typ, list):
            item = typ[0]
            if key not in opts:
                if not (isinstance(item, str) and item.endswith("?")):
                    errs.append(f"{here}: a list needs a default")
                continue
            if not isinstance(opts[key], list):
                errs.append(f"{here}: not a list")
                continue
            if isinstance(item, dict):
                for field, ftyp in item.items():
                    if not (isinstance(ftyp, str) and _SUPERVISOR_TYPE.match(ftyp)):
                        errs.append(f"{here}.{field}: bad type {ftyp}")
                for i, v in enumerate(opts[key]):
                    errs += options_errors(v, item, f"{here}[{i}].")
            else:
                for i, v in enumerate(opts[key]):
                    try:
                        check_value(f"{here}[{i}]", v, item)
                    except AssertionError as e:
                        errs.append(str(e))
        else:
            if key not in opts and not typ.endswith("?"):
                errs.append(f"{here}: required ({typ}) but has no default in options")
                continue
            try:
                check_value(here, opts.get(key), typ)
            except AssertionError as e:
                errs.append(str(e))
    return errs


def test_default_options_fit_the_schema():
    errs = options_errors(CONFIG["options"], CONFIG["schema"])
    assert not errs, "config.yaml options vs schema:\n" + "\n".join(errs)
    sch = CONFIG["schema"]
    # the extension pattern accepts what the PBX accepts, e.g. "101" and "8001"
    for typ in (sch["extensions"][0]["extension"], sch["agent"]["extension"]):
        ext_re = _SUPERVISOR_TYPE.match(typ).group("re")
        assert re.fullmatch(ext_re.strip("^$"), "101") and not re.fullmatch(ext_re.strip("^$"), "10 1")
    ent_re = _SUPERVISOR_TYPE.match(sch["agent"]["allowed_entities"][0]).group("re").strip("^$")
    assert re.fullmatch(ent_re, "light.hallway_2") and not re.fullmatch(ent_re, "Light hallway")
    win_re = _SUPERVISOR_TYPE.match(sch["agent"]["handoff"][0]["between"]).group("re").strip("^$")
    assert re.fullmatch(win_re, "22:00-07:30") and not re.fullmatch(win_re, "night")


def test_the_options_check_catches_mistakes():
    sch = copy.deepcopy(CONFIG["schema"])
    opts = copy.deepcopy(CONFIG["options"])
    del opts["agent"]["stt"]                        # a group without its default
    opts["agent"]["enabled"] = "no"                 # wrong type, nested
    opts["agent"]["handoff"] = [{"ring_secs": 9999}]  # out of range, in a list of groups
    sch["agent"]["brain"]["temperature"] = "float"  # required, no default
    errs = options_errors(opts, sch)
    for want in ("agent.stt:", "agent.enabled:", "agent.handoff[0].ring_secs:", "agent.brain.temperature:"):
        assert any(e.startswith(want) for e in errs), (want, errs)


def translation_errors(conf: dict, sch: dict, path: str = "") -> list[str]:
    """Every option, at every depth, named and described; groups' fields under
    `fields:` (the Supervisor's SCHEMA_TRANSLATION_CONFIGURATION)."""
    errs = [f"{path}{k}: translated but not an option" for k in set(conf) - set(sch)]
    for key, typ in sch.items():
        here = f"{path}{key}"
        entry = conf.get(key)
        if not isinstance(entry, dict):
            errs.append(f"{here}: not translated")
            continue
        if not entry.get("name"):
            errs.append(f"{here}: no name (the Supervisor rejects the file)")
        if not entry.get("description"):
            errs.append(f"{here}: no description")
        if isinstance(typ, dict):
            errs += translation_errors(entry.get("fields") or {}, typ, here + ".")
        elif "fields" in entry and not (isinstance(typ, list) and isinstance(typ[0], dict)):
            errs.append(f"{here}: fields for an option that has none")
    return errs


def test_every_option_is_translated():
    tr = yaml.safe_load((REPO / "translations" / "en.yaml").read_text())
    errs = translation_errors(tr.get("configuration", {}), CONFIG["schema"])
    assert not errs, "translations/en.yaml:\n" + "\n".join(errs)
    # ports: only with a `ports:` map (none with host_network)
    assert set(tr.get("network", {})) == set(CONFIG.get("ports", {}))
    # the check fails when it should: a nested option untranslated, one nameless
    conf = copy.deepcopy(tr["configuration"])
    del conf["agent"]["fields"]["stt"]["fields"]["host"]
    conf["agent"]["fields"]["greeting"]["name"] = ""
    errs = translation_errors(conf, CONFIG["schema"])
    assert sorted(e.split(":")[0] for e in errs) == ["agent.greeting", "agent.stt.host"], errs


def dockerfile_stages(text: str) -> list[tuple[str, str, str]]:
    """(FROM line's flags+image, stage name, body) for each stage."""
    parts = re.split(r"^FROM\s+", text, flags=re.M)
    out = []
    for part in parts[1:]:
        head, _, body = part.partition("\n")
        m = re.fullmatch(r"(.+?)(?:\s+AS\s+(\S+))?\s*", head, re.I)
        out.append((m.group(1), m.group(2) or "", body))
    return out


def test_dockerfile():
    text = (REPO / "Dockerfile").read_text()
    default = re.search(r"^ARG BUILD_FROM=(\S+)", text, re.M)
    assert default, "Dockerfile: ARG BUILD_FROM with a pinned default"
    # what the Supervisor passes (build.yaml) and what the builder actions use (the default) agree
    assert default.group(1) == BUILD["build_from"], "Dockerfile's BUILD_FROM differs from build.yaml's build_from"
    assert BASE_IMAGE.fullmatch(default.group(1)), default.group(1)
    stages = dockerfile_stages(text)
    assert len(stages) == 2, [s[0] for s in stages]
    (builder_from, builder_name, builder), (final_from, _, final) = stages
    # the Rust build runs on the build machine's platform (cross-compiling, never emulated) ...
    assert builder_from.startswith("--platform=$BUILDPLATFORM ") and builder_name == "builder", builder_from
    # ... and the target comes from BuildKit's TARGETARCH: no default architecture to get wrong
    assert re.search(r"^ARG TARGETARCH$", builder, re.M)
    assert not re.search(r"^ARG BUILD_ARCH=\w", builder, re.M), "no default BUILD_ARCH: the platform decides"
    assert final_from in ("$BUILD_FROM", "${BUILD_FROM}"), final_from
    assert "scripts/build-static.sh" in builder and re.search(r"^COPY rootfs /$", final, re.M)
    assert re.search(r"^COPY --from=builder /ha-pbx /usr/bin/ha-pbx$", final, re.M)
    # the final stage runs nothing: a cross build of the image needs no emulator
    assert not re.search(r"^RUN\b", final, re.M), "a RUN in the final stage would need QEMU for a cross build"
    for src in re.findall(r"^COPY\s+(?!--)(.+?)\s+\S+$", text, re.M):
        for part in src.split():
            assert (REPO / part).exists(), f"Dockerfile copies {part}, which does not exist"
    ignored = (REPO / ".dockerignore").read_text().split()
    assert "target" in ignored and ".git" in ignored
    # build.yaml's labels (if any) are the Dockerfile's
    for key, value in (BUILD.get("labels") or {}).items():
        assert f'{key}="{value}"' in final, f"build.yaml label {key} is not in the Dockerfile"
    assert 'io.hass.type="addon"' in final


def test_healthcheck_replaces_the_watchdog():
    """A Docker HEALTHCHECK asks ha-pbx's /health over the Unix socket that ha-pbx serves in
    add-on mode (HA_PBX_HEALTH_SOCKET, set by the image); curl is in the HA base image.
    tests/integration/test_addon_static.py runs the command against the static binary."""
    assert "watchdog" not in CONFIG
    text = (REPO / "Dockerfile").read_text()
    opts, cmd = s6.dockerfile_healthcheck()
    assert not cmd.startswith("["), "shell form, so that ${HA_PBX_HEALTH_SOCKET} is expanded"
    assert re.search(r"^ENV HA_PBX_HEALTH_SOCKET=/run/ha-pbx/health\.sock$", text, re.M)
    assert "--unix-socket \"${HA_PBX_HEALTH_SOCKET}\"" in cmd and "http://localhost/health" in cmd
    assert "--fail" in cmd and "--max-time" in cmd
    # AppArmor lets ha-pbx make that socket (child profile) and curl reach it (the container's)
    sock = re.search(r"^ENV HA_PBX_HEALTH_SOCKET=(\S+)$", text, re.M).group(1)
    outer, _, daemon = (REPO / "apparmor.txt").read_text().partition("profile ha_pbx_daemon")
    assert f"{Path(sock).parent}/ rw," in daemon and f"{sock} rw," in daemon, "apparmor.txt: the socket for ha-pbx"
    for profile, ops in ((daemon, "bind, listen, accept"), (outer, "connect")):
        assert "network unix stream," in profile and re.search(rf"unix \([^)]*{ops}[^)]*\) type=stream,", profile)
    secs = {k: int(v.rstrip("s")) for k, v in opts.items() if k in ("interval", "timeout", "start-period")}
    assert secs["timeout"] > int(re.search(r"--max-time (\d+)", cmd).group(1)), "curl gives up before Docker does"
    assert secs["start-period"] >= 30 and int(opts["retries"]) >= 2, opts


def builder_arch_script() -> str:
    """The builder stage's target selection: its first RUN, up to where it writes /rust-target."""
    text = (REPO / "Dockerfile").read_text()
    builder = dockerfile_stages(text)[0][2]
    run = re.search(r"^RUN (.*?)(?<!\\)\n", builder, re.M | re.S).group(1)
    head, sep, _ = run.partition('&& echo "${arch}-unknown-linux-musl" > /rust-target')
    assert sep, "the builder's first RUN no longer writes /rust-target as expected"
    return head.replace("\\\n", "") + '&& echo "${arch}"'


@pytest.mark.parametrize("targetarch,build_arch,want", [
    ("amd64", "", "x86_64"), ("arm64", "", "aarch64"),            # no build argument
    ("amd64", "amd64", "x86_64"), ("arm64", "aarch64", "aarch64"),  # the Supervisor, build-image
    ("arm64", "amd64", "--platform linux/amd64"),                  # BUILD_ARCH contradicts --platform
    ("amd64", "aarch64", "--platform linux/arm64"),
    ("", "", "use BuildKit"), ("386", "", "unsupported target platform linux/386"),
])
def test_dockerfile_picks_the_target_from_the_platform(targetarch, build_arch, want):
    """The builder stage's own shell, run with what BuildKit and the Supervisor pass."""
    r = subprocess.run(["sh", "-c", builder_arch_script()], capture_output=True, text=True, timeout=10,
                       env={"PATH": "/usr/bin:/bin", "TARGETARCH": targetarch, "BUILD_ARCH": build_arch})
    if want in ("x86_64", "aarch64"):
        assert r.returncode == 0 and r.stdout.strip() == want, (r.returncode, r.stdout, r.stderr)
    else:
        assert r.returncode != 0 and want in r.stderr.replace("with BuildKit", "use BuildKit"), (r.returncode, r.stderr)


def test_s6_service():
    base = REPO / "rootfs" / "etc" / "s6-overlay" / "s6-rc.d"
    svc = base / "ha-pbx"
    assert (svc / "type").read_text().strip() == "longrun"
    assert (base / "user" / "contents.d" / "ha-pbx").exists()
    assert (svc / "dependencies.d" / "base").exists()
    run = (svc / "run").read_text()
    assert run.startswith("#!/command/with-contenv bashio\n")
    assert "exec /usr/bin/ha-pbx --addon" in run
    for script in ("run", "finish"):
        p = svc / script
        assert p.stat().st_mode & 0o111, f"{p} must be executable"
        body = p.read_text().split("\n", 1)[1]
        r = subprocess.run(["bash", "-n"], input=body, text=True, capture_output=True)
        assert r.returncode == 0, f"{script}: {r.stderr}"


def test_apparmor_profile():
    text = (REPO / "apparmor.txt").read_text()
    assert re.search(rf"^profile {CONFIG['slug']} flags=", text, re.M), "the profile must be named after the slug"
    parser = shutil.which("apparmor_parser") or ("/usr/sbin/apparmor_parser" if Path("/usr/sbin/apparmor_parser").exists() else None)
    if parser is None:
        pytest.skip("apparmor_parser not installed (Debian package apparmor)")
    r = subprocess.run([parser, "--skip-kernel-load", "--skip-cache", str(REPO / "apparmor.txt")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_images():
    assert png_size(REPO / "icon.png") == (128, 128)
    w, h = png_size(REPO / "logo.png")
    assert w > h and 200 <= w <= 500, (w, h)


class _InputLoader(yaml.SafeLoader):
    pass


_InputLoader.add_constructor("!input", lambda loader, node: ("!input", loader.construct_scalar(node)))


def _inputs_used(obj) -> set[str]:
    if isinstance(obj, tuple) and obj[:1] == ("!input",):
        return {obj[1]}
    if isinstance(obj, dict):
        return set().union(*(_inputs_used(v) for v in obj.values())) if obj else set()
    if isinstance(obj, list):
        return set().union(*(_inputs_used(v) for v in obj)) if obj else set()
    return set()


def test_blueprint():
    path = REPO / "addon" / "blueprints" / "automation" / "ha_pbx" / "doorbell_rings.yaml"
    bp = yaml.load(path.read_text(), Loader=_InputLoader)  # noqa: S506 (SafeLoader subclass)
    meta = bp["blueprint"]
    assert meta["domain"] == "automation" and meta["name"]
    declared = set(meta["input"])
    used = _inputs_used({k: v for k, v in bp.items() if k != "blueprint"})
    assert used == declared, f"inputs declared {declared}, used {used}"
    ev = meta["input"]["doorbell_event"]["selector"]["entity"]["filter"][0]
    assert ev == {"integration": "mqtt", "domain": "event"}
    cond = bp["conditions"][0]["value_template"]
    assert "event_type == 'ringing'" in cond  # the event type ha-pbx sends (docs/mqtt.md)
    assert bp["triggers"][0]["trigger"] == "state"


def test_dashboard():
    dash = yaml.safe_load((REPO / "addon" / "dashboard.yaml").read_text())
    cards = [c for v in dash["views"] for c in v["cards"]]
    types = {c["type"] for c in cards}
    assert {"custom:sip-call-card", "custom:sip-contacts-card"} <= types
    text = (REPO / "addon" / "dashboard.yaml").read_text()
    assert "binary_sensor.front_door_ringing" in text and "event.front_door_call" in text
