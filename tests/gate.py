#!/usr/bin/python3
"""The CI regression gate's coordinator: the baseline's and the new tree's gate_worker, timed
in turn in short batches, each variant judged on its own.

usage: gate.py BASE_WORKER NEW_WORKER [--threshold PCT] [--cases CASE,...] [--json OUT]
               [--batch-ms MS] [--min-pairs N] [--max-pairs N] [--seed N] [--timeout S]

Both workers hold every case's data. The coordinator lets one run a batch of calls (about
--batch-ms, at least 15 calls), then the other, in ABBA order (base new new base, new base base
new, ...), so the two batches of each pair ran in adjacent tens of milliseconds on the same
machine; one worker sleeps on its pipe while the other runs. A batch's figure is the median
time of its calls that got at least 95 % of their wall time on the CPU; a pair's, the log of
new over base. A pair is dropped when either batch was disturbed (fewer than half its calls
clean; with a pool, less than 90 % of every thread's wall time on the CPU); on a machine too
busy to give --min-pairs clean pairs in 3x as many, every pair counts. Per case, after
--min-pairs pairs and then after every ABBA block, the median of the pairs' changes and its
distribution-free 95 % interval (order statistics of Binomial(n, 1/2)) decide:
  pass  when the interval's upper end is under the threshold;
  fail  when its lower end is above half the threshold and the median above the threshold;
  else  sample more, up to --max-pairs pairs (3x as many with disturbed ones), then fail only
        when the median is above the threshold and the lower end above zero.
A case also fails when the new side's calls got their wall time on the CPU markedly less often
than the baseline's (25 points fewer clean calls): a change that makes calls block or sleep
would otherwise hide, since off-CPU calls are left out of the times.
A failure is measured again with two fresh worker processes (a process's own state must not
decide), and the gate fails only when the second measurement fails too. Each batch also hashes
the output of its last call: a new worker whose output differs between batches of one case
fails the gate; outputs that differ from the baseline's are reported (a numerical change,
which the contract tests judge). A worker that stops, answers out of protocol or takes over
--timeout seconds (default 60, or 20x the batch's expected time) to start or to run a batch
ends the gate with exit 2,
naming the case. Exit 0 pass, 1 a confirmed regression or an unsteady output, 2 unusable
setup. The workers' protocol is gate_worker.c's; its test hooks QK_INJECT_SLOWDOWN and
QK_INJECT_SLEEP reach the new worker only."""
import argparse
import json
import math
import os
import select
import subprocess
import sys
import tempfile
import time
from fractions import Fraction

PROTOCOL = 3
OFF_CPU_POINTS = 0.25


class GateError(Exception):
    """The gate cannot run or judge: exit 2 with this message."""


def no_aslr_prefix():
    """setarch -R, where this machine allows it: without address-space randomization a worker's
    code and stack land at the same addresses in every process. With it, the same binary ran up
    to 4 % slower in one process than in the next (branch predictor and cache aliasing follow
    the addresses), which a change of code cannot be told apart from."""
    try:
        ok = subprocess.run(["setarch", "-R", "true"], capture_output=True).returncode == 0
    except OSError:
        ok = False
    return ["setarch", "-R"] if ok else []


class Worker:
    """One gate_worker process and its pipes."""
    prefix = None

    def __init__(self, path, cases, side, seed, timeout):
        env = dict(os.environ)
        if side == "base":
            env.pop("QK_INJECT_SLOWDOWN", None)
            env.pop("QK_INJECT_SLEEP", None)
        self.side, self.path, self.buf = side, path, b""
        if Worker.prefix is None:
            Worker.prefix = no_aslr_prefix()
            if not Worker.prefix:
                print("gate: WARNING: setarch -R is not allowed here: workers run with address "
                      "randomization (a few % of noise between processes)")
        self.err = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(Worker.prefix + [path, "--seed", str(seed)] + cases,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self.err, env=env)
        except OSError as e:
            raise GateError(f"{side} worker {path}: {e}")
        head = self.readline(timeout, "starting").split()
        if len(head) != 4 or head[:3] != ["qkgate", str(PROTOCOL), "ready"] or \
                not head[3].isdigit() or int(head[3]) != len(cases):
            self.close()
            said = self.stderr_line()
            raise GateError(f"{side} worker {path}: " + (said or (
                f"expected 'qkgate {PROTOCOL} ready {len(cases)}', got '{' '.join(head)}' (a "
                "baseline from before this protocol? tests/regression.sh --record a newer one)")))
        for _ in cases:
            self.readline(timeout, "starting")

    def stderr_line(self):
        self.err.seek(0)
        lines = self.err.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else ""

    def readline(self, timeout, what):
        """One line from the worker, or GateError when it stops or takes longer than timeout."""
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.proc.kill()
                raise GateError(f"{self.side} worker: no answer in {timeout:.0f} s while {what}")
            chunk = os.read(fd, 65536)
            if not chunk:  # its stdout closed: it has stopped, or will be made to
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                raise GateError(f"{self.side} worker stopped while {what} (exit "
                                f"{self.proc.returncode}): {self.stderr_line() or 'no message'}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace")

    def run(self, index, name, calls, warmup, timeout):
        try:
            self.proc.stdin.write(f"run {index} {calls} {warmup}\n".encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise GateError(f"{self.side} worker stopped before {name}: "
                            f"{self.stderr_line() or 'no message'}")
        f = self.readline(timeout, f"running {name}").split()
        try:
            b = {k: float(v) for k, v in (kv.split("=", 1) for kv in f[2:])}
            ok = f[:2] == ["done", str(index)] and all(math.isfinite(v) for v in b.values()) \
                and b["median_ns"] > 0 and b["calls"] == calls and b["threads"] >= 1
        except (ValueError, KeyError):
            ok = False
        if not ok:
            raise GateError(f"{self.side} worker, {name}: not a batch report: '{' '.join(f)}'")
        b["side"] = self.side
        return b

    def close(self):
        try:
            self.proc.stdin.write(b"quit\n")
            self.proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.err.close()


def clean(b):
    """A batch whose figure stands for the code: at least half its calls ran undisturbed (the
    worker drops a call that got less than 95 % of its wall time on the CPU, and takes the
    median of the rest), and with a pool the process had 90 % of every thread's wall time."""
    threads = int(b["threads"])
    return b["clean_calls"] >= b["calls"] / 2 and (
        threads == 1 or b["cpu_ns"] >= 0.9 * b["wall_ns"] * threads)


def median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def median_interval(v, level=0.95):
    """Distribution-free interval for the median: order statistics k and n-1-k (0-based), k the
    largest with P(Binomial(n, 1/2) <= k) <= (1-level)/2 (integer arithmetic: exact for any n).
    None when n is too small for the level."""
    s = sorted(v)
    n = len(s)
    tail = (1 - Fraction(str(level))) / 2
    cum, k = 0, -1
    for i in range(n):
        cum += math.comb(n, i)
        if cum * tail.denominator > tail.numerator * 2 ** n:
            break
        k = i
    if k < 0:
        return None
    return s[k], s[n - 1 - k]


def pct(log_ratio):
    return (math.exp(log_ratio) - 1) * 100


def clean_share(batches, side):
    return sum(b["clean_calls"] for b in batches if b["side"] == side) / \
        sum(b["calls"] for b in batches if b["side"] == side)


def measure(base, new, index, name, a):
    """ABBA batches of one case until the decision rule settles; returns the case's record."""
    calib = base.run(index, name, 3, 1, a.timeout)
    per_call = calib["median_ns"] * 1e-9
    # at least 15 calls, so that a batch's median survives a preempted call or two
    calls = max(15, min(200000, round(a.batch_ms * 1e-3 / per_call)))
    warmup = max(2, calls // 10)
    timeout = max(a.timeout, 20 * (calls + warmup) * per_call)
    for w in (base, new):  # the first batch of each side pays for page faults and the pool's start
        w.run(index, name, calls, warmup, timeout)
    clean_pairs, all_pairs, batches = [], [], []
    thr = math.log1p(a.threshold / 100)
    verdict, reason, block = None, "", 0
    while verdict is None:
        order = (base, new, new, base) if block % 2 == 0 else (new, base, base, new)
        block += 1
        got = [w.run(index, name, calls, warmup, timeout) for w in order]
        batches += got
        for first, second in (got[0:2], got[2:4]):
            b, n = (first, second) if first["side"] == "base" else (second, first)
            change = math.log(n["median_ns"] / b["median_ns"])
            all_pairs.append(change)
            if clean(b) and clean(n):
                clean_pairs.append(change)
        # the clean pairs decide; on a machine too busy to give enough of them, every pair does
        if len(clean_pairs) < a.min_pairs and len(all_pairs) < 3 * a.min_pairs:
            continue
        pairs = clean_pairs if len(clean_pairs) >= a.min_pairs else all_pairs
        m, ci = median(pairs), median_interval(pairs)
        capped = len(pairs) >= a.max_pairs or len(all_pairs) >= 3 * a.max_pairs
        if ci and ci[1] < thr:
            verdict, reason = "pass", "interval under the threshold"
        elif ci and ci[0] > thr / 2 and m > thr:
            verdict, reason = "FAIL", "median over the threshold, interval above half of it"
        elif capped:
            slower = ci is not None and m > thr and ci[0] > 0
            verdict = "FAIL" if slower else "pass"
            reason = f"undecided after {len(pairs)} pairs: " + (
                "median over the threshold, interval above zero" if slower else
                "median within the threshold")
    shares = {side: clean_share(batches, side) for side in ("base", "new")}
    if shares["new"] < shares["base"] - OFF_CPU_POINTS:
        verdict = "FAIL"
        reason = (f"calls off the CPU: {100 * shares['new']:.0f} % of the new calls ran "
                  f"undisturbed, {100 * shares['base']:.0f} % of the baseline's")
    dropped = len(all_pairs) - len(clean_pairs) if pairs is clean_pairs else 0
    hashes = {side: {b["hash"] for b in batches if b["side"] == side} for side in ("base", "new")}
    ci = median_interval(pairs) or (float("nan"), float("nan"))
    return {"case": name, "calls_per_batch": calls, "pairs": len(pairs),
            "dropped_pairs": dropped, "disturbed_pairs": len(all_pairs) - len(clean_pairs),
            "used": "clean pairs" if pairs is clean_pairs else "all pairs (too few clean ones)",
            "change_pct": pct(median(pairs)),
            "interval_pct": [pct(ci[0]), pct(ci[1])], "verdict": verdict, "reason": reason,
            "clean_call_share": shares,
            "base_median_us": median([b["median_ns"] for b in batches if b["side"] == "base"]) / 1e3,
            "new_median_us": median([b["median_ns"] for b in batches if b["side"] == "new"]) / 1e3,
            "new_output_steady": len(hashes["new"]) == 1,
            "output_as_baseline": hashes["new"] == hashes["base"], "batches": batches}


def default_cases(base_path, new_path):
    """Every CPU matvec variant both trees have and this machine runs, one thread on one expert
    (0.9 MB, what a core's L2 holds); and the fastest Q8_K variant on the top-8 experts with
    two threads, so the thread pool and the multi-expert driver are gated too."""
    lists = []
    for p in (base_path, new_path):
        try:
            r = subprocess.run([p, "--list"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise GateError(f"{p} --list: {e}")
        if r.returncode:
            raise GateError(f"{p} --list: {r.stderr.strip() or f'exit {r.returncode}'}")
        lists.append(r.stdout.split())
    both = [v for v in lists[1] if v in lists[0]]
    only_new = [v for v in lists[1] if v not in lists[0]]
    if only_new:
        print(f"gate: not gated (new, not in the baseline): {', '.join(only_new)}")
    if not both:
        raise GateError("the two workers have no CPU variant in common that this CPU runs")
    cases = [f"{v}:0:1" for v in both]
    threads = min(2, len(os.sched_getaffinity(0)))
    fast = [v for v in ("q4k_q8k_vnni_r8", "q4k_q8k_maddubs", "q4k_q8k_ref") if v in both]
    if threads < 2:
        print("gate: no two-thread case: this process may run on one CPU only")
    elif fast:
        cases.append(f"{fast[0]}:0,1,2,3,4,5,6,7:{threads}")
    return cases


def parse_cases(text):
    cases = [c.strip().replace("+", ",") for c in text.split(",")]
    if not all(cases):
        raise GateError(f"--cases '{text}': an empty case")
    if len(set(cases)) != len(cases):
        raise GateError(f"--cases '{text}': a case given twice")
    return cases


def run_round(a, cases, indices, label):
    base = Worker(a.base, cases, "base", a.seed, a.timeout)
    try:
        new = Worker(a.new, cases, "new", a.seed, a.timeout)
    except Exception:
        base.close()
        raise
    try:
        out = []
        for i in indices:
            r = measure(base, new, i, cases[i], a)
            r["round"] = label
            out.append(r)
            show(r)
        return out
    finally:
        base.close()
        new.close()


def show(r):
    lo, hi = r["interval_pct"]
    mark = "*" if r["dropped_pairs"] == 0 and r["disturbed_pairs"] else " "
    print(f"{r['case'][:44]:44} {r['base_median_us']:9.2f} {r['new_median_us']:9.2f} "
          f"{r['change_pct']:+7.1f}% [{lo:+6.1f}, {hi:+6.1f}] {r['pairs']:4d} "
          f"{r['disturbed_pairs']:4d}{mark} {r['verdict']}", flush=True)


def gate(a):
    t0 = time.monotonic()
    if a.json and not os.access(os.path.dirname(os.path.abspath(a.json)), os.W_OK):
        raise GateError(f"--json: cannot write {a.json}: its folder is missing or read-only")
    cases = parse_cases(a.cases) if a.cases is not None else default_cases(a.base, a.new)
    print(f"gate: {len(cases)} cases, threshold {a.threshold:g} %, batches of ~{a.batch_ms:g} ms "
          "in ABBA order; change = median over pairs of new/base, 95 % interval")
    print(f"{'case':44} {'base_us':>9} {'new_us':>9} {'change':>8} {'interval':>16} "
          f"{'pairs':>4} {'drop':>4}  verdict")
    results = run_round(a, cases, range(len(cases)), "first")
    failed = [i for i, r in enumerate(results) if r["verdict"] == "FAIL"]
    confirmed = []
    unsteady = [r["case"] for r in results if not r["new_output_steady"]]
    changed = [r["case"] for r in results if not r["output_as_baseline"]]
    if changed:
        print(f"gate: outputs differ from the baseline's (a numerical change; the contract "
              f"tests judge it): {', '.join(changed)}")
    if failed:
        print(f"gate: {len(failed)} case(s) slower: measuring them again with fresh processes")
        again = run_round(a, cases, failed, "confirm")
        results += again
        confirmed = [r for r in again if r["verdict"] == "FAIL"]
    if a.json:  # beside the old file, then renamed over it: a failed write leaves it whole
        tmp = f"{a.json}.tmp{os.getpid()}"
        try:
            with open(tmp, "w") as f:
                json.dump({"threshold_pct": a.threshold, "cases": cases, "results": results,
                           "seconds": time.monotonic() - t0}, f, indent=1)
            os.replace(tmp, a.json)
        except OSError as e:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise GateError(f"--json: cannot write {a.json}: {e.strerror}")
    if any(r["dropped_pairs"] == 0 and r["disturbed_pairs"] for r in results):
        print("gate: *: fewer undisturbed pairs than --min-pairs (a busy machine): all pairs "
              "decided, each batch still by the median of its undisturbed calls")
    for r in confirmed:
        first = next(x for x in results if x["case"] == r["case"] and x["round"] == "first")
        print(f"gate: REGRESSION {r['case']}: {first['change_pct']:+.1f} % then "
              f"{r['change_pct']:+.1f} % slower with fresh processes (95 % intervals "
              f"{first['interval_pct'][0]:+.1f} .. {first['interval_pct'][1]:+.1f} and "
              f"{r['interval_pct'][0]:+.1f} .. {r['interval_pct'][1]:+.1f} %, {first['pairs']} "
              f"and {r['pairs']} pairs of batches; per call {r['base_median_us']:.2f} -> "
              f"{r['new_median_us']:.2f} us; {r['reason']})")
    for case in unsteady:
        print(f"gate: UNSTEADY {case}: the new tree's output differs from one batch to the next")
    print(f"gate: {'FAIL' if confirmed or unsteady else 'pass'} in {time.monotonic() - t0:.0f} s; "
          f"{len(confirmed)} of {len(cases)} cases slower beyond {a.threshold:g} %"
          + (f", {len(unsteady)} with unsteady outputs" if unsteady else ""))
    return 1 if confirmed or unsteady else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("base")
    ap.add_argument("new")
    ap.add_argument("--threshold", type=float, default=10.0)
    ap.add_argument("--cases", help="comma-separated VARIANT:EXPERTS:THREADS (experts joined "
                    "by '+' here), default: see default_cases")
    ap.add_argument("--json")
    ap.add_argument("--batch-ms", type=float, default=20.0)
    ap.add_argument("--min-pairs", type=int, default=16)
    ap.add_argument("--max-pairs", type=int, default=96)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args()
    if not (0 < a.threshold <= 100 and 0 < a.batch_ms <= 1000 and
            8 <= a.min_pairs <= a.max_pairs <= 1000 and 0 <= a.seed < 2 ** 63 and
            0 < a.timeout <= 3600):
        print("gate: need 0 < threshold <= 100, 0 < batch-ms <= 1000, "
              "8 <= min-pairs <= max-pairs <= 1000, 0 <= seed < 2^63, 0 < timeout <= 3600",
              file=sys.stderr)
        return 2
    try:
        return gate(a)
    except GateError as e:
        print(f"gate: {e}", file=sys.stderr)
    except Exception as e:  # a fault of the gate itself is no verdict on the code
        print(f"gate: internal error: {type(e).__name__}: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
