"""bench end to end: the JSON file (Google Benchmark's format, read by its compare.py), the
fingerprint in its context, the deviation counters, and the --dump-output files, which must
match what the process measured. Run by ctest with /usr/bin/python3 (Debian's numpy)."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

bench, compare_py = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qk_check import check, finish  # noqa: E402


def run(*args):
    r = subprocess.run([bench, *args], capture_output=True, text=True)
    check(r.returncode == 0, f"bench {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
    return r


tmp = tempfile.mkdtemp(prefix="qk_bench_run_")
ROWS, COLS, IDS = 16, 512, [3, 9, 3]  # a repeated id: both copies must be identical
common = ["--shape", f"{ROWS}x{COLS}", "--experts", "3,9,3", "--repetitions", "2",
          "--min-time", "0.005", "--cold-iterations", "2", "--act", "outliers", "--seed", "7"]
a_json, b_json, dump = (os.path.join(tmp, n) for n in ("a.json", "b.json", "dump"))
r = run(*common, "--json", a_json, "--dump-output", dump)
check(r.stderr == "", f"stderr should be empty when it is not a terminal: {r.stderr!r}")
check("hot:" in r.stdout and "cold:" in r.stdout and "peak read" in r.stdout,
      "the table has hot and cold sections with the peak reference")

doc = json.load(open(a_json))
ctx = doc["context"]
for key in ("qkbench_schema", "git_commit", "compiler", "c_flags", "run_date", "cpu_model",
            "cpu_vendor", "cpu_family", "cpu_model_number", "cores", "pus", "numa_nodes",
            "cpu_caches", "isa_used", "pinning", "seed", "experts", "shape", "activations",
            "threads", "host_name", "num_cpus"):
    check(key in ctx and str(ctx[key]) != "", f"context lacks {key}")
check(ctx.get("qkbench_schema") == "1", "qkbench_schema is 1")
check(ctx.get("seed") == "7" and ctx.get("experts") == "3,9,3", "seed and experts recorded")

listing = subprocess.run([bench, "--list"], capture_output=True, text=True).stdout
variants = [f[0] for f in (l.split() for l in listing.splitlines()[1:])
            if f[2] == "matvec" and f[6] == "yes"]
check(len(variants) >= 2, f"--list names runnable matvec variants: {variants}")
runs = [b for b in doc["benchmarks"] if b.get("run_type") == "iteration"]
for v in variants:
    for temp in ("hot", "cold"):
        mine = [b for b in runs if b["name"].startswith(f"{v}/{ROWS}x{COLS}/k3/{temp}")]
        check(len(mine) == 2, f"{v} {temp}: 2 repetitions in the JSON, found {len(mine)}")
        for b in mine:
            for c in ("rel_l2", "max_abs", "max_rel", "one_minus_cos", "GBps", "GOPps",
                      "pct_peak", "real_time"):
                check(c in b and np.isfinite(b[c]), f"{b['name']} lacks a finite {c}")
            check(b["nonfinite"] == 0, f"{b['name']}: non-finite outputs")
            per_call_us = b["real_time"] * {"ns": 1e-3, "us": 1, "ms": 1e3, "s": 1e6}[
                b.get("time_unit", "ns")]
            # two clocks: Google Benchmark's over the whole loop, ours per call; under load (ctest
            # -j2) they disagreed by 1.4 %, so only a gross inconsistency fails
            check(0 < b.get("best_call_us", 0) <= per_call_us * 1.2,
                  f"{b['name']}: best_call_us {b.get('best_call_us')} is not in (0, the mean "
                  f"call {per_call_us}]")
peaks = [b for b in runs if b["name"].startswith("peak_read/")]
check(len(peaks) >= 4, "peak read rows, hot and cold")

# cold rows count the bytes a cold unit reads from memory: a repeated expert once (3,9,3: two
# experts), hot rows every call's (issue 12, item 11)
expert_bytes = ROWS * (COLS // 256) * 144
xq_bytes = {"f32": 4 * COLS, "q8k": COLS // 256 * 292}
for v in variants:
    xq = xq_bytes["f32" if v.startswith("q4k_f32_") else "q8k"]
    for temp, n_experts in (("hot", 3), ("cold", 2)):
        b = next(b for b in runs if b["name"].startswith(f"{v}/{ROWS}x{COLS}/k3/{temp}"))
        want = n_experts * expert_bytes + xq + 4 * len(IDS) * ROWS
        check(b["bytes"] == want, f"{b['name']}: bytes {b['bytes']}, expected {want} "
              f"({n_experts} experts' weights + activations + outputs)")

# Google Benchmark's compare.py accepts two such files
run(*common, "--json", b_json)
c = subprocess.run(["/usr/bin/python3", compare_py, "benchmarks", a_json, b_json],
                   capture_output=True, text=True)
check(c.returncode == 0 and "q4k_q8k_ref/16x512/k3/hot" in c.stdout,
      f"compare.py rejected the files: {c.returncode} {c.stderr[-500:]}")

# the dumped outputs are what the process measured: rel_l2 recomputed from the files equals
# the JSON's, for every variant
oracle = np.load(os.path.join(dump, "oracle_f64.npy"))
exact = np.load(os.path.join(dump, "oracle_exact_q8_k.npy"))
x = np.load(os.path.join(dump, "activations.npy"))
check(oracle.dtype == np.float64 and oracle.shape == (len(IDS) * ROWS,), "oracle f64 shape")
check(exact.dtype == np.float64 and x.dtype == np.float32 and x.shape == (COLS,), "dtypes")
check(np.all(oracle[:ROWS] == oracle[2 * ROWS:]) and np.any(oracle != 0),
      "repeated expert ids give identical oracle rows")
for v in variants:
    y = np.load(os.path.join(dump, f"{v}.npy"))
    check(y.dtype == np.float32 and y.shape == oracle.shape, f"{v}.npy dtype/shape")
    check(np.array_equal(y[:ROWS], y[2 * ROWS:]), f"{v}: repeated ids differ")
    rel = np.linalg.norm(y.astype(np.float64) - oracle) / np.linalg.norm(oracle)
    js = next(b for b in runs if b["name"].startswith(f"{v}/"))["rel_l2"]
    check(abs(rel - js) <= 1e-6 * js + 1e-15, f"{v}: rel_l2 from the files {rel} != JSON {js}")
    if v.startswith("q4k_f32_"):
        check(rel < 2e-5, f"{v}: f32 variant too far from the f64 oracle ({rel})")
    else:
        erel = np.linalg.norm(y - exact) / np.linalg.norm(exact)
        check(erel < 2e-5, f"{v}: Q8_K variant too far from the exact oracle ({erel})")

# --activations with the dumped vector reproduces every output bit for bit (f32 and f64 files)
x64 = os.path.join(tmp, "x64.npy")
np.save(x64, x.astype(np.float64))
for src in (os.path.join(dump, "activations.npy"), x64):
    dump2 = os.path.join(tmp, "dump2")
    args = [a for a in common if a not in ("--act", "outliers")]
    run(*args, "--activations", src, "--dump-output", dump2, "--hot")
    for v in variants:
        check(np.array_equal(np.load(os.path.join(dump, f"{v}.npy")),
                             np.load(os.path.join(dump2, f"{v}.npy"))),
              f"{v}: --activations {os.path.basename(src)} changed the output")

# --json does not touch an existing file until the run has succeeded (issue 12, item 7)
old = os.path.join(tmp, "old.json")
open(old, "w").write("precious")
r = subprocess.run([bench, "--json", old, "--benchmark_min_tme=1"], capture_output=True, text=True)
check(r.returncode == 2 and open(old).read() == "precious",
      f"a failed run must leave the old JSON as it was: rc {r.returncode}, {open(old).read()!r}")
check(os.listdir(tmp).count("old.json") == 1 and not [f for f in os.listdir(tmp) if "old.json." in f],
      f"no temporary file left behind: {os.listdir(tmp)}")
run(*common, "--hot", "--kernel", "q4k_f32_ref", "--json", old)
check(json.load(open(old))["context"]["qkbench_schema"] == "1", "a good run replaces the old JSON")

# Google Benchmark's flags work with the table and the JSON (issue 12, item 8)
short = ["--shape", f"{ROWS}x{COLS}", "--experts", "3,9,3", "--repetitions", "3", "--min-time",
         "0.002", "--cold-iterations", "2", "--kernel", "q4k_f32_ref,q4k_q8k_ref"]
for flag in ("--benchmark_report_aggregates_only=true", "--benchmark_display_aggregates_only=true",
             "--benchmark_enable_random_interleaving=true"):
    j = os.path.join(tmp, "flag.json")
    r = run(*short, flag, "--json", j)
    rows = [l.split()[0] for l in r.stdout.splitlines()
            if l.startswith(("q4k_f32_ref ", "q4k_q8k_ref ", "peak read"))]
    check(len(rows) == 8, f"{flag}: the table has 8 rows (2 variants, their 2 peaks; hot, cold), "
          f"found {len(rows)}:\n{r.stdout}")
    entries = [b for b in json.load(open(j))["benchmarks"] if not b["name"].startswith("peak")]
    aggregates = [b for b in entries if b.get("run_type") == "aggregate"]
    iterations = [b for b in entries if b.get("run_type") == "iteration"]
    if "report_aggregates_only" in flag:
        check(not iterations and len(aggregates) >= 4 * 4,
              f"{flag}: the JSON holds only aggregates ({len(iterations)} iterations)")
    else:
        check(len(iterations) == 4 * 3, f"{flag}: the JSON holds every repetition")
    for b in entries:
        if b.get("aggregate_name") in (None, "mean", "median"):
            check(b.get("pct_peak", 0) > 0 and b.get("peak_GBps", 0) > 0,
                  f"{flag}: {b['name']} lacks pct_peak/peak_GBps")
    med = [b for b in aggregates if b.get("aggregate_name") == "median"]
    for b in med:
        pct, gbps, peak = (b.get(k, float("nan")) for k in ("pct_peak", "GBps", "peak_GBps"))
        check(abs(pct - 100 * gbps / peak) <= 1e-6 * pct,
              f"{flag}: {b['name']}: median pct_peak {pct} is not 100 GBps / peak")

# the output of the last timed call is checked too: a variant that goes wrong only after the
# checked call fails loudly (issue 12, item 12; QK_INJECT_LATE_FAULT is the test hook)
j = os.path.join(tmp, "fault.json")
r = subprocess.run([bench, *short, "--json", j], capture_output=True, text=True,
                   env={**os.environ, "QK_INJECT_LATE_FAULT": "q4k_q8k_ref"})
err_lines = r.stderr.strip().splitlines()
check(r.returncode == 1 and len(err_lines) == 1 and "q4k_q8k_ref" in r.stderr
      and "last timed call" in r.stderr,
      f"a late fault must fail the run in one line: rc {r.returncode}, {r.stderr!r}")
check("FAILED" in r.stdout, "the table marks the failed rows")
if os.path.exists(j):
    bad = [b for b in json.load(open(j))["benchmarks"] if b["name"].startswith("q4k_q8k_ref/")]
    check(bad and all(b.get("error_occurred") for b in bad),
          "the JSON marks the failed rows as errors")
    good = [b for b in json.load(open(j))["benchmarks"] if b["name"].startswith("q4k_f32_ref/")]
    check(good and not any(b.get("error_occurred") for b in good), "the other rows stand")
else:
    check(False, "the JSON of a run with a failed row is written (its rows say which failed)")

finish("bench_run")
