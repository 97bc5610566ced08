#!/usr/bin/python3
"""Hardware generations side by side: per variant, each machine's median time, GB/s, % of its
own peak (measured in the same run on that machine) and speedup against a base machine, as
markdown; with --chart DIR also a chart of the speedups (generations_<temperature>.png/.svg).

usage: generations.py RESULT.json... [--base MACHINE]...
                      [--temperature hot|cold|decode|both|all]
                      [--shape gate] [--top 8] [--act normal] [--chart DIR]
   e.g. plot/generations.py results/*/*.json --base nvidia-h100-80gb-hbm3 --base intel-xeon-2c

A machine is a GPU (its rows: the GPU's slug, sm_XY) or a CPU at the instruction set its run
was limited to (the slug and the strongest of the context's isa_used): a run with
QK_DISABLE_ISA=avx512 on an AVX-512 machine is its own row, "intel-xeon-2c avx2", so one piece
of silicon shows what each instruction-set generation buys. Of several files of one machine
(same shape, top-K and activation profile) the newest (run_date) is used; on a tie of dates a
pooled file (plot/pool.py, which records its runs' latest run_date and pooled_runs) is
preferred, the one of most pooled runs, then the file name last in sort order: the rule does not
depend on the order of the command line. When several files of one machine were given, the file
list says which was taken, why, and how many were left out (the files' fingerprints cannot tell
two hosts of one CPU model apart: pass the one you mean). Files with no rows of the shape, top-K
and profile asked are named on stderr, one line each.
Each time is the true median of the row's repetitions, with their range (min-max) beside it (a
schema-2 file, qkbench_schema "2": the median of its clean samples, with the file's 95 % interval
of that median beside it, and `(noisy)` after the range when bench marked the row noisy: many
samples dropped, or the interval short of its target); the temperatures are hot, cold and
decode (schema-2 GPU rows: warm launches, cold weights; --temperature all shows the three); a
speedup whose two ranges overlap is marked `~` (not significant), and between two runs of one
CPU the rows of code that no instruction set changes (q4k_q8k_ref, q4k_f32_ref) give the
run-to-run noise: a speedup within it is marked `~` too and the table says by how much they
differ. A % of own peak above 100 is marked `!` (the peak measure and the row disagree).
Only one-token rows are tabled (a file of `bench --tokens` also has rows of batches, named
.../t<N>/...: plot/tokens.py tables those).
The speedup is the base machine's median time over this machine's for the same variant; each
device kind has its own base (the first --base of that kind; default: nvidia-h100-80gb-hbm3 and
intel-xeon-2c when present, else the first machine of the kind), since no GPU variant runs on a
CPU. % of own peak: schema 1, the row's GB/s over the fastest repetition of the same run's
peak row (GPU: the device copy); schema 2, the file's pct_peak (the medians of the row's samples
and of the peak samples interleaved with them). The last table compares each machine's fastest
variant with the base's fastest. Exit 2 on unusable input or when no file has matching rows."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qkresults import ISA_ORDER, TEMPERATURES, OneLineParser, Result, machine_of  # noqa: E402

SAME_CODE = ("q4k_q8k_ref", "q4k_f32_ref")  # no instruction set changes their code

DEFAULT_BASES = ("nvidia-h100-80gb-hbm3", "intel-xeon-2c")
ISA_RANK = {isa: i for i, isa in enumerate(ISA_ORDER + ("scalar",))}


class Entry:
    """One variant of one machine at one temperature: the row of the newest file."""

    def __init__(self, result, row, machine, isa):
        self.result, self.row, self.machine, self.isa = result, row, machine, isa
        self.kind = kind_of((machine, isa))
        self.variant = row.variant
        self.seconds = row.median
        # schema 1: the repetitions' range; schema 2 (hundreds of samples, whose range is the
        # machine's noise): the 95 % interval of the median
        self.lo, self.hi = row.interval() if row.schema == 2 else (min(row.seconds),
                                                                   max(row.seconds))
        self.noisy = row.noisy
        self.gbps = row.gbps()
        self.pct = result.pct_of_peak(row)

    @property
    def key(self):
        return (self.machine, self.isa)


def label(key):
    machine, isa = key
    return machine if isa.startswith("sm_") else f"{machine} {isa}"


def shape_matches(result, shape):
    """`768x2048 (gate)` matches gate, 768x2048 or the whole string."""
    ctx = str(result.context.get("shape", ""))
    dims, _, name = ctx.partition(" ")
    return shape in (ctx, dims, name.strip("()"))


def rank(res):
    """The order of one machine's files, newest last: run_date, then pooled (the most runs),
    then the file name."""
    when = str(res.context.get("run_date", res.context.get("date", "")))
    pooled = res.context.get("pooled_runs", 1)
    return (when, pooled if isinstance(pooled, int) else 1, os.path.basename(res.path), res.path)


def collect(results, shape="gate", top=8, act="normal", dropped=None):
    """{(machine, isa): {(variant, temperature): Entry}} from the newest file of each machine
    with rows of that shape, top-K and profile; and {(machine, isa): Result} of those files
    (each with .others: the other files of that machine given). dropped, a list, gets one line
    per file left out for having no such rows."""
    newest, every = {}, {}
    for res in results:
        why = None
        if not shape_matches(res, shape):
            why = f"shape {res.context.get('shape', '?')}, not {shape}"
        elif res.profile != act:
            why = f"activations {res.profile}, not {act}"
        elif not any(f"k{top}" in row.name.split("/")[1:] for row in res.variants(1)):
            batched = sorted({r.tokens for r in res.variants()} - {1})
            why = f"no top-{top} rows" + (f" of one token, only batches of "
                                          f"{', '.join(map(str, batched))}" if batched else "")
        if why:
            if dropped is not None:
                dropped.append(f"{res.path}: left out ({why})")
            continue
        for row in res.variants(1):
            if f"k{top}" not in row.name.split("/")[1:]:
                continue
            key = machine_of(res, row)
            every.setdefault(key, set()).add(res)
            if key not in newest or rank(res) > rank(newest[key][1]):
                newest[key] = (rank(res), res)
    for key, (_, res) in newest.items():
        res.others = getattr(res, "others", {})
        res.others[key] = sorted((r for r in every[key] if r is not res), key=rank)
    table = {}
    for key, (_, res) in newest.items():
        for row in res.variants(1):
            if f"k{top}" in row.name.split("/")[1:] and machine_of(res, row) == key:
                table.setdefault(key, {})[(row.variant, row.temperature)] = \
                    Entry(res, row, *key)
    return table, {k: r for k, (_, r) in newest.items()}


def machine_order(keys):
    """GPUs first, then CPUs; one machine's instruction sets strongest first."""
    return sorted(keys, key=lambda k: (not k[1].startswith("sm_"), k[0],
                                       ISA_RANK.get(k[1], -1), k[1]))


def kind_of(key):
    return "gpu" if key[1].startswith("sm_") else "cpu"


def pick_bases(keys, wanted):
    """{kind: base key}: the first wanted name (machine, `machine isa` or `machine:isa`) of each
    kind, a bare machine meaning its strongest instruction set; then the defaults; then the
    first machine of the kind."""
    keys = machine_order(keys)

    def find(name):
        return [k for k in keys if name.replace(":", " ") in (label(k), k[0])]
    bases = {}
    for name in wanted:
        found = find(name)
        if not found:
            raise ValueError(f"--base {name}: no such machine among the files "
                             f"({', '.join(label(k) for k in keys)})")
        bases.setdefault(kind_of(found[0]), found[0])
    for name in DEFAULT_BASES:
        for k in find(name)[:1]:
            bases.setdefault(kind_of(k), k)
    for k in keys:
        bases.setdefault(kind_of(k), k)
    return bases


def variant_order(variants):
    return sorted(variants, key=lambda v: (v.startswith(("gpu", "dp4a")), v))


def fmt_us(seconds):
    us = seconds * 1e6
    return f"{us:.2f}" if us < 100 else f"{us:.1f}" if us < 1000 else f"{us:.0f}"


def speedups(table, bases, temperature):
    """{(key, variant): base time / time} for the entries with a base of their kind; variant
    "fastest": each machine's fastest variant against the base's fastest."""
    out = {}
    for key, entries in table.items():
        for (variant, temp), e in entries.items():
            base = table.get(bases.get(e.kind), {}).get((variant, temp))
            if temp == temperature and base:
                out[(key, variant)] = base.seconds / e.seconds
    for key in table:
        mine = fastest(table, key, temperature)
        theirs = fastest(table, bases.get(kind_of(key)), temperature)
        if mine and theirs:
            out[(key, "fastest")] = theirs.seconds / mine.seconds
    return out


def fastest(table, key, temperature):
    rows = [e for (v, t), e in table.get(key, {}).items() if t == temperature]
    return min(rows, key=lambda e: e.seconds) if rows else None


def noise(table, bases, temperature):
    """{key: (fraction, variant)}: per CPU run other than its machine's base run, the largest
    relative difference of a same-code row (SAME_CODE) from the base's: run-to-run noise."""
    out = {}
    for key, entries in table.items():
        base = bases.get(kind_of(key))
        if kind_of(key) != "cpu" or key == base or base is None or base[0] != key[0]:
            continue
        for v in SAME_CODE:
            e, b = entries.get((v, temperature)), table[base].get((v, temperature))
            if e and b:
                d = abs(b.seconds / e.seconds - 1)
                if d > out.get(key, (-1, ""))[0]:
                    out[key] = (d, v)
    return out


def significant(e, base, s, noisy):
    """False when the two ranges overlap or the speedup is within the same-code rows' noise."""
    if base is None or base is e:
        return True
    if e.lo <= base.hi and base.lo <= e.hi:
        return False
    return not (noisy and abs(s - 1) <= noisy[0])


def markdown(table, files, bases, temperature, shape, top, act):
    keys = machine_order(table)
    sp = speedups(table, bases, temperature)
    nz = noise(table, bases, temperature)
    base_txt = " and ".join(f"{kind.upper()} variants against {label(k)}"
                            for kind, k in sorted(bases.items(), reverse=True))
    lines = [f"#### {temperature.capitalize()}: {shape} shape, top-{top} experts, "
             f"{act} activations", "",
             f"Speedup = the base machine's median time / this machine's ({base_txt}); "
             "% of own peak = GB/s over the peak that machine measured in the same run. "
             "median µs is the median of the repetitions, (min-max) their range"
             + ("; for a file of qkbench_schema 2 the median of its clean samples and the 95 % "
                "interval of that median, `(noisy)` where bench marked the row noisy"
                if any(files[k].schema == 2 for k in keys) else "") + ". `~` marks a "
             "speedup that is not significant: the two ranges overlap, or it is within the "
             "run-to-run noise that rows of identical code show between the two runs; `!` a % "
             "of own peak above 100 (the peak measure and the row disagree).", ""]
    for k, (d, v) in sorted(nz.items()):
        b = bases[kind_of(k)]
        lines += [f"{label(k)} and {label(b)} are two runs of one machine, made at different "
                  f"times ({files[k].context.get('run_date', '?')} and "
                  f"{files[b].context.get('run_date', '?')}; a shared VM's speed varies "
                  f"from one to the next): {v}, whose code is the same in both, differs by "
                  f"{d * 100:.0f} %. A speedup within that is noise, not an instruction-set "
                  "effect.", ""]
    lines += ["| variant | machine | ISA | median µs (min-max) | GB/s | % of own peak | "
              "speedup vs base |", "|---|---|---|---|---|---|---|"]
    variants = variant_order({v for k in keys for (v, t) in table[k] if t == temperature})

    def cells(e, s, base):
        if s is None:
            s_txt = "-"
        else:
            s_txt = f"{s:.2f}x" + (" (base)" if bases.get(e.kind) == e.key else "")
            if not significant(e, base, s, nz.get(e.key)):
                s_txt += " ~"
        pct = "-" if e.pct is None else f"{e.pct:.0f}" + (" !" if e.pct > 100 else "")
        noisy = " (noisy)" if e.noisy else ""
        return f"{fmt_us(e.seconds)} ({fmt_us(e.lo)}-{fmt_us(e.hi)}){noisy} | {e.gbps:.1f} | " \
               f"{pct} | {s_txt} |"
    for v in variants:
        for k in keys:
            e = table[k].get((v, temperature))
            if e:
                base = table.get(bases.get(e.kind), {}).get((v, temperature))
                lines.append(f"| {v} | {k[0]} | {k[1]} | {cells(e, sp.get((k, v)), base)}")
    lines += ["", "Fastest variant of each machine (speedup against the base's fastest):", "",
              "| machine | ISA | fastest variant | median µs (min-max) | GB/s | % of own peak | "
              "speedup vs base |", "|---|---|---|---|---|---|---|"]
    for k in keys:
        e = fastest(table, k, temperature)
        if e:
            base = fastest(table, bases.get(kind_of(k)), temperature)
            lines.append(f"| {k[0]} | {k[1]} | {e.variant} | "
                         f"{cells(e, sp.get((k, 'fastest')), base)}")
    if any(e.pct is not None and e.pct > 100 for k in keys for (v, t), e in table[k].items()
           if t == temperature):
        lines += ["", "`!`: above 100 % of the peak measured in the same run: the row and the "
                  "peak measure disagree (the peak loop ran at another moment or in another "
                  "cache state); read such a % as unreliable."]
    return lines


def file_lines(files, root=None):
    out = ["Files (the newest of each machine among those given: run_date, then a pooled file "
           "before the runs it pools, then the file name; CPU rows ran with the threads "
           "named):", ""]
    for k in machine_order(files):
        res = files[k]
        path = os.path.relpath(res.path, root) if root else res.path
        link = f"[{path}]({path})" if root else f"`{path}`"
        disabled = res.context.get("isa_disabled", "none")
        lim = f", QK_DISABLE_ISA={disabled}" if disabled not in ("none", "") and \
            not k[1].startswith("sm_") else ""
        threads = "" if kind_of(k) == "gpu" else f", {res.context.get('threads', '?')} threads"
        others = getattr(res, "others", {}).get(k, [])
        more = ""
        if others:
            names = ", ".join(os.path.basename(o.path) for o in others)
            more = (f"; taken as the newest of {len(others) + 1} files of this machine, the "
                    f"others left out: {names}. Their fingerprints are identical, so nothing in "
                    "the files tells whether they come from one host or several (results of "
                    "two hosts of one CPU model look alike): pass only the file you mean")
        out.append(f"- {label(k)}: {link} (commit {res.context.get('git_commit', '?')}, "
                   f"{res.context.get('run_date', res.date)}{threads}{lim}){more}")
    return out


def report(results, bases=(), temperatures=("hot",), shape="gate", top=8, act="normal",
           root=None, dropped=None):
    """The markdown lines (tables, then the files), or raises ValueError."""
    table, files = collect(results, shape, top, act, dropped)
    if not table:
        raise ValueError(f"no rows of the {shape} shape, top-{top}, {act} activations in the "
                         "files given")
    chosen = pick_bases(table, bases)
    lines = []
    for temp in temperatures:
        if any(t == temp for k in table for (_, t) in table[k]):
            lines += markdown(table, files, chosen, temp, shape, top, act) + [""]
    return lines + file_lines(files, root), table, chosen


def chart(table, bases, out, temperature, shape="gate", top=8):
    """Grouped bars: per variant (and each machine's fastest), each machine's speedup against
    its kind's base; one panel per device kind."""
    from deps import need
    need("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sp = speedups(table, bases, temperature)
    panels = []
    for kind in ("gpu", "cpu"):
        keys = [k for k in machine_order(table) if kind_of(k) == kind and any((k, v) in sp for v in
                        [v for (v, t) in table[k] if t == temperature] + ["fastest"])]
        variants = variant_order({v for k in keys for (v, t) in table[k] if t == temperature
                                  and any((kk, v) in sp for kk in keys)})
        if keys and kind in bases:
            panels.append((kind, keys, variants + ["fastest"]))
    if not panels:
        return None
    widest = max(len(vs) * max(1, len(ks)) for _, ks, vs in panels)  # bars in a panel
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(9, 0.36 * widest + 3),
                                                      5.2 * len(panels)), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (kind, keys, variants) in zip(axes[:, 0], panels):
        width = 0.8 / len(keys)
        top_y = max(sp.get((k, v), 0) for k in keys for v in variants)
        for i, k in enumerate(keys):
            xs, ys = [], []
            for j, v in enumerate(variants):
                if (k, v) in sp:
                    xs.append(j + (i - (len(keys) - 1) / 2) * width)
                    ys.append(sp[(k, v)])
            bars = ax.bar(xs, ys, width, label=label(k) + (" (base)" if bases[kind] == k else ""),
                          color=colors[i % len(colors)])
            for b, y in zip(bars, ys):
                ax.annotate(f"{y:.2f}x", (b.get_x() + b.get_width() / 2, b.get_height()),
                            ha="center", va="bottom", fontsize=7, rotation=90,
                            xytext=(0, 2), textcoords="offset points")
        ax.axhline(1.0, color="gray", linewidth=0.8, linestyle="--", zorder=0.5)  # under text
        ax.set_ylim(0, top_y * 1.3)
        ax.set_xticks(range(len(variants)))
        ax.set_xticklabels([v if v != "fastest" else "fastest\n(each machine's)"
                            for v in variants], rotation=35, ha="right", fontsize=8)
        ax.set_title(f"{kind.upper()} variants: speedup vs {label(bases[kind])}", fontsize=10)
        ax.set_ylabel("speedup (base median time / median time)")
        ax.legend(title="machine", fontsize=7, title_fontsize=8, loc="upper left",
                  bbox_to_anchor=(1.01, 1.0))  # beside the panel: no bar hidden
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Hardware generations: Qwen3-30B-A3B {shape}, top-{top} experts, one token, "
                 f"{temperature} (the newest file of each machine)", fontsize=11)
    fig.tight_layout()
    name = os.path.join(out, f"generations_{temperature}")
    for ext in ("png", "svg"):
        fig.savefig(f"{name}.{ext}", dpi=130, bbox_inches="tight")
    plt.close(fig)
    return name


def main():
    ap = OneLineParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", nargs="+")
    ap.add_argument("--base", action="append", default=[],
                    help="a machine (slug, or `slug isa` / `slug:isa` for a CPU limited by "
                         "QK_DISABLE_ISA); once per device kind")
    ap.add_argument("--temperature", choices=("hot", "cold", "decode", "both", "all"),
                    default="hot", help="both: hot and cold; all: hot, cold and decode")
    ap.add_argument("--shape", default="gate")
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--act", default="normal")
    ap.add_argument("--chart", metavar="DIR", help="also draw generations_<temperature>.png/.svg")
    a = ap.parse_args()
    temps = {"both": ("hot", "cold"), "all": TEMPERATURES}.get(a.temperature, (a.temperature,))
    if a.chart:
        from deps import need
        need("matplotlib.pyplot")
    dropped = []
    try:
        results = [Result(p) for p in a.results]
        lines, table, bases = report(results, a.base, temps, a.shape, a.top, a.act,
                                     dropped=dropped)
        if a.chart:
            os.makedirs(a.chart, exist_ok=True)
            if not os.access(a.chart, os.W_OK):
                raise OSError(f"--chart {a.chart}: not writable")
    except (OSError, ValueError, KeyError, TypeError) as e:
        for line in dropped:
            print(f"generations: {line}", file=sys.stderr)
        print(f"generations: {e}", file=sys.stderr)
        return 2
    for line in dropped:
        print(f"generations: {line}", file=sys.stderr)
    print("\n".join(lines))
    if a.chart:
        try:
            for t in temps:
                name = chart(table, bases, a.chart, t, a.shape, a.top)
                if name:
                    print(f"generations: {name}.png/.svg", file=sys.stderr)
        except OSError as e:
            print(f"generations: --chart {a.chart}: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
