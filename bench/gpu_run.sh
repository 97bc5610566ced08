#!/usr/bin/env bash
# Build, test and benchmark on a GPU host (the device tool's machine: CUDA 13, Google Benchmark
# 1.8, hwloc, CMake, ninja; no package registry). Results and logs go to $OUT (default
# build/gpu-out). Usage: [QK_GIT_COMMIT=<commit>] bash bench/gpu_run.sh [quick]
# (QK_GIT_COMMIT names the source where this copy's .git is not the source's). With llama.cpp's
# ggml rows: bash bench/setup_ggml.sh here first, and carry build/deps/ggml to the device.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-build/gpu-out}
mkdir -p "$out" build
log=$out/log.txt
exec >>"$log" 2>&1 # to a file: a tee process would outlive the call on the device tool
step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }
step "machine"
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem,driver_version --format=csv
nproc
step "build"
# llama.cpp's ggml rows (CPU and CUDA) when build/deps/ggml was carried here (no registry here):
# bash bench/setup_ggml.sh beforehand, then carry build/deps/ggml
ggml=(-DQK_GGML=OFF)
if [ -d build/deps/ggml ] && bash bench/setup_ggml.sh; then
  ggml=(-DQK_GGML=ON -DQK_GGML_CUDA=ON)
else
  echo "no build/deps/ggml: without llama.cpp's ggml rows"
fi
# the build's logs stay in build/ (the device tool brings back 8 files at most): shown on failure
cmake -S . -B build/gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DQK_WERROR=ON -DQK_CUDA=ON \
  -DQK_CUDA_ARCHITECTURES=90 "${ggml[@]}" >build/gpu-cmake.txt 2>&1 || { tail -30 build/gpu-cmake.txt; exit 1; }
cmake --build build/gpu -j"$(nproc)" >build/gpu-build.txt 2>&1 || { grep -E "error|Error" -A5 build/gpu-build.txt | head -60; exit 1; }
step "tests (the suites that need no PyPI packages)"
ctest --test-dir build/gpu --output-on-failure -j4 \
  -R '^(formats|kernels|quantizers|matvec|matmul|npy|synth|gpu|gbench|gguf_errors|cli|tokens)$' 2>&1 | tail -25
build/gpu/tests/test_gpu | tail -3
if [ -x build/gpu/tests/test_ggml_plugin ]; then # the ggml rows' suite, with ggml_cuda's deviation
  build/gpu/tests/test_ggml_plugin build/gpu/bench/plugins/qkbench_ggml.so 2>&1 |
    grep -E "^FAIL|ggml:|ggml_cuda|ggml_plugin:"
fi
step "compute-sanitizer (memcheck, racecheck) on every GPU variant"
for tool in memcheck racecheck; do
  QK_GPU_TEST_QUICK=1 compute-sanitizer --tool "$tool" --error-exitcode 9 build/gpu/tests/test_gpu \
    >"$out/sanitizer-$tool.txt" 2>&1
  echo "$tool: exit $? ($(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitizer-$tool.txt" | tail -1))"
done
[ "${1:-}" = quick ] && exit 0
ggml_cuda="" # llama.cpp's CUDA row beside ours in the result files, where built
[ -x build/gpu/tests/test_ggml_plugin ] && ggml_cuda=",ggml_cuda"
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr 'A-Z ' 'a-z-' | tr -cd 'a-z0-9-')
step "bench: top-8 gate, every GPU variant (and ggml_cuda where built), hot and cold ($gpu)"
build/gpu/bench/bench --kernel "gpu_*,dp4a_*$ggml_cuda" --top 8 --min-time 0.5 --max-time 5 \
  --json "$out/$gpu-gate-top8.json"
step "bench: dp4a_q4k_q8_e2e top-8 hot, three more runs (the spread between runs)"
for i in 1 2 3; do
  build/gpu/bench/bench --kernel dp4a_q4k_q8_e2e --top 8 --hot --min-time 0.5 --max-time 5 | grep '^dp4a'
done
if [ -x build/gpu/tests/test_ggml_plugin ]; then
  step "bench: llama.cpp's ggml_cuda beside dp4a_q4k_q8_e2e, top-8 hot"
  build/gpu/bench/bench --kernel 'ggml_cuda,dp4a_q4k_q8_e2e' --top 8 --hot --min-time 0.5 --max-time 5
fi
step "bench: the tokens sweep, top-8 gate, uniform routing, hot ($gpu)"
build/gpu/bench/bench --kernel "gpu_*,dp4a_*$ggml_cuda" --top 8 --tokens 1,2,4,8,16,32,64 --hot \
  --min-time 0.3 --max-time 2 --json "$out/$gpu-gate-tokens.json"
step "bench: top-8 down projection (2048x768: 3 super-blocks a row), every GPU variant"
build/gpu/bench/bench --kernel "gpu_*,dp4a_*$ggml_cuda" --top 8 --shape down --min-time 0.5 --max-time 5 \
  --json "$out/$gpu-down-top8.json"
step "bench: all 128 experts streamed, cold and hot"
build/gpu/bench/bench --kernel 'dp4a_q4k_q8,dp4a_q4k_q8_e2e,dp4a_q4k_q8_1,gpu_q4k_f32' \
  --experts all --min-samples 10 --min-time 0.5 --max-time 2 --json "$out/$gpu-gate-all128.json"
step "bench: the host CPU, top-8 gate"
build/gpu/bench/bench --kernel 'q4k_q8k_*,q4k_f32_avx512' --top 8 --min-time 0.5 --max-time 5 \
  --json "$out/$gpu-host-cpu-gate-top8.json"
step "done"
