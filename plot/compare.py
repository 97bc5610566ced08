#!/usr/bin/python3
"""Compares two qkbench result files and gates regressions.

usage: compare.py BASE.json NEW.json [--threshold PCT] [--alpha P]
                  [--statistic median|min|best] [--normalize peak|none|median|VARIANT]
                  [--contracts FILE] [--require-same-machine]

Pairs rows by name. For each: the change of the median, of the fastest repetition (--statistic
min) or of the median of the repetitions' fastest single calls (--statistic best, CPU rows:
noise on a shared machine comes in bursts of milliseconds, so each repetition's best call is
clean of it, and their median is immune to the odd repetition at another clock), and a
two-sided Mann-Whitney U test over the repetitions (with min, over the faster half of each
side's).
On one machine, with --normalize peak (the default there) each time is multiplied by the peak
rate of its own run (the read loop over the same bytes, or the GPU copy), so a moment at which
the machine is slower as a whole does not look like a slower kernel; --normalize VARIANT
divides by that variant's fastest repetition in the same run instead (the reference itself is
then not gated); --normalize median
divides every row's change by the median change of all paired rows (a regression moves some
rows, a faster or slower machine moves them all). Exits 1 when a row is slower by more than
--threshold percent (default 5) with p < --alpha (default 0.05), or when a deviation metric of
NEW breaks its contract (--contracts, default results/contracts.json), or when a row of NEW
errored (bench marks a failed output check with error_occurred: a correctness failure, named, as
for a broken contract; on one machine and across machines alike); exits 2 on unusable input
(a file that is not a result, a time that is null, zero, NaN or not a number, a bad argument:
one line). A row of BASE that NEW lacks (neither measured nor errored there) is listed in a
warning line and does not fail the comparison (a filter or a variant that was not built
leaves rows out; a check that failed is an error row, above). The time of a row is the true
median of its repetitions (the mean of the middle two for an even count) everywhere.

When the two files come from different machines (their fingerprints differ) it says so and
does not gate on time (the ratios compare hardware, not code; --require-same-machine makes that
an error, exit 2). It then answers two questions in two columns: how the time changed
(absolute by default: the same time on a card with more bandwidth is the same time), with the
test and a word (faster/slower/same, not gated), and how the efficiency changed (each row's
GB/s as % of its own machine's peak measured in its own run, base -> new, and the relative
change), which carries no verdict. With --normalize median or VARIANT the time column is that
relative figure and carries no word either. Several runs of one side are pooled into one file
by plot/pool.py; plot/generations.py tables many machines at once."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deps import need  # noqa: E402

need("scipy.stats")
from scipy.stats import mannwhitneyu  # noqa: E402

import contracts as contract_check  # noqa: E402
from qkresults import OneLineParser, Result, fingerprint, median  # noqa: E402


def series(row, statistic):
    """The row's per-repetition figures for the statistic: the repetitions' times per call, or
    (best) each repetition's fastest single call."""
    if statistic != "best":
        return list(row.seconds)
    if len(row.best) != len(row.seconds):
        raise ValueError(f"{row.name}: no best_call_us in every repetition (a GPU row, or a "
                         "file from an older bench)")
    return list(row.best)


def normalized(result, row, mode, statistic):
    times = series(row, statistic)
    if mode in ("none", "median"):  # median: scaled after pairing, see main
        return times
    if mode != "peak":  # a reference variant of the same run, at the same temperature
        ref = [r for r in result.variants() if r.variant == mode and
               r.temperature == row.temperature]
        if not ref:
            raise ValueError(f"{result.path}: no {mode} row to normalize {row.name} by")
        return [t / min(series(ref[0], statistic)) for t in times]
    peak = result.peak_for(row)
    if not peak:
        return times
    return [t * peak for t in times]  # time x peak rate: bytes the peak would move


def efficiency(result, row, statistic, pick):
    """The row's GB/s, at the statistic's time, as % of its own run's peak (None without one)."""
    peak = result.peak_for(row)
    if not peak or not row.counters.get("bytes"):
        return None
    return 100 * row.counters["bytes"] / pick(series(row, statistic)) / peak


def main():
    ap = OneLineParser(description=__doc__.split("\n")[0])
    ap.add_argument("base")
    ap.add_argument("new")
    ap.add_argument("--threshold", type=float, default=5.0)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--normalize", default=None,
                    help="peak (the default on one machine), none (the default across "
                         "machines, whose efficiency is a column of its own), median (every "
                         "change relative to the median change of all paired rows), or a "
                         "variant of both runs: times relative to its fastest repetition in "
                         "the same run")
    ap.add_argument("--statistic", choices=("median", "min", "best"), default="median")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--contracts", default=os.path.join(here, "..", "results", "contracts.json"))
    ap.add_argument("--require-same-machine", action="store_true")
    a = ap.parse_args()
    try:
        base, new = Result(a.base), Result(a.new)
        if a.contracts:
            try:
                contract_check.load(a.contracts)
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise ValueError(f"--contracts: {e}") from None
    except (OSError, ValueError, KeyError) as e:
        print(f"compare: {e}", file=sys.stderr)
        return 2
    fb, fn = fingerprint(base.context), fingerprint(new.context)
    same = fb == fn
    if not same:
        diff = ", ".join(f"{k}: {fb.get(k)} -> {fn.get(k)}" for k in sorted(set(fb) | set(fn))
                         if fb.get(k) != fn.get(k))
        print(f"compare: WARNING: the files come from different machines or setups ({diff})")
        if a.require_same_machine:
            print("compare: --require-same-machine: refusing to compare", file=sys.stderr)
            return 2
        print("compare: times are shown but not gated")
    if a.normalize is None:
        a.normalize = "peak" if same else "none"
    elif a.normalize == "peak" and not same:
        print("compare: across machines the peak-normalized figure is the efficiency column; "
              "the time column is absolute")
        a.normalize = "none"
    # best: the median of the repetitions' fastest calls (the fastest call of all follows the
    # odd moment the core clocks higher; the median of many best calls does not)
    pick = min if a.statistic == "min" else median
    pairs = []
    for name, nr in new.rows.items():
        br = base.rows.get(name)
        if br is None or nr.is_peak or nr.variant == a.normalize:
            continue
        try:
            pairs.append((name, br, nr, normalized(base, br, a.normalize, a.statistic),
                          normalized(new, nr, a.normalize, a.statistic)))
        except ValueError as e:
            print(f"compare: {e}", file=sys.stderr)
            return 2
    paired = len(pairs)
    # median: the machine's own speed change, the middle of every row's; a regression moves a
    # few rows, a faster or slower machine (or moment) moves them all
    factor = 1.0
    if a.normalize == "median" and pairs:
        ratios = sorted(pick(ns) / pick(bs) for _, _, _, bs, ns in pairs)
        mid = len(ratios) // 2
        factor = ratios[mid] if len(ratios) % 2 else (ratios[mid - 1] + ratios[mid]) / 2
        print(f"compare: the median row changed by {(factor - 1) * 100:+.1f} %; changes below "
              "are relative to it")
    shown = (lambda r: pick(series(r, "best"))) if a.statistic == "best" else \
        (lambda r: r.median)  # the times the table shows, before any normalization
    failures = 0
    if same:
        print(f"{'benchmark':58} {'base':>10} {'new':>10} {'change':>8} {'p':>7}  verdict")
    else:
        print(f"{'benchmark':58} {'base':>10} {'new':>10} {'time':>8} {'p':>7}  "
              f"{'%peak':>13} {'efficiency':>10}  time verdict (not gated)")
    for name, br, nr, bs, ns in pairs:
        ns = [t / factor for t in ns]
        change = (pick(ns) / pick(bs) - 1) * 100
        # with the min, the test too looks at the faster half of each side: the slow tail is
        # the machine's noise, not the code
        tb = sorted(bs)[:max(2, len(bs) // 2)] if a.statistic == "min" else bs
        tn = sorted(ns)[:max(2, len(ns) // 2)] if a.statistic == "min" else ns
        if len(tb) >= 2 and len(tn) >= 2 and (set(tb) != set(tn)):
            p = mannwhitneyu(tb, tn, alternative="two-sided").pvalue
        else:
            p = 1.0
        slower = change > a.threshold and p < a.alpha
        verdict = "SLOWER" if slower else "faster" if change < -a.threshold and p < a.alpha \
            else "same"
        if not same:  # two questions, two columns; a word only on the absolute time
            eb, en = efficiency(base, br, a.statistic, pick), efficiency(new, nr, a.statistic, pick)
            effs = f"{f'{eb:.1f}->{en:.1f}%' if eb and en else '-':>13}"
            effc = f"{(en / eb - 1) * 100:+9.1f}%" if eb and en else f"{'-':>10}"
            word = verdict.lower() if a.normalize == "none" else "-"
            print(f"{name[:58]:58} {shown(br) * 1e6:9.2f}u {shown(nr) * 1e6:9.2f}u "
                  f"{change:+7.1f}% {p:7.4f}  {effs} {effc}  {word}")
            continue
        if slower and same:
            failures += 1
        print(f"{name[:58]:58} {shown(br) * 1e6:9.2f}u {shown(nr) * 1e6:9.2f}u "
              f"{change:+7.1f}% {p:7.4f}  {verdict}")
    if not paired:
        print("compare: no benchmark of NEW has a namesake in BASE", file=sys.stderr)
        return 2
    try:
        broken = contract_check.check(a.contracts, [new]) if a.contracts else []
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"compare: --contracts: {e}", file=sys.stderr)
        return 2
    errored = [f"{name}: {msg}" for name, msg in sorted(new.errors.items())]
    missing = sorted(n for n, r in base.rows.items() if not r.is_peak and n not in new.rows
                     and n not in new.errors and r.variant != a.normalize)
    if missing:
        print(f"compare: WARNING: {len(missing)} rows of BASE are missing from NEW (not "
              f"failed): {', '.join(missing)}")
    for line in broken:
        print(f"contract: {line}")
    for line in errored:  # a failed output check in NEW: a correctness failure
        print(f"errored in NEW: {line}")
    how = {"median": "median", "min": "fastest repetition",
           "best": "median of the repetitions' fastest single calls"}
    rel = {"none": "", "median": " relative to the median row's change",
           "peak": " of times relative to the in-run peak"}.get(
        a.normalize, f" of times relative to the in-run {a.normalize}")
    if not same:
        rel = {"none": ", absolute"}.get(a.normalize, rel)
        print(f"compare: {paired} benchmarks paired across machines, not gated: time = the "
              f"change of the {how[a.statistic]}{rel}; %peak = GB/s as % of each machine's own "
              f"peak in its own run, efficiency = its relative change; {len(broken)} contract "
              f"violations, {len(errored)} errored rows")
        return 1 if broken or errored else 0
    print(f"compare: {paired} benchmarks paired, {failures} slower beyond {a.threshold:g} % "
          f"(p < {a.alpha:g}) by the {how[a.statistic]}{rel}, {len(broken)} contract violations, "
          f"{len(errored)} errored rows")
    return 1 if failures or broken or errored else 0


if __name__ == "__main__":
    sys.exit(main())
