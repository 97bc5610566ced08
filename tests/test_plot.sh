#!/usr/bin/env bash
# plot/plot.py turns the committed results into its charts (with the hardware generations);
# plot/index.py indexes them; both refuse a file that is not a result.
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
/usr/bin/python3 "$src/plot/plot.py" "$src"/results/*/*.json -o "$tmp/charts" >/dev/null ||
  { failed=$((failed + 1)); echo "FAIL: plot.py"; }
for c in throughput_hot throughput_cold error_vs_speed roofline error_by_profile generations_hot \
  generations_cold; do
  for ext in png svg; do
    if [ -s "$tmp/charts/$c.$ext" ]; then passed=$((passed + 1)); else
      failed=$((failed + 1)); echo "FAIL: no $c.$ext"; fi
  done
done
mkdir -p "$tmp/results/m" && cp "$src"/results/nvidia-h100-80gb-hbm3/*run2-gate-top8.json "$tmp/results/m/"
/usr/bin/python3 "$src/plot/index.py" "$tmp/results" >/dev/null &&
  grep -q "dp4a_q4k_q8_e2e (k8)" "$tmp/results/README.md" && passed=$((passed + 1)) ||
  { failed=$((failed + 1)); echo "FAIL: index.py"; }
# the charts are of the gate shape: a down-shape file alone gives no throughput chart
/usr/bin/python3 "$src/plot/plot.py" "$src"/results/nvidia-h200/*run4-down-top8.json \
  -o "$tmp/down" >/dev/null && [ ! -e "$tmp/down/throughput_hot.png" ] && passed=$((passed + 1)) ||
  { failed=$((failed + 1)); echo "FAIL: plot.py charted a down-shape file as the gate"; }
/usr/bin/python3 "$src/plot/plot.py" "$0" -o "$tmp/x" >/dev/null 2>&1
[ $? -eq 2 ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: plot.py accepted a non-result"; }
echo "plot: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
