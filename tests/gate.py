#!/usr/bin/python3
"""The CI regression gate's coordinator: the baseline's and the new tree's gate_worker, timed
in turn in short batches, each variant judged on its own.

usage: gate.py BASE_WORKER NEW_WORKER [--threshold PCT] [--cases CASE,...] [--json OUT]
               [--batch-ms MS] [--min-pairs N] [--max-pairs N] [--seed N]

Both workers hold every case's data. The coordinator lets one run a batch of calls (about
--batch-ms), then the other, in ABBA order (base new new base, new base base new, ...), so the
two batches of each pair ran in adjacent tens of milliseconds on the same machine; one worker
sleeps on its pipe while the other runs. A batch's figure is the median time of its calls that
got at least 95 % of their wall time on the CPU; a pair's, the log of new over base. A pair is
dropped when either batch was disturbed (fewer than half its calls clean; with a pool, less than
90 % of every thread's wall time on the CPU); on a machine too busy to give --min-pairs clean
pairs in 3x as many, every pair counts. Per case, after
--min-pairs pairs and then after every ABBA block, the median of the pairs' changes and
its distribution-free 95 % interval (order statistics of the binomial) decide:
  pass  when the interval's upper end is under the threshold;
  fail  when its lower end is above half the threshold and the median above the threshold;
  else  sample more, up to --max-pairs, then fail only when the median is above the threshold
        and the lower end above zero.
A failure is measured again with two fresh worker processes (a process's own state, where
its memory landed or which core it shares, must not decide), and the gate fails only when the
second measurement fails too. Each batch also hashes the output of its last call: a new worker
whose output differs between batches of one case (a kernel that is not deterministic) fails
the gate; outputs that differ from the baseline's are reported (a numerical change, which the
contract tests judge). Exit 0 pass, 1 a confirmed regression or an unsteady output, 2 unusable
setup.
The workers' protocol is gate_worker.c's; QK_INJECT_SLOWDOWN reaches the new worker only."""
import argparse
import json
import math
import os
import subprocess
import sys
import time

PROTOCOL = 3


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
    """One gate_worker process and its pipe."""
    prefix = None

    def __init__(self, path, cases, side, seed):
        env = dict(os.environ)
        if side == "base":
            env.pop("QK_INJECT_SLOWDOWN", None)
        self.side = side
        if Worker.prefix is None:
            Worker.prefix = no_aslr_prefix()
            if not Worker.prefix:
                print("gate: WARNING: setarch -R is not allowed here: workers run with address "
                      "randomization (a few % of noise between processes)")
        self.proc = subprocess.Popen(Worker.prefix + [path, "--seed", str(seed)] + cases,
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1, env=env)
        head = self.proc.stdout.readline().split()
        if len(head) != 4 or head[:3] != ["qkgate", str(PROTOCOL), "ready"]:
            self.close()
            raise RuntimeError(f"{side} worker {path}: expected 'qkgate {PROTOCOL} ready', got "
                               f"{' '.join(head) or 'nothing'} (a baseline too old for this "
                               "gate? record a newer one)")
        self.info = {}
        for _ in range(int(head[3])):
            f = self.proc.stdout.readline().split()
            self.info[f[2]] = dict(kv.split("=", 1) for kv in f[3:])

    def run(self, index, calls, warmup):
        self.proc.stdin.write(f"run {index} {calls} {warmup}\n")
        self.proc.stdin.flush()
        f = self.proc.stdout.readline().split()
        if not f or f[0] != "done":
            raise RuntimeError(f"{self.side} worker stopped: {' '.join(f) or 'no reply'}")
        b = {k: float(v) for k, v in (kv.split("=", 1) for kv in f[2:])}
        b["side"] = self.side
        b["t"] = time.monotonic()
        return b

    def close(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


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
    """Distribution-free interval for the median: order statistics k and n-1-k (0-based) with
    P(Binomial(n, 1/2) < k+1) <= (1-level)/2. None when n is too small for the level."""
    s = sorted(v)
    n = len(s)
    tail, cum, k = (1 - level) / 2, 0.0, -1
    for i in range(n):
        cum += math.comb(n, i) / 2.0 ** n
        if cum > tail:
            break
        k = i
    if k < 0:
        return None
    return s[k], s[n - 1 - k]


def pct(log_ratio):
    return (math.exp(log_ratio) - 1) * 100


def measure(base, new, index, name, a):
    """ABBA batches of one case until the decision rule settles; returns the case's record."""
    calib = base.run(index, 3, 1)
    per_call = max(calib["median_ns"], 1.0) * 1e-9
    # at least 15 calls, so that a batch's median survives a preempted call or two
    calls = max(15, min(200000, round(a.batch_ms * 1e-3 / per_call)))
    warmup = max(2, calls // 10)
    for w in (base, new):  # the first batch of each side pays for page faults and the pool's start
        w.run(index, calls, warmup)
    clean_pairs, all_pairs, batches = [], [], []
    thr = math.log1p(a.threshold / 100)
    verdict, reason, block = None, "", 0
    while verdict is None:
        order = (base, new, new, base) if block % 2 == 0 else (new, base, base, new)
        block += 1
        got = [w.run(index, calls, warmup) for w in order]
        batches += got
        for first, second in (got[0:2], got[2:4]):
            b, n = (first, second) if first["side"] == "base" else (second, first)
            change = math.log(n["median_ns"] / b["median_ns"])
            all_pairs.append(change)
            if clean(b) and clean(n):
                clean_pairs.append(change)
        # the clean pairs decide; on a machine too busy to give enough of them, every pair does
        # (a batch's median call is robust to a few disturbed calls)
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
    dropped = len(all_pairs) - len(clean_pairs) if pairs is clean_pairs else 0
    hashes = {side: {b["hash"] for b in batches if b["side"] == side} for side in ("base", "new")}
    ci = median_interval(pairs) or (float("nan"), float("nan"))
    return {"case": name, "calls_per_batch": calls, "pairs": len(pairs),
            "dropped_pairs": dropped, "disturbed_pairs": len(all_pairs) - len(clean_pairs),
            "used": "clean pairs" if pairs is clean_pairs else "all pairs (too few clean ones)",
            "change_pct": pct(median(pairs)),
            "interval_pct": [pct(ci[0]), pct(ci[1])], "verdict": verdict, "reason": reason,
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
        r = subprocess.run([p, "--list"], capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"{p} --list: {r.stderr.strip() or r.returncode}")
        lists.append(r.stdout.split())
    both = [v for v in lists[1] if v in lists[0]]
    only_new = [v for v in lists[1] if v not in lists[0]]
    if only_new:
        print(f"gate: not gated (new, not in the baseline): {', '.join(only_new)}")
    cases = [f"{v}:0:1" for v in both]
    threads = min(2, len(os.sched_getaffinity(0)))
    fast = [v for v in ("q4k_q8k_vnni_r8", "q4k_q8k_maddubs", "q4k_q8k_ref") if v in both]
    if threads > 1 and fast:
        cases.append(f"{fast[0]}:0,1,2,3,4,5,6,7:{threads}")
    return cases


def run_round(a, cases, indices, label):
    base = Worker(a.base, cases, "base", a.seed)
    try:
        new = Worker(a.new, cases, "new", a.seed)
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
    ch = r["change_pct"]
    print(f"{r['case'][:44]:44} {r['base_median_us']:9.2f} {r['new_median_us']:9.2f} "
          f"{ch if ch is not None else float('nan'):+7.1f}% [{lo:+6.1f}, {hi:+6.1f}] "
          f"{r['pairs']:4d} {r['disturbed_pairs']:4d}{'*' if r['dropped_pairs'] == 0 and r['disturbed_pairs'] else ' '} "
          f"{r['verdict']}", flush=True)


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
    a = ap.parse_args()
    if not (0 < a.threshold < 1000 and a.batch_ms > 0 and 8 <= a.min_pairs <= a.max_pairs):
        print("gate: need 0 < threshold < 1000, batch-ms > 0, 8 <= min-pairs <= max-pairs",
              file=sys.stderr)
        return 2
    t0 = time.monotonic()
    try:
        cases = ([c.replace("+", ",") for c in a.cases.split(",")] if a.cases
                 else default_cases(a.base, a.new))
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
    except (RuntimeError, OSError, ValueError) as e:
        print(f"gate: {e}", file=sys.stderr)
        return 2
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"threshold_pct": a.threshold, "cases": cases, "results": results,
                       "seconds": time.monotonic() - t0}, f, indent=1)
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
              f"{r['new_median_us']:.2f} us)")
    for case in unsteady:
        print(f"gate: UNSTEADY {case}: the new tree's output differs from one batch to the next")
    print(f"gate: {'FAIL' if confirmed or unsteady else 'pass'} in {time.monotonic() - t0:.0f} s; "
          f"{len(confirmed)} of {len(cases)} cases slower beyond {a.threshold:g} %"
          + (f", {len(unsteady)} with unsteady outputs" if unsteady else ""))
    return 1 if confirmed or unsteady else 0


if __name__ == "__main__":
    sys.exit(main())
