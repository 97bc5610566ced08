#!/usr/bin/python3
"""Charts from qkbench result files: throughput per variant by machine (with % of each
machine's own measured peak), error vs speed, a roofline against each machine's measured
bandwidth, error by activation profile, and the hardware generations (speedup of each machine
against a base machine per variant, from the newest file of each machine: plot/generations.py).
PNG and SVG. Reads both result schemas (plot/qkresults.py): for a schema-2 file the time of a
row is the median of its clean samples, its % of peak the file's pct_peak (row and peak samples
of one window), and its throughput bar carries an error bar over the 95 % interval of that
median (ci_low_us..ci_high_us); its decode rows (GPU: warm launches, cold weights) get
throughput_decode.png/.svg.

usage: plot.py RESULT.json... [-o OUT_DIR] [--base MACHINE]...
       (e.g. plot/plot.py results/*/*.json -o plots/)"""
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deps import need  # noqa: E402

need("matplotlib.pyplot")
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import generations  # noqa: E402
from qkresults import OneLineParser, Result  # noqa: E402

MARKERS = "osD^vP*Xh<>"
PROFILE_ORDER = ["normal", "uniform20", "outliers", "swiglu", "lognormal", "zero_blocks"]
GATE_SHAPE = "768x2048"  # the charts are of the gate projection (--shape gate or up)


def is_gate(res):
    return str(res.context.get("shape", "")).split(" ")[0] == GATE_SHAPE


def save(fig, out, name):
    for ext in ("png", "svg"):
        fig.savefig(os.path.join(out, f"{name}.{ext}"), dpi=130, bbox_inches="tight")
    plt.close(fig)
    print(f"plot: {os.path.join(out, name)}.png/.svg")


def best_rows(results, temperature="hot", experts="k8"):
    """(machine, variant) -> (GB/s at the median, % of that run's peak, row, result): the fastest
    row of each variant per machine among top-8 gate-shape rows of the normal profile (or any
    profile when a machine has no normal run)."""
    best = {}
    for res in results:
        if not is_gate(res):
            continue
        for row in res.variants():
            parts = row.name.split("/")
            if row.temperature != temperature or experts not in parts:
                continue
            if res.profile not in ("normal",) and any(r.profile == "normal" and
                                                      r.machine == res.machine for r in results):
                continue
            gbps = row.gbps()
            key = (res.machine, row.variant)
            if key not in best or gbps > best[key][0]:
                best[key] = (gbps, res.pct_of_peak(row), row, res)
    return best


def throughput(results, out):
    for temp in ("hot", "cold", "decode"):  # decode: schema-2 GPU rows (cold weights)
        best = best_rows(results, temp)
        if not best:
            continue
        machines = sorted({m for m, _ in best})
        variants = sorted({v for _, v in best}, key=lambda v: (v.startswith(("gpu", "dp4a")), v))
        fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(variants) * max(1, len(machines)) / 2),
                                        5.5))
        width = 0.8 / len(machines)
        for i, m in enumerate(machines):
            xs, ys, labels, err = [], [], [], [[], []]
            for j, v in enumerate(variants):
                if (m, v) in best:
                    g, pct, row, _ = best[(m, v)]
                    xs.append(j + (i - (len(machines) - 1) / 2) * width)
                    ys.append(g)
                    labels.append(f"{pct:.0f}%" if pct is not None else "")
                    lo = hi = g  # schema 2: GB/s at the ends of the median's 95 % interval
                    if row.ci and row.counters.get("bytes"):
                        lo, hi = (row.counters["bytes"] / t * 1e-9 for t in reversed(row.ci))
                    err[0].append(max(0.0, g - lo))
                    err[1].append(max(0.0, hi - g))
            bars = ax.bar(xs, ys, width, label=m,
                          yerr=err if any(err[0] + err[1]) else None, capsize=2,
                          error_kw={"elinewidth": 0.8})
            for b, lab in zip(bars, labels):
                ax.annotate(lab, (b.get_x() + b.get_width() / 2, b.get_height()),
                            ha="center", va="bottom", fontsize=7, rotation=90,
                            xytext=(0, 2), textcoords="offset points")
        ax.set_yscale("log")
        ax.set_xticks(range(len(variants)))
        ax.set_xticklabels(variants, rotation=35, ha="right")
        ax.set_ylabel("GB/s (decimal), log scale")
        bars_txt = "; whiskers: the median's 95 % interval (sampled files)" if any(
            row.ci for _, _, row, _ in best.values()) else ""
        ax.set_title(f"Qwen3-30B-A3B gate, top-8 experts, one token, {temp}: throughput per "
                     f"variant\n(labels: % of the same machine's peak measured in the same run"
                     f"{bars_txt})")
        ax.legend(title="machine", fontsize=8)
        ax.grid(axis="y", which="both", alpha=0.3)
        save(fig, out, f"throughput_{temp}")


def error_vs_speed(results, out):
    best = best_rows(results, "hot")
    if not best:
        return
    machines = sorted({m for m, _ in best})
    fig, ax = plt.subplots(figsize=(9, 6))
    for i, m in enumerate(machines):
        pts = [(g, row.counters.get("rel_l2"), v) for (mm, v), (g, _, row, _) in best.items()
               if mm == m and row.counters.get("rel_l2")]
        if not pts:
            continue
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker=MARKERS[i % len(MARKERS)],
                   s=60, label=m)
        for k, (g, e, v) in enumerate(sorted(pts)):  # staggered, so neighbours stay legible
            ax.annotate(v, (g, e), fontsize=7, xytext=(5, -14 + 9 * (k % 4)),
                        textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("throughput, GB/s (log)")
    ax.set_ylabel("rel_l2 vs the f64 oracle (log)")
    ax.set_title("Error vs speed (top-8 gate, hot, normal activations): f32 activations are\n"
                 "~1e-7 from exact; Q8 activations ~7e-3 (their quantization), faster")
    ax.legend(title="machine", fontsize=8, loc="center left")
    ax.grid(which="both", alpha=0.3)
    save(fig, out, "error_vs_speed")


def roofline(results, out):
    best = best_rows(results, "hot")
    if not best:
        return
    machines = sorted({m for m, _ in best})
    fig, ax = plt.subplots(figsize=(9, 6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, m in enumerate(machines):
        pts, peaks = [], []
        for (mm, v), (g, _, row, res) in best.items():
            if mm != m or not row.counters.get("GOPps") or not g:
                continue
            ai = row.counters["GOPps"] / row.counters["GBps"]  # op per byte
            pts.append((ai, row.counters["GOPps"], v))
            peak = res.peak_for(row)
            if peak:
                peaks.append(peak * 1e-9)
        if not pts:
            continue
        c = colors[i % len(colors)]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker=MARKERS[i % len(MARKERS)],
                   s=60, color=c, label=m)
        for k, (ai, gops, v) in enumerate(sorted(pts, key=lambda p: p[1])):
            ax.annotate(v, (ai, gops), fontsize=7, xytext=(6 + 70 * (k % 2), -3),
                        textcoords="offset points")
        if peaks:
            bw = max(peaks)
            xs = [1, 16]
            ax.plot(xs, [bw * x for x in xs], color=c, linestyle="--", linewidth=1,
                    label=f"{m}: measured peak {bw:.0f} GB/s x intensity")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity, GOP per GB moved (log)")
    ax.set_ylabel("GOP/s (2 per weight; log)")
    ax.set_title("Roofline against each machine's measured bandwidth (top-8 gate, hot)\n"
                 "dashed: the bandwidth roof; a point near its line is bandwidth-bound")
    ax.legend(fontsize=7)
    ax.grid(which="both", alpha=0.3)
    save(fig, out, "roofline")


def error_by_profile(results, out):
    data = defaultdict(dict)  # (machine, variant) -> profile -> rel_l2
    for res in results:
        if res.profile not in PROFILE_ORDER or not is_gate(res):
            continue
        for row in res.variants():
            if row.temperature == "hot" and "rel_l2" in row.counters:
                data[(res.machine, row.variant)][res.profile] = row.counters["rel_l2"]
    keys = sorted(k for k, v in data.items() if len(v) > 1)
    if not keys:
        return
    profiles = [p for p in PROFILE_ORDER if any(p in data[k] for k in keys)]
    fig, ax = plt.subplots(figsize=(max(9, 1.2 * len(keys)), 5.5))
    width = 0.8 / len(profiles)
    for i, p in enumerate(profiles):
        xs = [j + (i - (len(profiles) - 1) / 2) * width for j, k in enumerate(keys) if p in data[k]]
        ys = [data[k][p] for k in keys if p in data[k]]
        ax.bar(xs, ys, width, label=p)
    ax.set_yscale("log")
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels([f"{v}\n({m})" for m, v in keys], rotation=35, ha="right", fontsize=7)
    ax.set_ylabel("rel_l2 vs the f64 oracle (log)")
    ax.set_title("Error by activation profile (top-8 gate): Q8 activations lose most on "
                 "outliers;\nf32 activations stay ~1e-7 whatever the input")
    ax.legend(title="--act", fontsize=8, ncol=3)
    ax.grid(axis="y", which="both", alpha=0.3)
    save(fig, out, "error_by_profile")


def main():
    ap = OneLineParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", nargs="+")
    ap.add_argument("-o", "--out", default="plots")
    ap.add_argument("--base", action="append", default=[],
                    help="the generations chart's base machine, once per device kind (default: "
                         "nvidia-h100-80gb-hbm3 and intel-xeon-2c when present)")
    a = ap.parse_args()
    try:  # every argument checked before anything is drawn
        results = [Result(p) for p in a.results]
        table, _ = generations.collect(results)
        bases = generations.pick_bases(table, a.base)
        os.makedirs(a.out, exist_ok=True)
        if not os.access(a.out, os.W_OK):
            raise OSError(f"{a.out}: not writable")
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"plot: {e}", file=sys.stderr)
        return 2
    throughput(results, a.out)
    error_vs_speed(results, a.out)
    roofline(results, a.out)
    error_by_profile(results, a.out)
    for temp in ("hot", "cold", "decode"):
        name = generations.chart(table, bases, a.out, temp) if table else None
        if name:
            print(f"plot: {name}.png/.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
