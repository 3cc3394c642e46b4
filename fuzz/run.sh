#!/usr/bin/env bash
# Build the fuzz targets and run one (libFuzzer, linked in by libfuzzer-sys).
# Needs no nightly toolchain and no cargo-fuzz: the coverage flags are those
# cargo-fuzz passes, added by fuzz/rustc-wrapper.sh to our crates only.
#
#   fuzz/run.sh TARGET SECONDS [ARGS] # run for SECONDS (-max_total_time)
#   fuzz/run.sh TARGET -runs=N        # N inputs after the corpus
#   fuzz/run.sh TARGET ARGS...        # any libFuzzer arguments
#   fuzz/run.sh --build               # build every target, run none
#   fuzz/run.sh --list                # the targets
#
# Inputs: fuzz/corpus/TARGET (the seeds, in git) plus fuzz/work/TARGET (what
# the fuzzer learned; not in git). Crashes land in fuzz/artifacts/TARGET.
# By default the build shares target/ with `cargo build --release`, so only
# ha-pbx's library and the small targets are compiled. FUZZ_DEEP=1 also
# instruments rsipstack (its SIP parser) in a target dir of its own,
# fuzz/target: a full build, for long runs. FUZZ_NO_BUILD=1 runs what was
# built last (no cargo, so no wait for a build running in target/).
set -euo pipefail
FUZZ="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$FUZZ/.." && pwd)"
TARGETS=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$FUZZ/Cargo.toml" | grep -v '^ha-pbx-fuzz$')

if [ "${1:-}" = "--list" ]; then echo "$TARGETS"; exit 0; fi
[ $# -ge 1 ] || { sed -n '2,19p' "$0"; exit 2; }

export FUZZ_TARGETS="$(echo $TARGETS)"
export RUSTC_WRAPPER="$FUZZ/rustc-wrapper.sh"
if [ "${FUZZ_DEEP:-0}" = 1 ]; then
  export CARGO_TARGET_DIR="$FUZZ/target"
  export FUZZ_INSTRUMENT_ALSO="rsipstack"
else
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
fi
# The main Cargo.lock, plus the fuzzing crates: every shared dependency at
# the very version the main build uses, so its artefacts are reused.
if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
  cp "$ROOT/Cargo.lock" "$FUZZ/Cargo.lock"
  (cd "$FUZZ" && cargo build --release --bins)
fi
[ "$1" = "--build" ] && exit 0

target="$1"; shift
echo "$TARGETS" | grep -qx "$target" || { echo "no fuzz target '$target' (fuzz/run.sh --list)" >&2; exit 2; }
mkdir -p "$FUZZ/work/$target" "$FUZZ/artifacts/$target" "$FUZZ/corpus/$target"
args=()
if [ $# -ge 1 ] && [[ "$1" =~ ^[0-9]+$ ]]; then
  args=(-max_total_time="$1"); shift
fi
dict=()
[ -f "$FUZZ/dict/$target.dict" ] && dict=(-dict="$FUZZ/dict/$target.dict")
exec "$CARGO_TARGET_DIR/release/$target" -artifact_prefix="$FUZZ/artifacts/$target/" \
  -rss_limit_mb=2048 -max_len=16384 -timeout=10 "${dict[@]}" "${args[@]}" "$@" \
  "$FUZZ/work/$target" "$FUZZ/corpus/$target"
