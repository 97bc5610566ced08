#!/usr/bin/env bash
# plot/plot.py turns the committed results into its charts (with the hardware generations);
# plot/index.py indexes them; both refuse a file that is not a result. The same for schema-2
# files (issue 13), decode rows included.
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
# a committed result file by its name: current (results/M/F) or, once a newer run replaced it,
# in results/M/history/F
committed() {
  local f=$src/results/$1
  [ -e "$f" ] || f=$src/results/${1%/*}/history/${1##*/}
  echo "$f"
}
/usr/bin/python3 "$src/plot/plot.py" "$src"/results/*/*.json -o "$tmp/charts" >/dev/null ||
  { failed=$((failed + 1)); echo "FAIL: plot.py"; }
for c in throughput_hot throughput_cold error_vs_speed roofline error_by_profile generations_hot \
  generations_cold; do
  for ext in png svg; do
    if [ -s "$tmp/charts/$c.$ext" ]; then passed=$((passed + 1)); else
      failed=$((failed + 1)); echo "FAIL: no $c.$ext"; fi
  done
done
mkdir -p "$tmp/results/m" &&
  cp "$(committed nvidia-h100-80gb-hbm3/2026-11-26-run2-gate-top8.json)" "$tmp/results/m/"
/usr/bin/python3 "$src/plot/index.py" "$tmp/results" >/dev/null &&
  grep -q "dp4a_q4k_q8_e2e (k8)" "$tmp/results/README.md" && passed=$((passed + 1)) ||
  { failed=$((failed + 1)); echo "FAIL: index.py"; }
# the charts are of the gate shape: a down-shape file alone gives no throughput chart
/usr/bin/python3 "$src/plot/plot.py" "$(committed nvidia-h200/2026-11-26-run4-down-top8.json)" \
  -o "$tmp/down" >/dev/null && [ ! -e "$tmp/down/throughput_hot.png" ] && passed=$((passed + 1)) ||
  { failed=$((failed + 1)); echo "FAIL: plot.py charted a down-shape file as the gate"; }
/usr/bin/python3 "$src/plot/plot.py" "$0" -o "$tmp/x" >/dev/null 2>&1
[ $? -eq 2 ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: plot.py accepted a non-result"; }
# schema 2 (issue 13, sampled rows; tests/fixtures/schema2.py writes small files from committed
# schema-1 ones): charts with their error bars (the median's 95 % interval) and decode rows,
# beside schema-1 files; the index; a malformed qkbench_samples is one line, exit 2
S2="/usr/bin/python3 $src/tests/fixtures/schema2.py"
$S2 "$tmp/s2cpu.json" --like "$(committed intel-xeon-2c/2026-11-29-gate-top8.json)" &&
  $S2 "$tmp/s2gpu.json" --like "$(committed nvidia-h200/2026-11-26-run4-gate-top8.json)" --decode &&
  $S2 "$tmp/s2h100.json" --like "$(committed nvidia-h100-80gb-hbm3/2026-11-26-run7-gate-top8.json)" \
    --decode --seed 2 &&
  passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: schema2.py"; }
/usr/bin/python3 "$src/plot/plot.py" "$tmp/s2cpu.json" "$tmp/s2gpu.json" "$tmp/s2h100.json" \
  "$(committed intel-xeon-2c/2026-11-29-gate-top8-isa-avx2.json)" -o "$tmp/s2charts" >/dev/null ||
  { failed=$((failed + 1)); echo "FAIL: plot.py on schema-2 files"; }
for c in throughput_hot throughput_cold throughput_decode error_vs_speed roofline generations_hot \
  generations_cold generations_decode; do
  if [ -s "$tmp/s2charts/$c.png" ] && [ -s "$tmp/s2charts/$c.svg" ]; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: schema 2: no $c.png/.svg"; fi
done
mkdir -p "$tmp/results2/m" "$tmp/results2/g" && cp "$tmp/s2cpu.json" "$tmp/results2/m/" &&
  cp "$tmp/s2gpu.json" "$tmp/results2/g/"
/usr/bin/python3 "$src/plot/index.py" "$tmp/results2" >/dev/null &&
  grep -q "^### Decode" "$tmp/results2/README.md" &&
  grep -q "q4k_q8k_vnni_r8 (k8)" "$tmp/results2/README.md" && passed=$((passed + 1)) ||
  { failed=$((failed + 1)); echo "FAIL: index.py on schema-2 files"; }
/usr/bin/python3 - "$tmp/s2cpu.json" "$tmp/s2bad.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
next(iter(d["qkbench_samples"].values()))["dropped"][0] = 7
json.dump(d, open(sys.argv[2], "w"))
EOF
/usr/bin/python3 "$src/plot/plot.py" "$tmp/s2bad.json" -o "$tmp/y" >"$tmp/out.txt" 2>&1
[ $? -eq 2 ] && [ "$(wc -l <"$tmp/out.txt")" = 1 ] && grep -q "s2bad.json: qkbench_samples" "$tmp/out.txt" &&
  passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: plot.py on a malformed schema-2 file"; }
# results/ (issue 14): the current files in results/<machine>/, earlier runs in its history/;
# the index's main table has one row per machine and shape, the other configurations and the
# earlier runs apart; two current files of one machine and configuration, or an earlier run
# newer than the current one, are refused (one line naming the file to move, exit 2); plot.py
# draws the newest file of each machine and configuration and names the others
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
cp -r "$src/results" "$tmp/lay" && /usr/bin/python3 "$src/plot/index.py" "$tmp/lay" >/dev/null &&
  /usr/bin/python3 - "$tmp/lay/README.md" <<'EOF2' && ok || bad "index.py's sections"
import sys
text = open(sys.argv[1]).read()
main = text.split("## Current results", 1)[1].split("\n## ", 1)[0]
rows = [line.split(" | ") for line in main.splitlines() if line.startswith("| ") and
        not line.startswith(("| machine", "|---"))]
keys = [(r[0], r[1]) for r in rows]
assert rows and len(keys) == len(set(keys)), keys
assert "history/" not in main, "an earlier run in the main table"
for part in ("## Other current configurations", "## Hardware generations", "## Earlier runs"):
    assert part in text, part
assert "history/" in text.split("## Earlier runs", 1)[1]
EOF2
h7=$(committed nvidia-h100-80gb-hbm3/2026-11-26-run7-gate-top8.json)
h6=$(committed nvidia-h100-80gb-hbm3/2026-11-26-run6-gate-top8.json)
one_line() { [ "$1" -eq 2 ] && [ "$(wc -l <"$tmp/out.txt")" = 1 ] && grep -q "$2" "$tmp/out.txt"; }
mkdir -p "$tmp/two/nvidia-h100-80gb-hbm3" && cp "$h7" "$h6" "$tmp/two/nvidia-h100-80gb-hbm3/"
/usr/bin/python3 "$src/plot/index.py" "$tmp/two" >"$tmp/out.txt" 2>&1
one_line $? "both current files of nvidia-h100-80gb-hbm3 gate-top8: git mv the older, \
.*run6-gate-top8.json, into nvidia-h100-80gb-hbm3/history/" && ok ||
  { bad "index.py took two current files of one configuration"; cat "$tmp/out.txt"; }
mkdir -p "$tmp/swap/nvidia-h100-80gb-hbm3/history" &&
  cp "$h6" "$tmp/swap/nvidia-h100-80gb-hbm3/" && cp "$h7" "$tmp/swap/nvidia-h100-80gb-hbm3/history/"
/usr/bin/python3 "$src/plot/index.py" "$tmp/swap" >"$tmp/out.txt" 2>&1
one_line $? "run7-gate-top8.json .* is newer than the current file" && ok ||
  { bad "index.py took an older run as current"; cat "$tmp/out.txt"; }
/usr/bin/python3 "$src/plot/plot.py" "$h6" "$h7" -o "$tmp/newest" 2>"$tmp/err.txt" >/dev/null &&
  grep -q "run6-gate-top8.json: left out, .*run7-gate-top8.json is a newer run of \
nvidia-h100-80gb-hbm3 gate-top8" "$tmp/err.txt" && ok ||
  { bad "plot.py did not take the newest file"; cat "$tmp/err.txt"; }
# the labels of error vs speed and the roofline overlap neither each other nor the markers
/usr/bin/python3 - "$src" "$src"/results/*/*.json <<'EOF2' && ok || bad "chart labels overlap"
import os, sys
sys.path.insert(0, os.path.join(sys.argv[1], "plot"))
import plot
from matplotlib.text import Text
from qkresults import Result
figs = {}
plot.save = lambda fig, out, name: figs.setdefault(name, fig)
results = [Result(p) for p in sys.argv[2:]]
plot.error_vs_speed(results, None)
plot.roofline(results, None)
assert set(figs) == {"error_vs_speed", "roofline"}, figs
for name, fig in figs.items():
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    ax = fig.axes[0]
    texts = [Text.get_window_extent(t, r) for t in ax.texts]  # the text, not its line
    pts = [tuple(p) for c in ax.collections for p in ax.transData.transform(c.get_offsets())]
    assert len(texts) == len(pts), (name, len(texts), len(pts))
    k = fig.dpi / 72 * 4  # a marker's half width (s=60: about 4 points)
    for i, a in enumerate(texts):
        for b in texts[i + 1:]:
            assert not a.overlaps(b), (name, a, b)
        for x, y in pts:
            assert not (a.x0 < x + k and x - k < a.x1 and a.y0 < y + k and y - k < a.y1), \
                (name, ax.texts[texts.index(a)].get_text(), x, y)
EOF2
echo "plot: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
