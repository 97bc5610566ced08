#!/usr/bin/env bash
# Issue 13's GPU figures on a GPU host (the device tool's H200: CUDA 13, CMake, ninja), in one
# call: builds test_gpu and bench, runs test_gpu (bit-exactness, then the timing tests: cold
# held and within 1 us of CUPTI, decode between hot and cold over > 3x L2, the read roof not
# slower than the unit, NVML) with the figures of QK_GPU_TEST_REPORT (medians of N samples: cold
# top-8 e2e and two-launch, not held (the old path) and held; hot; decode; the read roof
# hot/cold/decode and its shape sweep; the copy; NVML's read cost and clocks), then bench on
# every GPU variant, top-8, hot, cold and decode. Logs go to $OUT (default build/gpu-out); the
# log is written to a file, not through a tee process (the device tool waits on every child).
# Usage: bash bench/gpu_rigor_check.sh [samples (default 200)]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-build/gpu-out}
n=${1:-200}
mkdir -p "$out"
exec >>"$out/rigor.txt" 2>&1
step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }
smi() {
  nvidia-smi --query-gpu=name,driver_version --format=csv
  nvidia-smi --query-gpu=clocks.sm,clocks.max.sm,clocks.mem,power.draw,temperature.gpu --format=csv
}
step "machine"
smi
nproc
step "build (test_gpu, bench)"
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B build/rigor "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DQK_WERROR=ON -DQK_CUDA=ON \
  -DQK_CUDA_ARCHITECTURES=90 >"$out/cmake.txt" 2>&1 || { tail -30 "$out/cmake.txt"; exit 1; }
cmake --build build/rigor -j"$(nproc)" --target test_gpu bench >"$out/build.txt" 2>&1 ||
  { grep -E "error|Error" -A5 "$out/build.txt" | head -60; exit 1; }
step "test_gpu with the figures (QK_GPU_TEST_REPORT=$n)"
QK_GPU_TEST_REPORT=$n timeout 300 build/rigor/tests/test_gpu
echo "test_gpu: exit $?"
step "clocks after"
smi
step "bench: every GPU variant, top-8, hot, cold and decode"
timeout 200 build/rigor/bench/bench --kernel 'gpu_*,dp4a_*' --top 8 --json "$out/rigor-top8.json"
echo "bench: exit $?"
step "done"
