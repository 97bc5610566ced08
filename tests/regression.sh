#!/usr/bin/env bash
# The CI regression gate (.ci/run runs it after the tests): a short CPU benchmark on the default
# data, compared with the committed baseline of the CI machine by plot/compare.py. Settings
# that hold on a noisy shared 2-core VM (measured 2026-11-26):
# - one expert (0.9 MB, resident in a core's L2, away from the shared L3 and DRAM that
#   neighbours disturb), one thread (a kernel split over both vCPUs waits for whichever the
#   host has descheduled), 15 repetitions interleaved at random across variants;
# - each row's fastest single call (best_call_us): the VM's noise comes in bursts of
#   milliseconds and only ever adds time, so among thousands of calls some run clean. Whole
#   repetitions were 1.4-1.8x slower for a minute in one CI run; their best calls were not;
# - the fastest over up to three runs (plot/pool.py): a process's state (its core, where its
#   buffers fall in the caches) moves single rows by 3-7 % from one run to the next, the best
#   of three by about 3 %; the baseline is three runs pooled the same way;
# - changes relative to the median row's change (a slower host moves every row alike; the
#   scalar reference alone, used before, moved 7 % against the others between runs);
# - a 12 % threshold (the U test's p is shown but not required).
# A run that passes ends the gate; a failure is measured again and pooled, and the gate fails
# only when the pool of three runs still does. A 20 % slowdown fails it
# (tests/test_regression.sh injects one); unchanged code passes.
# usage: tests/regression.sh [BASELINE.json] [OUT_DIR]
#        tests/regression.sh --record OUT.json   (five runs pooled: a new baseline)
# bench: $QK_BENCH, default build/release/bench/bench
set -uo pipefail
cd "$(dirname "$0")/.."
bench=${QK_BENCH:-build/release/bench/bench}
py=/usr/bin/python3
args=(--kernel 'q4k_q8k_vnni_r8,q4k_q8k_vnni,q4k_q8k_maddubs,q4k_f32_avx2,q4k_q8k_ref' --experts 0 --hot
      --repetitions 15 --min-time 0.1 --threads 1 --benchmark_enable_random_interleaving=true)
if [ "${QK_REGRESSION_PRINT_ARGS:-}" = 1 ]; then printf '%s\n' "${args[@]}"; exit 0; fi
measure() { # OUT.json: one bench run with the gate's settings
  "$bench" "${args[@]}" --json "$1" >"$1.table.txt" || { cat "$1.table.txt"; return 2; }
}
if [ "${1:-}" = --record ]; then
  [ $# -eq 2 ] || { echo "usage: tests/regression.sh --record OUT.json" >&2; exit 2; }
  tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
  for run in 1 2 3 4 5; do measure "$tmp/run$run.json" || exit 2; done
  $py plot/pool.py "$2" "$tmp"/run[1-5].json
  exit
fi
base=${1:-results/ci-baseline/baseline.json}
out=${2:-build/regression}
mkdir -p "$out"
rc=1
for run in 1 2 3; do
  measure "$out/new$run.json" || exit 2
  $py plot/pool.py "$out/pooled.json" "$out"/new[1-$run].json || exit 2
  $py plot/compare.py "$base" "$out/pooled.json" --statistic best --normalize median \
    --threshold 12 --alpha 1 | tee "$out/compare$run.txt"
  rc=${PIPESTATUS[0]}
  [ $rc -eq 1 ] || break
  [ $run -lt 3 ] && echo "regression: slower in the pool of $run run(s); measuring again"
done
[ $rc -eq 0 ] && [ $run -gt 1 ] && echo "regression: not confirmed (noise): passing"
[ $rc -eq 0 ] && echo "regression: 1 passed, 0 failed" || echo "regression: 0 passed, 1 failed"
exit $rc
