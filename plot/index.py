#!/usr/bin/python3
"""Writes results/README.md, the index of the committed result files (`bench --json`).

The layout it reads and checks: results/<machine>/ holds that machine's CURRENT files, the
newest run (run_date, then plot/generations.py's order: a pooled file before the runs it pools,
then the file name) of each configuration; results/<machine>/history/ holds every earlier run.
A configuration is the shape and experts (gate-top8, gate-all128, down-top8) with what sets a
run apart from the default one: an activation profile other than normal (act-PROFILE), an
instruction set limited by QK_DISABLE_ISA (isa-LEVEL, the level it ran), a CPU run with fewer
threads than cores (threads-N), a tokens sweep (`bench --tokens`, issue 18) whose routing is
not uniform (routing-skewed: other batches); all read from each file's context, not from its
name. The machine is the file's (the slug of its fingerprint, plot/qkresults.py), whatever
folder it is in. Two current files of one machine and configuration, or an earlier run newer
than the current one, are refused (one line naming the file to move, exit 2): the folder is the
rule, so `plot/plot.py results/*/*.json` charts the same files this index lists.

It writes: the current files of the default configurations, one row per machine and shape
(machine, shape, file, date, commit, the fastest variant of its hot rows with its GB/s and % of
the same run's peak); the other current configurations (activation profiles, ISA-limited runs);
the hardware generations (plot/generations.py over the current files: hot, cold and, where
schema-2 GPU files have them, decode); where a current file has a tokens sweep (rows of one
variant at two or more token counts, `bench --tokens`), a section with plot/tokens.py's tables
and links to the tokens_<temperature> charts that plot/plot.py draws from the same files; one
line per machine on its earlier runs. The % of peak is the file's pct_peak for a schema-2 file,
else recomputed against the run's peak row. The fastest variant and the generations are of
one-token rows.
usage: plot/index.py [RESULTS_DIR]"""
import glob
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generations  # noqa: E402
import tokens as token_sweeps  # noqa: E402
from qkresults import TEMPERATURES, Result, isa_level  # noqa: E402

HISTORY = "history"
# machines the project means to have a file of: the index says when there is none yet
EXPECTED = (("amd-epyc", "AMD EPYC", "the Zen 4 VM of 2 vCPUs that the CI also runs on"),)
SHAPE_ORDER = ("gate", "up", "down")


def shape_of(res):
    """gate-top8, gate-all128, down-top8, ...: the shape's name (or its dimensions) and the
    experts: all<N> for the ids 0..N-1 (`--experts all`), top<N> for N others (`--top N`)."""
    dims, _, name = str(res.context.get("shape", "?")).partition(" ")
    shape = name.strip("()") or dims
    ids = [e.strip() for e in str(res.context.get("experts", "")).split(",") if e.strip()]
    if not ids:
        return shape
    n = len(ids)
    every = n > 8 and ids == [str(i) for i in range(n)]
    return f"{shape}-{'all' if every else 'top'}{n}"


def extras(res):
    """What sets a run apart from its shape's default run, as name tags (empty: the default)."""
    ctx, out = res.context, []
    if res.profile != "normal":
        out.append(f"act-{res.profile}")
    if str(ctx.get("isa_disabled", "none")) not in ("none", ""):
        out.append(f"isa-{isa_level(ctx)}")
    if not ctx.get("gpu_name") and str(ctx.get("threads", "")) not in (
            "", str(ctx.get("cores", ""))):
        out.append(f"threads-{ctx.get('threads')}")
    if res.routing not in (None, "uniform") and any(t > 1 for t in res.token_counts()):
        out.append(f"routing-{res.routing}")
    return tuple(out)


def configuration(res):
    """(machine, shape, extras): one current file each."""
    return res.machine, shape_of(res), extras(res)


def config_name(key):
    return "-".join((key[1],) + key[2])


def newest(results, left_out=None):
    """The newest file of each (machine, configuration) among results, in their order;
    left_out(res, newer), where given, is called for each other one."""
    best = {}
    for res in results:
        key = configuration(res)
        if key not in best or generations.rank(res) > generations.rank(best[key]):
            best[key] = res
    keep = set(map(id, best.values()))
    if left_out:
        for res in results:
            if id(res) not in keep:
                left_out(res, best[configuration(res)])
    return [r for r in results if id(r) in keep]


def fastest_cells(r, root):
    """file, date, commit, fastest hot variant (k), GB/s, % of peak: the cells of one file."""
    rel = os.path.relpath(r.path, root)
    cells = [f"[{os.path.basename(r.path)}]({rel})", r.date,
             str(r.context.get("git_commit", "?"))]
    rows = [x for x in r.variants(1) if x.temperature == "hot"]
    if not rows:
        return cells + ["-", "-", "-"]
    best = max(rows, key=lambda x: x.gbps())
    pct = r.pct_of_peak(best)
    k = next((p for p in best.name.split("/")[1:] if p.startswith("k") and p[1:].isdigit()), "")
    return cells + [f"{best.variant} ({k})", f"{best.gbps():.1f}",
                    f"{pct:.0f}" if pct is not None else "-"]


def shape_words(shape):
    """gate-top8 -> gate, top-8; gate-all128 -> gate, all 128."""
    name, _, experts = shape.partition("-")
    if experts.startswith("top"):
        return f"{name}, top-{experts[3:]}"
    if experts.startswith("all"):
        return f"{name}, all {experts[3:]}"
    return shape


def extra_words(tags):
    out = []
    for t in tags:
        kind, _, value = t.partition("-")
        out.append({"act": f"activations {value}",
                    "isa": f"QK_DISABLE_ISA, ran {value}",
                    "threads": f"{value} threads",
                    "routing": f"{value} routing of batched tokens"}.get(kind, t))
    return ", ".join(out)


def sort_key(key):
    machine, shape, tags = key
    name, _, experts = shape.partition("-")
    return (machine, SHAPE_ORDER.index(name) if name in SHAPE_ORDER else len(SHAPE_ORDER), name,
            not experts.startswith("top"), experts, tags)


def mixed_gpu_schemas(table):
    """A paragraph when the GPU files the generations tables compare are not of one schema: their
    cold times and % of peak are measured differently (bench/README.md, GPU timing)."""
    by_schema = {}
    for key, entries in table.items():
        if generations.kind_of(key) == "gpu" and entries:
            res = next(iter(entries.values())).result
            by_schema.setdefault(res.schema, []).append(generations.label(key))
    if len(by_schema) < 2:
        return []
    old, new = ", ".join(sorted(by_schema.get(1, []))), ", ".join(sorted(by_schema.get(2, [])))
    return [f"**GPU files of two schemas.** {new}: `qkbench_schema` 2 (2026-11-29 on); {old}"
            ": schema 1. Hot times are measured alike (CUDA events around a graph of 100 units); "
            "cold times are not: schema 1 put the events around one lone launch after the L2 "
            "flush, which adds the device's own start and end of it (about 2.3 µs on an H200), "
            "schema 2 times a graph of 8 (flush, unit) pairs less a graph of 8 flushes "
            "([bench/README.md](../bench/README.md#gpu-timing)). A cold speedup between the two "
            "is mostly that difference, not the card. % of own peak is of the 1 GiB device copy "
            "in schema 1, of a read of the row's bytes sampled with it in schema 2.", ""]


def load(paths):
    out = []
    for path in paths:
        out.append(Result(path))  # raises ValueError / OSError with the file's name
    return out


def check(current, earlier, root):
    """The one-line reason the layout breaks the rule, or None."""
    seen = {}
    for r in current:
        key = configuration(r)
        if key in seen:
            a, b = sorted((seen[key], r), key=generations.rank)
            return (f"{os.path.relpath(a.path, root)} and {os.path.relpath(b.path, root)} are "
                    f"both current files of {key[0]} {config_name(key)}: git mv the older, "
                    f"{os.path.relpath(a.path, root)}, into "
                    f"{os.path.join(os.path.dirname(os.path.relpath(a.path, root)), HISTORY)}/")
        seen[key] = r
    for r in earlier:
        cur = seen.get(configuration(r))
        if cur is not None and generations.rank(r) > generations.rank(cur):
            return (f"{os.path.relpath(r.path, root)} ({r.context.get('run_date', '?')}) is newer "
                    f"than the current file of {cur.machine} {config_name(configuration(r))}, "
                    f"{os.path.relpath(cur.path, root)} ({cur.context.get('run_date', '?')}): the "
                    "current file is the newest run; swap the two")
    return None


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "results")
    if len(sys.argv) > 2 or not os.path.isdir(root):
        print(f"index: {' '.join(sys.argv[1:])}: not a results directory (usage: plot/index.py "
              "[RESULTS_DIR])", file=sys.stderr)
        return 2
    try:
        current = load(sorted(glob.glob(os.path.join(root, "*", "*.json"))))
        earlier = load(sorted(glob.glob(os.path.join(root, "*", HISTORY, "*.json"))))
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"index: {e}", file=sys.stderr)
        return 2
    why = check(current, earlier, root)
    if why:
        print(f"index: {why}", file=sys.stderr)
        return 2
    by_key = {configuration(r): r for r in current}
    main_keys = sorted((k for k in by_key if not k[2]), key=sort_key)
    other_keys = sorted((k for k in by_key if k[2]), key=sort_key)
    lines = [
        "# Result files", "",
        "Each folder is a machine (the slug of the fingerprint in its files' context) and holds "
        "its current files: the newest run (`run_date`) of each configuration (shape and "
        "experts; activation profile, `QK_DISABLE_ISA` and threads where not the default); "
        "every earlier run is in the folder's `history/`. To add a run: put the file `bench "
        "--json` wrote in `results/<machine>/` named `<date>-<shape>-top8|all128"
        "[-act-PROFILE][-isa-LEVEL].json` (a GPU host's CPU-only run goes to its CPU's folder, "
        "e.g. `intel-xeon-16c/`), `git mv` the file it replaces (same machine and "
        "configuration) into that folder's `history/`, then run `plot/index.py` (this page) and "
        "`plot/plot.py results/*/*.json -o plot/charts` (the charts, from the current files "
        "only). `plot/index.py` refuses two current files of one machine and configuration, or "
        "an earlier run newer than the current one, naming the file to move. `ci-gate/` is the "
        "CI gate's baseline commit and its measurements (`tests/regression.sh`); "
        "`contracts.json` the numerical contracts; [NOTES.md](NOTES.md) how some files were "
        "made; [HISTORY.md](HISTORY.md) how the kernels got to their current speed.", "",
        "## Current results", "",
        "Generated by `plot/index.py` from `results/*/*.json`: one row per machine and shape "
        "(activations normal, every instruction set, all cores); fastest = the variant of most "
        "GB/s among the file's hot one-token rows, at its median; % of peak = of the peak "
        "measured in the same run: for a file of `qkbench_schema` 2 (2026-11-29 on) a read of "
        "the row's bytes sampled alternately with it, for an older GPU file the 1 GiB device "
        "copy (read and write counted), for an older CPU file the fastest repetition of a read "
        "of the same bytes.", "",
        "| machine | shape | file | date | commit | fastest (hot) | GB/s | % of peak |",
        "|---|---|---|---|---|---|---|---|"]
    for k in main_keys:
        lines.append("| " + " | ".join([k[0], shape_words(k[1])] +
                                       fastest_cells(by_key[k], root)) + " |")
    machines = {r.machine for r in current + earlier}
    for prefix, name, words in EXPECTED:
        if not any(m.startswith(prefix) for m in machines):
            lines += ["", f"No {name} file exists yet ({words}): run `bench --top 8 --json "
                      "FILE` there and add it as above."]
    if other_keys:
        lines += ["", "## Other current configurations", "",
                  "The newest run of each other configuration: the activation profiles "
                  "(`--act`; with the normal run they make the chart "
                  "[error_by_profile](../plot/charts/error_by_profile.png)) and runs limited by "
                  "`QK_DISABLE_ISA` (a machine of their own in the generations tables below, "
                  "named by the instruction set they ran).", "",
                  "| machine | shape | configuration | file | date | commit | fastest (hot) | "
                  "GB/s | % of peak |", "|---|---|---|---|---|---|---|---|---|"]
        for k in other_keys:
            lines.append("| " + " | ".join([k[0], shape_words(k[1]), extra_words(k[2])] +
                                           fastest_cells(by_key[k], root)) + " |")
    try:
        gen, table, _ = generations.report(current, temperatures=("hot", "cold", "decode"),
                                           root=root)
    except ValueError:  # no top-8 gate rows of the normal profile: no generations section
        gen, table = [], {}
    if gen:
        lines += ["", "## Hardware generations", "",
                  "Written by `plot/generations.py results/*/*.json --temperature all` over the "
                  "current files (ranges, `~` and `!` as explained above each table; charts: "
                  "[generations_hot](../plot/charts/generations_hot.png), "
                  "[generations_cold](../plot/charts/generations_cold.png)). A CPU run limited "
                  "by `QK_DISABLE_ISA` is a machine of its own, named by the instruction set it "
                  "ran. CPU rows depend on the threads of their run (below).",
                  ""] + mixed_gpu_schemas(table) + [line.replace("#### ", "### ", 1)
                                                    for line in gen]
    swept = [r for r in sorted(current, key=lambda r: sort_key(configuration(r)))
             if token_sweeps.has_sweep(r)]
    if swept:
        charts = [t for t in TEMPERATURES if token_sweeps.chart_series(current, t)]
        lines += ["", "## Batched tokens", "",
                  "Written by `plot/tokens.py` over the current files with a tokens sweep "
                  "(`bench --tokens 1,2,4,8`: MUL_MAT_ID of N tokens at once, each routed to its "
                  "own top-k experts; issue 18)."
                  + (" Charts of the time per token against N (`plot/plot.py`, top-8 gate "
                     "rows): " + ", ".join(f"[tokens_{t}](../plot/charts/tokens_{t}.png)"
                                           for t in charts) + "." if charts else ""), ""]
        lines += [line.replace("#### ", "### ", 1) for line in token_sweeps.report(swept,
                                                                                 root=root)]
    folders = sorted({os.path.dirname(os.path.dirname(r.path)) for r in earlier})
    if folders:
        lines += ["", "## Earlier runs", "",
                  "Every run that a newer one of its machine and configuration replaced, with "
                  "the logs of those runs ([NOTES.md](NOTES.md) says how each was made):", ""]
        for folder in folders:
            runs = [r for r in earlier if os.path.dirname(os.path.dirname(r.path)) == folder]
            hist = os.path.join(folder, HISTORY)
            logs = [f for f in os.listdir(hist) if not f.endswith(".json")]
            dates = sorted({r.date for r in runs})
            span = dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
            rel = os.path.relpath(hist, root)
            lines.append(f"- {os.path.basename(folder)}: {len(runs)} result files"
                         + (f" and {len(logs)} logs" if logs else "")
                         + f", {span}, commits "
                         + ", ".join(sorted({str(r.context.get("git_commit", "?"))
                                             for r in runs}))
                         + f": [{rel}/]({rel}/)")
    try:
        with open(os.path.join(root, "README.md"), "w") as f:
            f.write("\n".join(lines) + "\n")
    except OSError as e:
        print(f"index: {os.path.join(root, 'README.md')}: {e.strerror or e}", file=sys.stderr)
        return 2
    print(f"index: {len(current)} current files ({len(main_keys)} in the main table), "
          f"{len(earlier)} earlier, in {os.path.join(root, 'README.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
