#!/usr/bin/env bash
# Comparing hardware generations (issue 15), on the committed result files of the current GPU
# code (H100 run 7, H200 run 4) and on copies of them edited here:
# - compare.py across machines: the time change is absolute (the same time on a card with more
#   bandwidth is the same time), the efficiency change (% of each machine's own peak) is a column
#   apart with no verdict word, and no SLOWER/FASTER appears; on one machine the gate's exit
#   codes stay (0 unchanged or faster, 1 slower, 2 unusable or refused);
# - generations.py: per variant each machine's time, GB/s, % of own peak and speedup against the
#   base; a QK_DISABLE_ISA run is a row named by the instruction set it ran; its chart;
# - index.py puts the generations tables in results/README.md;
# - the tools, run by a python3 without scipy / matplotlib / numpy: one line naming the package
#   and how to install it, exit 2;
# - schema 2 (issue 13, sampled rows; files written by tests/fixtures/schema2.py): a clean
#   comparison, slower / faster rows, a significant change below the threshold, noisy rows,
#   dropped samples, --statistic best and min, schema 1 against schema 2, decode rows, pool.py,
#   and malformed qkbench_samples (one line, exit 2, in every tool);
# - batched tokens (issue 18, `bench --tokens`: rows .../k8/t<N>/<temperature>, files written by
#   schema2.py --tokens): rows pair only with rows of the same N, a one-token row with its
#   namesake of an older file; the gate judges each N; rows whose batches differ (routing,
#   batch.t<N>) are not compared; --normalize VARIANT by the same N; contracts per row and per N;
#   generations tables one-token rows only; malformed token counts are one line, exit 2.
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
# a committed result file by its name: current (results/M/F) or, once a newer run replaced it,
# in results/M/history/F
committed() {
  local f=$src/results/$1
  [ -e "$f" ] || f=$src/results/${1%/*}/history/${1##*/}
  echo "$f"
}
h100=$(committed nvidia-h100-80gb-hbm3/2026-11-26-run7-gate-top8.json)
h200=$(committed nvidia-h200/2026-11-26-run4-gate-top8.json)
xeon=$(committed intel-xeon-2c/2026-11-26-gate-top8.json)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source "$src/tests/test_lib.sh"

# --- compare.py across machines: H100 -> H200, the same times on a card with 1.41x the copy peak
expect_rc 0 "H100 vs H200 (not gated)" $py "$src/plot/compare.py" "$h100" "$h200"
line=$(grep "^dp4a_q4k_q8_e2e/768x2048/k8/hot/" "$tmp/out.txt")
$py - "$line" <<'PY' && ok || bad "the dp4a_q4k_q8_e2e hot line: $line"
import sys
f = sys.argv[1].split()
# name base new time p %peak efficiency word: the time change within 3 %, the efficiency apart
time, eff, word = float(f[3].rstrip("%")), float(f[6].rstrip("%")), f[7]
assert abs(time) <= 3, time
assert f[5].endswith("%") and "->" in f[4] + f[5], f
assert -35 < eff < -20, eff  # 45 % of the H100's peak -> 32 % of the H200's
assert word == "same", word
PY
grep -q "SLOWER\|FASTER" "$tmp/out.txt" && bad "a SLOWER/FASTER verdict across machines" || ok
grep -q "efficiency" "$tmp/out.txt" && grep -q "WARNING: the files come from different machines" \
  "$tmp/out.txt" && ok || bad "no efficiency column or no different-machines warning"
expect_rc 0 "H100 vs H200 relative to the median row" $py "$src/plot/compare.py" "$h100" "$h200" \
  --normalize median
grep -E "^(gpu|dp4a)" "$tmp/out.txt" | grep -qiE " (slower|faster|same)$" &&
  bad "a verdict word on a normalized figure across machines" || ok
expect_rc 0 "--normalize peak across machines is the efficiency column" $py "$src/plot/compare.py" \
  "$h100" "$h200" --normalize peak
grep -q "SLOWER" "$tmp/out.txt" && bad "SLOWER with --normalize peak across machines" || ok
expect_rc 2 "--require-same-machine refuses two machines" $py "$src/plot/compare.py" "$h100" "$h200" \
  --require-same-machine

# --- compare.py on one machine: the gate's exit codes and words as before
$py - "$h100" "$tmp" <<'PY'
import json, sys
for name, factor in (("slow", 2.0), ("fast", 0.5)):
    doc = json.load(open(sys.argv[1]))
    for b in doc["benchmarks"]:
        if b["name"].startswith("dp4a_q4k_q8_e2e/"):
            b["real_time"] *= factor
    json.dump(doc, open(f"{sys.argv[2]}/h100-{name}.json", "w"))
PY
expect_rc 0 "a file against itself" $py "$src/plot/compare.py" "$h100" "$h100"
expect_rc 1 "one machine, dp4a_q4k_q8_e2e 2x slower" $py "$src/plot/compare.py" "$h100" "$tmp/h100-slow.json"
grep -q "^dp4a_q4k_q8_e2e/768x2048/k8/hot/.*SLOWER$" "$tmp/out.txt" && ok || bad "no SLOWER on one machine"
grep -q "efficiency" "$tmp/out.txt" && bad "the same-machine table changed" || ok
expect_rc 0 "one machine, dp4a_q4k_q8_e2e 2x faster" $py "$src/plot/compare.py" "$h100" "$tmp/h100-fast.json"
grep -q "^dp4a_q4k_q8_e2e/768x2048/k8/hot/.*faster$" "$tmp/out.txt" && ok || bad "no faster on one machine"
expect_rc 2 "a file that is not a result" $py "$src/plot/compare.py" "$h100" "$0"

# --- generations.py
expect_rc 0 "generations of the current GPU files" $py "$src/plot/generations.py" "$h100" "$h200" \
  --base nvidia-h100-80gb-hbm3 --temperature both
grep -q "^| dp4a_q4k_q8_e2e | nvidia-h200 | sm_90 | 5.18 (5.17-5.19) | 1370.9 | 32 | 1.00x ~ |$" "$tmp/out.txt" && ok ||
  bad "the H200's dp4a_q4k_q8_e2e hot row"
grep -q "^| dp4a_q4k_q8_e2e | nvidia-h100-80gb-hbm3 | sm_90 | 5.20 (5.18-5.28) | 1365.0 | 45 | 1.00x (base) |$" \
  "$tmp/out.txt" && ok || bad "the base's row"
grep -q "^#### Cold" "$tmp/out.txt" && ok || bad "no cold table with --temperature both"
expect_rc 0 "the H200 as base" $py "$src/plot/generations.py" "$h100" "$h200" --base nvidia-h200
grep -q "^| dp4a_q4k_q8_e2e | nvidia-h200 | sm_90 | .* | 1.00x (base) |$" "$tmp/out.txt" && ok ||
  bad "--base nvidia-h200 is not the base"
# an AVX2-class run of the same silicon (QK_DISABLE_ISA=avx512: the AVX-512 variants skipped)
$py - "$xeon" "$tmp/xeon-avx2.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["context"].update(isa_disabled="avx512", isa_used="avx2 ")
doc["benchmarks"] = [b for b in doc["benchmarks"]
                     if not b["name"].startswith(("q4k_f32_avx512", "q4k_q8k_vnni"))]
for b in doc["benchmarks"]:
    if b["name"].startswith("q4k_q8k_maddubs/"):
        b["real_time"] *= 1.5
json.dump(doc, open(sys.argv[2], "w"))
PY
expect_rc 0 "generations with an ISA-limited run" $py "$src/plot/generations.py" "$h100" "$xeon" \
  "$tmp/xeon-avx2.json" --base nvidia-h100-80gb-hbm3 --base intel-xeon-2c
grep -q "^| q4k_q8k_maddubs | intel-xeon-2c | avx2 | .* | 0.67x ~\?|$" "$tmp/out.txt" && ok ||
  bad "the avx2 run's row is not named by its ISA, or its speedup"
grep -q "^| q4k_q8k_maddubs | intel-xeon-2c | avx512_vnni | .* | 1.00x (base) |$" "$tmp/out.txt" && ok ||
  bad "the full-ISA run is not the CPU base"
grep -q "^| intel-xeon-2c | avx2 | q4k_q8k_maddubs |" "$tmp/out.txt" && ok ||
  bad "the avx2 run's fastest variant"
grep -q "QK_DISABLE_ISA=avx512" "$tmp/out.txt" && ok || bad "the file list does not say the ISA was limited"
expect_rc 0 "the avx2 run as base" $py "$src/plot/generations.py" "$xeon" "$tmp/xeon-avx2.json" \
  --base intel-xeon-2c:avx2
grep -q "^| q4k_q8k_maddubs | intel-xeon-2c | avx512_vnni | .* | 1.50x ~\?|$" "$tmp/out.txt" && ok ||
  bad "--base intel-xeon-2c:avx2"
expect_rc 2 "a base that is none of the machines" $py "$src/plot/generations.py" "$h100" --base amd-epyc-2c
expect_rc 2 "generations of a file that is not a result" $py "$src/plot/generations.py" "$0"
expect_rc 2 "no rows of that shape" $py "$src/plot/generations.py" "$h100" --shape down
expect_rc 0 "the generations chart" $py "$src/plot/generations.py" "$h100" "$h200" "$xeon" \
  "$tmp/xeon-avx2.json" --chart "$tmp/charts"
[ -s "$tmp/charts/generations_hot.png" ] && [ -s "$tmp/charts/generations_hot.svg" ] && ok ||
  bad "no generations_hot.png/.svg"

# --- index.py: the generations tables in results/README.md
mkdir -p "$tmp/results/a" "$tmp/results/b"
cp "$h100" "$tmp/results/a/" && cp "$h200" "$tmp/results/b/"
expect_rc 0 "index.py" $py "$src/plot/index.py" "$tmp/results"
grep -q "^## Hardware generations" "$tmp/results/README.md" &&
  grep -q "^| dp4a_q4k_q8_e2e | nvidia-h200 | sm_90 | 5.18 (5.17-5.19) |" "$tmp/results/README.md" && ok ||
  bad "results/README.md has no generations table"

# --- a python3 without scipy, matplotlib, numpy (shadowed on PYTHONPATH): one line, exit 2
for mode in missing broken; do
  for m in scipy matplotlib numpy; do
    mkdir -p "$tmp/$mode/$m"
    if [ $mode = missing ]; then
      echo "raise ModuleNotFoundError(\"No module named '$m'\", name='$m')" >"$tmp/$mode/$m/__init__.py"
    else
      echo "raise ImportError('$m: a broken install')" >"$tmp/$mode/$m/__init__.py"
    fi
  done
done
one_line() { # mode, package, apt package, command...
  local mode=$1 pkg=$2 deb=$3; shift 3
  PYTHONPATH="$tmp/$mode" "$@" >"$tmp/out.txt" 2>&1; local rc=$?
  local n; n=$(wc -l <"$tmp/out.txt")
  if [ "$rc" -eq 2 ] && [ "$n" -eq 1 ] && grep -q "'$pkg' is" "$tmp/out.txt" &&
    grep -q "apt-get install $deb" "$tmp/out.txt" && ! grep -q Traceback "$tmp/out.txt"; then ok
  else bad "$* without $pkg ($mode): exit $rc, $n lines"; cat "$tmp/out.txt"; fi
}
one_line missing scipy python3-scipy $py "$src/plot/compare.py" "$h100" "$h200"
one_line broken scipy python3-scipy $py "$src/plot/compare.py" "$h100" "$h200"
one_line missing matplotlib python3-matplotlib $py "$src/plot/plot.py" "$h100" -o "$tmp/x"
one_line missing matplotlib python3-matplotlib $py "$src/plot/generations.py" "$h100" --chart "$tmp/x"
# the tools that need only the standard library still run there
PYTHONPATH="$tmp/missing" $py "$src/plot/generations.py" "$h100" "$h200" >/dev/null 2>&1 && ok ||
  bad "generations.py (tables) needs no third-party package"
PYTHONPATH="$tmp/missing" $py "$src/plot/contracts.py" "$h100" >/dev/null 2>&1 && ok ||
  bad "contracts.py needs no third-party package"
PYTHONPATH="$tmp/missing" $py "$src/plot/index.py" "$tmp/results" >/dev/null 2>&1 && ok ||
  bad "index.py needs no third-party package"
$py "$src/tests/fixtures/schema2.py" "$tmp/tkstd.json" --like "$xeon" --only q4k_q8k_ref --tokens 1,4 &&
  PYTHONPATH="$tmp/missing" $py "$src/plot/tokens.py" "$tmp/tkstd.json" >/dev/null 2>&1 && ok ||
  bad "tokens.py needs no third-party package"
# scipy present, numpy (which it needs) missing: the missing one is named
mkdir -p "$tmp/nonumpy/scipy/stats"
echo "import numpy" >"$tmp/nonumpy/scipy/__init__.py"
touch "$tmp/nonumpy/scipy/stats/__init__.py"
cp -r "$tmp/missing/numpy" "$tmp/nonumpy/"
one_line nonumpy numpy python3-numpy $py "$src/plot/compare.py" "$h100" "$h200"
# another python3 on PATH (a pyenv's, without Debian's packages): the same one line
other=$(command -v python3)
if [ -n "$other" ] && [ "$(readlink -f "$other")" != "$(readlink -f $py)" ] &&
  ! "$other" -c "import scipy" 2>/dev/null; then
  one_line none scipy python3-scipy "$other" "$src/plot/compare.py" "$h100" "$h200"
fi
# --- issue 15 review: unusable input is one line, exit 2 (never a traceback, never exit 1)
$py - "$xeon" "$tmp" <<'PY'
import copy, json, sys
d = json.load(open(sys.argv[1]))
def save(name, doc):
    with open(f"{sys.argv[2]}/{name}", "w") as f:
        f.write(doc if isinstance(doc, str) else json.dumps(doc))
def rows(pref, **kv):
    x = copy.deepcopy(d)
    for b in x["benchmarks"]:
        if b["name"].startswith(pref):
            b.update(kv)
    return x
save("nan.json", rows("q4k_q8k_vnni_r8/", real_time=float("nan")))
for n, v in (("null", None), ("zero", 0), ("str", "12")):
    save(f"{n}time.json", rows("q4k_q8k_vnni_r8/", real_time=v))
save("zeropeak.json", rows("peak_read", real_time=0))
x = copy.deepcopy(d); x["benchmarks"] = [1, 2]; save("benchints.json", x)
save("array.json", "[1, 2]"); save("notjson.json", '{"a":')
save("errrow.json", rows("q4k_q8k_vnni_r8/", error_occurred=True, error_message="output mismatch"))
x = copy.deepcopy(d)
x["benchmarks"] = [b for b in x["benchmarks"] if not b["name"].startswith("q4k_q8k_vnni_r8/")]
save("droprow.json", x)
# two repetitions: the true median (2 and 4 -> 3) against the upper-middle (4)
x = copy.deepcopy(d)
seen = {}
keep = []
for b in x["benchmarks"]:
    if b.get("run_type") == "aggregate":
        continue
    n = seen.setdefault(b["run_name"], 0)
    if n < 2:
        keep.append(b); seen[b["run_name"]] = n + 1
x["benchmarks"] = keep
for b in keep:
    if b["name"].startswith("q4k_q8k_ref/"):
        b["real_time"] = 1000.0 * (2 if b.get("repetition_index", 0) == 0 else 4); b["time_unit"] = "us"
save("tworeps.json", x)
y = copy.deepcopy(x)
for b in y["benchmarks"]:
    if b["name"].startswith("q4k_q8k_ref/"):
        b["real_time"] = 3000.0
save("tworeps3.json", y)
PY
one_err() { # description, command...: exit 2 and one line, no traceback
  local what=$1; shift
  "$@" >"$tmp/out.txt" 2>&1; local rc=$?
  local n; n=$(wc -l <"$tmp/out.txt")
  if [ "$rc" -eq 2 ] && [ "$n" -eq 1 ] && ! grep -q Traceback "$tmp/out.txt"; then ok
  else bad "$what: exit $rc, $n lines"; head -3 "$tmp/out.txt"; fi
}
C=$src/plot/compare.py G=$src/plot/generations.py
for f in nan nulltime zerotime strtime zeropeak benchints; do
  one_err "compare.py $f" $py $C "$xeon" "$tmp/$f.json"
  grep -q "$f.json" "$tmp/out.txt" || bad "compare.py $f: the line does not name the file"
done
grep -q "peak_read" <($py $C "$xeon" "$tmp/zeropeak.json" 2>&1) && ok || bad "zero peak not named"
for f in /nonexistent "$tmp/notjson.json" "$tmp/array.json"; do
  one_err "compare.py --contracts $f" $py $C "$xeon" "$xeon" --contracts "$f"; done
one_err "compare.py bad option" $py $C "$xeon" "$xeon" --bogus
one_err "compare.py one argument" $py $C "$xeon"
one_err "generations.py --chart /proc/x" $py $G "$xeon" --chart /proc/x
one_err "generations.py zero time" $py $G "$tmp/zerotime.json"
one_err "generations.py nan" $py $G "$tmp/nan.json"
one_err "generations.py --temperature bogus" $py $G "$xeon" --temperature bogus
one_err "index.py /nonexistent" $py $src/plot/index.py /nonexistent
mkdir -p "$tmp/idx/a" && cp "$tmp/nulltime.json" "$tmp/idx/a/"
one_err "index.py over a null-time file" $py $src/plot/index.py "$tmp/idx"
one_err "pool.py to /nonexistent" $py $src/plot/pool.py /nonexistent/out.json "$xeon" "$xeon"
one_err "pool.py bad benchmarks" $py $src/plot/pool.py "$tmp/p.json" "$tmp/benchints.json"
one_err "contracts.py bad benchmarks" $py $src/plot/contracts.py "$tmp/benchints.json"
one_err "contracts.py null time" $py $src/plot/contracts.py "$tmp/nulltime.json"
one_err "contracts.py --contracts a list" $py $src/plot/contracts.py --contracts "$tmp/array.json" "$xeon"
one_err "plot.py bad benchmarks" $py $src/plot/plot.py "$tmp/benchints.json" -o "$tmp/pl"
one_err "plot.py --base bogus" $py $src/plot/plot.py "$xeon" --base bogus -o "$tmp/pl2"
[ -e "$tmp/pl2" ] && bad "plot.py --base bogus drew charts before refusing" || ok
# an errored row in NEW fails (1, named); a row missing from NEW is a warning line (0)
expect_rc 1 "an errored row in NEW" $py $C "$xeon" "$tmp/errrow.json"
grep -q "^errored in NEW: q4k_q8k_vnni_r8/.*output mismatch" "$tmp/out.txt" && ok || bad "errored row not named"
expect_rc 0 "a row missing from NEW" $py $C "$xeon" "$tmp/droprow.json"
grep -q "WARNING: 2 rows of BASE are missing from NEW.*q4k_q8k_vnni_r8/" "$tmp/out.txt" && ok ||
  bad "missing rows not listed"
# the true median: repetitions 2 ms and 4 ms against 3 ms are the same time (+0.0 %)
expect_rc 0 "two repetitions" $py $C "$tmp/tworeps3.json" "$tmp/tworeps.json" --normalize none
grep -q "^q4k_q8k_ref/768x2048/k8/hot .* +0.0% " "$tmp/out.txt" && ok || bad "compare's median is not the true median"
# generations: dropped files named, the range and ~ beside each time, % over 100 flagged
expect_rc 0 "generations names a dropped file" $py $G "$xeon" "$(committed nvidia-h200/2026-11-26-run4-down-top8.json)"
grep -q "run4-down-top8.json: left out (shape" "$tmp/err.txt" && ok || bad "dropped file not named"
shopt -s nullglob  # the eight files of 2026-11-26, current or in history/
x16=("$src"/results/intel-xeon-16c/2026-11-26-*.json "$src"/results/intel-xeon-16c/history/2026-11-26-*.json)
shopt -u nullglob
expect_rc 0 "generations of the 16-core host files" $py $G "${x16[@]}"
grep -q "taken as the newest of 8 files of this machine" "$tmp/out.txt" && ok || bad "the choice among one machine's files is silent"
$py - "$xeon" "$tmp/overpeak.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for b in d["benchmarks"]:
    if b["name"].startswith("q4k_q8k_vnni_r8/") and isinstance(b.get("real_time"), (int, float)):
        b["real_time"] *= 0.01
json.dump(d, open(sys.argv[2], "w"))
PY
grep -qE "^\| q4k_q8k_vnni_r8 \| intel-xeon-2c \| avx512_vnni \| .* \| [0-9]+ ! \|" \
  <($py $G "$tmp/overpeak.json" 2>/dev/null) && ok || bad "% of own peak over 100 not flagged"
expect_rc 0 "generations of the full and AVX2 runs" $py $G "$(committed intel-xeon-2c/2026-11-29-gate-top8.json)" \
  "$(committed intel-xeon-2c/2026-11-29-gate-top8-isa-avx2.json)"
grep -q "^| q4k_q8k_ref | intel-xeon-2c | avx2 | [0-9.]* ([0-9.]*-[0-9.]*) | .* ~ |$" "$tmp/out.txt" && ok ||
  bad "the same-code row's ISA speedup is not marked as noise"
grep -q "q4k_q8k_ref, whose code is the same in both, differs by" "$tmp/out.txt" && ok || bad "no noise sentence"
# pool: the latest run_date; generations prefers the pool on a tie, whatever the order
$py - "$xeon" "$tmp" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["context"]["run_date"] = "2030-01-01T00:00:00Z"
json.dump(d, open(f"{sys.argv[2]}/later.json", "w"))
PY
expect_rc 0 "pool.py" $py $src/plot/pool.py "$tmp/pooled.json" "$xeon" "$tmp/later.json"
grep -q '"run_date": "2030-01-01T00:00:00Z"' "$tmp/pooled.json" && ok || bad "pool.py kept the first run_date"
for order in "$tmp/later.json $tmp/pooled.json" "$tmp/pooled.json $tmp/later.json"; do
  expect_rc 0 "generations pooled vs run" $py $G $order
  grep -q "^- intel-xeon-2c avx512_vnni: \`$tmp/pooled.json\`" "$tmp/out.txt" && ok || bad "the pooled file not preferred ($order)"
done

# --- schema 2 (issue 13: nvbench-style sampling), on small files tests/fixtures/schema2.py writes
# from the committed schema-1 files: their rows, medians and counters, 40 seeded samples each
S2="$py $src/tests/fixtures/schema2.py"
xeon29=$(committed intel-xeon-2c/2026-11-29-gate-top8.json)
cpu2="--like $xeon29 --only q4k_q8k_ref,q4k_q8k_vnni_r8,q4k_f32_ref"
$S2 "$tmp/s2a.json" $cpu2 && $S2 "$tmp/s2b.json" $cpu2 --seed 2 &&
  $S2 "$tmp/s2slow.json" $cpu2 --seed 3 --scale q4k_q8k_ref/768x2048/k8/hot=1.2 &&
  $S2 "$tmp/s2fast.json" $cpu2 --seed 4 --scale q4k_q8k_ref/768x2048/k8/cold=0.8 &&
  $S2 "$tmp/s2tiny0.json" $cpu2 --samples 400 --spread 0.002 &&
  $S2 "$tmp/s2tiny.json" $cpu2 --samples 400 --spread 0.002 --seed 5 --scale q4k_q8k_ref/=1.01 &&
  ok || bad "tests/fixtures/schema2.py could not write the schema-2 files"
# a clean comparison: the same code, other samples
expect_rc 0 "schema 2: two runs of the same code" $py $C "$tmp/s2a.json" "$tmp/s2b.json"
grep -q "^compare: 6 benchmarks paired, 0 slower" "$tmp/out.txt" && ok || bad "schema 2: not 6 rows paired"
grep -qE "SLOWER|faster|unsure|noisy" "$tmp/out.txt" && bad "schema 2: a verdict on unchanged code" || ok
expect_rc 0 "schema 2: a file against itself" $py $C "$tmp/s2a.json" "$tmp/s2a.json"
# the gate's contract in both directions: slower exits 1 and is named, faster exits 0
expect_rc 1 "schema 2: q4k_q8k_ref hot 1.2x slower" $py $C "$tmp/s2a.json" "$tmp/s2slow.json"
grep -qE "^q4k_q8k_ref/768x2048/k8/hot +[0-9.]+u +[0-9.]+u +\+(19|20|21)\.[0-9]% +0\.0000  SLOWER$" \
  "$tmp/out.txt" && ok || bad "schema 2: the slower row"
[ "$(grep -c "SLOWER" "$tmp/out.txt")" = 1 ] && ok || bad "schema 2: another row called slower"
expect_rc 0 "schema 2: q4k_q8k_ref cold 0.8x" $py $C "$tmp/s2a.json" "$tmp/s2fast.json"
grep -q "^q4k_q8k_ref/768x2048/k8/cold .*faster$" "$tmp/out.txt" && ok || bad "schema 2: the faster row"
# hundreds of samples make a 1 % change significant: the threshold still decides
expect_rc 0 "schema 2: 1 % slower over 400 samples" $py $C "$tmp/s2tiny0.json" "$tmp/s2tiny.json" \
  --normalize none
grep -qE "^q4k_q8k_ref/768x2048/k8/hot .* \+[01]\.[0-9]% +0\.0000  same$" "$tmp/out.txt" && ok ||
  bad "schema 2: a significant 1 % change is not 'same'"
# the peak-normalized figure: a whole machine 30 % slower (rows and their interleaved peaks) is
# the same code
$S2 "$tmp/s2machine.json" $cpu2 --seed 6 --machine 1.3
expect_rc 0 "schema 2: rows and peaks 1.3x slower together" $py $C "$tmp/s2a.json" "$tmp/s2machine.json"
expect_rc 1 "schema 2: the same without the peak" $py $C "$tmp/s2a.json" "$tmp/s2machine.json" \
  --normalize none
# noisy rows: marked; a verdict only when the threshold holds between the intervals' near ends
n2="--like $xeon29 --only q4k_q8k_ref,q4k_f32_ref --spread 0.06"
$S2 "$tmp/n0.json" $n2
$S2 "$tmp/n1.json" $n2 --seed 2 --scale q4k_q8k_ref/768x2048/k8/hot=1.08 --noisy q4k_q8k_ref/768x2048/k8/hot \
  --scale q4k_f32_ref/768x2048/k8/hot=1.5 --noisy q4k_f32_ref/768x2048/k8/hot --noisy q4k_f32_ref/768x2048/k8/cold
$S2 "$tmp/n2.json" $n2 --seed 2 --scale q4k_q8k_ref/768x2048/k8/hot=1.08
expect_rc 1 "schema 2 noisy: 1.5x slower is beyond both intervals" $py $C "$tmp/n0.json" "$tmp/n1.json" \
  --normalize none
grep -q "^q4k_f32_ref/768x2048/k8/hot .* SLOWER \[noisy\]$" "$tmp/out.txt" && ok || bad "noisy 1.5x: not SLOWER [noisy]"
grep -q "^q4k_q8k_ref/768x2048/k8/hot .* +[5-9]\.[0-9]% .* unsure \[noisy\]$" "$tmp/out.txt" && ok ||
  bad "noisy 1.08x (intervals overlap the threshold): not 'unsure [noisy]'"
grep -q "^q4k_f32_ref/768x2048/k8/cold .* same \[noisy\]$" "$tmp/out.txt" && ok || bad "noisy unchanged row not marked"
grep -q "^compare: 3 rows noisy in BASE or NEW .* 1 of them 'unsure'" "$tmp/out.txt" && ok || bad "no noisy summary line"
grep -q "^compare: 4 benchmarks paired, 1 slower" "$tmp/out.txt" && ok || bad "noisy: the unsure row was counted"
expect_rc 0 "schema 2 noisy: the 1.08x row alone is not a regression" $py $C "$tmp/n0.json" "$tmp/n1.json" \
  --normalize none --threshold 60
$S2 "$tmp/n3.json" $n2 --seed 2 --scale q4k_q8k_ref/768x2048/k8/hot=1.08 --noisy q4k_q8k_ref/768x2048/k8/hot
expect_rc 0 "schema 2 noisy: an unsure row does not fail the gate" $py $C "$tmp/n0.json" "$tmp/n3.json" \
  --normalize none
grep -q "^q4k_q8k_ref/768x2048/k8/hot .* unsure \[noisy\]$" "$tmp/out.txt" && ok || bad "noisy 1.08x alone"
expect_rc 1 "schema 2: the same 1.08x row, not noisy, is SLOWER" $py $C "$tmp/n0.json" "$tmp/n2.json" \
  --normalize none
grep -q "^q4k_q8k_ref/768x2048/k8/hot .* SLOWER$" "$tmp/out.txt" && ok || bad "the clean 1.08x row"
expect_rc 0 "schema 2: noisy in BASE counts too" $py $C "$tmp/n1.json" "$tmp/n0.json" --normalize none
grep -q "^q4k_f32_ref/768x2048/k8/hot .* faster \[noisy\]$" "$tmp/out.txt" &&
  grep -q "^q4k_q8k_ref/768x2048/k8/hot .* unsure \[noisy\]$" "$tmp/out.txt" && ok || bad "noisy BASE rows"
# dropped samples: left out of the distribution (a burst of 10x samples dropped as involuntary
# context switches changes nothing); above 25 % dropped the row is noisy
$S2 "$tmp/d1.json" $cpu2 --seed 7 --drop q4k_q8k_ref/=0.2:1:10 --drop q4k_f32_ref/768x2048/k8/cold=0.4:2:3
expect_rc 0 "schema 2: 20 % of samples dropped at 10x" $py $C "$tmp/s2a.json" "$tmp/d1.json"
grep -q "^q4k_q8k_ref/768x2048/k8/hot .* same$" "$tmp/out.txt" && ok || bad "dropped samples were counted"
grep -q "^q4k_f32_ref/768x2048/k8/cold .* same \[noisy\]$" "$tmp/out.txt" && ok || bad "40 % dropped is not noisy"
$py - "$tmp/d1.json" "$tmp/d1flag.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for b in d["benchmarks"]:
    b["noisy"] = 0  # a file that does not say so: more than 25 % dropped is noisy anyway
json.dump(d, open(sys.argv[2], "w"))
EOF
expect_rc 0 "schema 2: 40 % dropped, counter noisy 0" $py $C "$tmp/s2a.json" "$tmp/d1flag.json"
grep -q "^q4k_f32_ref/768x2048/k8/cold .* same \[noisy\]$" "$tmp/out.txt" && ok || bad "noisy not taken from the drop rate"
$py - "$tmp/d1.json" "$src/plot" <<'EOF' && ok || bad "schema 2: the clean samples, the median and the counters"
import json, statistics, sys
sys.path.insert(0, sys.argv[2])
from qkresults import Result
d = json.load(open(sys.argv[1]))
r = Result(sys.argv[1])
row = r.rows["q4k_q8k_ref/768x2048/k8/hot"]
rec = d["qkbench_samples"]["q4k_q8k_ref/768x2048/k8/hot"]
clean = [t for t, c in zip(rec["time_us"], rec["dropped"]) if c == 0]
assert len(row.seconds) == 40 == len(clean) and row.dropped == 10 and not row.noisy, row.dropped
assert abs(row.median * 1e6 - statistics.median(clean)) < 1e-9
assert row.seconds == [t * 1e-6 for t in clean]  # in order, clean only
assert row.ci and row.ci[0] <= row.median <= row.ci[1]
assert r.rows["q4k_f32_ref/768x2048/k8/cold"].noisy
e = next(b for b in d["benchmarks"] if b["name"].startswith("q4k_q8k_ref/768x2048/k8/hot/"))
assert abs(r.pct_of_peak(row) - e["pct_peak"]) < 1e-12  # the file's, not recomputed
EOF
# --statistic best (schema 2: the 10th percentile of the clean samples, the median of their
# fastest fifth) and min
expect_rc 0 "schema 2 --statistic best" $py $C "$tmp/s2a.json" "$tmp/s2b.json" --statistic best
grep -q "by the 10th percentile of the clean samples" "$tmp/out.txt" && ok || bad "best: not the 10th percentile"
$py - "$tmp/s2a.json" "$tmp/out.txt" <<'EOF' && ok || bad "best: the figure shown is not the median of the fastest fifth"
import json, statistics, sys
d = json.load(open(sys.argv[1]))
rec = d["qkbench_samples"]["q4k_q8k_vnni_r8/768x2048/k8/hot"]
clean = sorted(t for t, c in zip(rec["time_us"], rec["dropped"]) if c == 0)
want = statistics.median(clean[:8])  # 40 clean samples: the fastest 8
line = next(l for l in open(sys.argv[2]) if l.startswith("q4k_q8k_vnni_r8/768x2048/k8/hot "))
assert abs(float(line.split()[1].rstrip("u")) - want) < 0.006, (line, want)
EOF
expect_rc 1 "schema 2 --statistic best, 1.2x slower" $py $C "$tmp/s2a.json" "$tmp/s2slow.json" --statistic best
expect_rc 1 "schema 2 --statistic min, 1.2x slower" $py $C "$tmp/s2a.json" "$tmp/s2slow.json" --statistic min
grep -q "by the fastest clean sample" "$tmp/out.txt" && ok || bad "min: not named"
# schema 1 against schema 2 (one machine, before and after issue 13): paired by name without
# Google Benchmark's suffixes, not normalized by two different peaks, exit codes as ever
$S2 "$tmp/s2x.json" --like "$xeon29" --seed 8
$S2 "$tmp/s2xslow.json" --like "$xeon29" --seed 8 --scale q4k_q8k_vnni_r8/768x2048/k8/cold=2
expect_rc 0 "schema 1 vs schema 2" $py $C "$xeon29" "$tmp/s2x.json"
grep -q "BASE is qkbench_schema 1 and NEW 2" "$tmp/out.txt" && ok || bad "1 vs 2: not said"
grep -q "^compare: 14 benchmarks paired, 0 slower .* by the median, " "$tmp/out.txt" && ok ||
  bad "1 vs 2: not 14 rows paired without the peak"
grep -q "^q4k_q8k_ref/768x2048/k8/cold .* same$" "$tmp/out.txt" && ok || bad "1 vs 2: cold rows not paired"
grep -q "missing" "$tmp/out.txt" && bad "1 vs 2: rows reported missing" || ok
expect_rc 1 "schema 1 vs schema 2, one row 2x slower" $py $C "$xeon29" "$tmp/s2xslow.json"
grep -q "^q4k_q8k_vnni_r8/768x2048/k8/cold .* SLOWER$" "$tmp/out.txt" && ok || bad "1 vs 2: the slower row"
expect_rc 0 "schema 2 vs schema 1" $py $C "$tmp/s2xslow.json" "$xeon29"
grep -q "^q4k_q8k_vnni_r8/768x2048/k8/cold .* faster$" "$tmp/out.txt" && ok || bad "2 vs 1: the faster row"
# best calls (each the minimum of a repetition's hundreds of calls) against the 10th percentile of
# samples around the same medians: it works, and warns that the two figures differ by construction
expect_rc 1 "schema 1 vs 2 --statistic best (best calls against the 10th percentile)" $py $C "$xeon29" \
  "$tmp/s2x.json" --statistic best
grep -q "median of the repetitions' fastest single calls / 10th percentile" "$tmp/out.txt" && ok ||
  bad "1 vs 2 best: the two figures not named"
grep -q "WARNING: --statistic best between schemas 1 and 2" "$tmp/out.txt" && ok || bad "1 vs 2 best: no warning"
expect_rc 0 "schema 1 vs 2 --normalize peak" $py $C "$xeon29" "$tmp/s2x.json" --normalize peak
grep -q "normalize peak between schemas 1 and 2" "$tmp/out.txt" && ok || bad "1 vs 2: --normalize peak not refused"
expect_rc 0 "schema 1 vs 2 --normalize q4k_q8k_ref" $py $C "$xeon29" "$tmp/s2x.json" --normalize q4k_q8k_ref
# decode rows (GPU: warm launches, cold weights) and GPU peaks, one machine and across machines
gpu2="--decode --only dp4a_q4k_q8_e2e,gpu_q4k_f32"
$S2 "$tmp/g100.json" --like "$h100" $gpu2
$S2 "$tmp/g100d.json" --like "$h100" $gpu2 --seed 2 --scale dp4a_q4k_q8_e2e/768x2048/k8/decode=1.5
$S2 "$tmp/g200.json" --like "$h200" $gpu2 --seed 3
expect_rc 1 "schema 2 GPU: the decode row 1.5x slower" $py $C "$tmp/g100.json" "$tmp/g100d.json"
grep -q "^dp4a_q4k_q8_e2e/768x2048/k8/decode .* SLOWER$" "$tmp/out.txt" && ok || bad "decode row not judged"
[ "$(grep -c "SLOWER" "$tmp/out.txt")" = 1 ] && ok || bad "decode: another row called slower"
expect_rc 0 "schema 2 GPU: H100 vs H200" $py $C "$tmp/g100.json" "$tmp/g200.json"
$py - "$tmp/g100.json" "$tmp/g200.json" "$tmp/out.txt" <<'EOF' && ok || bad "across machines: %peak is not the files' pct_peak"
import json, sys
pct = [{b["run_name"].split("/iterations")[0]: b.get("pct_peak") for b in json.load(open(p))["benchmarks"]}
       for p in sys.argv[1:3]]
for row in ("dp4a_q4k_q8_e2e/768x2048/k8/decode", "gpu_q4k_f32/768x2048/k8/hot"):
    line = next(l for l in open(sys.argv[3]) if l.startswith(row + " "))
    assert f"{pct[0][row]:.1f}->{pct[1][row]:.1f}%" in line, (line, pct[0][row], pct[1][row])
EOF
expect_rc 0 "generations with decode rows" $py $G "$tmp/g100.json" "$tmp/g200.json" --temperature all
grep -q "^#### Decode" "$tmp/out.txt" && ok || bad "generations: no decode table"
$py - "$tmp/g200.json" "$tmp/out.txt" <<'EOF' && ok || bad "generations: not the schema-2 median (95 % interval)"
import json, sys
b = next(b for b in json.load(open(sys.argv[1]))["benchmarks"]
         if b["name"].startswith("dp4a_q4k_q8_e2e/768x2048/k8/decode/"))
want = f"| {b['real_time']:.2f} ({b['ci_low_us']:.2f}-{b['ci_high_us']:.2f}) | {b['GBps']:.1f} | {b['pct_peak']:.0f} |"
assert any(l.startswith("| dp4a_q4k_q8_e2e | nvidia-h200 | sm_90 ") and want in l
           for l in open(sys.argv[2])), want
EOF
$S2 "$tmp/g200n.json" --like "$h200" $gpu2 --seed 3 --noisy dp4a_q4k_q8_e2e/768x2048/k8/hot
expect_rc 0 "generations marks a noisy row" $py $G "$tmp/g100.json" "$tmp/g200n.json"
grep -q "^| dp4a_q4k_q8_e2e | nvidia-h200 | sm_90 | [0-9.]* ([0-9.]*-[0-9.]*) (noisy) |" "$tmp/out.txt" && ok ||
  bad "generations: noisy row not marked"
expect_rc 0 "contracts on schema-2 files" $py $src/plot/contracts.py "$tmp/s2a.json" "$tmp/g100.json"
# pool: the samples end to end, a valid schema-2 file; never two schemas together
expect_rc 0 "pool.py, schema 2" $py $src/plot/pool.py "$tmp/s2pool.json" "$tmp/s2a.json" "$tmp/d1.json"
$py - "$tmp/s2pool.json" "$tmp/s2a.json" "$tmp/d1.json" "$src/plot" <<'EOF' && ok || bad "pool.py: the pooled schema-2 file"
import json, statistics, sys
sys.path.insert(0, sys.argv[4])
from qkresults import Result
p, a, d = (json.load(open(f)) for f in sys.argv[1:4])
assert p["context"]["qkbench_schema"] == "2" and p["context"]["pooled_runs"] == 2
row = "q4k_q8k_ref/768x2048/k8/hot"
rec = p["qkbench_samples"][row]
assert rec["time_us"] == a["qkbench_samples"][row]["time_us"] + d["qkbench_samples"][row]["time_us"]
assert len(rec["peak_us"]) == len(rec["time_us"]) == len(rec["dropped"])
r = Result(sys.argv[1])  # reads back: the median, the counts, the interval
x = r.rows[row]
e = next(b for b in p["benchmarks"] if b["name"].startswith(row + "/"))
assert e["samples"] == 80 and e["dropped"] == 10 and e["noisy"] == 0, e
assert x.ci[0] < x.median < x.ci[1] and abs(e["real_time"] - x.median * 1e6) < 1e-9
assert abs(e["pct_peak"] - 100 * e["peak_us"] / e["real_time"]) < 1e-9
assert r.rows["q4k_f32_ref/768x2048/k8/cold"].noisy  # noisy in one run
assert len([b for b in p["benchmarks"] if b["name"].startswith(row + "/")]) == 1
EOF
expect_rc 0 "compare a run against the pool" $py $C "$tmp/s2a.json" "$tmp/s2pool.json"
merge_stderr=1 expect_rc 2 "pool.py refuses schema 1 with schema 2" $py $src/plot/pool.py "$tmp/p12.json" \
  "$tmp/s2x.json" "$xeon29"
[ "$(wc -l <"$tmp/out.txt")" = 1 ] && grep -q "not pooled together" "$tmp/out.txt" && ok || bad "pool 1+2: not one line"
$py - "$tmp/s2a.json" "$tmp/s2err.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for b in d["benchmarks"]:
    if b["name"].startswith("q4k_q8k_vnni_r8/768x2048/k8/hot/"):
        b.update(error_occurred=True, error_message="output mismatch")
del d["qkbench_samples"]["q4k_q8k_vnni_r8/768x2048/k8/hot"]
json.dump(d, open(sys.argv[2], "w"))
EOF
expect_rc 1 "schema 2: an errored row in NEW" $py $C "$tmp/s2a.json" "$tmp/s2err.json"
grep -q "^errored in NEW: q4k_q8k_vnni_r8/768x2048/k8/hot: output mismatch" "$tmp/out.txt" && ok || bad "s2 errored row"
expect_rc 0 "pool.py keeps an errored row" $py $src/plot/pool.py "$tmp/s2perr.json" "$tmp/s2a.json" "$tmp/s2err.json"
expect_rc 1 "the pool's errored row fails compare" $py $C "$tmp/s2a.json" "$tmp/s2perr.json"
# malformed schema-2 files: one line naming the file and the problem, exit 2, in every tool
$py - "$tmp/s2a.json" "$tmp" <<'EOF'
import copy, json, sys
d = json.load(open(sys.argv[1]))
R = "q4k_q8k_ref/768x2048/k8/hot"
def save(name, f):
    x = copy.deepcopy(d)
    f(x)
    with open(f"{sys.argv[2]}/bad-{name}.json", "w") as out:
        json.dump(x, out)
def rec(x):
    return x["qkbench_samples"][R]
def entry(x):
    return next(b for b in x["benchmarks"] if b["name"].startswith(R + "/"))
save("nosamples", lambda x: x.pop("qkbench_samples"))
save("samplesarray", lambda x: x.update(qkbench_samples=[1]))
save("recnotobj", lambda x: x["qkbench_samples"].update({R: [1, 2]}))
save("notime", lambda x: rec(x).pop("time_us"))
save("nodropped", lambda x: rec(x).pop("dropped"))
save("timenotarray", lambda x: rec(x).update(time_us="1,2"))
save("unequal", lambda x: rec(x)["dropped"].pop())
save("unequalpeak", lambda x: rec(x)["peak_us"].append(1.0))
save("nantime", lambda x: rec(x)["time_us"].__setitem__(3, float("nan")))
save("zerotime", lambda x: rec(x)["time_us"].__setitem__(3, 0))
save("negpeak", lambda x: rec(x)["peak_us"].__setitem__(3, -1.0))
save("strtime", lambda x: rec(x)["time_us"].__setitem__(3, "12"))
save("code5", lambda x: rec(x)["dropped"].__setitem__(3, 5))
save("codefrac", lambda x: rec(x)["dropped"].__setitem__(3, 1.5))
save("codestr", lambda x: rec(x)["dropped"].__setitem__(3, "1"))
save("codebool", lambda x: rec(x)["dropped"].__setitem__(3, True))
save("alldropped", lambda x: rec(x).update(dropped=[1] * len(rec(x)["dropped"])))
save("norecord", lambda x: x["qkbench_samples"].pop(R))
save("strayrecord", lambda x: x["qkbench_samples"].update({"nothing/1x1/k1/hot": rec(x)}))
save("notmedian", lambda x: entry(x).update(real_time=entry(x)["real_time"] * 1.01))
save("samplescount", lambda x: entry(x).update(samples=39))
save("droppedcount", lambda x: entry(x).update(dropped=2))
save("twoentries", lambda x: x["benchmarks"].append(copy.deepcopy(entry(x))))
save("badci", lambda x: entry(x).update(ci_low_us=entry(x)["ci_high_us"] * 2))
save("schema3", lambda x: x["context"].update(qkbench_schema="3"))
EOF
for f in nosamples samplesarray recnotobj notime nodropped timenotarray unequal unequalpeak nantime \
  zerotime negpeak strtime code5 codefrac codestr codebool alldropped norecord strayrecord notmedian \
  samplescount droppedcount twoentries badci schema3; do
  one_err "compare.py, schema 2 $f" $py $C "$tmp/s2a.json" "$tmp/bad-$f.json"
  grep -q "bad-$f.json" "$tmp/out.txt" || bad "compare.py $f: the line does not name the file"
done
grep -q "is not the median of its clean samples" <($py $C "$tmp/s2a.json" "$tmp/bad-notmedian.json" 2>&1) &&
  ok || bad "the median check does not say what it found"
one_err "generations.py, schema 2 unequal" $py $G "$tmp/bad-unequal.json"
one_err "pool.py, schema 2 code5" $py $src/plot/pool.py "$tmp/p.json" "$tmp/s2a.json" "$tmp/bad-code5.json"
one_err "contracts.py, schema 2 alldropped" $py $src/plot/contracts.py "$tmp/bad-alldropped.json"
one_err "plot.py, schema 2 nosamples" $py $src/plot/plot.py "$tmp/bad-nosamples.json" -o "$tmp/pl3"
mkdir -p "$tmp/idx2/a" && cp "$tmp/bad-norecord.json" "$tmp/idx2/a/"
one_err "index.py over a schema-2 file without a row's samples" $py $src/plot/index.py "$tmp/idx2"
# --- review 13 -------------------------------------------------------------------------------
# a noisy row with too few clean samples for the test (3 against 3: p >= 0.1) is 2x slower: not
# 'same' (the gate cannot call it, so it is 'unsure', not gated)
f3="--like $xeon29 --only q4k_q8k_ref --samples 3"
$S2 "$tmp/few0.json" $f3 --noisy q4k_q8k_ref/768x2048/k8/hot &&
  $S2 "$tmp/few1.json" $f3 --seed 2 --scale q4k_q8k_ref/768x2048/k8/hot=2 --noisy q4k_q8k_ref/768x2048/k8/hot &&
  ok || bad "schema2.py: the three-sample files"
expect_rc 0 "schema 2 noisy, 3 samples, 2x slower: not gated" $py $C "$tmp/few0.json" "$tmp/few1.json"
grep -q "^q4k_q8k_ref/768x2048/k8/hot .* +[0-9.]*% .* unsure \[noisy\]$" "$tmp/out.txt" && ok ||
  { bad "a noisy 2x slower row with 3 samples is not 'unsure [noisy]'"; cat "$tmp/out.txt"; }
# a row whose peak samples were all dropped (bench writes no peak_us, peak_GBps, pct_peak for it):
# the peak normalization cannot apply to one side alone; its times are compared as they are
$py - "$tmp/s2a.json" "$tmp/nopeak.json" "$tmp/nopeak-slow.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
R = "q4k_q8k_vnni_r8/768x2048/k8/hot"
rec = d["qkbench_samples"][R]
rec["peak_dropped"] = [2] * len(rec["peak_dropped"])
b = next(b for b in d["benchmarks"] if b["name"].startswith(R + "/"))
for k in ("peak_us", "peak_GBps", "pct_peak"):
    b.pop(k)
json.dump(d, open(sys.argv[2], "w"))
rec["time_us"] = [t * 2 for t in rec["time_us"]]
for k in ("real_time", "ci_low_us", "ci_high_us", "min_us"):
    b[k] *= 2
b["GBps"] /= 2
json.dump(d, open(sys.argv[3], "w"))
PY
expect_rc 0 "schema 2: NEW's row without a peak, unchanged" $py $C "$tmp/s2a.json" "$tmp/nopeak.json"
grep -q "^q4k_q8k_vnni_r8/768x2048/k8/hot .* +0\.0% .* same$" "$tmp/out.txt" && ok ||
  { bad "a row without a peak in NEW: not the same time"; cat "$tmp/out.txt"; }
grep -q "no in-run peak" "$tmp/out.txt" && ok || bad "the row compared without its peak is not said"
expect_rc 0 "schema 2: BASE's row without a peak, unchanged" $py $C "$tmp/nopeak.json" "$tmp/s2a.json"
grep -q "^q4k_q8k_vnni_r8/768x2048/k8/hot .* +0\.0% .* same$" "$tmp/out.txt" && ok ||
  { bad "a row without a peak in BASE: not the same time"; cat "$tmp/out.txt"; }
expect_rc 1 "schema 2: NEW's row without a peak, 2x slower" $py $C "$tmp/s2a.json" "$tmp/nopeak-slow.json"
grep -q "^q4k_q8k_vnni_r8/768x2048/k8/hot .* +100\.0% .* SLOWER$" "$tmp/out.txt" && ok ||
  { bad "a 2x slower row without a peak in NEW: not SLOWER"; cat "$tmp/out.txt"; }
# pool.py pools it (no clean peak sample: no peak counters), and compare reads the pool
expect_rc 0 "pool.py, a row without a clean peak sample" $py $src/plot/pool.py "$tmp/nopeak-pool.json" "$tmp/nopeak.json"
expect_rc 0 "compare the pool of a row without a peak" $py $C "$tmp/s2a.json" "$tmp/nopeak-pool.json"
# hostile files: nesting deeper than Python's recursion limit; a schema-1 file carrying
# qkbench_samples; an interval that does not hold the median
$py - "$tmp" "$tmp/s2a.json" <<'PY'
import json, sys
d = sys.argv[1]
open(f"{d}/deep.json", "w").write("[" * 100000 + "]" * 100000)
open(f"{d}/deepobj.json", "w").write('{"context": {"qkbench_schema": "2"}, "benchmarks": [], "x": '
                                      + '{"a": ' * 100000 + "1" + "}" * 100001)
x = json.load(open(sys.argv[2]))
x["context"]["qkbench_schema"] = "1"
json.dump(x, open(f"{d}/s1samples.json", "w"))
x = json.load(open(sys.argv[2]))
b = next(b for b in x["benchmarks"] if b["name"].startswith("q4k_q8k_ref/768x2048/k8/hot/"))
b["ci_low_us"], b["ci_high_us"] = b["real_time"] * 1.5, b["real_time"] * 2
json.dump(x, open(f"{d}/cioutside.json", "w"))
PY
for f in deep deepobj s1samples cioutside; do
  one_err "compare.py $f" $py $C "$tmp/s2a.json" "$tmp/$f.json"
  grep -q "$f.json" "$tmp/out.txt" || bad "compare.py $f: the line does not name the file"
done
one_err "pool.py deep" $py $src/plot/pool.py "$tmp/p.json" "$tmp/deep.json"
one_err "generations.py deep" $py $G "$tmp/deep.json"
one_err "contracts.py deep" $py $src/plot/contracts.py "$tmp/deep.json"
one_err "plot.py deep" $py $src/plot/plot.py "$tmp/deep.json" -o "$tmp/pl4"
mkdir -p "$tmp/idx3/a" && cp "$tmp/deep.json" "$tmp/idx3/a/"
one_err "index.py over a deeply nested file" $py $src/plot/index.py "$tmp/idx3"
# every variant row of NEW errored (a failed output check): exit 1 naming them, not exit 2 'no
# benchmark of NEW has a namesake in BASE'
$py - "$tmp/s2a.json" "$tmp/allerr.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for i, b in enumerate(d["benchmarks"]):
    if not b["name"].startswith("peak_read"):
        d["benchmarks"][i] = {k: b[k] for k in ("name", "run_name", "run_type", "repetitions",
                                                "repetition_index", "threads", "iterations")}
        d["benchmarks"][i].update(error_occurred=True, error_message="the output of the last "
                                  "timed call differs from the output checked before timing")
json.dump(d, open(sys.argv[2], "w"))
PY
expect_rc 1 "schema 2: every row of NEW errored" $py $C "$tmp/s2a.json" "$tmp/allerr.json"
[ "$(grep -c '^errored in NEW: ' "$tmp/out.txt")" -eq 6 ] && ok ||
  { bad "every errored row of NEW is not named"; cat "$tmp/out.txt" "$tmp/err.txt"; }
# --- batched tokens (issue 18): files with rows of 1, 2 and 8 tokens (.../k8/t<N>/<temperature>)
tk="$cpu2 --tokens 1,2,8"
$S2 "$tmp/tk0.json" $tk && $S2 "$tmp/tk1.json" $tk --seed 2 &&
  $S2 "$tmp/tkslow.json" $tk --seed 3 --scale q4k_q8k_ref/768x2048/k8/t8/hot=1.3 &&
  $S2 "$tmp/tk8.json" $cpu2 --tokens 8 &&
  $S2 "$tmp/tkskew.json" $tk --seed 2 --routing skewed &&
  $S2 "$tmp/tkbatch.json" $tk --seed 2 --context "batch.t8=touched experts 40, most tokens on one expert 4" &&
  $S2 "$tmp/tkmachine.json" $tk --seed 4 --scale q4k_f32_ref/768x2048/k8/t8/hot=1.5 \
    --scale q4k_q8k_ref/768x2048/k8/t8/hot=1.5 --scale q4k_q8k_vnni_r8/768x2048/k8/t8/hot=1.5 &&
  ok || bad "schema2.py --tokens could not write the files"
$py - "$tmp/tk0.json" "$src/plot" <<'EOF' && ok || bad "tokens: the rows' N, names and counters"
import json, sys
sys.path.insert(0, sys.argv[2])
from qkresults import Result
r = Result(sys.argv[1])
d = json.load(open(sys.argv[1]))
names = {b["run_name"].split("/iterations")[0]: b for b in d["benchmarks"]}
assert "q4k_q8k_ref/768x2048/k8/t8/hot" in names and "q4k_q8k_ref/768x2048/k8/hot" in names
for row in r.variants():
    assert row.tokens == names[row.name]["tokens"], row.name
    assert row.variant in ("q4k_q8k_ref", "q4k_q8k_vnni_r8", "q4k_f32_ref"), row.variant
    assert row.temperature in ("hot", "cold"), row.name
    assert row.series == row.name.replace(f"/t{row.tokens}/", "/"), row.name
assert sorted({row.tokens for row in r.variants()}) == r.token_counts() == [1, 2, 8]
assert len(r.variants(8)) == 6 and all("/t8/" in x.name for x in r.variants(8))
# an older file (no counter tokens): N from the name, 1 without a t<N>
for row in r.variants():
    row.counters.pop("tokens")
    assert row.tokens == (int(row.name.split("/t")[1].split("/")[0]) if "/t" in row.name else 1)
assert r.batch(8).startswith("touched experts ") and r.routing == "uniform"
EOF
expect_rc 0 "tokens: two runs of the same code" $py $C "$tmp/tk0.json" "$tmp/tk1.json"
grep -q "^compare: 18 benchmarks paired, 0 slower" "$tmp/out.txt" && ok || bad "tokens: not 18 rows paired"
grep -q "paired only with the row of the same N: N = 1: 6 rows, N = 2: 6 rows, N = 8: 6 rows$" \
  "$tmp/out.txt" && ok || bad "tokens: the rows per N not said"
grep -q "^q4k_q8k_ref/768x2048/k8/t8/hot .* same$" "$tmp/out.txt" && ok || bad "tokens: the t8 row not shown by name"
# the gate judges each N on its own: the t8 row 1.3x slower fails, its one-token namesake is the same
expect_rc 1 "tokens: the t8 hot row 1.3x slower" $py $C "$tmp/tk0.json" "$tmp/tkslow.json"
grep -qE "^q4k_q8k_ref/768x2048/k8/t8/hot +[0-9.]+u +[0-9.]+u +\+(29|30|31)\.[0-9]% +0\.0000  SLOWER$" \
  "$tmp/out.txt" && ok || bad "tokens: the slower t8 row"
[ "$(grep -c "SLOWER" "$tmp/out.txt")" = 1 ] && ok || bad "tokens: another row called slower"
grep -q "^q4k_q8k_ref/768x2048/k8/hot .* same$" "$tmp/out.txt" &&
  grep -q "^q4k_q8k_ref/768x2048/k8/t2/hot .* same$" "$tmp/out.txt" && ok || bad "tokens: N = 1 or 2 judged by N = 8"
expect_rc 0 "tokens: faster the other way" $py $C "$tmp/tkslow.json" "$tmp/tk0.json"
grep -q "^q4k_q8k_ref/768x2048/k8/t8/hot .* faster$" "$tmp/out.txt" && ok || bad "tokens: the faster t8 row"
# rows of different N never pair: one-token rows against a file of t8 rows only
merge_stderr=1 expect_rc 2 "tokens: N = 1 against N = 8 only" $py $C "$tmp/s2a.json" "$tmp/tk8.json"
grep -q "no benchmark of NEW has a namesake in BASE" "$tmp/out.txt" && ok || bad "tokens: rows of N = 8 paired with N = 1"
# an older file (no tokens counter, no t<N> rows) against a sweep: its one-token rows pair
expect_rc 0 "tokens: an older file against a sweep" $py $C "$tmp/s2a.json" "$tmp/tk1.json"
grep -q "^compare: 6 benchmarks paired, 0 slower" "$tmp/out.txt" && ok || bad "tokens: one-token rows of an older file not paired"
grep -q "batched tokens" "$tmp/out.txt" && bad "tokens: N said where every pair has N = 1" || ok
expect_rc 0 "tokens: a sweep against an older file" $py $C "$tmp/tk0.json" "$tmp/s2b.json"
grep -q "WARNING: 12 rows of BASE are missing from NEW (not failed): .*q4k_q8k_ref/768x2048/k8/t8/hot" \
  "$tmp/out.txt" && ok || bad "tokens: the batch rows NEW lacks are not listed"
# bench writes every token's experts, '/'-separated, token 0 first: a sweep's one-token rows are
# those of a one-token file of the same seed (token 0's experts), so they are gated against it;
# rows of N > 1 whose first N tokens' experts differ are another batch, not compared
e0=$($py -c 'import json, sys; print(json.load(open(sys.argv[1]))["context"]["experts"])' "$tmp/s2a.json")
ea=$($py -c 'import sys; print("/".join([sys.argv[1]] + [",".join(str((7 * t + j) % 128) for j in range(8)) for t in range(1, 8)]))' "$e0")
eb=$(printf '%s' "$ea" | $py -c 'import sys; t = sys.stdin.read().split("/"); t[5] = "0,1,2,3,4,5,6,7"; print("/".join(t))')
$S2 "$tmp/tkreal.json" $tk --seed 2 --context "experts=$ea" &&
  $S2 "$tmp/tkreal2.json" $tk --seed 3 --context "experts=$eb" && ok || bad "tokens: files with every token's experts"
expect_rc 0 "tokens: a one-token file against a sweep listing every token's experts" $py $C "$tmp/s2a.json" "$tmp/tkreal.json"
grep -q "^compare: 6 benchmarks paired, 0 slower" "$tmp/out.txt" &&
  ! grep -q "different machines or setups" "$tmp/out.txt" && ok ||
  bad "tokens: one-token rows not gated against a sweep: $(grep -m1 WARNING "$tmp/out.txt")"
expect_rc 0 "tokens: token 5's experts differ" $py $C "$tmp/tkreal.json" "$tmp/tkreal2.json"
grep -q "^compare: 12 benchmarks paired, 0 slower" "$tmp/out.txt" &&
  grep -q "WARNING: 6 rows of batched tokens .*t8/hot (experts of token 5 .* -> 0,1,2,3,4,5,6,7)" \
    "$tmp/out.txt" && ok || bad "tokens: another token's experts: $(grep -m1 WARNING "$tmp/out.txt")"
# pool.py pools one batch only: every token's experts alike
$py "$src/plot/pool.py" "$tmp/pooled.json" "$tmp/tkreal.json" "$tmp/tkreal2.json" 2>"$tmp/err.txt" &&
  bad "pool.py pooled two batches" || ok
# another batch (routing, or the context's batch.t<N>): those rows are not compared, named
expect_rc 0 "tokens: uniform against skewed routing" $py $C "$tmp/tk0.json" "$tmp/tkskew.json"
grep -q "^compare: 6 benchmarks paired" "$tmp/out.txt" && ok || bad "tokens: skewed batches were paired"
grep -q "WARNING: 12 rows of batched tokens measure another batch in BASE than in NEW, not compared: .*q4k_q8k_ref/768x2048/k8/t8/hot (routing uniform -> skewed)" \
  "$tmp/out.txt" && ok || bad "tokens: the skewed rows not named"
expect_rc 0 "tokens: another batch of 8" $py $C "$tmp/tk0.json" "$tmp/tkbatch.json"
grep -q "^compare: 12 benchmarks paired" "$tmp/out.txt" &&
  grep -q "WARNING: 6 rows of batched tokens .*(batch.t8 'touched experts 52, most tokens on one expert 2' -> 'touched experts 40, most tokens on one expert 4')" \
  "$tmp/out.txt" && ok || bad "tokens: another batch.t8 not refused"
# --normalize VARIANT: each row by the reference's row of the same N (every t8 row 1.5x, the
# reference's too: the same code)
expect_rc 0 "tokens: --normalize q4k_f32_ref by the same N" $py $C "$tmp/tk0.json" "$tmp/tkmachine.json" \
  --normalize q4k_f32_ref
grep -q "SLOWER" "$tmp/out.txt" && bad "tokens: --normalize took another N's reference" || ok
expect_rc 1 "tokens: the same without normalizing" $py $C "$tmp/tk0.json" "$tmp/tkmachine.json" --normalize none
# across machines: rows of N > 1 shown, not gated
$S2 "$tmp/tkother.json" $tk --seed 2 --context cores=4 --scale q4k_q8k_ref/768x2048/k8/t8/hot=2
expect_rc 0 "tokens: across machines, not gated" $py $C "$tmp/tk0.json" "$tmp/tkother.json"
grep -q "^q4k_q8k_ref/768x2048/k8/t8/hot .* +[0-9.]*% .*->.*slower$" "$tmp/out.txt" && ok ||
  bad "tokens: the t8 row across machines"
# a variant's name too long for the column: the whole name, t<N> included, is shown
$py - "$tmp/tk0.json" "$tmp/tklong0.json" "$tmp/tkslow.json" "$tmp/tklong1.json" <<'EOF'
import json, sys
long = "q4k_q8k_ref_of_a_plugin_with_a_name_longer_than_the_column"
for src, dst in ((sys.argv[1], sys.argv[2]), (sys.argv[3], sys.argv[4])):
    text = open(src).read().replace('"q4k_q8k_ref/', f'"{long}/')
    json.dump(json.loads(text), open(dst, "w"))
EOF
expect_rc 1 "tokens: a long variant name" $py $C "$tmp/tklong0.json" "$tmp/tklong1.json" --contracts ""
grep -q "^q4k_q8k_ref_of_a_plugin_with_a_name_longer_than_the_column/768x2048/k8/t8/hot .* SLOWER$" \
  "$tmp/out.txt" && ok || bad "tokens: a long name cut"
# pool.py: runs of one batch pool; runs of other batches are refused
expect_rc 0 "tokens: pool.py of two sweeps" $py $src/plot/pool.py "$tmp/tkpool.json" "$tmp/tk0.json" "$tmp/tk1.json"
expect_rc 0 "tokens: compare against the pool" $py $C "$tmp/tk0.json" "$tmp/tkpool.json"
grep -q "^compare: 18 benchmarks paired" "$tmp/out.txt" && ok || bad "tokens: the pool's rows"
merge_stderr=1 expect_rc 2 "tokens: pool.py of two routings" $py $src/plot/pool.py "$tmp/tkp2.json" \
  "$tmp/tk0.json" "$tmp/tkskew.json"
[ "$(wc -l <"$tmp/out.txt")" = 1 ] && grep -q "another batch of 2 tokens .*(routing uniform -> skewed)" \
  "$tmp/out.txt" && ok || bad "tokens: pool of two routings not one line"
# generations: one-token rows only (the t<N> rows of the same variant do not replace them); a
# file of batches only is left out, said why
expect_rc 0 "tokens: generations of a sweep" $py $G "$tmp/tk0.json"
$py - "$tmp/tk0.json" "$tmp/out.txt" <<'EOF' && ok || bad "tokens: generations did not table the one-token row"
import json, sys
b = next(b for b in json.load(open(sys.argv[1]))["benchmarks"]
         if b["name"].startswith("q4k_q8k_ref/768x2048/k8/hot/"))
line = next(l for l in open(sys.argv[2]) if l.startswith("| q4k_q8k_ref | "))
assert f"| {b['real_time']:.0f} (" in line, (line, b["real_time"])
assert f"| {b['GBps']:.1f} |" in line, (line, b["GBps"])
EOF
expect_rc 2 "tokens: generations of batches only" $py $G "$tmp/tk8.json"
grep -q "tk8.json: left out (no top-8 rows of one token, only batches of 8)" "$tmp/err.txt" && ok ||
  bad "tokens: generations does not say why a batch-only file is left out"
# malformed token counts: one line naming the file, exit 2, in every tool
$py - "$tmp/tk0.json" "$tmp" <<'EOF'
import copy, json, sys
d = json.load(open(sys.argv[1]))
R = "q4k_q8k_ref/768x2048/k8/t8/hot"
def save(name, f):
    x = copy.deepcopy(d)
    f(x)
    json.dump(x, open(f"{sys.argv[2]}/tkbad-{name}.json", "w"))
def entry(x):
    return next(b for b in x["benchmarks"] if b["name"].startswith(R + "/"))
def rename(x, new):
    e = entry(x)
    e["name"] = e["run_name"] = new + "/iterations:1/manual_time"
    x["qkbench_samples"][new] = x["qkbench_samples"].pop(R)
save("counter", lambda x: entry(x).update(tokens=4))
save("counterfrac", lambda x: entry(x).update(tokens=8.5))
save("counterzero", lambda x: entry(x).update(tokens=0))
save("t0", lambda x: rename(x, R.replace("/t8/", "/t0/")))
save("t08", lambda x: rename(x, R.replace("/t8/", "/t08/")))
save("twot", lambda x: rename(x, R.replace("/t8/", "/t8/t8/")))
EOF
for f in counter counterfrac counterzero t0 t08 twot; do
  one_err "compare.py, tokens $f" $py $C "$tmp/tk0.json" "$tmp/tkbad-$f.json"
  grep -q "tkbad-$f.json" "$tmp/out.txt" || bad "compare.py tokens $f: the line does not name the file"
done
grep -q "the counter tokens is 4, the name says 8" <($py $C "$tmp/tk0.json" "$tmp/tkbad-counter.json" 2>&1) &&
  ok || bad "tokens: a counter the name contradicts is not said"
one_err "contracts.py, tokens t08" $py $src/plot/contracts.py "$tmp/tkbad-t08.json"
one_err "generations.py, tokens counter" $py $G "$tmp/tkbad-counter.json"
one_err "pool.py, tokens twot" $py $src/plot/pool.py "$tmp/p.json" "$tmp/tkbad-twot.json"
# contracts: every row of every N is held to its variant's contract; bit-identical variants are
# compared per temperature and per N (each N's hash is of its batch's outputs)
$S2 "$tmp/gk.json" --like "$h100" --only dp4a_q4k_q8/,dp4a_q4k_q8_e2e/ --tokens 1,8
expect_rc 0 "tokens: contracts hold on a GPU sweep" $py $src/plot/contracts.py "$tmp/gk.json"
grep -q "contracts: 8 rows in 1 files checked, 0 violations" "$tmp/out.txt" && ok || bad "tokens: not every row checked"
$py - "$tmp/gk.json" "$tmp" <<'EOF'
import copy, json, sys
d = json.load(open(sys.argv[1]))
def save(name, row, **kv):
    x = copy.deepcopy(d)
    next(b for b in x["benchmarks"] if b["name"].startswith(row + "/")).update(kv)
    json.dump(x, open(f"{sys.argv[2]}/gk-{name}.json", "w"))
h = next(b for b in d["benchmarks"] if b["name"].startswith("dp4a_q4k_q8/768x2048/k8/hot/"))["output_hash"]
save("rel", "dp4a_q4k_q8/768x2048/k8/t8/hot", rel_l2=0.5)
save("hash8", "dp4a_q4k_q8_e2e/768x2048/k8/t8/hot", output_hash=h + 1000)
save("hash1", "dp4a_q4k_q8_e2e/768x2048/k8/cold", output_hash=h + 1000)
EOF
expect_rc 1 "tokens: a t8 row beyond its bound" $py $src/plot/contracts.py "$tmp/gk-rel.json"
grep -q "^contract broken: gk-rel.json: dp4a_q4k_q8/768x2048/k8/t8/hot: rel_l2 0.5 > 0.03" "$tmp/out.txt" &&
  ok || bad "tokens: the t8 row's violation not named"
expect_rc 1 "tokens: t8 twins differ" $py $src/plot/contracts.py "$tmp/gk-hash8.json"
grep -q "dp4a_q4k_q8, dp4a_q4k_q8_e2e must be bit-identical, their outputs differ (hot, 8 tokens)" \
  "$tmp/out.txt" && [ "$(grep -c "bit-identical" "$tmp/out.txt")" = 1 ] && ok || bad "tokens: t8 twins"
expect_rc 1 "tokens: one-token twins differ beside agreeing t8 twins" $py $src/plot/contracts.py "$tmp/gk-hash1.json"
grep -q "must be bit-identical, their outputs differ (cold)$" "$tmp/out.txt" && ok || bad "tokens: one-token twins hidden by t8 rows"
expect_rc 1 "tokens: compare fails NEW's broken t8 contract" $py $C "$tmp/gk.json" "$tmp/gk-rel.json"
grep -q "^contract: gk-rel.json: dp4a_q4k_q8/768x2048/k8/t8/hot: rel_l2" "$tmp/out.txt" && ok || bad "tokens: compare's contract line"
echo "compare: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
