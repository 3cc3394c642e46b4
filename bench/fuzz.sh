#!/usr/bin/env bash
# Long fuzz runs: every target (or those named) for SECONDS each, one after
# the other, under nice; prints executions, speed and peak RSS per target.
#
#   bench/fuzz.sh SECONDS [TARGET...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
secs="${1:?usage: bench/fuzz.sh SECONDS [TARGET...]}"; shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(bash "$ROOT/fuzz/run.sh" --list)
bash "$ROOT/fuzz/run.sh" --build
printf '%-15s %12s %10s %8s %s\n' target executions exec/s rss_mb result
for t in "${targets[@]}"; do
  log="/tmp/ha-pbx-fuzz-$t.log"
  rc=0
  FUZZ_NO_BUILD=1 nice -n 19 bash "$ROOT/fuzz/run.sh" "$t" "$secs" -print_final_stats=1 >"$log" 2>&1 || rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  rss=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  result=ok; [ "$rc" -eq 0 ] || result="FAILED (exit $rc, see $log and fuzz/artifacts/$t/)"
  printf '%-15s %12s %10s %8s %s\n' "$t" "$runs" "$speed" "$rss" "$result"
done
