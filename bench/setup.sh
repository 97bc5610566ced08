#!/usr/bin/env bash
# Installs the Debian 12 packages qkbench builds and tests with, when any is missing:
# compilers and CMake, Google Benchmark (library + compare.py), hwloc, and the Python 3
# packages the tests and plots use.
set -euo pipefail
packages=(build-essential cmake clang libbenchmark-dev libbenchmark-tools libhwloc-dev
          python3 python3-numpy python3-scipy)
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
