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
# Short rows (six clean samples within +-5 %, at most 0.2 s) on one thread, on the last CPU this
# may run on (one-thread runs of bench take the first); each run's outputs dumped.
last=$(/usr/bin/python3 -c 'import os; print(max(os.sched_getaffinity(0)))')
profiles="normal uniform20 outliers swiglu lognormal zero_blocks"
for p in $profiles; do
  taskset -c "$last" "$bench" --top 8 --act "$p" --hot --min-samples 1 --min-time 0.001 \
    --target-ci 5 --max-time 0.2 --threads 1 --json "$tmp/$p.json" --dump-output "$tmp/$p" \
    >/dev/null || { echo "FAIL: bench --act $p"; failed=1; }
done
# A row without a clean sample (a unit longer than the scheduler's slice beside a busy
# neighbour: every sample preempted) is skipped, and bench leaves its deviation counters out of
# the JSON with it. So that no variant escapes its contract, such a row's deviation is computed
# from its dumped output (as kernels/qk_oracle.c's qk_deviation_of does; checked here against
# every measured row's counters) and checked by plot/contracts.py's own rules.
/usr/bin/python3 - "$src" "$tmp" "$bench" $profiles <<'PY' || failed=1
import json, os, subprocess, sys
import numpy as np
src, tmp, bench, profiles = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
sys.path.insert(0, os.path.join(src, "plot"))
from contracts import check  # noqa: E402
from qkresults import Row  # noqa: E402

BUSY = "the machine was too busy to measure"
listing = subprocess.run([bench, "--list"], capture_output=True, text=True).stdout
act = {f[0]: f[5] for f in map(str.split, listing.splitlines()[1:]) if f[2] == "matvec"}


def deviation(y, r):
    yd = y.astype(np.float64)
    if not np.all(np.isfinite(y)):
        return {"rel_l2": np.inf, "max_rel": np.inf, "one_minus_cos": np.inf, "max_abs": np.inf,
                "nonfinite": int(np.sum(~np.isfinite(y)))}
    e = yd - r
    err2, ref2, y2 = np.sum(e * e), np.sum(r * r), np.sum(yd * yd)
    den = np.maximum(np.abs(yd), np.abs(r))
    rel = np.abs(e)[den > 0] / den[den > 0]
    d = {"max_abs": float(np.max(np.abs(e))), "max_rel": float(rel.max()) if rel.size else 0.0,
         "nonfinite": 0, "rel_l2": float(np.sqrt(err2 / ref2)) if ref2 > 0 else
         (np.inf if err2 > 0 else 0.0)}
    if y2 > 0 and ref2 > 0:
        d["one_minus_cos"] = float(np.sum((yd / np.sqrt(y2) - r / np.sqrt(ref2)) ** 2) / 2)
    else:
        d["one_minus_cos"] = 0.0 if y2 == ref2 else 1.0
    return d


class Recomputed:  # what contracts.check reads of a result file
    def __init__(self, path, profile, rows):
        self.path, self.profile, self.rows = path, profile, rows

    def variants(self):
        return self.rows


bad, results, measured = [], [], 0
for p in profiles:
    doc = json.load(open(os.path.join(tmp, f"{p}.json")))
    dump = os.path.join(tmp, p)
    ref = np.load(os.path.join(dump, "oracle_f64.npy"))
    rows = []
    for b in doc["benchmarks"]:
        v = b["name"].split("/")[0]
        if v == "peak_read":
            continue
        y = np.load(os.path.join(dump, f"{v}.npy"))
        d = deviation(y, ref)
        if act.get(v, "f32") != "f32":
            exact = np.load(os.path.join(dump, f"oracle_exact_{act[v].lower()}.npy"))
            x = deviation(y, exact)
            d["exact_rel_l2"], d["exact_max_rel"] = x["rel_l2"], x["max_rel"]
        if "rel_l2" in b:
            measured += 1
            for k, want in d.items():
                if not (b.get(k) == want or abs(b.get(k, np.nan) - want) <= 1e-9 * abs(want)):
                    bad.append(f"--act {p}: {b['name']}: {k} {b.get(k)} in the JSON, {want} "
                               f"from the dumped output")
        elif BUSY in b.get("error_message", ""):
            print(f"note: --act {p}: {v} had no clean sample: its contract is checked on the "
                  f"deviation of its dumped output")
            row = Row(b["name"])
            row.counters = d
            rows.append(row)
        else:
            bad.append(f"--act {p}: {b['name']}: no deviation counters: "
                       f"{b.get('error_message')}")
    results.append(Recomputed(f"{p}.json (recomputed rows)", doc["context"]["activations"], rows))
bad += [f"contract broken: {line}" for line in check(os.path.join(src, "results",
                                                                   "contracts.json"), results)]
for line in bad:
    print("FAIL:", line)
print(f"contracts: {measured} rows checked against their dumped outputs, "
      f"{sum(len(r.rows) for r in results)} recomputed from them")
sys.exit(1 if bad or not measured else 0)
PY
/usr/bin/python3 "$src/plot/contracts.py" "$tmp"/*.json "$src"/results/*/*.json \
  "$src"/results/*/history/*.json || failed=1
echo "contracts_hold: $((1 - failed)) passed, $failed failed"
exit $failed
