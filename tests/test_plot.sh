#!/usr/bin/env bash
# plot/plot.py turns the committed results into its charts (with the hardware generations);
# plot/index.py indexes them; both refuse a file that is not a result. The same for schema-2
# files (issue 13), decode rows included, and for files of batched tokens (issue 18): the
# tokens_<temperature> charts, plot/tokens.py's table and index.py's section on them.
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
# batched tokens (issue 18, `bench --tokens`; files from tests/fixtures/schema2.py --tokens):
# plot/tokens.py's table, the tokens_<temperature> charts (one line per variant and machine, the
# time per token against N on a log2 axis, a legend beside the axes), no stale chart where no file
# has a sweep, the one-token charts unchanged by batch rows, index.py's section
$S2 "$tmp/tkcpu.json" --like "$(committed intel-xeon-2c/2026-11-29-gate-top8.json)" \
  --only q4k_q8k_ref,q4k_q8k_vnni_r8,q4k_f32_avx512 --tokens 1,2,4,8,16,32,64 --batch-gain 1.1 &&
  $S2 "$tmp/tkgpu.json" --like "$(committed nvidia-h200/2026-11-26-run4-gate-top8.json)" \
    --only dp4a_q4k_q8_e2e,gpu_q4k_f32 --tokens 1,2,4,8 --decode --batch-gain 1.3 &&
  $S2 "$tmp/tkskew.json" --like "$(committed intel-xeon-2c/2026-11-29-gate-top8.json)" \
    --only q4k_q8k_vnni_r8 --tokens 1,8 --routing skewed && ok || bad "schema2.py --tokens"
/usr/bin/python3 "$src/plot/tokens.py" "$tmp/tkcpu.json" >"$tmp/tk.md" 2>"$tmp/err.txt" &&
  /usr/bin/python3 - "$tmp/tkcpu.json" "$tmp/tk.md" <<'EOF2' && ok || { bad "tokens.py's table"; cat "$tmp/err.txt"; }
import json, sys
d = json.load(open(sys.argv[1]))
text = open(sys.argv[2]).read()
rt = {b["run_name"].split("/iterations")[0]: b for b in d["benchmarks"]}
assert text.count("#### ") == 2 and "#### Hot: " in text and "#### Cold: " in text, text[:300]
hot = text.split("#### Cold: ")[0]
rows = [l.split(" | ") for l in hot.splitlines() if l.startswith("| q4k")]
assert len(rows) == 3 * 7, len(rows)  # three variants, seven token counts
for cells in rows:
    variant, n = cells[0][2:], int(cells[1])
    name = f"{variant}/768x2048/k8/hot" if n == 1 else f"{variant}/768x2048/k8/t{n}/hot"
    b, one = rt[name], rt[f"{variant}/768x2048/k8/hot"]
    med = b["real_time"]
    assert abs(float(cells[3].split(" (")[0]) - med) <= 0.006 * med, (cells, med)
    assert abs(float(cells[4]) - med / n) <= 0.006 * med / n, (cells, med / n)
    assert cells[5] == f"{one['real_time'] / (med / n):.2f}x", (cells, one["real_time"], med)
    assert cells[6] == f"{b['GBps']:.1f}", (cells, b["GBps"])
    assert cells[7] == f"{b['pct_peak']:.0f} |", cells
    touched, most = d["context"][f"batch.t{n}"].replace("touched experts ", "").split(
        ", most tokens on one expert ")
    assert cells[2] == f"{touched} ({most})", (cells[2], touched, most)
    assert b["tokens"] == n
assert "`--tokens 1,2,4,8,16,32,64`" in hot and "routing uniform" in hot
EOF2
/usr/bin/python3 "$src/plot/tokens.py" "$(committed intel-xeon-2c/2026-11-29-gate-top8.json)" >"$tmp/out.txt" 2>&1
one_line $? "no file has a tokens sweep" && ok || { bad "tokens.py on a file without a sweep"; cat "$tmp/out.txt"; }
/usr/bin/python3 - "$tmp/tkcpu.json" "$tmp/tkbad.json" <<'EOF2'
import json, sys
d = json.load(open(sys.argv[1]))
next(b for b in d["benchmarks"] if "/t8/" in b["name"])["tokens"] = 4
json.dump(d, open(sys.argv[2], "w"))
EOF2
/usr/bin/python3 "$src/plot/tokens.py" "$tmp/tkbad.json" >"$tmp/out.txt" 2>&1
one_line $? "tkbad.json: .*the counter tokens is 4, the name says 8" && ok ||
  { bad "tokens.py on a malformed token count"; cat "$tmp/out.txt"; }
/usr/bin/python3 "$src/plot/plot.py" "$tmp/tkbad.json" -o "$tmp/tkbadcharts" >"$tmp/out.txt" 2>&1
one_line $? "tkbad.json: " && ok || { bad "plot.py on a malformed token count"; cat "$tmp/out.txt"; }
/usr/bin/python3 "$src/plot/plot.py" "$tmp/tkcpu.json" "$tmp/tkgpu.json" -o "$tmp/tkcharts" >/dev/null ||
  bad "plot.py on tokens sweeps"
for c in tokens_hot tokens_cold tokens_decode throughput_hot generations_hot; do
  [ -s "$tmp/tkcharts/$c.png" ] && [ -s "$tmp/tkcharts/$c.svg" ] && ok || bad "tokens: no $c.png/.svg"
done
/usr/bin/python3 - "$src" "$tmp/tkcpu.json" "$tmp/tkgpu.json" "$tmp/tkskew.json" <<'EOF2' && ok || bad "the tokens chart"
import os, sys
sys.path.insert(0, os.path.join(sys.argv[1], "plot"))
import plot
from qkresults import Result
figs = {}
plot.save = lambda fig, out, name: figs.setdefault(name, fig)
results = [Result(p) for p in sys.argv[2:]]
cpu, gpu, skew = results
for t in ("hot", "cold", "decode"):
    plot.tokens_chart(results, None, t)
assert set(figs) == {"tokens_hot", "tokens_cold", "tokens_decode"}, figs
fig = figs["tokens_hot"]
ax = fig.axes[0]
# one line per variant and machine: 3 CPU variants, 2 GPU, the skewed run's one apart
labels = [t.get_text() for t in ax.get_legend().get_texts()]
want = {f"{v} (intel-xeon-2c)" for v in ("q4k_q8k_ref", "q4k_q8k_vnni_r8", "q4k_f32_avx512")} | \
    {f"{v} (nvidia-h200)" for v in ("dp4a_q4k_q8_e2e", "gpu_q4k_f32")} | \
    {"q4k_q8k_vnni_r8 (intel-xeon-2c, skewed routing)"}
assert set(labels) == want and len(labels) == len(want), labels
assert len(ax.containers) == len(want), len(ax.containers)
# each line: x the token counts, y the median / N in us
for c in ax.containers:
    line, label = c.lines[0], c.get_label()
    variant, machine = label.split(" (", 1)
    res = skew if "skewed" in machine else gpu if "nvidia" in machine else cpu
    rows = {r.tokens: r for r in res.variants() if r.variant == variant and r.temperature == "hot"}
    xs, ys = list(line.get_xdata()), list(line.get_ydata())
    assert xs == sorted(rows), (label, xs)
    for x, y in zip(xs, ys):
        assert abs(y - rows[x].median / x * 1e6) < 1e-9 * y, (label, x, y)
assert ax.get_xscale() == "log" and [t.get_text() for t in ax.get_xticklabels()] == \
    ["1", "2", "4", "8", "16", "32", "64"], [t.get_text() for t in ax.get_xticklabels()]
fig.canvas.draw()
r = fig.canvas.get_renderer()
leg, box = ax.get_legend().get_window_extent(r), ax.get_window_extent(r)
assert leg.x0 >= box.x1, (leg, box)  # beside the axes: it hides no line
texts = [t.get_window_extent(r) for t in ax.get_legend().get_texts()]
for i, a in enumerate(texts):
    for b in texts[i + 1:]:
        assert not a.overlaps(b), (a, b)
# the decode chart: GPU rows only; the one-token charts take one-token rows only
assert {t.get_text() for t in figs["tokens_decode"].axes[0].get_legend().get_texts()} == \
    {"dp4a_q4k_q8_e2e (nvidia-h200)", "gpu_q4k_f32 (nvidia-h200)"}
for temp in ("hot", "cold"):
    best = plot.best_rows(results, temp)
    assert best and all(row.tokens == 1 for _, _, row, _ in best.values()), temp
EOF2
# no sweep in any file: no tokens chart, and an earlier one is removed
mkdir -p "$tmp/stale" && cp "$tmp/tkcharts/tokens_hot.png" "$tmp/tkcharts/tokens_hot.svg" "$tmp/stale/"
/usr/bin/python3 "$src/plot/plot.py" "$(committed intel-xeon-2c/2026-11-29-gate-top8.json)" -o "$tmp/stale" \
  >"$tmp/out.txt" 2>&1 && [ ! -e "$tmp/stale/tokens_hot.png" ] && [ ! -e "$tmp/stale/tokens_hot.svg" ] &&
  [ -s "$tmp/stale/throughput_hot.png" ] && grep -q "tokens_hot.png removed" "$tmp/out.txt" && ok ||
  { bad "a stale tokens chart was kept"; cat "$tmp/out.txt"; }
ls "$tmp/stale" | grep -q "^tokens_" && bad "a tokens chart without a sweep" || ok
# index.py: a section with the tables and the charts where a current file has a sweep; a skewed
# routing is a configuration of its own (both files current)
mkdir -p "$tmp/tkres/m" "$tmp/tkres/g" && cp "$tmp/tkcpu.json" "$tmp/tkskew.json" "$tmp/tkres/m/" &&
  cp "$tmp/tkgpu.json" "$tmp/tkres/g/"
/usr/bin/python3 "$src/plot/index.py" "$tmp/tkres" >"$tmp/out.txt" 2>&1 &&
  /usr/bin/python3 - "$tmp/tkres/README.md" "$src/plot" "$tmp/tkcpu.json" <<'EOF2' && ok || { bad "index.py's tokens section"; cat "$tmp/out.txt"; }
import sys
text = open(sys.argv[1]).read()
sec = text.split("## Batched tokens", 1)[1].split("\n## ", 1)[0]
for t in ("hot", "cold", "decode"):
    assert f"[tokens_{t}](../plot/charts/tokens_{t}.png)" in sec, t
assert "### Hot: intel-xeon-2c avx512_vnni, 768x2048 (gate), routing uniform" in sec
assert "### Hot: intel-xeon-2c avx512_vnni, 768x2048 (gate), routing skewed" in sec
assert "### Decode: nvidia-h200 sm_90" in sec
assert "| q4k_q8k_vnni_r8 | 64 |" in sec and "| dp4a_q4k_q8_e2e | 8 |" in sec
other = text.split("## Other current configurations", 1)[1].split("\n## ", 1)[0]
assert "skewed routing of batched tokens" in other, other
main = text.split("## Current results", 1)[1].split("\n## ", 1)[0]
sys.path.insert(0, sys.argv[2])
from qkresults import Result
cpu = Result(sys.argv[3])
best = max((r for r in cpu.variants(1) if r.temperature == "hot"), key=lambda r: r.gbps())
line = next(l for l in main.splitlines() if l.startswith("| intel-xeon-2c | gate, top-8 |"))
assert f"| {best.variant} (k8) | {best.gbps():.1f} |" in line, (line, best.name)  # one token
EOF2
# the committed results without their sweeps: no section
cp -r "$src/results" "$tmp/nosweep" && rm -f "$tmp"/nosweep/*/*-tokens.json &&
  /usr/bin/python3 "$src/plot/index.py" "$tmp/nosweep" >/dev/null &&
  ! grep -q "Batched tokens" "$tmp/nosweep/README.md" && ok ||
  bad "index.py: a tokens section without a sweep"
grep -q "Batched tokens" "$tmp/lay/README.md" && ok ||
  bad "index.py: no tokens section for the committed sweeps"
echo "plot: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
