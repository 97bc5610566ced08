#!/usr/bin/python3
"""Pools several runs of the same benchmarks on the same machine into one result file.

usage: pool.py OUT.json IN.json [IN.json ...]

The repetitions of every run are kept side by side (the context is the first file's, with
`pooled_runs` added), so plot/compare.py sees one row per benchmark with all their
repetitions; its run_date is the latest of the pooled runs' (so plot/generations.py, which
prefers a pooled file on a tie of dates, takes it over the runs it pools). A machine's state differs from one process to the next (the cores a run lands
on, where its buffers fall in the caches): the fastest of several runs is steadier than any
one of them. Files from different machines or settings are refused (exit 2)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qkresults import Result, fingerprint, load  # noqa: E402


def main(argv):
    if len(argv) < 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    out, paths = argv[1], argv[2:]
    try:
        docs = [load(p) for p in paths]
        for p in paths:
            Result(p)  # every row's times checked
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"pool: {e}", file=sys.stderr)
        return 2
    first = fingerprint(docs[0]["context"])
    for path, doc in zip(paths[1:], docs[1:]):
        if fingerprint(doc["context"]) != first:
            print(f"pool: {path}: another machine or setting than {paths[0]}", file=sys.stderr)
            return 2
    pooled = dict(docs[0])
    dates = [str(d["context"].get("run_date", "")) for d in docs]
    pooled["context"] = dict(docs[0]["context"], pooled_runs=len(docs))
    if any(dates):
        pooled["context"]["run_date"] = max(dates)
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
