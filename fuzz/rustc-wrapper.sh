#!/bin/sh
# RUSTC_WRAPPER for fuzz/run.sh: adds libFuzzer's coverage instrumentation
# (SanitizerCoverage, as cargo-fuzz does) to our own crates only, so that
# every dependency is the very artefact `cargo build --release` made and is
# reused from target/. Cargo does not see these flags, which is why the
# ha-pbx library is built with the `fuzzing` feature here (its own artefact,
# never mistaken for the normal one). FUZZ_INSTRUMENT_ALSO adds crates
# (e.g. "rsipstack"), for a separate target dir only (see run.sh).
rustc="$1"; shift
name=""
prev=""
for a in "$@"; do
  [ "$prev" = "--crate-name" ] && name="$a"
  prev="$a"
done
case " ha_pbx $FUZZ_TARGETS $FUZZ_INSTRUMENT_ALSO " in
  *" $name "*)
    if [ -n "$name" ]; then
      exec "$rustc" "$@" --cfg fuzzing \
        -Cpasses=sancov-module \
        -Cllvm-args=-sanitizer-coverage-level=4 \
        -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
        -Cllvm-args=-sanitizer-coverage-pc-table \
        -Cllvm-args=-sanitizer-coverage-trace-compares \
        -Cllvm-args=-sanitizer-coverage-stack-depth \
        -Cdebug-assertions -Coverflow-checks
    fi
    ;;
esac
exec "$rustc" "$@"
