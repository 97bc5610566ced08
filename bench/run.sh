#!/usr/bin/env bash
# The main job of the README: set up, build, and run the default benchmark (top-8 experts of
# the Qwen3-30B-A3B gate projection, built-in synthetic weights, every CPU variant, and
# llama.cpp's ggml rows when its source can be fetched). Extra
# arguments go to bench (bench --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/setup.sh
# llama.cpp's ggml rows when its source can be fetched (setup_ggml.sh says in one line why not);
# its CUDA backend only where a GPU answers
ggml=(-DQK_GGML=OFF)
if why=$(bash bench/setup_ggml.sh 2>&1 >/dev/null); then
  ggml=(-DQK_GGML=ON -DQK_GGML_CUDA=OFF)
  if nvidia-smi -L >/dev/null 2>&1; then ggml=(-DQK_GGML=ON -DQK_GGML_CUDA=AUTO); fi
else
  echo "run: without llama.cpp's ggml rows (${why##*$'\n'})"
fi
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release "${ggml[@]}" >/dev/null
cmake --build build/release -j"$(nproc)" --target bench >/dev/null
exec build/release/bench/bench --top 8 "$@"
