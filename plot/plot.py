#!/usr/bin/python3
"""Charts from qkbench result files: throughput per variant by machine (with % of each
machine's own measured peak), error vs speed, a roofline against each machine's measured
bandwidth, error by activation profile, and the hardware generations (speedup of each machine
against a base machine per variant, from the newest file of each machine: plot/generations.py),
and for files of `bench --tokens` (issue 18) the time per token against the batch's token count
(tokens_<temperature>: median / N over N on a log2 axis, one line per variant and machine; the
other charts are of one-token rows). PNG and SVG. Reads both result schemas (plot/qkresults.py):
for a schema-2 file the time of a row is the median of its clean samples, its % of peak the
file's pct_peak (row and peak samples of one window), and its throughput bar carries an error
bar over the 95 % interval of that median (ci_low_us..ci_high_us); its decode rows (GPU: warm
launches, cold weights) get throughput_decode.png/.svg.

Of several files of one machine and configuration (plot/index.py: shape and experts, activation
profile, QK_DISABLE_ISA, threads) the newest is drawn, the others named on stderr: given
results/*/*.json, the current files results/README.md lists (earlier runs are in
results/<machine>/history/). A run limited by QK_DISABLE_ISA is a machine of its own
("intel-xeon-2c avx2"). In error vs speed each point carries the number of its variant (the key
beside the chart), placed where it overlaps no other label or marker; in the roofline, where
every variant has about one intensity, the variants are named in two columns beside the stack of
points, each joined to its point by a line. A tokens chart is drawn only where some file has a
variant measured at two or more token counts; where none has, an earlier tokens_<temperature>
chart in the output folder is removed (it would show runs no longer current).

usage: plot.py RESULT.json... [-o OUT_DIR] [--base MACHINE]...
       (e.g. plot/plot.py results/*/*.json -o plot/charts)"""
import math
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deps import need  # noqa: E402

need("matplotlib.pyplot")
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.lines  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

import generations  # noqa: E402
import index  # noqa: E402
import tokens as token_sweeps  # noqa: E402
from qkresults import TEMPERATURES, OneLineParser, Result, machine_label  # noqa: E402

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
    row of each variant per machine among one-token top-8 gate-shape rows of the normal profile
    (or any profile when a machine has no normal run)."""
    best = {}
    for res in results:
        if not is_gate(res):
            continue
        for row in res.variants(1):
            parts = row.name.split("/")[1:]  # after the variant: a name never matches
            if row.temperature != temperature or experts not in parts:
                continue
            if res.profile not in ("normal",) and any(
                    r.profile == "normal" and machine_label(r) == machine_label(res)
                    for r in results):
                continue
            gbps = row.gbps()
            key = (machine_label(res), row.variant)
            if key not in best or gbps > best[key][0]:
                best[key] = (gbps, res.pct_of_peak(row), row, res)
    return best


def throughput(results, out):
    for temp in ("hot", "cold", "decode"):  # decode: schema-2 GPU rows (cold weights)
        best = best_rows(results, temp)
        if not best:
            continue
        machines = sorted({m for m, _ in best})
        variants = generations.variant_order({v for _, v in best})
        # each variant's bars side by side, only the machines that ran it (no empty slots)
        ran = {v: [m for m in machines if (m, v) in best] for v in variants}
        width = 0.8 / max(len(ms) for ms in ran.values())
        fig, ax = plt.subplots(figsize=(max(8.0, 0.42 * len(best) + 2.5), 5.5))
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, m in enumerate(machines):
            xs, ys, labels, err = [], [], [], [[], []]
            for j, v in enumerate(variants):
                if (m, v) in best:
                    g, pct, row, _ = best[(m, v)]
                    xs.append(j + (ran[v].index(m) - (len(ran[v]) - 1) / 2) * width)
                    ys.append(g)
                    labels.append(f"{pct:.0f}%" if pct is not None else "")
                    lo = hi = g  # schema 2: GB/s at the ends of the median's 95 % interval
                    if row.ci and row.counters.get("bytes"):
                        lo, hi = (row.counters["bytes"] / t * 1e-9 for t in reversed(row.ci))
                    err[0].append(max(0.0, g - lo))
                    err[1].append(max(0.0, hi - g))
            bars = ax.bar(xs, ys, width, label=m, color=colors[i % len(colors)],
                          yerr=err if any(err[0] + err[1]) else None, capsize=2,
                          error_kw={"elinewidth": 0.8})
            for b, lab, up in zip(bars, labels, err[1]):  # above the bar and its whisker
                ax.annotate(lab, (b.get_x() + b.get_width() / 2, b.get_height() + up),
                            ha="center", va="bottom", fontsize=7, rotation=90,
                            xytext=(0, 3), textcoords="offset points")
        ax.set_yscale("log")
        lo_y, hi_y = ax.get_ylim()
        ax.set_ylim(lo_y, hi_y * 2.5)  # room for the labels of the tallest bars
        ax.set_xticks(range(len(variants)))
        ax.set_xticklabels(variants, rotation=35, ha="right")
        ax.set_ylabel("GB/s (decimal), log scale")
        bars_txt = "; whiskers: the median's 95 % interval (sampled files)" if any(
            row.ci for _, _, row, _ in best.values()) else ""
        ax.set_title(f"Qwen3-30B-A3B gate, top-8 experts, one token, {temp}: throughput per "
                     f"variant\n(labels: % of the same machine's peak measured in the same run"
                     f"{bars_txt})")
        ax.legend(title="machine", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.grid(axis="y", which="both", alpha=0.3)
        save(fig, out, f"throughput_{temp}")


def _overlap(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def frozen_geometry(ax, points):
    """Freezes the axes' limits and draws once: the renderer, pixels per point, the axes' box and
    each point's pixel position, the geometry that label placement works in."""
    fig = ax.figure
    ax.set_xlim(ax.get_xlim())
    ax.set_ylim(ax.get_ylim())
    fig.canvas.draw()
    rend = fig.canvas.get_renderer()
    return (rend, fig.dpi / 72.0, ax.get_window_extent(rend),
            [tuple(ax.transData.transform((x, y))) for x, y, _ in points])


def place_labels(ax, points, fontsize=8, marker_pt=9.0):
    """Writes each (x, y, text) of points beside its point, where its text overlaps no other
    text and no marker and stays inside the axes: 8 directions tried at growing distances, the
    points with most neighbours first; a text put away from its point gets a thin line to it.
    The axes' limits are frozen first (the placement is in the drawn geometry)."""
    if not points:
        return
    rend, k, box, px = frozen_geometry(ax, points)  # k: pixels per point
    frame = (box.x0, box.y0, box.x1, box.y1)
    mr = marker_pt / 2 * k
    taken = [(x - mr, y - mr, x + mr, y + mr) for x, y in px]  # the markers
    sizes = []
    for _, _, text in points:
        t = ax.text(0, 0, text, fontsize=fontsize)
        bb = t.get_window_extent(rend)
        t.remove()
        sizes.append((bb.width, bb.height))

    def near(i):
        return sum(abs(px[j][0] - px[i][0]) < 30 * k and abs(px[j][1] - px[i][1]) < 30 * k
                   for j in range(len(px)) if j != i)
    dirs = [(1, 0), (0, 1), (-1, 0), (0, -1), (1, 1), (-1, 1), (-1, -1), (1, -1)]
    pad = 1.0 * k
    for i in sorted(range(len(points)), key=lambda i: (-near(i), i)):
        (x0, y0), (w, h) = px[i], sizes[i]
        best = None
        for dist in (1, 3, 6, 10, 15, 21, 28, 36, 46):
            d = mr + dist * k
            for dx, dy in dirs:
                n = math.hypot(dx, dy)
                ux, uy = dx / n, dy / n
                cx, cy = x0 + ux * d, y0 + uy * d
                left = cx if ux > 0.3 else cx - w if ux < -0.3 else cx - w / 2
                bottom = cy if uy > 0.3 else cy - h if uy < -0.3 else cy - h / 2
                cand = (left, bottom, left + w, bottom + h)
                inside = (cand[0] >= frame[0] and cand[1] >= frame[1] and
                          cand[2] <= frame[2] and cand[3] <= frame[3])
                hits = sum(_overlap(cand, t) for t in taken) + (0 if inside else 100)
                if best is None or hits < best[0]:
                    best = (hits, cand, d)
                if hits == 0:
                    break
            if best[0] == 0:
                break
        _, cand, d = best
        taken.append((cand[0] - pad, cand[1] - pad, cand[2] + pad, cand[3] + pad))
        far = d > mr + 7 * k
        ax.annotate(points[i][2], points[i][:2], fontsize=fontsize, ha="left", va="bottom",
                    xytext=((cand[0] - x0) / k, (cand[1] - y0) / k), textcoords="offset points",
                    arrowprops={"arrowstyle": "-", "lw": 0.6, "color": "0.35",
                                "shrinkA": 0, "shrinkB": marker_pt / 2} if far else None)


def _spread(targets, gap, lo, hi):
    """Positions for labels wanted at targets (pixels, one axis) at least gap apart, each group
    of crowded labels centred on its targets' mean, all within lo..hi."""
    order = sorted(range(len(targets)), key=lambda i: targets[i])
    groups = [[i] for i in order]

    def span(g):
        mid = sum(targets[i] for i in g) / len(g)
        return mid - (len(g) - 1) * gap / 2, mid + (len(g) - 1) * gap / 2
    merged = True
    while merged:
        merged = False
        for j in range(len(groups) - 1):
            if span(groups[j])[1] + gap > span(groups[j + 1])[0]:
                groups[j:j + 2] = [groups[j] + groups[j + 1]]
                merged = True
                break
    pos, floor = {}, lo
    for g in groups:
        start = max(floor, min(span(g)[0], hi - (len(g) - 1) * gap))
        for k, i in enumerate(g):
            pos[i] = start + k * gap
        floor = pos[g[-1]] + gap
    return [pos[i] for i in range(len(targets))]


def callout_labels(ax, points, fontsize=8, marker_pt=9.0):
    """Writes each (x, y, text) of points in one of two columns, left and right of the points
    (neighbours in y on opposite sides), each text at its point's height where it can be and
    joined to its point by a thin line: for points stacked at nearly one x (the roofline, where
    every variant has about the same intensity). The axes' limits are frozen first."""
    if not points:
        return
    rend, k, box, px = frozen_geometry(ax, points)
    h = 0.0
    for _, _, text in points:  # the tallest text: descenders and all
        t = ax.text(0, 0, text, fontsize=fontsize)
        h = max(h, t.get_window_extent(rend).height)
        t.remove()
    by_y = sorted(range(len(points)), key=lambda i: px[i][1])
    sides = {i: (-1 if n % 2 else 1) for n, i in enumerate(by_y)}
    for side in (1, -1):
        mine = [i for i in by_y if sides[i] == side]
        if not mine:
            continue
        xs = [px[i][0] for i in mine]
        col = (max(xs) + 28 * k) if side > 0 else (min(xs) - 28 * k)
        ys = _spread([px[i][1] for i in mine], h + 2 * k, box.y0 + h, box.y1 - h)
        for i, y in zip(mine, ys):
            ax.annotate(points[i][2], points[i][:2], fontsize=fontsize,
                        ha="left" if side > 0 else "right", va="center",
                        xytext=((col - px[i][0]) / k, (y - px[i][1]) / k),
                        textcoords="offset points",
                        bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none",
                              "alpha": 0.85},
                        arrowprops={"arrowstyle": "-", "lw": 0.6, "color": "0.35",
                                    "shrinkA": 1, "shrinkB": marker_pt / 2})


def side_legends(ax, machine_handles, variants, title_variants="number: variant"):
    """The machines' legend beside the axes, top; under it the key of the variant numbers."""
    first = ax.legend(handles=machine_handles, title="machine", fontsize=8, title_fontsize=8,
                      loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.add_artist(first)
    first.set_clip_on(False)  # add_artist clips to the axes: the saved image would cut it
    fig = ax.figure
    fig.canvas.draw()
    bb = first.get_window_extent(fig.canvas.get_renderer())
    ax_bb = ax.get_window_extent(fig.canvas.get_renderer())
    below = 1.0 - (bb.height + 8) / ax_bb.height
    blank = [matplotlib.lines.Line2D([], [], linestyle="none") for _ in variants]
    ax.legend(blank, [f"{n:>2}  {v}" for n, v in enumerate(variants, 1)], title=title_variants,
              fontsize=8, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, below),
              handlelength=0, handletextpad=0, prop={"family": "monospace", "size": 8})


def numbered(best):
    """{variant: number}, in the tables' order (CPU variants, then GPU)."""
    return {v: n for n, v in enumerate(generations.variant_order({v for _, v in best}), 1)}


def error_vs_speed(results, out):
    best = best_rows(results, "hot")
    if not best:
        return
    machines = sorted({m for m, _ in best})
    number = numbered(best)
    fig, ax = plt.subplots(figsize=(9, 6))
    handles, labels = [], []
    for i, m in enumerate(machines):
        pts = [(g, row.counters.get("rel_l2"), v) for (mm, v), (g, _, row, _) in best.items()
               if mm == m and row.counters.get("rel_l2")]
        if not pts:
            continue
        handles.append(ax.scatter([p[0] for p in pts], [p[1] for p in pts],
                                  marker=MARKERS[i % len(MARKERS)], s=60, label=m, zorder=3))
        labels += [(g, e, str(number[v])) for g, e, v in pts]
    if not handles:
        plt.close(fig)
        return
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.margins(x=0.12, y=0.25)
    ax.set_xlabel("throughput, GB/s (log)")
    ax.set_ylabel("rel_l2 vs the f64 oracle (log)")
    ax.set_title("Error vs speed (top-8 gate, hot, normal activations): f32 activations are\n"
                 "~1e-7 from exact; Q8 activations ~7e-3 (their quantization), faster")
    ax.grid(which="both", alpha=0.3)
    side_legends(ax, handles, list(number))
    place_labels(ax, labels)
    save(fig, out, "error_vs_speed")


def peak_kind(res, row):
    """What a row's peak measured (plot/qkresults.py Result.peak_for)."""
    if res.schema == 2:
        return "read of its bytes, sampled with it"
    if res.is_gpu_row(row) and res.context.get("gpu_name"):
        return "1 GiB device copy"
    return "fastest read of its bytes"


def roofline(results, out):
    best = best_rows(results, "hot")
    if not best:
        return
    machines = sorted({m for m, _ in best})
    fig, ax = plt.subplots(figsize=(9, 7))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    handles, labels = [], []
    for i, m in enumerate(machines):
        pts, peaks = [], []
        for (mm, v), (g, _, row, res) in best.items():
            if mm != m or not row.counters.get("GOPps") or not g:
                continue
            ai = row.counters["GOPps"] / row.counters["GBps"]  # op per byte
            pts.append((ai, row.counters["GOPps"], v))
            peak = res.peak_for(row)
            if peak:
                peaks.append((peak * 1e-9, peak_kind(res, row)))
        if not pts:
            continue
        c = colors[i % len(colors)]
        handles.append(ax.scatter([p[0] for p in pts], [p[1] for p in pts],
                                  marker=MARKERS[i % len(MARKERS)], s=60, color=c, label=m,
                                  zorder=3))
        labels += pts
        if peaks:
            bw, what = max(peaks)
            xs = [1, 16]
            handles += ax.plot(xs, [bw * x for x in xs], color=c, linestyle="--", linewidth=1,
                               label=f"{m}: peak {bw:.0f} GB/s ({what}) x intensity")
    if not labels:
        plt.close(fig)
        return
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity, GOP per GB moved (log)")
    ax.set_ylabel("GOP/s (2 per weight; log)")
    ax.set_title("Roofline against each machine's measured bandwidth (top-8 gate, hot)\n"
                 "dashed: the bandwidth roof; a point near its line is bandwidth-bound")
    ax.grid(which="both", alpha=0.3)
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    callout_labels(ax, labels)
    save(fig, out, "roofline")


def error_by_profile(results, out):
    data = defaultdict(dict)  # (machine, variant) -> profile -> rel_l2
    for res in results:
        if res.profile not in PROFILE_ORDER or not is_gate(res):
            continue
        for row in res.variants(1):
            if row.temperature == "hot" and "rel_l2" in row.counters:
                data[(machine_label(res), row.variant)][res.profile] = row.counters["rel_l2"]
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
    ax.legend(title="--act", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", which="both", alpha=0.3)
    save(fig, out, "error_by_profile")


def tokens_chart(results, out, temperature):
    """tokens_<temperature>: the time per token (median / N) against N, one line per variant and
    machine, whiskers over the median's 95 % interval; removes an earlier chart of that name
    when no file has a sweep at that temperature. Returns the chart's name, or None."""
    name = f"tokens_{temperature}"
    lines = token_sweeps.chart_series(results, temperature, GATE_SHAPE)
    if not lines:
        for ext in ("png", "svg"):
            stale = os.path.join(out, f"{name}.{ext}")
            if os.path.exists(stale):
                os.remove(stale)
                print(f"plot: {stale} removed (no current file has a tokens sweep at "
                      f"{temperature})")
        return None
    keys = sorted(lines, key=lambda k: (k[1], k[0].startswith(("gpu", "dp4a")), k[0]))
    machines = sorted({m for _, m in keys})
    variants = generations.variant_order({v for v, _ in keys})
    cmap = plt.get_cmap("tab10" if len(variants) <= 10 else "tab20")
    styles = ["-", "--", ":", "-."]
    fig, ax = plt.subplots(figsize=(10, 6))
    top_n = 1
    for variant, machine in keys:
        res, rows = lines[(variant, machine)]
        ns = list(rows)
        per = [rows[n].median / n * 1e6 for n in ns]
        lo = [max(0.0, p - rows[n].interval()[0] / n * 1e6) for n, p in zip(ns, per)]
        hi = [max(0.0, rows[n].interval()[1] / n * 1e6 - p) for n, p in zip(ns, per)]
        i = machines.index(machine)
        ax.errorbar(ns, per, yerr=[lo, hi], color=cmap(variants.index(variant) % cmap.N),
                    linestyle=styles[i % len(styles)], marker=MARKERS[i % len(MARKERS)],
                    markersize=5, linewidth=1.2, capsize=2, elinewidth=0.7,
                    label=f"{variant} ({machine})")
        top_n = max(top_n, max(ns))
    ax.set_xscale("log", base=2)
    ticks = [2 ** i for i in range(int(math.ceil(math.log2(top_n))) + 1)]
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks])
    ax.minorticks_off()  # only the powers of two on x
    ax.set_yscale("log")
    ax.set_xlabel("tokens in the batch, N (log2)")
    ax.set_ylabel("µs per token (the batch's median / N; log)")
    ax.set_title(f"Batched tokens, Qwen3-30B-A3B gate, top-8 experts per token, {temperature}: "
                 "time per token\n(MUL_MAT_ID of N tokens, each routed to its own experts; "
                 "whiskers: the median's 95 % interval; lower is better)", fontsize=10)
    ax.grid(which="both", alpha=0.3)
    ax.legend(title="variant (machine)", fontsize=8, title_fontsize=8, loc="upper left",
              bbox_to_anchor=(1.01, 1.0))
    save(fig, out, name)
    return name


def main():
    ap = OneLineParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", nargs="+")
    ap.add_argument("-o", "--out", default="plots")
    ap.add_argument("--base", action="append", default=[],
                    help="the generations chart's base machine, once per device kind (default: "
                         "nvidia-h100-80gb-hbm3 and intel-xeon-2c when present)")
    a = ap.parse_args()
    try:  # every argument checked before anything is drawn
        results = index.newest([Result(p) for p in a.results], lambda res, newer: print(
            f"plot: {res.path}: left out, {newer.path} is a newer run of "
            f"{res.machine} {index.config_name(index.configuration(res))}", file=sys.stderr))
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
    for temp in TEMPERATURES:
        tokens_chart(results, a.out, temp)
    for temp in ("hot", "cold", "decode"):
        name = generations.chart(table, bases, a.out, temp) if table else None
        if name:
            print(f"plot: {name}.png/.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
