#!/usr/bin/env bash
# The CI regression gate (.ci/run runs it after the tests): a short CPU benchmark on the default
# data, compared with the committed baseline of the CI machine by plot/compare.py. Settings
# that hold on a noisy shared 2-core VM (measured 2026-11-26): one expert (0.9 MB, resident in
# each core's L2, away from the shared L3 and DRAM that neighbours disturb), 15 repetitions
# interleaved at random across variants, the fastest repetition of each compared (noise only
# slows repetitions down), times relative to the scalar reference kernel of the same run (it
# tracks how fast the shared core is at the moment; the in-run read loop did not), a 12 %
# threshold on that best-of figure (the U test's p is shown but not required: one noisy
# baseline repetition set widens it while the minimum stays put), and a failure only when two
# more runs confirm it. A 20 % slowdown
# fails it (tests/test_regression.sh injects one); unchanged code passes.
# usage: tests/regression.sh [BASELINE.json] [OUT_DIR]   (bench: $QK_BENCH, default
# build/release/bench/bench)
set -uo pipefail
cd "$(dirname "$0")/.."
base=${1:-results/ci-baseline/baseline.json}
out=${2:-build/regression}
mkdir -p "$out"
args=(--kernel 'q4k_q8k_vnni_r8,q4k_q8k_maddubs,q4k_f32_avx2,q4k_q8k_ref' --experts 0 --hot
      --repetitions 15 --min-time 0.1 --threads "$(( $(nproc) < 2 ? $(nproc) : 2 ))"
      --benchmark_enable_random_interleaving=true)
if [ "${QK_REGRESSION_PRINT_ARGS:-}" = 1 ]; then printf '%s\n' "${args[@]}"; exit 0; fi
gate() { # run number: bench, then compare with the baseline; returns compare's exit code
  "${QK_BENCH:-build/release/bench/bench}" "${args[@]}" --json "$out/new$1.json" \
    >"$out/table$1.txt" || {
    cat "$out/table$1.txt"; return 2; }
  /usr/bin/python3 plot/compare.py "$base" "$out/new$1.json" --statistic min \
    --normalize q4k_q8k_ref --threshold 12 --alpha 1 | tee "$out/compare$1.txt"
  return "${PIPESTATUS[0]}"
}
# a real slowdown reproduces; a noisy neighbour rarely hits three runs in a row (one false
# "SLOWER" in a first run was seen on the CI VM, cleared by the next)
rc=1
for run in 1 2 3; do
  gate "$run"
  rc=$?
  [ $rc -eq 1 ] || break
  [ $run -lt 3 ] && echo "regression: slower in run $run; measuring again to confirm"
done
[ $rc -eq 0 ] && [ "${run:-1}" -gt 1 ] && echo "regression: not confirmed (noise): passing"
[ $rc -eq 0 ] && echo "regression: 1 passed, 0 failed" || echo "regression: 0 passed, 1 failed"
exit $rc
