"""Reading qkbench result files (Google Benchmark JSON written by `bench --json`): the runs of
each benchmark row, their times and counters, the fingerprint, and the machine's slug."""
import argparse
import json
import math
import re
import statistics
import sys

UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def finite(x):
    """A JSON number (not a bool, a string or null) that is finite."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def median(values):
    """The true median (the mean of the two middle elements for an even count): the one median
    every tool uses."""
    return statistics.median(values)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line on stderr, exit 2 (not usage plus an error)."""

    def error(self, message):
        print(f"{self.prog}: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


class Row:
    """One benchmark row of one file: its repetitions (not the aggregates)."""

    def __init__(self, name):
        self.name = name  # the run_name, e.g. q4k_q8k_vnni_r8/768x2048/k8/hot/min_time:0.100
        self.seconds = []  # per repetition, per call
        self.best = []  # per repetition, its fastest single call (CPU rows; best_call_us)
        self.counters = {}  # of the first repetition (the deviation counters do not vary)
        self.skipped = None

    @property
    def variant(self):
        return self.name.split("/")[0]

    @property
    def temperature(self):
        parts = self.name.split("/")
        return "cold" if "cold" in parts else "hot"

    @property
    def is_peak(self):
        return self.variant == "peak_read"

    @property
    def median(self):
        return median(self.seconds)

    def gbps(self):
        return (self.counters.get("bytes") or 0) / self.median * 1e-9


def load(path):
    """A result file's document, checked to be one bench wrote."""
    with open(path) as f:
        try:
            doc = json.load(f)
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: not JSON ({e})") from None
    if not isinstance(doc, dict) or "benchmarks" not in doc or "context" not in doc:
        raise ValueError(f"{path}: not a Google Benchmark JSON file")
    if not isinstance(doc["context"], dict) or not isinstance(doc["benchmarks"], list):
        raise ValueError(f"{path}: its context is not an object or its benchmarks not a list")
    for i, b in enumerate(doc["benchmarks"]):
        if not isinstance(b, dict):
            raise ValueError(f"{path}: benchmarks[{i}] is not an object")
        if not isinstance(b.get("run_name", b.get("name")), str):
            raise ValueError(f"{path}: benchmarks[{i}] has no name")
    if "qkbench_schema" not in doc["context"]:
        raise ValueError(f"{path}: no qkbench_schema in the context (not written by bench)")
    return doc


class Result:
    def __init__(self, path):
        self.path = path
        doc = load(path)
        self.context = doc["context"]
        self.rows = {}
        self.errors = {}  # run_name: bench's error message (error_occurred: a failed check)
        for b in doc["benchmarks"]:
            if b.get("run_type") == "aggregate":
                continue
            name = b.get("run_name", b["name"])
            row = self.rows.setdefault(name, Row(name))
            if b.get("error_occurred") or b.get("skipped"):
                row.skipped = b.get("error_message") or b.get("skip_message") or "skipped"
                if b.get("error_occurred"):
                    self.errors.setdefault(name, str(row.skipped))
                continue
            t, unit = b.get("real_time"), b.get("time_unit", "ns")
            if not finite(t) or t <= 0 or unit not in UNIT:
                raise ValueError(f"{path}: {name}: real_time {json.dumps(t)} {unit} is not a "
                                 "positive finite time")
            row.seconds.append(t * UNIT[unit])
            if "best_call_us" in b:
                if not finite(b["best_call_us"]) or b["best_call_us"] <= 0:
                    raise ValueError(f"{path}: {name}: best_call_us "
                                     f"{json.dumps(b['best_call_us'])} is not a positive time")
                row.best.append(b["best_call_us"] * 1e-6)
            for key in ("bytes", "peak_GBps"):
                if key in b and b[key] is not None and (not finite(b[key]) or b[key] < 0):
                    raise ValueError(f"{path}: {name}: {key} {json.dumps(b[key])} is not a "
                                     "finite count")
            if not row.counters:
                row.counters = {k: v for k, v in b.items() if isinstance(v, (int, float))}
        self.rows = {k: v for k, v in self.rows.items() if v.seconds}

    def variants(self):
        return [r for r in self.rows.values() if not r.is_peak]

    def peak_for(self, row):
        """The row's peak in bytes per second: the GPU copy counter, or the fastest repetition
        of the CPU read loop over the same bytes at the same temperature."""
        if "peak_GBps" in row.counters and self.context.get("gpu_name") and row.counters.get(
                "kernel_us") is not None:
            return row.counters["peak_GBps"] * 1e9
        for r in self.rows.values():
            if r.is_peak and r.temperature == row.temperature and r.counters.get("bytes") and \
                    r.counters.get("bytes") == row.counters.get("bytes"):
                return r.counters["bytes"] / min(r.seconds)
        if "peak_GBps" in row.counters:
            return row.counters["peak_GBps"] * 1e9
        return None

    def is_gpu_row(self, row):
        return "kernel_us" in row.counters

    @property
    def machine(self):
        return slug(self.context)

    @property
    def date(self):
        return str(self.context.get("run_date", self.context.get("date", "")))[:10]

    @property
    def profile(self):
        return self.context.get("activations", "?")


def slug(ctx, gpu=None):
    """A short machine name from the fingerprint: the GPU's for files with GPU rows, else the
    CPU's with its core count."""
    name = ctx.get("gpu_name") if gpu is not False else None
    if not name:
        name = f"{ctx.get('cpu_model', 'cpu')} {ctx.get('cores', '?')}c"
    name = re.sub(r"\((r|tm)\)|processor|cpu @.*", "", name, flags=re.I)
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


ISA_ORDER = ("avx512_vnni", "avx512", "avx2")  # strongest first


def isa_level(ctx):
    """The strongest instruction set the run's CPU variants could use ("scalar" when none), as
    the context's isa_used says: with QK_DISABLE_ISA the run is named by what it ran."""
    used = str(ctx.get("isa_used", "")).split()
    return next((i for i in ISA_ORDER if i in used), "scalar")


def machine_of(result, row):
    """(machine, isa) of one row: a GPU row's GPU slug and sm_XY; a CPU row's CPU slug and the
    instruction set its run was limited to, so the CPU rows of a GPU host's file and a
    QK_DISABLE_ISA run each name the silicon and the generation they measured."""
    ctx = result.context
    if result.is_gpu_row(row) and ctx.get("gpu_name"):
        cc = str(ctx.get("gpu_compute_capability", "?")).replace(".", "")
        return slug(ctx), f"sm_{cc}"
    return slug(ctx, gpu=False), isa_level(ctx)


def fingerprint(ctx):
    """What must match for two files' times to be comparable."""
    keys = ("gpu_name", "cpu_model", "cpu_family", "cpu_model_number", "cores", "isa_used",
            "threads", "shape", "experts")
    return {k: ctx.get(k) for k in keys if ctx.get(k) is not None}
