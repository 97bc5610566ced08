#!/usr/bin/env bash
# Batches of tokens (bench --tokens): every variant this machine runs, at N = 1, 2, 8 and 64 with
# an expert listed twice by one token and one expert chosen by every token, keeps its numerical
# contract against the oracles of every slot; a smaller batch is the first tokens of a larger
# one, bit for bit; the routing options draw what they say; bad input is one line, exit 2.
# usage: test_tokens.sh BENCH
set -u
bench=$1
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
# a Python with numpy: Debian's (tests/run.sh installs python3-numpy), else the first on PATH (the
# GPU host has numpy only there)
py=/usr/bin/python3
"$py" -c 'import numpy' 2>/dev/null || py=$(command -v python3)
"$py" -c 'import numpy' 2>/dev/null || { echo "tokens: no Python with numpy"; exit 1; }
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
expect_error() { # description, expected text, args...
  local what=$1 want=$2; shift 2
  local out err rc
  out=$(timeout 20 "$bench" "$@" 2>"$tmp/err"); rc=$?
  err=$(cat "$tmp/err")
  if [ "$rc" -eq 2 ] && [ -z "$out" ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] &&
    [[ "$err" == *"$want"* ]]; then
    ok
  else
    bad "$what: rc=$rc stderr='$err' stdout='${out:0:80}'"
  fi
}
quick=(--shape 256x1024 --hot --min-samples 1 --min-time 0.001 --target-ci 50 --max-time 0.05
  --threads 2)

# 64 tokens of 8 experts each: expert 5 in every token, token t lists expert (t % 7) + 20 twice,
# the rest spread over the 128 experts.
experts=$("$py" -c '
print("/".join(",".join(str(e) for e in
    [5, t % 7 + 20, t % 7 + 20, (3 * t) % 128, (5 * t + 1) % 128, (7 * t + 2) % 128,
     (11 * t + 3) % 128, (13 * t + 4) % 128]) for t in range(64)))')

# 1. Every variant, N = 1, 2, 8, 64: the contracts, and the batches' consistency.
# (bench's own variants: ggml's rows are tests/test_ggml_plugin.c's; its CPU_REPACK is wrong
# when a token lists an expert twice, llama.cpp issue 26310)
"$bench" "${quick[@]}" --no-default-plugins --tokens 1,2,8,64 --experts "$experts" \
  --json "$tmp/tokens.json" \
  --dump-output "$tmp/dump" >"$tmp/table.txt" 2>"$tmp/stderr.txt" &&
  ok || bad "bench --tokens 1,2,8,64: rc=$? $(tail -3 "$tmp/stderr.txt")"
# nothing on stderr (a context key written once per batch would make Google Benchmark warn)
[ ! -s "$tmp/stderr.txt" ] && ok || bad "bench --tokens 1,2,8,64 wrote to stderr: $(head -3 "$tmp/stderr.txt")"
"$py" "$src/plot/contracts.py" "$tmp/tokens.json" >"$tmp/contracts.txt" 2>&1 &&
  ok || bad "contracts at N = 1, 2, 8, 64: $(tail -5 "$tmp/contracts.txt")"
"$py" - "$tmp" "$experts" <<'PY' && ok || bad "the batches' outputs and routing"
import json, os, sys
import numpy as np
tmp, experts = sys.argv[1], sys.argv[2]
doc = json.load(open(os.path.join(tmp, "tokens.json")))
ctx, dump = doc["context"], os.path.join(tmp, "dump")
problems = []
want = [[int(e) for e in t.split(",")] for t in experts.split("/")]
if ctx["tokens"] != "1,2,8,64" or ctx["routing"] != "explicit (--experts)":
    problems.append(f"context tokens {ctx['tokens']!r}, routing {ctx['routing']!r}")
if ctx["experts"] != experts:
    problems.append("context experts is not the --experts list")
# token t lists expert 5, and (t % 7) + 20 twice: at 64 tokens expert 5 serves all 64
for n, touched in ((2, None), (8, None), (64, None)):
    line = ctx.get(f"batch.t{n}", "")
    ids = np.array(want[:n])
    distinct = len(set(ids.ravel().tolist()))
    share = max(sum(1 for t in range(n) if e in ids[t]) for e in set(ids.ravel().tolist()))
    if line != f"touched experts {distinct}, most tokens on one expert {share}":
        problems.append(f"batch.t{n}: {line!r}, expected {distinct} and {share}")
routing = np.load(os.path.join(dump, "routing.t64.npy"))
if routing.shape != (64, 8) or routing.dtype != np.int32 or routing.tolist() != want:
    problems.append(f"routing.t64.npy: {routing.shape} {routing.dtype}")
if np.load(os.path.join(dump, "activations.npy")).shape != (64, 1024):
    problems.append("activations.npy is not (64, 1024)")
rows = [b for b in doc["benchmarks"] if not b["name"].startswith("peak_read")]
variants = sorted({b["name"].split("/")[0] for b in rows})
for b in rows:
    n = b.get("tokens")
    parts = b["name"].split("/iterations")[0].split("/")
    if n is None and "error_message" not in b:
        problems.append(f"{b['name']}: no tokens counter")
    if n and (n > 1) != (len(parts) == 5 and parts[3] == f"t{int(n)}"):
        problems.append(f"{b['name']}: named for {n} tokens wrongly")
for v in variants:
    one = np.load(os.path.join(dump, f"{v}.npy"))
    if one.shape != (8 * 256,):
        problems.append(f"{v}.npy: shape {one.shape}")
    prev = one.reshape(1, 8, 256)
    for n in (2, 8, 64):
        y = np.load(os.path.join(dump, f"{v}.t{n}.npy"))
        if y.shape != (n, 8, 256) or y.dtype != np.float32:
            problems.append(f"{v}.t{n}.npy: shape {y.shape} {y.dtype}")
            continue
        # the first tokens of a batch are the smaller batch, bit for bit (each column's
        # arithmetic is the single-token kernel's, whatever the other columns)
        if not np.array_equal(y[: prev.shape[0]].view(np.uint32), prev.view(np.uint32)):
            problems.append(f"{v}: the first {prev.shape[0]} tokens of t{n} differ from "
                            f"t{prev.shape[0]}")
        # a token that lists an expert twice gets the same output in both slots
        if not np.array_equal(y[:, 1].view(np.uint32), y[:, 2].view(np.uint32)):
            problems.append(f"{v}.t{n}: the two slots of one expert differ")
        prev = y
    oracle = np.load(os.path.join(dump, "oracle_f64.t64.npy"))
    y = np.load(os.path.join(dump, f"{v}.t64.npy")).astype(np.float64)
    err = np.sqrt(np.sum((y - oracle) ** 2) / np.sum(oracle ** 2))
    if not err < 1e-2:
        problems.append(f"{v}.t64: rel_l2 {err} against the f64 oracle")
print(f"tokens: {len(variants)} variants at N = 1, 2, 8, 64")
for p in problems:
    print("  ", p)
sys.exit(1 if problems or not variants else 0)
PY

# 2. A single token of a batch run is the single-token run: the same ids and outputs.
"$bench" "${quick[@]}" --kernel q4k_q8k_ref --top 8 --json "$tmp/one.json" \
  --dump-output "$tmp/one" >/dev/null 2>&1 || bad "bench --top 8"
"$bench" "${quick[@]}" --kernel q4k_q8k_ref --top 8 --tokens 4 --json "$tmp/four.json" \
  --dump-output "$tmp/four" >/dev/null 2>&1 || bad "bench --top 8 --tokens 4"
"$py" - "$tmp" <<'PY' && ok || bad "token 0 of --tokens 4 is the one-token run"
import json, os, sys
import numpy as np
tmp = sys.argv[1]
one = json.load(open(os.path.join(tmp, "one.json")))["context"]
four = json.load(open(os.path.join(tmp, "four.json")))["context"]
y1 = np.load(os.path.join(tmp, "one", "q4k_q8k_ref.npy"))
y4 = np.load(os.path.join(tmp, "four", "q4k_q8k_ref.t4.npy"))
tokens = four["experts"].split("/")
ok = (len(tokens) == 4 and tokens[0] == one["experts"] and len(set(tokens)) > 1 and
      np.array_equal(y4[0].ravel().view(np.uint32), y1.view(np.uint32)))
sys.exit(0 if ok else 1)
PY

# 3. Routing: uniform and skewed are drawn from the seed (the same seed, the same ids); skewed
# piles tokens on its popular experts.
for r in uniform skewed; do
  for i in 1 2; do
    "$bench" "${quick[@]}" --kernel q4k_q8k_ref --top 8 --tokens 64 --routing "$r" --seed 7 \
      --json "$tmp/$r$i.json" >/dev/null 2>&1 || bad "bench --routing $r"
  done
done
"$py" - "$tmp" <<'PY' && ok || bad "uniform and skewed routing"
import json, os, sys
tmp = sys.argv[1]
ctx = {n: json.load(open(os.path.join(tmp, f"{n}.json")))["context"]
       for n in ("uniform1", "uniform2", "skewed1", "skewed2")}
share = {n: int(c["batch.t64"].rsplit(" ", 1)[1]) for n, c in ctx.items()}
touched = {n: int(c["batch.t64"].split(",")[0].split()[-1]) for n, c in ctx.items()}
problems = []
for r in ("uniform", "skewed"):
    if ctx[r + "1"]["experts"] != ctx[r + "2"]["experts"]:
        problems.append(f"{r}: the same seed drew other experts")
    for t in ctx[r + "1"]["experts"].split("/"):
        if len(set(t.split(","))) != 8:
            problems.append(f"{r}: a token without 8 distinct experts: {t}")
if not ctx["skewed1"]["routing"].startswith("skewed") or ctx["uniform1"]["routing"] != "uniform":
    problems.append("routing not named in the context")
# 64 tokens x 8 of 128: uniform, each expert is chosen by 4 tokens on average (at most ~12);
# Zipf(1): the most popular about 0.19 of 8 draws per token, ~40 of 64
if not (share["skewed1"] >= 25 and share["uniform1"] <= 16 and
        touched["skewed1"] < touched["uniform1"]):
    problems.append(f"most tokens on one expert: uniform {share['uniform1']}, skewed "
                    f"{share['skewed1']}; touched {touched}")
print("routing:", share, touched)
for p in problems:
    print("  ", p)
sys.exit(1 if problems else 0)
PY

# 3b. The table: each batch's rows under a line naming the batch, also when --benchmark_filter
# leaves out the batch's first rows (another variant's); "1 expert", not "1 experts".
"$bench" "${quick[@]}" --kernel q4k_q8k_ref,q4k_f32_ref --tokens 1,3 --top 2 \
  --benchmark_filter='q4k_f32_ref/.*/t3/' >"$tmp/filtered.txt" 2>&1 &&
  grep -q "^# 3 tokens: [0-9]* experts touched, at most [0-9] tokens\? on one expert$" \
    "$tmp/filtered.txt" && grep -q "^q4k_f32_ref " "$tmp/filtered.txt" &&
  ! grep -q "^q4k_q8k_ref " "$tmp/filtered.txt" && ok ||
  bad "a filtered batch's line: $(head -c 600 "$tmp/filtered.txt")"
"$bench" "${quick[@]}" --kernel q4k_q8k_ref --tokens 1,2 --experts 3/3 >"$tmp/one.txt" 2>&1 &&
  grep -q "^# 2 tokens: 1 expert touched, at most 2 tokens on one expert$" "$tmp/one.txt" &&
  grep -q "^# 1 token: 1 expert touched, at most 1 token on one expert$" "$tmp/one.txt" && ok ||
  bad "the batch line's numbers: $(grep '^# [0-9]* token' "$tmp/one.txt")"

# 4. Bad input: one line, exit 2.
expect_error "--tokens 0" "--tokens" --tokens 0
expect_error "--tokens 65" "--tokens" --tokens 65
expect_error "--tokens repeated" "listed twice" --tokens 1,8,1
expect_error "--tokens not a number" "--tokens" --tokens eight
expect_error "--tokens empty" "--tokens" --tokens ''
expect_error "--tokens trailing comma" "--tokens" --tokens 1,
expect_error "--experts: fewer token lists than N" "one list per token" --tokens 4 \
  --experts 0-7/8-15
expect_error "--experts: more token lists than N" "one list per token" --experts 0-7/8-15
expect_error "--experts: token lists of unequal length" "every token has the same number" \
  --tokens 2 --experts 0-7/8-14
expect_error "--experts: an empty token list" "names no expert" --tokens 2 --experts 0-7/
expect_error "--routing with --experts" "choose one" --routing skewed --experts 0-7
expect_error "--routing unknown" "uniform or skewed" --routing zipf
"$py" -c '
import numpy as np, sys
np.save(sys.argv[1] + "/x2.npy", np.ones((2, 2048), np.float32))
np.save(sys.argv[1] + "/x1.npy", np.ones(2048, np.float32))
np.save(sys.argv[1] + "/x65.npy", np.ones((65, 2048), np.float32))
np.save(sys.argv[1] + "/x3d.npy", np.ones((2, 2, 2048), np.float32))' "$tmp"
expect_error "--activations: 2 rows for 4 tokens" "one row per token" --tokens 4 \
  --activations "$tmp/x2.npy"
expect_error "--activations: 2 rows for 1 token" "one row per token" --activations "$tmp/x2.npy"
expect_error "--activations: 1 row for 2 tokens" "one row per token" --tokens 2 \
  --activations "$tmp/x1.npy"
expect_error "--activations: 65 rows" "at most 64" --tokens 64 --activations "$tmp/x65.npy"
expect_error "--activations: 3-D" "shape must be" --tokens 2 --activations "$tmp/x3d.npy"
# and the right count runs, reading each token's row
"$py" -c '
import numpy as np, sys
np.save(sys.argv[1] + "/x4.npy", np.random.default_rng(3).standard_normal((4, 2048)).astype(np.float32))' "$tmp"
"$bench" --kernel q4k_q8k_ref --top 2 --tokens 2,4 --activations "$tmp/x4.npy" --hot \
  --min-samples 1 --min-time 0.001 --max-time 0.05 --target-ci 50 --dump-output "$tmp/x4" \
  >/dev/null 2>&1 && "$py" -c '
import numpy as np, sys
a = np.load(sys.argv[1] + "/x4/activations.npy")
sys.exit(0 if np.array_equal(a, np.load(sys.argv[1] + "/x4.npy")) else 1)' "$tmp" &&
  ok || bad "--activations with 4 rows for --tokens 2,4"

echo "tokens: $passed passed, $failed failed"
exit $((failed > 0))
