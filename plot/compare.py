#!/usr/bin/python3
"""Compares two qkbench result files and gates regressions.

usage: compare.py BASE.json NEW.json [--threshold PCT] [--alpha P]
                  [--statistic median|min|best] [--normalize peak|none|median|VARIANT]
                  [--contracts FILE] [--require-same-machine]

Pairs rows by name. For each: the change of the statistic and a two-sided Mann-Whitney U test
over the row's times per call: the repetitions of a schema-1 file, the clean samples of a
schema-2 file (qkbench_schema "2": nvbench-style sampling, samples dropped as unclean left out;
plot/qkresults.py says how files are read).
Statistics: median (default), the true median (the mean of the middle two for an even count)
everywhere. min: the fastest repetition / fastest clean sample, the test over the faster half of
each side's (with hundreds of samples the minimum follows the sample count and the odd lucky
moment: prefer best). best: on a shared machine noise only adds time, so the figure is taken
from the fast end: schema 1, the median of the repetitions' fastest single calls (best_call_us;
CPU rows only: each repetition's best call is clean of bursts of noise, and their median is
immune to the odd repetition at another clock); schema 2, the 10th percentile of the clean
samples, taken as the median of their fastest fifth (ceil(n/5)), and the test runs over that
fastest fifth of each side (a low percentile rather than the minimum: it does not drift with
the number of samples, so files with different sample counts compare fairly).
With hundreds of samples a difference of 0.1 % is already significant: p < --alpha is
necessary, the threshold decides.

Noisy rows (schema 2: bench marks a row noisy when more than 25 % of its samples were dropped
or its interval did not reach the target before the time cap; a row with more than 25 % dropped
is taken as noisy whatever its counter says): a row noisy in either file carries the mark
[noisy] after its verdict and is called SLOWER (or faster) only when the threshold is exceeded
by the whole of both 95 % intervals: new's low end over base's high end is slower by more than
the threshold (new's high end over base's low end faster by more), besides the usual change
and p. Otherwise, when its point change alone is beyond the threshold (with p < alpha, or with
too few clean samples for the test to reach alpha: 3 against 3 cannot), its word is `unsure`
(not gated). The intervals: for the median, the file's ci_low_us..ci_high_us
(schema 2) or the order-statistic interval over the repetitions (schema 1: for five repetitions
their range); for best and min on schema 2, the order-statistic 95 % interval of the 10th
percentile (widened to include the minimum for min); scaled like the times (--normalize).

On one machine, with --normalize peak (the default there) each time is multiplied by the peak
rate of its own run, so a moment at which the machine is slower as a whole does not look like a
slower kernel: schema 1, the read loop over the same bytes (its fastest repetition) or the GPU
copy; schema 2, the median of the peak samples interleaved with the row's own (peak_GBps).
A row with no peak on one side (its peak samples all dropped, or a filter left the peak row out)
is compared as it is on both sides, named in a line.
--normalize VARIANT divides by that variant's fastest repetition in the same run instead (with
a schema-2 file on either side: by that variant's statistic, so that both sides use one rule;
the reference itself is then not gated); --normalize median
divides every row's change by the median change of all paired rows (a regression moves some
rows, a faster or slower machine (or moment) moves them all). Exits 1 when a row is slower by
more than --threshold percent (default 5) with p < --alpha (default 0.05) (a noisy row: by its
whole intervals, above), or when a deviation metric of
NEW breaks its contract (--contracts, default results/contracts.json), or when a row of NEW
errored (bench marks a failed output check with error_occurred: a correctness failure, named, as
for a broken contract; on one machine and across machines alike); exits 2 on unusable input
(a file that is not a result, a time that is null, zero, NaN or not a number, a malformed
qkbench_samples, a bad argument: one line). A row of BASE that NEW lacks (neither measured nor
errored there) is listed in a
warning line and does not fail the comparison (a filter or a variant that was not built
leaves rows out; a check that failed is an error row, above).

Batched tokens (issue 18, `bench --tokens 1,2,4,8`): a row of N > 1 tokens is named
.../k<k>/t<N>/<temperature> (its time the whole batch's), so it pairs only with the row of the
same N (a one-token row keeps its name: older files and the CI gate's baseline still pair); a
file whose counter tokens contradicts a row's name is refused (exit 2). A line says how many
paired rows each N has. A row of N > 1 whose batch differs between the files (both give the
routing, uniform or skewed, and they differ; or both list the experts of its N tokens, and a
token's differ; or both describe batch.t<N>, its touched experts and its most loaded expert, and
the descriptions differ) times other work: it is not compared, named in a warning line. Of the
experts, the fingerprint holds token 0's (a one-token row's work): a sweep's one-token rows are
gated against a one-token file of the same seed. --normalize VARIANT divides each row by the reference's row of the same
temperature and N.

A schema-1 file against a schema-2 file (on one machine, before and after issue 13): rows are
paired by their names without Google Benchmark's suffixes (/iterations:N/manual_time), the
repetitions of one side against the clean samples of the other (both times per call; a
repetition, a mean over many calls, spreads less than a sample); the two schemas measure the
peak differently (the fastest repetition of a read loop, or a 1 GiB GPU copy, against a read
stream of the row's own bytes interleaved with it), so times are not normalized by the peak
(--normalize none, said in a line) and the efficiency column, across machines, compares two
different peaks (said in a line). --statistic best works there but compares two different
figures, each repetition's fastest single call (a minimum over many calls: lower by
construction) against the 10th percentile of samples, and says so in a warning line; prefer the
median across schemas.

When the two files come from different machines (their fingerprints differ) it says so and
does not gate on time (the ratios compare hardware, not code; --require-same-machine makes that
an error, exit 2). It then answers two questions in two columns: how the time changed
(absolute by default: the same time on a card with more bandwidth is the same time), with the
test and a word (faster/slower/same/unsure, not gated), and how the efficiency changed (each
row's GB/s as % of its own machine's peak measured in its own run, base -> new, and the relative
change; schema 2: the file's pct_peak, the medians of the row's samples and of its interleaved
peak samples, and for best/min the same statistic of both), which carries no verdict. With
--normalize median or VARIANT the time column is that relative figure and carries no word
either. Several runs of one side are pooled into one file by plot/pool.py;
plot/generations.py tables many machines at once."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deps import need  # noqa: E402

need("scipy.stats")
from scipy.stats import mannwhitneyu  # noqa: E402

import contracts as contract_check  # noqa: E402
from qkresults import (OneLineParser, Result, batch_change, fingerprint,  # noqa: E402
                       lower_tail, median, order_interval, row_key)

NOISY = " [noisy]"


def pick_of(statistic):
    """The figure of a row's series: min for min; the median of the series otherwise (best's
    series is already the fast end: its median is the 10th percentile, schema 2, or the median
    of the best calls, schema 1)."""
    return min if statistic == "min" else median


def series(row, statistic):
    """The row's times per call for the statistic: the repetitions' times (schema 1) or the clean
    samples (schema 2); with best, each repetition's fastest single call (schema 1) or the fastest
    fifth of the clean samples (schema 2)."""
    if statistic != "best":
        return list(row.seconds)
    if row.schema == 2:
        return lower_tail(row.seconds)
    if len(row.best) != len(row.seconds):
        raise ValueError(f"{row.name}: no best_call_us in every repetition (a GPU row, or a "
                         "file from an older bench)")
    return list(row.best)


def factor_of(result, row, mode, statistic, sampled):
    """The constant each of the row's times is multiplied by under --normalize."""
    if mode in ("none", "median"):  # median: scaled after pairing, see main
        return 1.0
    if mode != "peak":  # a reference variant of the same run, at the same temperature
        ref = [r for r in result.variants(row.tokens) if r.variant == mode and
               r.temperature == row.temperature]
        if not ref:
            raise ValueError(f"{result.path}: no {mode} row to normalize {row.name} by")
        rs = series(ref[0], statistic)
        return 1 / (pick_of(statistic)(rs) if sampled else min(rs))
    return result.peak_for(row)  # time x peak rate: bytes the peak would move (None: no peak)


def interval(row, statistic, point):
    """(low, high) of the row's statistic, before normalization (see the docstring)."""
    if statistic == "median":
        lo, hi = row.interval()
    elif row.schema == 2:
        lo, hi = order_interval(row.seconds, 0.1)
    else:
        lo, hi = order_interval(series(row, statistic))
    return min(lo, point), max(hi, point)


def efficiency(result, row, statistic, pick):
    """The row's GB/s, at the statistic's time, as % of its own run's peak (None without one).
    Schema 2: the file's pct_peak for the median; for best and min the same statistic of the
    row's clean samples and of the peak samples interleaved with them."""
    if result.schema == 2:
        if statistic == "median" and row.pct_peak is not None:
            return row.pct_peak
        if row.peak_seconds:
            return 100 * pick(series_of(row.peak_seconds, statistic)) / \
                pick(series(row, statistic))
    peak = result.peak_for(row)
    if not peak or not row.counters.get("bytes"):
        return None
    return 100 * row.counters["bytes"] / pick(series(row, statistic)) / peak


def series_of(times, statistic):
    return lower_tail(times) if statistic == "best" else list(times)


def main():
    ap = OneLineParser(description=__doc__.split("\n")[0],
                       epilog=__doc__.split("\n\n", 2)[2],  # the rules: statistics, noisy rows
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base")
    ap.add_argument("new")
    ap.add_argument("--threshold", type=float, default=5.0)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--normalize", default=None,
                    help="peak (the default on one machine), none (the default across "
                         "machines, whose efficiency is a column of its own, and between a "
                         "schema-1 and a schema-2 file), median (every change relative to the "
                         "median change of all paired rows), or a variant of both runs: times "
                         "relative to its fastest repetition in the same run (its statistic "
                         "with a schema-2 file)")
    ap.add_argument("--statistic", choices=("median", "min", "best"), default="median",
                    help="median (default); min: the fastest repetition or sample; best: the "
                         "median of the repetitions' best calls (schema 1, CPU rows) or the "
                         "10th percentile of the clean samples (schema 2)")
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
    mixed = base.schema != new.schema
    sampled = 2 in (base.schema, new.schema)  # rows paired by their names without suffixes
    if not same:
        diff = ", ".join(f"{k}: {fb.get(k)} -> {fn.get(k)}" for k in sorted(set(fb) | set(fn))
                         if fb.get(k) != fn.get(k))
        print(f"compare: WARNING: the files come from different machines or setups ({diff})")
        if a.require_same_machine:
            print("compare: --require-same-machine: refusing to compare", file=sys.stderr)
            return 2
        print("compare: times are shown but not gated")
    if mixed:
        print(f"compare: BASE is qkbench_schema {base.schema} and NEW {new.schema}: rows paired "
              "by name without Google Benchmark's suffixes, repetitions against clean samples; "
              "the two schemas measure the peak differently, so times are not normalized by it"
              + ("" if same else " and the efficiency column compares two kinds of peak"))
    if mixed and a.statistic == "best":
        print("compare: WARNING: --statistic best between schemas 1 and 2 compares each "
              "repetition's fastest single call (a minimum over many calls) with the 10th "
              "percentile of samples: the schema-1 figure is lower by construction, so a change "
              "toward the schema-2 file reads slower than the code is")
    if a.normalize is None:
        a.normalize = "peak" if same and not mixed else "none"
    elif a.normalize == "peak" and not same:
        print("compare: across machines the peak-normalized figure is the efficiency column; "
              "the time column is absolute")
        a.normalize = "none"
    elif a.normalize == "peak" and mixed:
        print("compare: --normalize peak between schemas 1 and 2: times compared as they are "
              "(--normalize none)")
        a.normalize = "none"
    pick = pick_of(a.statistic)
    key = row_key if sampled else (lambda n: n)
    base_rows = {}
    for n, r in base.rows.items():
        base_rows.setdefault(key(n), r)
    pairs = []
    seen = set()
    no_peak = []  # rows without an in-run peak in BASE or NEW: compared as they are
    other_batch = {}  # rows of N > 1 tokens whose batch differs: {name: why}
    for n, nr in new.rows.items():
        name = key(n)
        br = base_rows.get(name)
        if br is None or nr.is_peak or nr.variant == a.normalize or name in seen:
            continue
        seen.add(name)
        # the name holds N (t<N>) and each file's counter agrees with it (qkresults): rows of
        # different N never meet here
        why = batch_change(base.context, new.context, nr.tokens)
        if why:
            other_batch[name] = why
            continue
        try:
            fbr = factor_of(base, br, a.normalize, a.statistic, sampled)
            fnr = factor_of(new, nr, a.normalize, a.statistic, sampled)
            if fbr is None or fnr is None:  # one side alone cannot be normalized: neither is
                fbr = fnr = 1.0
                no_peak.append(name)
            pairs.append((name, br, nr, fbr, fnr,
                          [t * fbr for t in series(br, a.statistic)],
                          [t * fnr for t in series(nr, a.statistic)]))
        except ValueError as e:
            print(f"compare: {e}", file=sys.stderr)
            return 2
    paired = len(pairs)
    # median: the machine's own speed change, the middle of every row's; a regression moves a
    # few rows, a faster or slower machine (or moment) moves them all
    factor = 1.0
    if a.normalize == "median" and pairs:
        ratios = sorted(pick(ns) / pick(bs) for *_, bs, ns in pairs)
        mid = len(ratios) // 2
        factor = ratios[mid] if len(ratios) % 2 else (ratios[mid - 1] + ratios[mid]) / 2
        print(f"compare: the median row changed by {(factor - 1) * 100:+.1f} %; changes below "
              "are relative to it")
    shown = (lambda r: pick(series(r, "best"))) if a.statistic == "best" else \
        (lambda r: r.median)  # the times the table shows, before any normalization
    failures = 0
    noisy_rows = unsure = 0
    # the names in full (a batch's t<N> included): 58 columns, wider for a longer name
    w = max([58] + [len(p[0]) for p in pairs])
    if same:
        print(f"{'benchmark':{w}} {'base':>10} {'new':>10} {'change':>8} {'p':>7}  verdict")
    else:
        print(f"{'benchmark':{w}} {'base':>10} {'new':>10} {'time':>8} {'p':>7}  "
              f"{'%peak':>13} {'efficiency':>10}  time verdict (not gated)")
    for name, br, nr, fbr, fnr, bs, ns in pairs:
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
        faster = change < -a.threshold and p < a.alpha
        noisy = br.noisy or nr.noisy
        verdict = "SLOWER" if slower else "faster" if faster else "same"
        if noisy:
            noisy_rows += 1
            blo, bhi = (x * fbr for x in interval(br, a.statistic, pick(series(br, a.statistic))))
            nlo, nhi = (x * fnr / factor for x in
                        interval(nr, a.statistic, pick(series(nr, a.statistic))))
            if slower and not (nlo / bhi - 1) * 100 > a.threshold:
                slower, verdict = False, "unsure"
            if faster and not (nhi / blo - 1) * 100 < -a.threshold:
                faster, verdict = False, "unsure"
            if verdict == "same" and abs(change) > a.threshold:  # too few samples for the test
                verdict = "unsure"
            unsure += verdict == "unsure"
        mark = NOISY if noisy else ""
        if not same:  # two questions, two columns; a word only on the absolute time
            eb, en = efficiency(base, br, a.statistic, pick), efficiency(new, nr, a.statistic, pick)
            effs = f"{f'{eb:.1f}->{en:.1f}%' if eb and en else '-':>13}"
            effc = f"{(en / eb - 1) * 100:+9.1f}%" if eb and en else f"{'-':>10}"
            word = verdict.lower() if a.normalize == "none" else "-"
            print(f"{name:{w}} {shown(br) * 1e6:9.2f}u {shown(nr) * 1e6:9.2f}u "
                  f"{change:+7.1f}% {p:7.4f}  {effs} {effc}  {word}{mark}")
            continue
        if slower and same:
            failures += 1
        print(f"{name:{w}} {shown(br) * 1e6:9.2f}u {shown(nr) * 1e6:9.2f}u "
              f"{change:+7.1f}% {p:7.4f}  {verdict}{mark}")
    if not paired and not new.errors:  # NEW's rows all errored: a correctness failure, below
        why = f" measuring the same batch ({len(other_batch)} namesakes measure another)" \
            if other_batch else ""
        print(f"compare: no benchmark of NEW has a namesake in BASE{why}", file=sys.stderr)
        return 2
    try:
        broken = contract_check.check(a.contracts, [new]) if a.contracts else []
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"compare: --contracts: {e}", file=sys.stderr)
        return 2
    errored = [f"{name}: {msg}" for name, msg in sorted(new.errors.items())]
    new_names = {key(n) for n in new.rows} | {key(n) for n in new.errors}
    missing = sorted(key(n) for n, r in base.rows.items() if not r.is_peak and
                     key(n) not in new_names and r.variant != a.normalize)
    by_tokens = {}
    for _, br, *_ in pairs:
        by_tokens[br.tokens] = by_tokens.get(br.tokens, 0) + 1
    if any(t > 1 for t in by_tokens):
        print("compare: batched tokens: a row of N > 1 tokens (t<N> in its name, its time the "
              "whole batch's) is paired only with the row of the same N: "
              + ", ".join(f"N = {t}: {c} rows" for t, c in sorted(by_tokens.items())))
    if other_batch:
        print(f"compare: WARNING: {len(other_batch)} rows of batched tokens measure another "
              "batch in BASE than in NEW, not compared: "
              + ", ".join(f"{n} ({why})" for n, why in other_batch.items()))
    if no_peak:
        print(f"compare: {len(no_peak)} rows with no in-run peak in BASE or NEW (its samples all "
              "dropped, or a filter left the peak row out), their times compared as they are: "
              f"{', '.join(no_peak)}")
    if missing:
        print(f"compare: WARNING: {len(missing)} rows of BASE are missing from NEW (not "
              f"failed): {', '.join(missing)}")
    if noisy_rows:
        print(f"compare: {noisy_rows} rows noisy in BASE or NEW (marked{NOISY}: many samples "
              "dropped, or the interval short of bench's target): a verdict on them needs the "
              "threshold exceeded between the near ends of both 95 % intervals; "
              f"{unsure} of them 'unsure' (beyond it by the point change only, not gated)")
    for line in broken:
        print(f"contract: {line}")
    for line in errored:  # a failed output check in NEW: a correctness failure
        print(f"errored in NEW: {line}")
    best = {1: "median of the repetitions' fastest single calls",
            2: "10th percentile of the clean samples"}
    how = {"median": "median", "min": "fastest repetition" if not sampled else
           "fastest repetition or clean sample" if mixed else "fastest clean sample",
           "best": " / ".join(dict.fromkeys(best[s] for s in (base.schema, new.schema)))}
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
