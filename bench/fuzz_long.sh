#!/usr/bin/env bash
# One fuzz target to N executions, detached: it goes on after the shell (or
# the session) that started it ends. Under nice -n 19, with its log in a
# file; the build is the one fuzz/run.sh made last (run `fuzz/run.sh --build`
# first, or set FUZZ_BUILD=1 to build here before detaching).
#
#   bench/fuzz_long.sh TARGET [RUNS] [LOG]   # start (RUNS default 10000000)
#   bench/fuzz_long.sh --status LOG          # executions so far, rss, crash?
#
# LOG defaults to /tmp/ha-pbx-fuzz-long-TARGET.log, and LOG.pid holds the
# process id (stop it with `kill $(cat LOG.pid)`). A crash stops the run; the
# input is then in fuzz/artifacts/TARGET/, and the log names it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ "${1:-}" = "--status" ]; then
  log="${2:?usage: bench/fuzz_long.sh --status LOG}"
  # libFuzzer's progress lines: "#N pulse/NEW/REDUCE cov: ... exec/s: E rss: RMb"
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  echo "last progress: ${last:-none yet}"
  if grep -q 'stat::number_of_executed_units' "$log"; then
    grep -E 'stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log"
  fi
  grep -E 'ERROR: libFuzzer|panicked at|Test unit written to' "$log" || echo "no crash in the log"
  pid=$(cat "$log.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "running (pid $pid)"; else echo "not running"; fi
  exit 0
fi

target="${1:?usage: bench/fuzz_long.sh TARGET [RUNS] [LOG]}"
runs="${2:-10000000}"
log="${3:-/tmp/ha-pbx-fuzz-long-$target.log}"
bash "$ROOT/fuzz/run.sh" --list | grep -qx "$target" || { echo "no fuzz target '$target' (fuzz/run.sh --list)" >&2; exit 2; }
[ "${FUZZ_BUILD:-0}" = 1 ] && bash "$ROOT/fuzz/run.sh" --build
bin="${CARGO_TARGET_DIR:-$ROOT/target}/release/$target"
[ -x "$bin" ] || { echo "$bin is not built: run fuzz/run.sh --build (or FUZZ_BUILD=1)" >&2; exit 2; }
# setsid: a session of its own, so the end of this shell does not stop it.
FUZZ_NO_BUILD=1 setsid nohup nice -n 19 bash "$ROOT/fuzz/run.sh" "$target" -runs="$runs" -print_final_stats=1 \
  </dev/null >"$log" 2>&1 &
echo $! >"$log.pid"
echo "started $target to $runs executions: pid $(cat "$log.pid"), log $log"
echo "progress: bash bench/fuzz_long.sh --status $log"
