#!/usr/bin/env bash
# Builds ha-pbx as one statically linked musl binary (what the add-on image ships).
#
#   bash scripts/build-static.sh                              # this machine's arch
#   bash scripts/build-static.sh aarch64-unknown-linux-musl   # cross (see below)
#
# CARGO_TARGET_DIR is honoured. The add-on's Dockerfile runs this script.
# Prints the path of the binary on its last line.
#
# The C parts (SQLite bundled by libsqlite3-sys, mimalloc, ring, aws-lc-sys under
# str0m/rcgen) are compiled by the `cc` crate, and libopus (opusic-sys) through cmake;
# both need a musl C compiler:
#   - x86_64 / aarch64 native: Debian's musl-tools (`musl-gcc`), installed here
#     with apt when it is missing and we are root;
#   - aarch64 from x86_64 (Debian ships no musl cross compiler), the first found of:
#     CC_aarch64_unknown_linux_musl; an `aarch64-linux-musl-gcc` on PATH (e.g. a
#     musl.cc toolchain); zig (`pip install ziglang==0.13.0`) through the wrappers
#     in scripts/zig-cc/, which compile, archive and link (scripts/zig-cc/zig says
#     where zig is looked for; ZIG overrides). scripts/install-test-deps.sh installs
#     ziglang into .venv-zig/; the add-on's Dockerfile into its builder stage.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi

host_arch="$(uname -m)"
TARGET="${1:-${host_arch}-unknown-linux-musl}"
target_arch="${TARGET%%-*}"
env_target="${TARGET//-/_}"

# the Rust standard library for the target
if command -v rustup >/dev/null 2>&1; then
  if ! rustup target list --installed | grep -qx "$TARGET"; then
    echo "build-static: rustup target add $TARGET" >&2
    rustup target add "$TARGET"
  fi
fi

# cmake builds libopus, bundled by the opusic-c crate (Opus transcoding)
if ! command -v cmake >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "build-static: apt-get install cmake" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cmake >/dev/null
  else
    echo "build-static: cmake not found: apt-get install cmake" >&2
    exit 1
  fi
fi

# a musl C compiler for the target
cc_var="CC_${env_target}"
if [ -z "${!cc_var:-}" ]; then
  if [ "$target_arch" = "$host_arch" ]; then
    if ! command -v musl-gcc >/dev/null 2>&1; then
      if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "build-static: apt-get install musl-tools" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends musl-tools >/dev/null
      else
        echo "build-static: musl-gcc not found: apt-get install musl-tools" >&2
        exit 1
      fi
    fi
    export "$cc_var=musl-gcc"
  else
    zig_cc="$ROOT/scripts/zig-cc"
    if ! command -v "${target_arch}-linux-musl-gcc" >/dev/null 2>&1 \
       && [ -x "$zig_cc/${target_arch}-linux-musl-gcc" ]; then
      if ! zig_version="$("$zig_cc/zig" version)"; then
        echo "build-static: no musl C compiler for $TARGET: put ${target_arch}-linux-musl-gcc on PATH," \
             "set $cc_var, or install zig (pip install ziglang==0.13.0; bash scripts/install-test-deps.sh)" >&2
        exit 1
      fi
      echo "build-static: zig $zig_version as ${target_arch}-linux-musl-gcc (scripts/zig-cc)" >&2
      # by name, not by path: cc-rs reruns build scripts when CC_<target> changes,
      # and the tests build from copies of the tree in different directories
      export PATH="$zig_cc:$PATH"
    fi
    if ! command -v "${target_arch}-linux-musl-gcc" >/dev/null 2>&1; then
      echo "build-static: no musl C compiler for $TARGET: put ${target_arch}-linux-musl-gcc on PATH" \
           "or set $cc_var (Debian has no musl cross compiler)" >&2
      exit 1
    fi
    export "$cc_var=${target_arch}-linux-musl-gcc"
    export "CARGO_TARGET_${env_target^^}_LINKER=${target_arch}-linux-musl-gcc"
    ar_var="AR_${env_target}"
    if [ -z "${!ar_var:-}" ] && command -v "${target_arch}-linux-musl-ar" >/dev/null 2>&1; then
      export "$ar_var=${target_arch}-linux-musl-ar"
    fi
  fi
fi

# Rust's musl targets link statically by default (crt-static); say it anyway.
export "CARGO_TARGET_${env_target^^}_RUSTFLAGS=-C target-feature=+crt-static"
cargo build --release --locked --bin ha-pbx --target "$TARGET" >&2

BIN="${CARGO_TARGET_DIR:-$ROOT/target}/$TARGET/release/ha-pbx"
if command -v file >/dev/null 2>&1; then
  desc="$(file -b "$BIN")"
  echo "build-static: $desc" >&2
  case "$desc" in
    *"statically linked"*|*"static-pie linked"*) ;;
    *) echo "build-static: $BIN is not statically linked" >&2; exit 1 ;;
  esac
  case "$target_arch" in
    x86_64) want_arch="x86-64" ;;
    aarch64) want_arch="ARM aarch64" ;;
    *) want_arch="" ;;
  esac
  case "$desc" in
    *"$want_arch"*) ;;
    *) echo "build-static: $BIN is not a $target_arch executable" >&2; exit 1 ;;
  esac
fi
echo "$BIN"
