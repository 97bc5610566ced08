#!/usr/bin/env bash
# The main job of the README: set up, build, and run the default benchmark (top-8 experts of
# the Qwen3-30B-A3B gate projection, built-in synthetic weights, every CPU variant). Extra
# arguments go to bench (bench --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/setup.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"$(nproc)" --target bench >/dev/null
exec build/release/bench/bench --top 8 "$@"
