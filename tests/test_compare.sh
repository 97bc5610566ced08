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
#   and how to install it, exit 2.
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
h100=$src/results/nvidia-h100-80gb-hbm3/2026-11-26-run7-gate-top8.json
h200=$src/results/nvidia-h200/2026-11-26-run4-gate-top8.json
xeon=$src/results/intel-xeon-2c/2026-11-26-gate-top8.json
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
expect_rc 0 "generations names a dropped file" $py $G "$xeon" "$src"/results/nvidia-h200/*run4-down-top8.json
grep -q "run4-down-top8.json: left out (shape" "$tmp/err.txt" && ok || bad "dropped file not named"
x16=$src/results/intel-xeon-16c
expect_rc 0 "generations of the 16-core host files" $py $G "$x16"/*.json
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
xa=$src/results/intel-xeon-2c
expect_rc 0 "generations of the full and AVX2 runs" $py $G "$xa/2026-11-29-gate-top8.json" "$xa/2026-11-29-gate-top8-isa-avx2.json"
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
echo "compare: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
