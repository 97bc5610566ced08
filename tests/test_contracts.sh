#!/usr/bin/env bash
# Every variant this machine runs keeps its numerical contract (results/contracts.json) on the
# default data under every activation profile, and so do the committed result files.
# usage: test_contracts.sh BENCH
set -u
bench=$1
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
for p in normal uniform20 outliers swiglu lognormal zero_blocks; do
  "$bench" --top 8 --act "$p" --hot --repetitions 1 --min-time 0.01 --gpu-iterations 1 \
    --json "$tmp/$p.json" >/dev/null || { echo "FAIL: bench --act $p"; failed=1; }
done
/usr/bin/python3 "$src/plot/contracts.py" "$tmp"/*.json "$src"/results/*/*.json || failed=1
echo "contracts_hold: $((1 - failed)) passed, $failed failed"
exit $failed
