#!/usr/bin/env bash
# The regression gate and the contract check decide as they must. The gate (tests/regression.sh,
# this tree's gate_worker on both sides): unchanged code passes; a variant made 2x slower
# (QK_INJECT_SLOWDOWN reaches the new side only) fails, and the failure names that variant and
# no other; a worker that does not speak the protocol, a bad case and a baseline record that
# names no commit exit 2. The slowdown is 2x, not the 10 % threshold's neighbourhood: this test
# proves the direction of every verdict and must not depend on the machine's noise
# (tests/gate_study.sh measures sensitivity). compare.py and contracts.py: a less exact variant
# and two variants that must be bit-identical but are not fail; unusable input exits 2.
# usage: test_regression.sh BENCH GATE_WORKER
set -u
bench=$1
worker=$2
src=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
merge_stderr=1
source "$src/tests/test_lib.sh"
export QK_GATE_WORKER=$worker QK_BASE_WORKER=$worker
cases=q4k_f32_avx2:0:1,q4k_q8k_ref:0:1,q4k_q8k_ref:0+1+2+3+4+5+6+7:2
expect_rc 0 "unchanged code passes the gate" bash "$src/tests/regression.sh" "$tmp/same" --cases "$cases"
grep -q "^regression: 1 passed, 0 failed" "$tmp/out.txt" && ok || bad "the passing gate's closing line"
QK_INJECT_SLOWDOWN=q4k_q8k_ref=1 expect_rc 1 "2x slower q4k_q8k_ref fails the gate" \
  bash "$src/tests/regression.sh" "$tmp/slow" --cases "$cases"
grep -q "^gate: REGRESSION q4k_q8k_ref:0:1: +" "$tmp/out.txt" && ok ||
  bad "the failure does not name the slowed variant and its change"
grep -q "REGRESSION q4k_f32_avx2" "$tmp/out.txt" && bad "an unchanged variant was called slower" || ok
$py - "$tmp/slow/gate.json" <<'PY' && ok || bad "the gate's JSON lacks the confirming round or its batches"
import json, sys
d = json.load(open(sys.argv[1]))
rounds = {(r["case"], r["round"]) for r in d["results"]}
assert ("q4k_q8k_ref:0:1", "confirm") in rounds, rounds
assert all(r["batches"] and r["pairs"] >= 16 for r in d["results"])
PY
# calls made slower off the CPU (asleep) are left out of the times: the gate must still fail them
QK_INJECT_SLEEP=q4k_q8k_ref=0.5 expect_rc 1 "q4k_q8k_ref calls that sleep fail the gate" \
  $py "$src/tests/gate.py" "$worker" "$worker" --cases q4k_q8k_ref:0:1
grep -q "^gate: REGRESSION q4k_q8k_ref:0:1: .*calls off the CPU" "$tmp/out.txt" && ok ||
  bad "the failure does not say the calls ran off the CPU"
# unusable setups exit 2 with one line, never 1 (which would read as a regression)
gate() { $py "$src/tests/gate.py" "$@"; }
expect_rc 2 "a worker that does not speak the protocol" gate /bin/true "$worker" --cases q4k_q8k_ref:0:1
expect_rc 2 "a case naming no variant" gate "$worker" "$worker" --cases nope:0:1
grep -q "no CPU matvec variant 'nope'" "$tmp/out.txt" && ok || bad "the worker's own message is not shown"
expect_rc 2 "a case with a bad expert list" gate "$worker" "$worker" --cases q4k_q8k_ref:0+x:1
expect_rc 2 "an empty case list" gate "$worker" "$worker" --cases ''
expect_rc 2 "a case given twice" gate "$worker" "$worker" --cases q4k_q8k_ref:0:1,q4k_q8k_ref:0:1
expect_rc 2 "more pairs than the gate allows" gate "$worker" "$worker" --max-pairs 2000
expect_rc 2 "an endless batch" gate "$worker" "$worker" --batch-ms inf
expect_rc 2 "a --json folder that does not exist" gate "$worker" "$worker" --cases q4k_q8k_ref:0:1 \
  --json "$tmp/none/gate.json"
QK_INJECT_SLOWDOWN=typo=1 expect_rc 2 "a slowdown hook naming no case" gate "$worker" "$worker" \
  --cases q4k_q8k_ref:0:1
printf '#!/bin/sh\necho "qkgate 3 ready 1"; echo "case 0 x"; exec sleep 60\n' >"$tmp/hang.sh"
printf '#!/bin/sh\necho "qkgate 3 ready 1"; echo "case 0 x"; read l; echo "done 0 calls=3 median_ns=0"; exec sleep 60\n' >"$tmp/zero.sh"
chmod +x "$tmp/hang.sh" "$tmp/zero.sh"
expect_rc 2 "a worker that never answers a batch" gate "$tmp/hang.sh" "$worker" --cases q4k_q8k_ref:0:1 \
  --timeout 2
grep -q "no answer in 2 s while running q4k_q8k_ref:0:1" "$tmp/out.txt" && ok || bad "the hang is not named"
expect_rc 2 "a worker that answers out of protocol" gate "$tmp/zero.sh" "$worker" --cases q4k_q8k_ref:0:1 \
  --timeout 5
printf '#!/bin/bash\necho "qkgate 3 ready 1"; echo "case 0 x"; read l; exec 1>&-; exec sleep 60\n' >"$tmp/mute.sh"
chmod +x "$tmp/mute.sh"
expect_rc 2 "a worker that closes its output and lingers" gate "$worker" "$tmp/mute.sh" \
  --cases q4k_q8k_ref:0:1 --timeout 5
QK_DISABLE_ISA=avx-512 expect_rc 2 "an instruction set hidden by a name that is none" gate "$worker" \
  "$worker" --cases q4k_q8k_ref:0:1
echo OLD >"$tmp/old-gate.json"
(ulimit -f 4; $py "$src/tests/gate.py" "$worker" "$worker" --cases q4k_q8k_ref:0:1 --min-pairs 8 \
  --max-pairs 8 --json "$tmp/old-gate.json" >"$tmp/out.txt" 2>&1)
[ "$?" = 2 ] && [ "$(cat "$tmp/old-gate.json")" = OLD ] && ok ||
  bad "a --json write that fails must exit 2 and keep the old file"
QK_INJECT_SLOWDOWN=$'x=1\nregression: 1 passed' expect_rc 2 "a hook value with a newline" "$worker" \
  q4k_q8k_ref:0:1
[ "$(wc -l <"$tmp/out.txt")" = 1 ] && ok || bad "a hook value's newline reached the message"
echo 'baseline_commit 054cfbe80ae6-dirty' >"$tmp/dirty.txt"
QK_BASE_WORKER= QK_GATE_RECORD="$tmp/dirty.txt" expect_rc 2 "a baseline record that names no commit" \
  bash "$src/tests/regression.sh" "$tmp/dirty"
grep -q "no 'baseline_commit <40 hex digits>' line" "$tmp/out.txt" && ok || bad "the record's problem is not named"
printf 'baseline_commit %s\nbaseline_commit %s\n' "$(printf 'a%.0s' {1..40})" "$(printf 'b%.0s' {1..40})" \
  >"$tmp/two.txt"
QK_BASE_WORKER= QK_GATE_RECORD="$tmp/two.txt" expect_rc 2 "a record naming two commits" \
  bash "$src/tests/regression.sh" "$tmp/two"
QK_BASE_WORKER= QK_GATE_RECORD="$tmp/missing.txt" expect_rc 2 "a missing record" \
  bash "$src/tests/regression.sh" "$tmp/missing"
echo 'baseline_commit 0123456789012345678901234567890123456789' >"$tmp/gone.txt"
QK_BASE_WORKER= QK_GATE_RECORD="$tmp/gone.txt" expect_rc 2 "a baseline commit that does not exist" \
  bash "$src/tests/regression.sh" "$tmp/gone"
QK_INJECT_SLOWDOWN=bogus expect_rc 2 "a malformed slowdown hook" "$bench" --kernel q4k_q8k_ref --experts 0
QK_INJECT_SLOWDOWN=bogus expect_rc 2 "a malformed slowdown hook (worker)" "$worker" q4k_q8k_ref:0:1
for bad_cmd in 'run 4294967296 3 1' 'run 0 3 1 junk' 'run 0 -3 1' 'walk'; do
  echo "$bad_cmd" >"$tmp/cmd.txt"
  expect_rc 2 "the worker refuses '$bad_cmd'" "$worker" q4k_q8k_ref:0:1 <"$tmp/cmd.txt"
done
expect_rc 2 "the worker refuses a thread count that wraps" "$worker" q4k_q8k_ref:0:4294967297 </dev/null
expect_rc 2 "the worker refuses a negative seed" "$worker" --seed -1 q4k_q8k_ref:0:1 </dev/null
# compare.py and the contracts, on a result file of this bench
expect_rc 0 "a bench run for the comparisons" "$bench" --kernel 'q4k_*' --experts 0 --hot \
  --min-samples 10 --min-time 0.1 --max-time 0.5 --json "$tmp/base.json"
# compare.py's exit code in both directions (a script that always exits 0 hides regressions)
QK_INJECT_SLOWDOWN=q4k_q8k_ref=1 expect_rc 0 "a bench run with q4k_q8k_ref 2x slower" "$bench" \
  --kernel 'q4k_*' --experts 0 --hot --min-samples 10 --min-time 0.1 --max-time 0.5 \
  --json "$tmp/slow.json"
expect_rc 1 "compare.py fails a 2x slower variant" $py "$src/plot/compare.py" "$tmp/base.json" \
  "$tmp/slow.json" --normalize none
grep -q "^q4k_q8k_ref/.*SLOWER" "$tmp/out.txt" && ok || bad "compare.py does not name the slower variant"
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
del doc["qkbench_samples"][next(iter(doc["qkbench_samples"]))]  # a row without its samples
json.dump(doc, open(sys.argv[3], "w"))
PY
expect_rc 2 "pooling runs of two machines" $py "$src/plot/pool.py" "$tmp/p.json" "$tmp/base.json" "$tmp/other.json"
expect_rc 2 "the best statistic of a row without its samples" $py "$src/plot/compare.py" \
  "$tmp/base.json" "$tmp/nobest.json" --statistic best
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
    if b["name"].startswith("q4k_q8k_ref/"):
        for name, h in (("dp4a_q4k_q8", 1.0), ("dp4a_q4k_q8_e2e", 2.0)):
            t = dict(b, name=b["name"].replace("q4k_q8k_ref", name),
                     run_name=b["run_name"].replace("q4k_q8k_ref", name), output_hash=h)
            twins.append(t)
            row = b["name"].split("/iterations:")[0]  # the samples go with the row
            doc["qkbench_samples"][row.replace("q4k_q8k_ref", name)] = \
                doc["qkbench_samples"][row]
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
