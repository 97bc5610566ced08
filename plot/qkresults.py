"""Reading qkbench result files (Google Benchmark JSON written by `bench --json`): the runs of
each benchmark row, their times and counters, the fingerprint, and the machine's slug.

Two schemas (the context's `qkbench_schema`; any other value is refused):

- "1": Google Benchmark's repetitions (5 by default) and their aggregates. A Row's `seconds` are
  its repetitions' real_time per call, `best` each repetition's best_call_us (CPU rows), its
  %peak is recomputed against the fastest repetition of the peak_read row over the same bytes
  at the same temperature (GPU rows: the counter peak_GBps, the 1 GiB device copy).
- "2" (issue 13, nvbench-style sampling): one entry per row, named
  `<row>/iterations:1/manual_time`, and a top-level `qkbench_samples` object keyed by `<row>`
  holding `time_us` (every sample in order, per call), `dropped` (0 clean, else a reason code
  1-4: a thread's cpu/wall below 0.95 with an involuntary context switch, the same without one,
  GPU SM clock low, GPU blocking kernel timed out), and where present `peak_us` (the peak
  samples interleaved with the row's) with `peak_dropped` (their codes) and `kernel_us` (GPU
  rows, CUPTI; null where no record), all of one length. A Row's `seconds` are its CLEAN
  samples (code 0), in order; its median must equal the entry's real_time within 0.01 % or
  0.001 us (else the file is refused: its summary and its samples disagree); `noisy` is the
  entry's counter, or more than 25 % of its samples dropped; `ci_low`/`ci_high` (seconds) the
  entry's 95 % interval of the median (it must hold real_time); `pct_peak` the entry's counter
  (row and peak medians of the same sampling window). The counters `samples` and `dropped`,
  where present, must equal the counts in the arrays. Temperatures: hot, cold, decode (GPU:
  warm launches, cold weights); peak rows: peak_read (CPU) and peak_read_gpu.

Batched tokens (issue 18, `bench --tokens 1,2,4,8`: one section per token count N, MUL_MAT_ID of
N tokens, each routed to its own top-k experts): a row of N > 1 tokens is named
`<variant>/<rows>x<cols>/k<k>/t<N>/<temperature>` (N = 1 keeps the name without the t<N> part,
so older files still pair); its time is the whole batch's and its `bytes` the batch's (each
touched expert's weights once, all activations and outputs). A Row's `tokens` is its counter
`tokens`, else the name's t<N>, else 1 (older files); a counter that is not a positive integer,
or that the name contradicts, and a name with two t<N> parts or a malformed one (t0, t08) are
refused. The context gives `tokens` (the list asked), `routing` (uniform or skewed) and per N
`batch.t<N>` ("touched experts <d>, most tokens on one expert <m>"): Result.batch(N).

A file that is unusable (not JSON or nested too deeply for Python, not bench's, a time that is
not a positive finite number, a malformed qkbench_samples, a schema-1 file carrying one) raises
ValueError with one line naming the file and the problem; the tools print it and exit 2."""
import argparse
import json
import math
import re
import statistics
import sys

UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
SCHEMAS = {"1": 1, "2": 2}
PEAK_VARIANTS = ("peak_read", "peak_read_gpu")
TEMPERATURES = ("hot", "cold", "decode")
DROP_REASONS = {1: "cpu/wall below 0.95, preempted", 2: "cpu/wall below 0.95, off the CPU",
                3: "GPU SM clock below its stated fraction of max",
                4: "GPU blocking kernel timed out"}
NOISY_DROPPED = 0.25  # a row with more than this fraction of its samples dropped is noisy
MEDIAN_RTOL, MEDIAN_ATOL_US = 1e-4, 1e-3  # real_time against the samples' median
# Google Benchmark's suffixes of a run name (schema 1 cold and GPU rows carry
# /iterations:N/manual_time, schema 2 every row /iterations:1/manual_time)
GB_SUFFIX = re.compile(r"^(iterations|repeats|min_time|min_warmup_time|threads):|"
                       r"^(manual_time|real_time|process_time)$")
TOKENS_PART = re.compile(r"^t([0-9]+)$")  # a row's token count, t<N> (well formed: t[1-9][0-9]*)


def finite(x):
    """A JSON number (not a bool, a string or null) that is finite."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def median(values):
    """The true median (the mean of the two middle elements for an even count): the one median
    every tool uses."""
    return statistics.median(values)


def lower_tail(values):
    """The fastest fifth (ceil(n/5), at least one) of the values, fastest first: the series of
    --statistic best for sampled (schema 2) rows; its median is their 10th percentile."""
    v = sorted(values)
    return v[:max(1, -(-len(v) // 5))]


def p10(values):
    """The 10th percentile as the tools define it: the median of the fastest fifth."""
    return median(lower_tail(values))


def row_key(name):
    """A run name without Google Benchmark's suffixes: the row as schema 2 names it
    (q4k_q8k_vnni_r8/768x2048/k8/cold/iterations:20/manual_time -> .../k8/cold)."""
    parts = name.split("/")
    while len(parts) > 1 and GB_SUFFIX.search(parts[-1]):
        parts.pop()
    return "/".join(parts)


def token_parts(name):
    """The t<N> parts of a row's name after its variant (a variant's own name never counts):
    [(index in the name's parts, the part)]."""
    parts = row_key(name).split("/")
    return [(i, p) for i, p in enumerate(parts) if i > 0 and TOKENS_PART.match(p)]


def name_tokens(name):
    """N from a row's name: its t<N> part, 1 without one (a one-token row, or an older file)."""
    found = token_parts(name)
    return int(found[0][1][1:]) if found else 1


def series_key(name):
    """The row's name without its t<N> part: the one-token row of the same variant, shape,
    experts and temperature (q4k_q8k_ref/768x2048/k8/t8/hot -> q4k_q8k_ref/768x2048/k8/hot)."""
    parts = row_key(name).split("/")
    drop = {i for i, _ in token_parts(name)}
    return "/".join(p for i, p in enumerate(parts) if i not in drop)


BATCH = re.compile(r"touched experts (\d+), most tokens on one expert (\d+)")


def parse_batch(text):
    """(touched experts, most tokens on one expert) from a context's batch.t<N>, None when it
    says neither (absent, or in other words)."""
    m = BATCH.search(text or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def token_experts(ctx):
    """The context's experts as one list per token (bench writes them '/'-separated, token 0
    first; a one-token file has one list); [] when it does not say."""
    e = ctx.get("experts")
    return str(e).split("/") if e is not None else []


def batch_change(base_ctx, new_ctx, tokens):
    """Why two runs' batches of N tokens are not the same work ("routing uniform -> skewed",
    "batch.t8 '...' -> '...'"), or None: one token (routing cannot change it), or the contexts
    agree where both say (a context that does not say, an older file's, is taken to agree)."""
    if tokens <= 1:
        return None
    lb, ln = token_experts(base_ctx), token_experts(new_ctx)
    if len(lb) >= tokens and len(ln) >= tokens and lb[:tokens] != ln[:tokens]:
        t = next(t for t in range(tokens) if lb[t] != ln[t])
        return f"experts of token {t} {lb[t]} -> {ln[t]}"
    rb, rn = base_ctx.get("routing"), new_ctx.get("routing")
    if rb is not None and rn is not None and str(rb) != str(rn):
        return f"routing {rb} -> {rn}"
    b, n = base_ctx.get(f"batch.t{tokens}"), new_ctx.get(f"batch.t{tokens}")
    if b is not None and n is not None and str(b) != str(n):
        return f"batch.t{tokens} '{b}' -> '{n}'"
    return None


def check_tokens(path, name, counters):
    """Raises ValueError (one line) when the row's token count is malformed: two t<N> parts, a
    t<N> that is not a positive integer without leading zeros, a counter `tokens` that is not a
    positive integer or that the name contradicts."""
    found = token_parts(name)
    if len(found) > 1:
        raise ValueError(f"{path}: {name}: two token counts in the name "
                         f"({', '.join(p for _, p in found)})")
    if found and (found[0][1][1] == "0"):
        raise ValueError(f"{path}: {name}: {found[0][1]} is not a token count (t1, t2, ...)")
    if "tokens" not in counters:
        return
    t = counters["tokens"]
    if not finite(t) or t != int(t) or t < 1:
        raise ValueError(f"{path}: {name}: the counter tokens {json.dumps(t)} is not a positive "
                         "integer")
    if int(t) != name_tokens(name):
        raise ValueError(f"{path}: {name}: the counter tokens is {int(t)}, the name says "
                         f"{name_tokens(name)} (rows of N > 1 tokens are named .../k<k>/t<N>/"
                         "<temperature>)")


def _binom_cdf(n, q):
    """[P(B <= k) for k in 0..n], B ~ Binomial(n, q), in log space (n up to ~10^6)."""
    lq, l1q = math.log(q), math.log1p(-q)
    lg = math.lgamma(n + 1)
    out, acc = [], 0.0
    for k in range(n + 1):
        acc += math.exp(lg - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * lq + (n - k) * l1q)
        out.append(min(acc, 1.0))
    return out


def order_interval(values, q=0.5, level=0.95):
    """The distribution-free interval of the q-quantile from order statistics: (X(l), X(u)) with
    B ~ Binomial(n, q), l the largest rank with P(B < l) <= (1-level)/2 and u the smallest with
    P(B >= u) <= (1-level)/2; clamped to the extremes (min, max) when n is too small to reach
    the level (n <= 5 for the median: the interval is then the range)."""
    v = sorted(values)
    n = len(v)
    if n == 0:
        return None
    tail = (1 - level) / 2
    cdf = _binom_cdf(n, q)
    lo = 1
    for rank in range(1, n + 1):  # P(B < rank) = cdf[rank-1]
        if cdf[rank - 1] <= tail:
            lo = rank
        else:
            break
    hi = n
    for rank in range(n, 0, -1):  # P(B >= rank) = 1 - cdf[rank-1]
        if 1 - cdf[rank - 1] <= tail:
            hi = rank
        else:
            break
    return v[lo - 1], v[hi - 1]


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line on stderr, exit 2 (not usage plus an error)."""

    def error(self, message):
        print(f"{self.prog}: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


class Row:
    """One benchmark row of one file: its repetitions (schema 1, not the aggregates) or its
    clean samples (schema 2)."""

    def __init__(self, name, schema=1):
        self.name = name  # schema 1: the run_name, e.g. .../k8/cold/iterations:20/manual_time;
        #                   schema 2: the row, e.g. q4k_q8k_vnni_r8/768x2048/k8/cold
        self.schema = schema
        self.seconds = []  # schema 1: per repetition, per call; schema 2: clean samples, per call
        self.best = []  # schema 1: per repetition, its fastest single call (CPU rows; best_call_us)
        self.counters = {}  # of the first repetition (the deviation counters do not vary)
        self.skipped = None
        # schema 2 (None / empty for schema 1 rows)
        self.samples = {}  # the qkbench_samples record: time_us, dropped, peak_us, kernel_us
        self.peak_seconds = []  # the peak samples interleaved with the clean samples, per call
        self.kernel_seconds = []  # CUPTI per clean sample (GPU rows)
        self.dropped = 0  # samples dropped as unclean
        self.noisy = False
        self.ci = None  # (low, high) in seconds: the 95 % interval of the median
        self.pct_peak = None  # the entry's counter (schema 2: row and peak of the same window)

    @property
    def key(self):
        """The name without Google Benchmark's suffixes (schema 2 names are already so)."""
        return row_key(self.name)

    @property
    def variant(self):
        return self.name.split("/")[0]

    @property
    def temperature(self):
        """The last part of the row name (variant/shape/k<n>/temperature), read from the right:
        a variant's name never decides it; a name without one is a hot row (schema 1)."""
        last = self.key.split("/")[-1]
        return last if last in ("cold", "decode") and "/" in self.key else "hot"

    @property
    def tokens(self):
        """N, the tokens of the batch the row times: the counter `tokens`, else the name's t<N>,
        else 1 (files from before issue 18); Result checked that the two agree."""
        t = self.counters.get("tokens")
        if finite(t) and t >= 1 and t == int(t):
            return int(t)
        return name_tokens(self.name)

    @property
    def series(self):
        """The name without its t<N> part: the rows of one variant, shape, experts and
        temperature at every token count share it."""
        return series_key(self.name)

    @property
    def is_peak(self):
        return self.variant in PEAK_VARIANTS

    @property
    def median(self):
        return median(self.seconds)

    def gbps(self):
        return (self.counters.get("bytes") or 0) / self.median * 1e-9

    def interval(self):
        """(low, high) seconds: the 95 % interval of the median (schema 2: the file's; schema 1:
        order statistics over the repetitions, their range for five)."""
        return self.ci or order_interval(self.seconds)


def load(path):
    """A result file's document, checked to be one bench wrote."""
    with open(path) as f:
        try:
            doc = json.load(f)
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: not JSON ({e})") from None
        except RecursionError:  # nesting deeper than Python's recursion limit
            raise ValueError(f"{path}: not a result file (JSON nested too deeply)") from None
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
    if schema_of(doc, path) == 1 and "qkbench_samples" in doc:
        raise ValueError(f"{path}: qkbench_schema 1 with a qkbench_samples object (schema 2's: "
                         "the file is neither)")
    return doc


def schema_of(doc, path="?"):
    """1 or 2, from the context's qkbench_schema ("1" or "2"; a number is taken too)."""
    v = doc["context"].get("qkbench_schema")
    s = SCHEMAS.get(str(v) if not isinstance(v, float) or not v.is_integer() else str(int(v)))
    if s is None or isinstance(v, bool):
        raise ValueError(f"{path}: qkbench_schema {json.dumps(v)} is not one these tools read "
                         "(1 or 2)")
    return s


def sample_record(path, name, rec, skipped):
    """The checked qkbench_samples record of one row: {time_us, dropped, peak_us?, kernel_us?}
    as lists of equal length."""
    where = f"{path}: qkbench_samples[{json.dumps(name)}]"
    if not isinstance(rec, dict):
        raise ValueError(f"{where} is not an object")
    for key in ("time_us", "dropped"):
        if key not in rec:
            raise ValueError(f"{where} has no {key}")
    n = None
    if ("peak_us" in rec) != ("peak_dropped" in rec):
        raise ValueError(f"{where}: peak_us and peak_dropped go together")
    for key in ("time_us", "dropped", "peak_us", "peak_dropped", "kernel_us"):
        if key not in rec:
            continue
        arr = rec[key]
        if not isinstance(arr, list):
            raise ValueError(f"{where}.{key} is not an array")
        if n is None:
            n = len(arr)
        elif len(arr) != n:
            raise ValueError(f"{where}: {key} has {len(arr)} values, time_us {n} (the arrays "
                             "must be of one length)")
        for i, x in enumerate(arr):
            if key == "kernel_us" and x is None:
                continue  # no CUPTI record for that sample
            if key in ("dropped", "peak_dropped"):
                if not finite(x) or x != int(x) or not 0 <= x <= 4:
                    raise ValueError(f"{where}.dropped[{i}] = {json.dumps(x)} is not a reason "
                                     "code (an integer 0-4)")
            elif not finite(x) or x <= 0:
                raise ValueError(f"{where}.{key}[{i}] = {json.dumps(x)} is not a positive "
                                 "finite time")
    codes = [int(c) for c in rec["dropped"]]
    if not skipped and codes.count(0) == 0:
        raise ValueError(f"{where}: no clean sample ({len(codes)} samples, all dropped)")
    return dict(rec, dropped=codes)


class Result:
    def __init__(self, path):
        self.path = path
        doc = load(path)
        self.context = doc["context"]
        self.schema = schema_of(doc, path)
        self.rows = {}
        self.errors = {}  # run_name: bench's error message (error_occurred: a failed check)
        if self.schema == 2:
            self._read_schema2(doc)
            return
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
            row.seconds.append(self._real_time(b, name))
            if "best_call_us" in b:
                if not finite(b["best_call_us"]) or b["best_call_us"] <= 0:
                    raise ValueError(f"{path}: {name}: best_call_us "
                                     f"{json.dumps(b['best_call_us'])} is not a positive time")
                row.best.append(b["best_call_us"] * 1e-6)
            self._check_counts(b, name)
            check_tokens(path, name, b)
            if not row.counters:
                row.counters = {k: v for k, v in b.items() if isinstance(v, (int, float))}
        self.rows = {k: v for k, v in self.rows.items() if v.seconds}

    def _real_time(self, b, name):
        t, unit = b.get("real_time"), b.get("time_unit", "ns")
        if not finite(t) or t <= 0 or unit not in UNIT:
            raise ValueError(f"{self.path}: {name}: real_time {json.dumps(t)} {unit} is not a "
                             "positive finite time")
        return t * UNIT[unit]

    def _check_counts(self, b, name):
        for key in ("bytes", "peak_GBps"):
            if key in b and b[key] is not None and (not finite(b[key]) or b[key] < 0):
                raise ValueError(f"{self.path}: {name}: {key} {json.dumps(b[key])} is not a "
                                 "finite count")

    def _read_schema2(self, doc):
        path = self.path
        samples = doc.get("qkbench_samples")
        if not isinstance(samples, dict):
            raise ValueError(f"{path}: qkbench_schema 2 without a qkbench_samples object")
        for b in doc["benchmarks"]:
            if b.get("run_type") == "aggregate":
                continue
            name = row_key(b.get("run_name", b["name"]))
            if name in self.rows:
                raise ValueError(f"{path}: two entries for the row {name} (schema 2 has one "
                                 "per row)")
            row = self.rows[name] = Row(name, schema=2)
            check_tokens(path, name, b)
            skipped = bool(b.get("error_occurred") or b.get("skipped"))
            if skipped:
                row.skipped = b.get("error_message") or b.get("skip_message") or "skipped"
                if b.get("error_occurred"):
                    self.errors.setdefault(name, str(row.skipped))
                if name in samples:
                    sample_record(path, name, samples[name], True)
                continue
            real = self._real_time(b, name)
            self._check_counts(b, name)
            if name not in samples:
                raise ValueError(f"{path}: qkbench_samples has no record of the row {name}")
            rec = row.samples = sample_record(path, name, samples[name], False)
            clean = [i for i, c in enumerate(rec["dropped"]) if c == 0]
            row.seconds = [rec["time_us"][i] * 1e-6 for i in clean]
            # the peak samples taken beside this row's, those that were clean themselves
            row.peak_seconds = [t * 1e-6 for t, c in zip(rec["peak_us"], rec["peak_dropped"])
                                if c == 0] if "peak_us" in rec else []
            row.kernel_seconds = [rec["kernel_us"][i] * 1e-6 for i in clean
                                  if rec["kernel_us"][i] is not None] if "kernel_us" in rec else []
            row.dropped = len(rec["dropped"]) - len(clean)
            row.counters = {k: v for k, v in b.items() if finite(v)}
            cnt = row.counters
            for key, have in (("samples", len(clean)), ("dropped", row.dropped)):
                if key in b and (not finite(b[key]) or b[key] != have):
                    raise ValueError(f"{path}: {name}: the counter {key} is "
                                     f"{json.dumps(b[key])}, qkbench_samples has {have}")
            got = row.median
            if abs(got - real) > max(MEDIAN_RTOL * real, MEDIAN_ATOL_US * 1e-6):
                raise ValueError(f"{path}: {name}: real_time {real * 1e6:.6g} us is not the "
                                 f"median of its clean samples ({got * 1e6:.6g} us)")
            for key in ("ci_low_us", "ci_high_us", "pct_peak", "peak_us", "noisy"):
                if key in b and not finite(b[key]):
                    raise ValueError(f"{path}: {name}: {key} {json.dumps(b[key])} is not a "
                                     "finite number")
            if "ci_low_us" in cnt and "ci_high_us" in cnt:
                lo, hi = cnt["ci_low_us"] * 1e-6, cnt["ci_high_us"] * 1e-6
                if not 0 < lo <= hi:
                    raise ValueError(f"{path}: {name}: ci_low_us {cnt['ci_low_us']} and "
                                     f"ci_high_us {cnt['ci_high_us']} are not an interval")
                if not lo * (1 - 1e-9) <= real <= hi * (1 + 1e-9):
                    raise ValueError(f"{path}: {name}: the interval [{cnt['ci_low_us']}, "
                                     f"{cnt['ci_high_us']}] us does not hold real_time "
                                     f"{real * 1e6:.6g} us, the median it is the interval of")
                row.ci = (lo, hi)
            row.pct_peak = cnt.get("pct_peak")
            total = len(rec["dropped"])
            row.noisy = bool(cnt.get("noisy")) or row.dropped > NOISY_DROPPED * total
        extra = sorted(set(samples) - set(self.rows))
        if extra:
            raise ValueError(f"{path}: qkbench_samples[{json.dumps(extra[0])}] names no row "
                             "of benchmarks")
        self.rows = {k: v for k, v in self.rows.items() if v.seconds}

    def variants(self, tokens=None):
        """The rows of variants (not the peak rows); with tokens, only those of that N."""
        return [r for r in self.rows.values() if not r.is_peak and
                (tokens is None or r.tokens == tokens)]

    def token_counts(self):
        """The token counts N of the file's variant rows, ascending ([1] for older files)."""
        return sorted({r.tokens for r in self.variants()})

    @property
    def routing(self):
        """How bench routed a batch's tokens to experts (uniform or skewed; None: not said, a
        file from before issue 18)."""
        r = self.context.get("routing")
        return str(r) if r is not None else None

    def batch(self, tokens):
        """The context's description of the batch of N tokens ("touched experts <d>, most
        tokens on one expert <m>"), None where the file does not give it."""
        b = self.context.get(f"batch.t{tokens}")
        return str(b) if b is not None else None

    def peak_for(self, row):
        """The row's peak in bytes per second. Schema 2: the median of the peak samples
        interleaved with the row's own (the counter peak_GBps, else bytes / peak_us). Schema 1:
        the GPU copy counter, or the fastest repetition of the CPU read loop over the same bytes
        at the same temperature."""
        if self.schema == 2:
            if finite(row.counters.get("peak_GBps")) and row.counters["peak_GBps"] > 0:
                return row.counters["peak_GBps"] * 1e9
            if row.counters.get("bytes") and finite(row.counters.get("peak_us")) and \
                    row.counters["peak_us"] > 0:
                return row.counters["bytes"] / (row.counters["peak_us"] * 1e-6)
            return None
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

    def pct_of_peak(self, row):
        """The row's GB/s at its median as % of its run's peak (None without one): schema 2 the
        entry's pct_peak (the medians of the row's and its interleaved peak's samples), schema
        1 recomputed against peak_for (the peak's fastest repetition)."""
        if self.schema == 2 and finite(row.pct_peak):
            return row.pct_peak
        peak = self.peak_for(row)
        return 100 * row.gbps() * 1e9 / peak if peak else None

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


def machine_label(result):
    """The machine a file's rows are drawn as (plot/plot.py): its slug, with the instruction set
    it ran when QK_DISABLE_ISA limited it (as in plot/generations.py)."""
    limited = str(result.context.get("isa_disabled", "none")) not in ("none", "")
    return f"{result.machine} {isa_level(result.context)}" if limited else result.machine


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
    """What must match for two files' times to be comparable. Of the experts, token 0's: a
    one-token row's work (a --tokens file lists every token's, '/'-separated, and its one-token
    rows are those of a one-token file of the same seed); batch_change judges rows of N > 1."""
    keys = ("gpu_name", "cpu_model", "cpu_family", "cpu_model_number", "cores", "isa_used",
            "threads", "shape", "experts")
    found = {k: ctx.get(k) for k in keys if ctx.get(k) is not None}
    if "experts" in found:
        found["experts"] = token_experts(ctx)[0]
    return found
