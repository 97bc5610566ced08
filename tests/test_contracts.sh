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
# short rows (six clean samples within +-5 %, at most 0.5 s); one thread, so that each row gets
# clean samples beside the other suites (a row without one is skipped, and its deviation
# counters with it), on the last CPU this may run on (one-thread runs of bench take the first)
last=$(/usr/bin/python3 -c 'import os; print(max(os.sched_getaffinity(0)))')
for p in normal uniform20 outliers swiglu lognormal zero_blocks; do
  taskset -c "$last" "$bench" --top 8 --act "$p" --hot --min-samples 1 --min-time 0.001 --target-ci 5 --max-time 0.5 \
    --threads 1 --json "$tmp/$p.json" >/dev/null || { echo "FAIL: bench --act $p"; failed=1; }
done
# every variant's row was measured and carries its deviation: none escapes the check below
/usr/bin/python3 - "$tmp"/*.json <<'PY' || failed=1
import json, sys
bad = [f"{p}: {b['name']}: {b.get('error_message', 'no rel_l2')}"
       for p in sys.argv[1:] for b in json.load(open(p))["benchmarks"]
       if not b["name"].startswith("peak_read/") and "rel_l2" not in b]
for line in bad:
    print("FAIL:", line)
sys.exit(1 if bad else 0)
PY
/usr/bin/python3 "$src/plot/contracts.py" "$tmp"/*.json "$src"/results/*/*.json || failed=1
echo "contracts_hold: $((1 - failed)) passed, $failed failed"
exit $failed
