#!/usr/bin/env bash
# THE test command: installs the test dependencies, builds ha-pbx, runs the unit
# tests, a short run of each fuzz target (fuzz/) and the integration tests
# with real SIP peers (sipp, baresip, linphonec).
#
#   bash scripts/test.sh                 # everything
#   bash scripts/test.sh -k baresip      # extra arguments go to pytest (integration tests)
#
# Exits non-zero if the build, any unit test or any integration test fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi

# no __pycache__ directories in the work tree
export PYTHONDONTWRITEBYTECODE=1

stage() { printf '\n==== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }

stage "test dependencies"
bash scripts/install-test-deps.sh

stage "cargo build --release --bin ha-pbx"
cargo build --release --bin ha-pbx

failed=()

stage "unit tests: cargo test --release"
if ! cargo test --release; then
  failed+=("unit tests")
fi

stage "fuzz targets: seed corpora + 20000 inputs each (fuzz/run.sh)"
# Reuses the release build's dependencies (only ha-pbx's library is built
# again, instrumented); a crash fails the run and leaves its input in
# fuzz/artifacts/<target>/.
if bash fuzz/run.sh --build; then
  for t in $(bash fuzz/run.sh --list); do
    runs=20000
    # A bridge session makes a str0m session per input (~6 ms): fewer inputs.
    [ "$t" = bridge_session ] && runs=2000
    if ! bash fuzz/run.sh "$t" -runs=$runs -print_final_stats=1 >"/tmp/ha-pbx-fuzz-$t.log" 2>&1; then
      tail -40 "/tmp/ha-pbx-fuzz-$t.log" >&2
      failed+=("fuzz target $t")
    else
      printf '%s: %s\n' "$t" "$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "/tmp/ha-pbx-fuzz-$t.log" | tr -s ' ')"
    fi
  done
else
  failed+=("fuzz build")
fi

stage "integration tests: pytest tests/integration"
# Each test has its own time limit (conftest.py, SIGALRM); this outer bound only
# catches a wedged interpreter. Peers are bounded by their own timeouts too.
rc=0
timeout -k 30 4500 .venv-test/bin/python -m pytest tests/integration -v "$@" || rc=$?
if [ "$rc" -ne 0 ]; then
  failed+=("integration tests (pytest exit $rc)")
fi

if [ ${#failed[@]} -gt 0 ]; then
  printf 'scripts/test.sh: FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
