#!/usr/bin/env bash
# Installs the Debian 12 packages qkbench builds and tests with, when any is missing:
# compilers (clang with libFuzzer for the fuzz target) and CMake, Google Benchmark (library +
# compare.py), hwloc, and the Python 3 packages the tests and plots use.
set -euo pipefail
packages=(build-essential cmake clang libclang-rt-14-dev libbenchmark-dev libbenchmark-tools
          libhwloc-dev pkg-config python3 python3-numpy python3-scipy python3-matplotlib
          python3-venv)
need=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  echo "setup: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
