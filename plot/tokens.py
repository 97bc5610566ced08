#!/usr/bin/python3
"""The tokens sweep (issue 18, `bench --tokens 1,2,4,8`) of qkbench result files as markdown:
per file and temperature, per variant and token count N, the median time of the whole batch
(MUL_MAT_ID of N tokens, each routed to its own top-k experts) with its 95 % interval, the time
per token (median / N), the speedup per token against the same variant's one-token row (the
one-token time / the time per token: how much batching saves per token), the GB/s of the batch's
bytes (each touched expert's weights once, all activations and outputs) and its % of the peak
measured in the same run, and the batch bench drew (the context's batch.t<N>: the experts it
touches, the most tokens that one expert gets).

usage: tokens.py RESULT.json... [--temperature hot|cold|decode|all]

Rows of one variant, shape, experts and temperature at two or more token counts make a sweep;
a variant measured at one N only (a GPU variant while the GPU takes one token) is named under
its table. A file without a sweep is named on stderr, left out; exit 2 when none has one, or
on unusable input (one line either way). Standard library only (results/README.md shows these
tables, written by plot/index.py)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generations  # noqa: E402
from qkresults import (TEMPERATURES, OneLineParser, Result, machine_label,  # noqa: E402
                       machine_of, parse_batch)


def sweeps(result, temperature):
    """[(series, {N: row})] of one file at one temperature: the variant rows of two or more
    token counts, in the tables' order (CPU variants, then GPU; N ascending); and the variants
    that have rows of a single N there."""
    by_series = {}
    for row in result.variants():
        if row.temperature == temperature:
            by_series.setdefault(row.series, {})[row.tokens] = row
    swept = [(s, dict(sorted(rows.items()))) for s, rows in by_series.items() if len(rows) > 1]
    swept.sort(key=lambda x: (next(iter(x[1].values())).variant.startswith(("gpu", "dp4a")),
                              x[0]))
    single = sorted({next(iter(rows.values())).variant for rows in by_series.values()
                     if len(rows) == 1})
    return swept, single


def has_sweep(result):
    return any(sweeps(result, t)[0] for t in TEMPERATURES)


def chart_series(results, temperature, shape="768x2048", experts="k8"):
    """{(variant, machine): (result, {N: row})}: what plot/plot.py's tokens_<temperature> chart
    draws, the sweep of each variant per machine among the rows of that shape and top-k, of the
    normal activation profile (another where the machine has no normal run); of several files
    of one machine, the one of most token counts, then the newest. A routing other than uniform
    is part of the machine's name: its batches differ."""
    found = {}
    for res in results:
        if str(res.context.get("shape", "")).split(" ")[0] != shape:
            continue
        if res.profile != "normal" and any(r.profile == "normal" and
                                           machine_label(r) == machine_label(res)
                                           for r in results):
            continue
        for series, rows in sweeps(res, temperature)[0]:
            if experts not in series.split("/")[1:-1]:
                continue
            machine = machine_label(res)
            if res.routing and res.routing != "uniform":
                machine += f", {res.routing} routing"
            key = (next(iter(rows.values())).variant, machine)
            rank = (len(rows), generations.rank(res))
            if key not in found or rank > found[key][0]:
                found[key] = (rank, res, rows)
    return {k: (res, rows) for k, (_, res, rows) in found.items()}


def fmt_us(seconds):
    us = seconds * 1e6
    return f"{us:.2f}" if us < 100 else f"{us:.1f}" if us < 1000 else f"{us:.0f}"


def batch_cell(result, tokens):
    """The batch's experts touched (most tokens on one expert), from the context."""
    parsed = parse_batch(result.batch(tokens))
    if parsed:
        return f"{parsed[0]} ({parsed[1]})"
    return result.batch(tokens) or "-"


def table(result, temperature, root=None):
    """The markdown lines of one file's sweep at one temperature ([] without one)."""
    swept, single = sweeps(result, temperature)
    if not swept:
        return []
    ctx = result.context
    rests = {"/".join(s.split("/")[1:-1]) for s, _ in swept}  # shape/k<k> of each series
    path = os.path.relpath(result.path, root) if root else result.path
    link = f"[{os.path.basename(path)}]({path})" if root else f"`{path}`"
    machines = sorted({" ".join(machine_of(result, r)) for _, rows in swept
                       for r in rows.values()})
    routing = result.routing or "not given"
    extra = [f"activations {result.profile}"] if result.profile != "normal" else []
    if any(not result.is_gpu_row(r) for _, rows in swept for r in rows.values()):
        extra.append(f"{ctx.get('threads', '?')} threads")
    lines = [f"#### {temperature.capitalize()}: {', '.join(machines)}, "
             f"{str(ctx.get('shape', '?'))}, routing {routing}", "",
             f"{link} (commit {ctx.get('git_commit', '?')}, {ctx.get('run_date', result.date)}; "
             f"`--tokens {ctx.get('tokens', '?')}`{''.join(', ' + e for e in extra)}). "
             "median = the whole batch's time; per token = median / N; speedup per token = "
             "the variant's one-token time / its time per token; GB/s = the batch's bytes "
             "(each touched expert's weights once, all activations and outputs) / median; "
             "experts = those the batch touches (the most tokens on one of them).", "",
             "| variant | N | experts (most on one) | median µs (95 % interval) | µs per token | "
             "speedup per token vs N = 1 | GB/s | % of peak |",
             "|---|---|---|---|---|---|---|---|"]
    for series, rows in swept:
        variant = next(iter(rows.values())).variant
        name = variant if len(rests) == 1 else \
            f"{variant} ({'/'.join(series.split('/')[1:-1])})"
        one = rows.get(1)
        for n, row in rows.items():
            lo, hi = row.interval()
            per = row.median / n
            speed = f"{one.median / per:.2f}x" if one else "-"
            pct = result.pct_of_peak(row)
            noisy = " (noisy)" if row.noisy else ""
            lines.append(f"| {name} | {n} | {batch_cell(result, n)} | {fmt_us(row.median)} "
                         f"({fmt_us(lo)}-{fmt_us(hi)}){noisy} | {fmt_us(per)} | {speed} | "
                         f"{row.gbps():.1f} | {'-' if pct is None else f'{pct:.0f}'} |")
    if single:
        lines += ["", f"Measured at one token count only: {', '.join(single)}."]
    return lines


def report(results, temperatures=TEMPERATURES, root=None):
    """The markdown lines of every file's sweep, or [] when none has one."""
    lines = []
    for res in results:
        for temp in temperatures:
            t = table(res, temp, root)
            if t:
                lines += t + [""]
    return lines[:-1] if lines else lines


def main():
    ap = OneLineParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", nargs="+")
    ap.add_argument("--temperature", choices=TEMPERATURES + ("all",), default="all")
    a = ap.parse_args()
    temps = TEMPERATURES if a.temperature == "all" else (a.temperature,)
    try:
        results = [Result(p) for p in a.results]
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"tokens: {e}", file=sys.stderr)
        return 2
    kept, left = [], []
    for res in results:
        if any(sweeps(res, t)[0] for t in temps):
            kept.append(res)
        else:
            counts = ", ".join(map(str, res.token_counts())) or "none"
            left.append(f"{res.path} (token counts: {counts})")
    at = "" if a.temperature == "all" else f" at {a.temperature}"
    if not kept:
        print(f"tokens: no file has a tokens sweep{at} (a variant measured at two or more token "
              f"counts: bench --tokens 1,2,4,8): {'; '.join(left)}", file=sys.stderr)
        return 2
    for line in left:
        print(f"tokens: {line}: left out (no variant measured at two or more token counts{at})",
              file=sys.stderr)
    print("\n".join(report(kept, temps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
