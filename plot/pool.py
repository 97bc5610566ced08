#!/usr/bin/python3
"""Pools several runs of the same benchmarks on the same machine into one result file.

usage: pool.py OUT.json IN.json [IN.json ...]

Schema 1 (qkbench_schema "1"): the repetitions of every run are kept side by side (the context
is the first file's, with `pooled_runs` added), so plot/compare.py sees one row per benchmark
with all their repetitions.
Schema 2 (sampled rows): a valid schema-2 file with one entry per row whose qkbench_samples
record is the runs' records end to end (time_us, dropped, peak_us, peak_dropped, kernel_us, in the order of
the files given), and whose entry is recomputed from the clean samples: real_time = their
median, samples, dropped, min_us, cv_pct, ci_low_us/ci_high_us (the order-statistic 95 %
interval of the median, plot/qkresults.py order_interval), GBps, GOPps (the first run's
operations over the new median), peak_us / peak_GBps / pct_peak (the median of the interleaved
peak samples at the clean indices), kernel_us (the median of the CUPTI samples); noisy = 1 when
any run marked the row noisy or more than 25 % of the pooled samples were dropped (a pooled
interval is narrower than each run's, but a run that could not measure the row cleanly stays
visible); the deviation counters and calls_per_sample are the first run's. A row errored in any
run is written as its first errored entry (a failed check is never pooled away); a row skipped in
every run as the first run's skipped entry; one skipped in some runs is pooled from the others.
Files of the two schemas are not pooled together.

Either way run_date is the latest of the pooled runs' (so plot/generations.py, which prefers a
pooled file on a tie of dates, takes it over the runs it pools). A machine's state differs from
one process to the next (the cores a run lands on, where its buffers fall in the caches): the
fastest of several runs is steadier than any one of them. Files from different machines or
settings are refused (exit 2), as are runs whose batches of N > 1 tokens differ (issue 18: the
routing, or the context's batch.t<N>, where both files say) and any unusable file (one line)."""
import json
import math
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qkresults import (NOISY_DROPPED, UNIT, Result, batch_change, finite,  # noqa: E402
                       fingerprint, load, median, order_interval, row_key, schema_of)

SAMPLE_KEYS = ("time_us", "dropped", "peak_us", "peak_dropped", "kernel_us")


def pool_schema2(docs):
    """The pooled benchmarks and qkbench_samples of schema-2 documents (already checked)."""
    order, entries, records = [], {}, {}
    for doc in docs:
        for b in doc["benchmarks"]:
            if b.get("run_type") == "aggregate":
                continue
            row = row_key(b.get("run_name", b["name"]))
            if row not in entries:
                order.append(row)
            entries.setdefault(row, []).append(b)
            rec = doc["qkbench_samples"].get(row)
            if rec is not None and not (b.get("error_occurred") or b.get("skipped")):
                records.setdefault(row, []).append(rec)
    benchmarks, samples = [], {}
    for row in order:
        bs = entries[row]
        errored = [b for b in bs if b.get("error_occurred")]
        if errored or row not in records:
            benchmarks.append(dict(errored[0] if errored else bs[0]))
            continue
        recs = records[row]
        keys = [k for k in SAMPLE_KEYS if all(k in r for r in recs)]
        if any(k in r and k not in keys for r in recs for k in SAMPLE_KEYS):
            missing = [k for k in SAMPLE_KEYS if any(k in r for r in recs) and k not in keys]
            raise ValueError(f"{row}: {', '.join(missing)} in some runs' samples and not in "
                             "others")
        rec = {k: [x for r in recs for x in r[k]] for k in keys}
        samples[row] = rec
        first = next(b for b in bs if not (b.get("error_occurred") or b.get("skipped")))
        clean = [i for i, c in enumerate(rec["dropped"]) if c == 0]
        times = [rec["time_us"][i] for i in clean]
        med = median(times)
        e = dict(first)
        e["real_time"] = med
        e["time_unit"] = "us"
        e.pop("cpu_time", None)
        lo, hi = order_interval(times)
        total = len(rec["dropped"])
        dropped = total - len(clean)
        e.update(samples=len(clean), dropped=dropped, min_us=min(times), ci_low_us=lo,
                 ci_high_us=hi,
                 cv_pct=100 * statistics.stdev(times) / statistics.mean(times)
                 if len(times) > 1 else 0.0)
        noisy = any(b.get("noisy") for b in bs) or dropped > NOISY_DROPPED * total
        e["noisy"] = 1 if noisy else 0
        nbytes = e.get("bytes")
        if nbytes:
            e["GBps"] = nbytes / (med * 1e-6) * 1e-9
        if finite(first.get("GOPps")):  # the same operations per call over the pooled median
            t0 = first["real_time"] * UNIT[first.get("time_unit", "ns")]
            e["GOPps"] = first["GOPps"] * t0 / (med * 1e-6)
        for k in ("peak_us", "pct_peak", "peak_GBps"):  # recomputed below, or absent
            e.pop(k, None)
        peaks = [t for t, c in zip(rec.get("peak_us", []), rec.get("peak_dropped", [])) if c == 0]
        if peaks:  # none clean: no peak counters, as bench writes such a row
            peak = median(peaks)
            e["peak_us"] = peak
            e["pct_peak"] = 100 * peak / med
            if nbytes:
                e["peak_GBps"] = nbytes / (peak * 1e-6) * 1e-9
        if "kernel_us" in rec:
            kernel = [rec["kernel_us"][i] for i in clean if rec["kernel_us"][i] is not None]
            if kernel:
                e["kernel_us"] = median(kernel)
        for k, v in list(e.items()):
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"{row}: pooled {k} is not finite")
        benchmarks.append(e)
    return benchmarks, samples


def main(argv):
    if len(argv) < 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    out, paths = argv[1], argv[2:]
    try:
        docs = [load(p) for p in paths]
        results = [Result(p) for p in paths]  # every row's times checked
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"pool: {e}", file=sys.stderr)
        return 2
    first = fingerprint(docs[0]["context"])
    for path, doc, res in zip(paths[1:], docs[1:], results[1:]):
        # every token's experts (the fingerprint holds token 0's): pooled rows are one batch
        if fingerprint(doc["context"]) != first or \
                doc["context"].get("experts") != docs[0]["context"].get("experts"):
            print(f"pool: {path}: another machine or setting than {paths[0]}", file=sys.stderr)
            return 2
        for n in sorted(set(res.token_counts()) & set(results[0].token_counts())):
            why = batch_change(docs[0]["context"], doc["context"], n)
            if why:
                print(f"pool: {path}: another batch of {n} tokens than {paths[0]} ({why})",
                      file=sys.stderr)
                return 2
    schemas = [schema_of(d, p) for d, p in zip(docs, paths)]
    if len(set(schemas)) > 1:
        i = next(i for i, s in enumerate(schemas) if s != schemas[0])
        print(f"pool: {paths[i]}: qkbench_schema {schemas[i]}, {paths[0]} is {schemas[0]}: "
              "files of the two schemas are not pooled together", file=sys.stderr)
        return 2
    pooled = dict(docs[0])
    dates = [str(d["context"].get("run_date", "")) for d in docs]
    pooled["context"] = dict(docs[0]["context"], pooled_runs=len(docs))
    if any(dates):
        pooled["context"]["run_date"] = max(dates)
    if schemas[0] == 2:
        try:
            pooled["benchmarks"], pooled["qkbench_samples"] = pool_schema2(docs)
        except ValueError as e:
            print(f"pool: {e}", file=sys.stderr)
            return 2
    else:
        pooled["benchmarks"] = [b for d in docs for b in d["benchmarks"]
                                if b.get("run_type") != "aggregate"]
    try:
        with open(out, "w") as f:
            json.dump(pooled, f, indent=1)
    except OSError as e:
        print(f"pool: {out}: {e.strerror or e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
