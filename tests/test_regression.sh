#!/usr/bin/env bash
# The regression gate and the contract check decide as they must: an injected 20 % slowdown of
# a variant fails plot/compare.py, an unchanged run passes; a less exact variant (its rel_l2
# raised) and two variants that must be bit-identical but are not fail plot/contracts.py;
# unusable input exits 2. usage: test_regression.sh BENCH
set -u
bench=$1
export QK_BENCH=$bench
src=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
expect_rc() { # rc, description, command...
  local want=$1 what=$2; shift 2
  "$@" >"$tmp/out.txt" 2>&1; local rc=$?
  if [ "$rc" -eq "$want" ]; then ok; else bad "$what: exit $rc, expected $want"; tail -8 "$tmp/out.txt"; fi
}
# the CI gate itself (tests/regression.sh), this bench on both sides: unchanged, then with a
# 20 % slowdown injected into the new side
export QK_BASE_BENCH=$bench
expect_rc 0 "unchanged code passes the gate" bash "$src/tests/regression.sh" "$tmp/same"
cp "$tmp/same/base.json" "$tmp/base.json" || bad "the gate left no pooled baseline"
QK_INJECT_SLOWDOWN=q4k_q8k_vnni_r8=0.2 expect_rc 1 "20 % slower q4k_q8k_vnni_r8 fails the gate" \
  bash "$src/tests/regression.sh" "$tmp/slow"
grep -q "q4k_q8k_vnni_r8.*SLOWER" "$tmp/slow/compare3.txt" 2>/dev/null && ok ||
  bad "the slowed variant is not the one named SLOWER in the last confirming run"
# an unchanged variant may be hit by noise in one run, not in all three
n=$(cat "$tmp"/slow/compare[123].txt 2>/dev/null | grep -c "q4k_f32_avx2.*SLOWER")
[ "$n" -lt 3 ] && ok || bad "an unchanged variant was called SLOWER in every run"
expect_rc 0 "a file against itself" $py "$src/plot/compare.py" "$tmp/base.json" "$tmp/base.json"
expect_rc 2 "a file that is not a result" $py "$src/plot/compare.py" "$tmp/base.json" "$0"
expect_rc 2 "a missing file" $py "$src/plot/compare.py" "$tmp/base.json" "$tmp/nope.json"
expect_rc 2 "pooling a file that is not a result" $py "$src/plot/pool.py" "$tmp/p.json" "$tmp/base.json" "$0"
$py - "$tmp/base.json" "$tmp/other.json" "$tmp/nobest.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["context"]["cpu_model"] = "another CPU"
json.dump(doc, open(sys.argv[2], "w"))
doc = json.load(open(sys.argv[1]))
for b in doc["benchmarks"]:
    b.pop("best_call_us", None)
json.dump(doc, open(sys.argv[3], "w"))
PY
expect_rc 2 "pooling runs of two machines" $py "$src/plot/pool.py" "$tmp/p.json" "$tmp/base.json" "$tmp/other.json"
expect_rc 2 "the best call of a file without it" $py "$src/plot/compare.py" "$tmp/base.json" \
  "$tmp/nobest.json" --statistic best
$py - "$tmp/base.json" "$tmp/dirty.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["context"]["git_commit"] += "-dirty"
json.dump(doc, open(sys.argv[2], "w"))
PY
QK_BASE_BENCH= QK_REGRESSION_RECORD="$tmp/dirty.json" expect_rc 2 "a baseline record that names no commit" \
  bash "$src/tests/regression.sh" "$tmp/dirty"
QK_INJECT_SLOWDOWN=bogus expect_rc 2 "a malformed slowdown hook" "$bench" --kernel q4k_q8k_ref --experts 0
# contracts: the real results hold; a less exact variant and a broken bit-identity do not
expect_rc 0 "contracts hold on this run" $py "$src/plot/contracts.py" "$tmp/base.json"
expect_rc 2 "normalizing by a variant the files lack" $py "$src/plot/compare.py" "$tmp/base.json" \
  "$tmp/base.json" --normalize no_such_variant
$py - "$tmp/base.json" "$tmp/inexact.json" "$tmp/twins.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
for b in doc["benchmarks"]:  # a less exact q4k_f32_avx2: 100x its deviation
    if b["name"].startswith("q4k_f32_avx2/"):
        b["rel_l2"] *= 100
json.dump(doc, open(sys.argv[2], "w"))
doc = json.load(open(sys.argv[1]))  # two rows that must be bit-identical, with other outputs
twins = []
for b in doc["benchmarks"]:
    if b["name"].startswith("q4k_q8k_vnni_r8/"):
        for name, h in (("dp4a_q4k_q8", 1.0), ("dp4a_q4k_q8_e2e", 2.0)):
            t = dict(b, name=b["name"].replace("q4k_q8k_vnni_r8", name),
                     run_name=b["run_name"].replace("q4k_q8k_vnni_r8", name), output_hash=h)
            twins.append(t)
doc["benchmarks"] += twins
json.dump(doc, open(sys.argv[3], "w"))
PY
expect_rc 1 "a less exact variant breaks its contract" $py "$src/plot/contracts.py" "$tmp/inexact.json"
grep -q "q4k_f32_avx2.*rel_l2" "$tmp/out.txt" && ok || bad "the violation does not name the variant and metric"
expect_rc 1 "outputs that must be bit-identical but differ" $py "$src/plot/contracts.py" "$tmp/twins.json"
expect_rc 1 "compare also fails on a broken contract" $py "$src/plot/compare.py" "$tmp/base.json" "$tmp/inexact.json"
expect_rc 2 "contracts on a file that is not a result" $py "$src/plot/contracts.py" "$0"
echo "regression_gate: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
