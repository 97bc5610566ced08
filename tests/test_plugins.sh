#!/usr/bin/env bash
# bench --plugin: every refusal is one line and exit 2; the example plug-in's rows are checked,
# listed with their origin, written to the JSON and within their contract; the deliberately
# wrong one is measured and flagged by plot/contracts.py; a MOE plug-in's rows (its own threads,
# duplicate ids) equal the built-in reference bit for bit; a plug-in quantizer is held to the
# reference; default plug-ins load (a missing one is a warning) unless --no-default-plugins.
# usage: test_plugins.sh BENCH BENCH_WITH_DEFAULT_PLUGINS TEST_PLUGIN_DIR EXAMPLE_PLUGIN
set -u
bench=$1 bench_defaults=$2 dir=$3 example=$4
src=$(cd "$(dirname "$0")/.." && pwd)
passed=0 failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

# One line on stderr naming the problem (PATTERN), nothing on stdout, exit 2.
expect_refusal() { # description, pattern, args...
  local what=$1 pattern=$2; shift 2
  local out err rc
  out=$(timeout 60 "$bench" --no-default-plugins "$@" 2>"$tmp/err"); rc=$?
  err=$(cat "$tmp/err")
  if [ "$rc" -eq 2 ] && [ -z "$out" ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] &&
     printf '%s' "$err" | grep -q -- "$pattern"; then
    ok
  else
    bad "$what: rc=$rc stderr='$err' stdout='${out:0:80}'"
  fi
}
printf 'not a library\n' > "$tmp/text.so"
expect_refusal "missing file" "No such file" --plugin "$tmp/missing.so" --list
expect_refusal "not a shared library" "not a shared library" --plugin "$tmp/text.so" --list
expect_refusal "an executable" "cannot load it" --plugin "$bench" --list
if [ "$(id -u)" -ne 0 ]; then
  cp "$example" "$tmp/unreadable.so" && chmod 000 "$tmp/unreadable.so"
  expect_refusal "unreadable file" "Permission denied" --plugin "$tmp/unreadable.so" --list
fi
expect_refusal "no entry point" "no entry point 'qkbench_plugin'" --plugin "$dir/qkb_bad_no_entry.so"
expect_refusal "entry returns NULL" "returned NULL" --plugin "$dir/qkb_bad_null_entry.so"
expect_refusal "ABI mismatch" "ABI version 3, this bench loads version 2" \
  --plugin "$dir/qkb_bad_abi.so"
expect_refusal "bad variant name" "'Bad-Name' is not \[a-z0-9_\]+" --plugin "$dir/qkb_bad_bad_name.so"
expect_refusal "bad plug-in name" "plug-in name 'a name; with spaces'" \
  --plugin "$dir/qkb_bad_plugin_name.so"
expect_refusal "clash with a built-in" "'q4k_f32_ref' clashes with the built-in" \
  --plugin "$dir/qkb_bad_clash_builtin.so"
expect_refusal "clash with another plug-in" "'example_q4k_f32' clashes with the variant of plug-in 'example'" \
  --plugin "$example" --plugin "$dir/qkb_bad_clash_example.so"
expect_refusal "the same plug-in twice" "plug-in name 'example' is the name of the plug-in loaded from" \
  --plugin "$example" --plugin "$example"
expect_refusal "unknown kind" "unknown kind 7" --plugin "$dir/qkb_bad_unknown_kind.so"
expect_refusal "unknown device" "unknown device 5" --plugin "$dir/qkb_bad_unknown_device.so"
expect_refusal "unknown format" "unknown format 'q5_0'" --plugin "$dir/qkb_bad_unknown_format.so"
expect_refusal "matvec callback NULL" "its matvec callback is NULL" \
  --plugin "$dir/qkb_bad_null_matvec.so"
expect_refusal "moe run callback NULL" "its run callback is NULL" --plugin "$dir/qkb_bad_null_run.so"
expect_refusal "matvec on q8_K weights" "matvec q8_K f32 is not a combination bench can check" \
  --plugin "$dir/qkb_bad_q8_weights.so"
expect_refusal "CUDA matvec" "a CUDA variant of kind matvec" --plugin "$dir/qkb_bad_cuda_matvec.so"
expect_refusal "sync on a CPU variant" "'cpu_moe_sync': a CPU variant of kind moe gives sync" \
  --plugin "$dir/qkb_bad_cpu_sync.so"
expect_refusal "park without wake" "'park_only': it gives park without wake (both or neither)" \
  --plugin "$dir/qkb_bad_park_only.so"
expect_refusal "no variants" "n_variants 0" --plugin "$dir/qkb_bad_zero_variants.so"
expect_refusal "absurd variant count" "n_variants 1099511627776" \
  --plugin "$dir/qkb_bad_absurd_variants.so"
expect_refusal "empty --plugin" "empty file name" --plugin ""
expect_refusal "--kernel naming an unloaded plug-in variant" "no matvec or moe variant matches" \
  --kernel example_q4k_f32

# --list: every plug-in variant with its plug-in's name, version and path; a CUDA MOE variant
# listed (skipped without a GPU); quantizers with their bit-identity verdict
list=$("$bench" --no-default-plugins --plugin "$example" --plugin "$dir/qkb_moe_example.so" --plugin "$dir/qkb_quant.so" \
  --plugin "$dir/qkb_quant_away.so" --plugin "$dir/qkb_bad_cuda_moe.so" --list 2>&1)
real_example=$(realpath "$example")
check_list() { # pattern, what
  if printf '%s\n' "$list" | grep -q -- "$1"; then ok; else bad "--list: $2"; fi
}
check_list "^example_q4k_f32 *cpu *matvec *q4_K x f32 *yes .*\[plug-in example 1.0, $real_example\]" \
  "the example's origin"
check_list "^moe_example_f32 *cpu *moe *q4_K x f32 *yes .*\[plug-in moe_example 1, " "the MOE example"
check_list "^cuda_moe_no_device_code *cuda *moe *q4_K x q8_1 " "a CUDA MOE variant"
check_list "^quant_plugin_q8k *cpu *quantize *f32 -> q8_K *yes .*qkb_quant.so\]$" \
  "a bit-identical plug-in quantizer"
check_list "^quant_plugin_q8k_away .*NOT BIT-IDENTICAL: differs from the reference q8_K quantizer on the edge case 'ties'" \
  "a plug-in quantizer that rounds ties away from zero"
check_list "^q4k_q8k_ref " "the built-in variants"

# The example, the MOE example (2 threads, ids repeated) and the reference, hot and cold
run() { # json, args...
  local json=$1; shift
  timeout 300 "$bench" --no-default-plugins --shape 256x1024 --min-samples 3 --min-time 0.02 --max-time 0.4 \
    --target-ci 50 --json "$json" "$@" > "$tmp/out" 2> "$tmp/err"
}
threads=$(/usr/bin/python3 -c 'import os; print(min(2, len(os.sched_getaffinity(0))))')
if run "$tmp/two.json" --plugin "$example" --plugin "$dir/qkb_moe_example.so" \
    --kernel 'example_*,moe_example_f32,q4k_f32_ref' --experts 3,1,3 --threads "$threads" \
    --dump-output "$tmp/dump"; then ok; else bad "two plug-ins: rc=$? $(cat "$tmp/err")"; fi
if grep -q "^# moe_example_f32: plug-in moe_example 1 (.*); the whole unit by the plug-in's threads (the pool parked; [0-9] of $threads busy in calibration" "$tmp/out"
then ok; else bad "the table names a MOE row's plug-in and how it is timed"; fi
/usr/bin/python3 - "$tmp" "$real_example" <<'PY' || failed=$((failed + 1))
import json, sys
import numpy as np
tmp, example = sys.argv[1], sys.argv[2]
doc = json.load(open(f"{tmp}/two.json"))
ctx, rows = doc["context"], {b["name"].split("/iterations")[0]: b for b in doc["benchmarks"]}
bad = []
def check(cond, what):
    if not cond:
        bad.append(what)
check(ctx.get("plugins", "").startswith(f"example 1.0 ({example})"), f"plugins: {ctx.get('plugins')}")
check("moe_example 1 (" in ctx.get("plugins", ""), "plugins lists the MOE plug-in")
check(ctx.get("plugin.example_q4k_f32") == f"example 1.0 ({example}): matvec on cpu, q4_K x f32",
      f"plugin.example_q4k_f32: {ctx.get('plugin.example_q4k_f32')}")
check("moe on cpu, q4_K x f32" in ctx.get("plugin.moe_example_f32", ""), "plugin.moe_example_f32")
check("plugin.q4k_f32_ref" not in ctx, "a built-in is not marked as a plug-in's")
for v in ("example_q4k_f32", "moe_example_f32", "q4k_f32_ref"):
    check(ctx.get(f"formats.{v}") == "q4_K x f32", f"formats.{v}: {ctx.get(f'formats.{v}')}")
    for t in ("hot", "cold"):
        r = rows.get(f"{v}/256x1024/k3/{t}")
        check(r is not None, f"no {t} row of {v}")
        if r is None or r.get("error_occurred"):
            continue
        check(r["rel_l2"] < 2e-5 and r["nonfinite"] == 0, f"{v} {t}: rel_l2 {r['rel_l2']}")
        # the same arithmetic as q4k_f32_ref, in the same order: bit for bit (the reference's row
        # may be skipped on a busy machine: the dumped outputs below are compared regardless)
        ref = rows.get(f"q4k_f32_ref/256x1024/k3/{t}", {})
        if ref and not ref.get("error_occurred"):
            check(r["output_hash"] == ref.get("output_hash"), f"{v} {t}: output differs from q4k_f32_ref")
            check(r.get("bytes") == ref.get("bytes"), f"{v} {t}: bytes")
        check(r.get("peak_us", 1) > 0, f"{v} {t}: peak_us {r.get('peak_us')}")
check("MOE plug-in rows" in ctx.get("plugin_timing", ""), "plugin_timing")
y = np.load(f"{tmp}/dump/moe_example_f32.npy")
check(y.shape == (3 * 256,) and np.array_equal(y, np.load(f"{tmp}/dump/q4k_f32_ref.npy")),
      "--dump-output: the MOE output equals the reference's")
check(np.array_equal(y[:256], y[512:]), "a repeated id gives the same output")
check(np.array_equal(np.load(f"{tmp}/dump/example_q4k_f32.npy"), np.load(f"{tmp}/dump/q4k_f32_ref.npy")),
      "--dump-output: the example's output equals the reference's")
for line in bad:
    print("FAIL:", line)
sys.exit(1 if bad else 0)
PY
[ $? -eq 0 ] && ok  # (a failure was counted above)
if /usr/bin/python3 "$src/plot/contracts.py" "$tmp/two.json" > "$tmp/contracts"; then ok
else bad "the example rows break their contract: $(cat "$tmp/contracts")"; fi

# The deliberately wrong plug-in (no mins): measured, and flagged by its formats' contract
if run "$tmp/wrong.json" --plugin "$dir/qkb_wrong_mins.so" --kernel wrong_q4k_f32_no_mins --top 2 \
    --hot --threads 1; then ok; else bad "the wrong plug-in does not run: $(cat "$tmp/err")"; fi
/usr/bin/python3 "$src/plot/contracts.py" "$tmp/wrong.json" > "$tmp/contracts"; rc=$?
if [ $rc -eq 1 ] && grep -q "contract broken: wrong.json: wrong_q4k_f32_no_mins/256x1024/k2/hot: rel_l2" "$tmp/contracts"
then ok; else bad "contracts.py on the wrong plug-in: rc=$rc $(cat "$tmp/contracts")"; fi
# a variant no rule names and whose formats no rule lists is not silently accepted
sed 's/"formats": \["q4_K x f32"\], //' "$src/results/contracts.json" > "$tmp/no_formats.json"
/usr/bin/python3 "$src/plot/contracts.py" --contracts "$tmp/no_formats.json" "$tmp/wrong.json" \
  > "$tmp/contracts"; rc=$?
if [ $rc -eq 1 ] && grep -q "no contract names it or its formats (q4_K x f32)" "$tmp/contracts"
then ok; else bad "an unheld variant: rc=$rc $(cat "$tmp/contracts")"; fi

# A plug-in quantizer that is not bit-identical fails a run that loads it (exit 1, one line)
run "$tmp/quant.json" --plugin "$dir/qkb_quant_away.so" --kernel q4k_f32_ref --hot --threads 1; rc=$?
if [ $rc -eq 1 ] && grep -q "^quant_plugin_q8k_away *FAILED: differs from the reference" "$tmp/out" &&
   grep -q "plug-in quantizer is not bit-identical" "$tmp/err"; then ok
else bad "a quantizer that differs: rc=$rc $(cat "$tmp/err")"; fi
run "$tmp/quant.json" --plugin "$dir/qkb_quant.so" --kernel q4k_f32_ref --hot --threads 1
rc=$?
if [ $rc -eq 0 ] && grep -q '"plugin.quant_plugin_q8k": ".*bit-identical to the reference' "$tmp/quant.json"
then ok; else bad "a bit-identical quantizer: rc=$rc"; fi

# A default plug-in's variant that cannot take the case (ggml's CPU_REPACK: rows % 8 != 0) is
# skipped with its create's reason, the other rows run (where the ggml rows were built)
if "$bench" --list 2>/dev/null | grep -q '^ggml_cpu_repack '; then
  out=$(timeout 120 "$bench" --shape 12x256 --hot --min-samples 3 --min-time 0.02 --max-time 0.2 \
        --kernel 'ggml_cpu_repack,q4k_q8k_ref' 2>&1); rc=$?
  if [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -q "^ggml_cpu_repack .*skipped: its plug-in's create failed: .*12 rows" &&
     printf '%s\n' "$out" | grep -q '^q4k_q8k_ref  *[0-9]'
  then ok; else bad "a default plug-in's failed create: rc $rc: $out"; fi
  # ... and when it was the only variant asked for, one line with the reason, exit 2
  "$bench" --shape 12x256 --hot --kernel ggml_cpu_repack > "$tmp/out" 2> "$tmp/err"; rc=$?
  if [ $rc -eq 2 ] && [ "$(wc -l < "$tmp/err")" -eq 1 ] &&
     grep -q "^bench: no variant asked for runs here: ggml_cpu_repack: its plug-in's create failed: " "$tmp/err"
  then ok; else bad "the only variant skipped: rc $rc: $(cat "$tmp/err")"; fi
fi

# QK_DISABLE_ISA limits bench's own kernels: a CPU plug-in variant, whose ISA is its build's, is
# skipped (else a plug-in using AVX-512 would be filed under the weaker ISA the run claims)
list=$(QK_DISABLE_ISA=avx512 "$bench" --no-default-plugins --plugin "$example" --list 2>&1)
if printf '%s\n' "$list" | grep -q "^example_q4k_f32 .* no: QK_DISABLE_ISA hides instruction sets"
then ok; else bad "QK_DISABLE_ISA and a plug-in: $list"; fi

# Many skipped variants (each plug-in's under QK_DISABLE_ISA, bench's AVX-512 ones): the JSON
# context's `skipped` names every one, whole (its text once overran a 1 KiB buffer: a crash)
many=()
for p in moe_example moe_no_evict moe_one_thread moe_output_once evil_ok wrong_mins quant; do
  many+=(--plugin "$dir/qkb_$p.so")
done
QK_DISABLE_ISA=avx512 timeout 120 "$bench" --no-default-plugins "${many[@]}" --plugin "$example" \
  --shape 16x256 --hot --min-samples 1 --min-time 0.001 --max-time 0.01 --target-ci 50 \
  --json "$tmp/skipped.json" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 0 ] && /usr/bin/python3 -c '
import json, sys
skipped = json.load(open(sys.argv[1]))["context"]["skipped"]
names = [s.split(": ")[0] for s in skipped.split("; ")]
want = {"moe_example_f32", "moe_no_evict", "moe_one_thread", "moe_output_once",
        "example_q4k_f32", "q4k_q8k_vnni_r8"}
sys.exit(0 if len(skipped) > 1024 and want <= set(names) else 1)' "$tmp/skipped.json"
then ok; else bad "many skipped variants: rc $rc: $(tail -2 "$tmp/err")"; fi

# Default plug-ins: loaded (a missing one: one warning line), none with --no-default-plugins
list=$("$bench_defaults" --list 2> "$tmp/err")
if printf '%s\n' "$list" | grep -q "^example_q4k_f32 .*\[plug-in example 1.0, " &&
   [ "$(wc -l < "$tmp/err")" -eq 1 ] &&
   grep -q "^bench: warning: default plug-in not loaded: .*no_such_plugin.so: No such file" "$tmp/err"
then ok; else bad "default plug-ins: $(cat "$tmp/err")"; fi
list=$("$bench_defaults" --no-default-plugins --list 2> "$tmp/err")
if ! printf '%s\n' "$list" | grep -q "example_q4k_f32" && [ ! -s "$tmp/err" ]; then ok
else bad "--no-default-plugins still loads them"; fi
list=$("$bench" --no-default-plugins --list 2> "$tmp/err")
if ! printf '%s\n' "$list" | grep -q "plug-in" && [ ! -s "$tmp/err" ]; then ok
else bad "bench without plug-ins lists one"; fi
# an explicit --plugin that fails is exit 2 even beside default ones
out=$("$bench_defaults" --plugin "$tmp/missing.so" --list 2> "$tmp/err"); rc=$?
if [ $rc -eq 2 ] && grep -q "^bench: --plugin .*missing.so: No such file" "$tmp/err"; then ok
else bad "an explicit --plugin that fails beside default ones: rc=$rc"; fi

# What a plug-in does, checked (review 16): each case one line and an exit status
S="--shape 256x1024 --min-samples 3 --min-time 0.02 --max-time 0.4 --target-ci 50"
expect_status() { # description, status, stderr pattern, args...
  local what=$1 status=$2 pattern=$3; shift 3
  local rc
  timeout 120 "$bench" --no-default-plugins $S "$@" > "$tmp/out" 2> "$tmp/err"; rc=$?
  if [ "$rc" -eq "$status" ] && { [ -z "$pattern" ] || grep -q -- "$pattern" "$tmp/err"; }; then ok
  else bad "$what: rc=$rc stderr='$(head -c 400 "$tmp/err")'"; fi
}
# 1. a matvec writing outside [r0, r1): its row fails before timing (exit 1), the others run
for c in oob_after:'it wrote y\[128\] (1 word' oob_before:'it wrote y\[-1\], before the output' \
         all_rows:'it wrote y\[128\] (128 words'; do
  expect_status "writes outside its range (${c%%:*})" 1 \
    "^bench: 1 row failed: evil_matvec/256x1024/k1/hot: wrong kernel: asked for rows \[0, 128) of 256 (thread 0 of 2's range), ${c#*:}" \
    --plugin "$dir/qkb_evil_${c%%:*}.so" --kernel evil_matvec,q4k_f32_ref --threads 2 --hot
  # (the other row runs: timed, or on a busy machine skipped for want of a clean sample)
  if grep -q "^evil_matvec  *FAILED: wrong kernel" "$tmp/out" &&
     grep -Eq "^q4k_f32_ref  *([0-9]|skipped: no clean sample)" "$tmp/out"
  then ok; else bad "${c%%:*}: the table: $(cat "$tmp/out")"; fi
done
# built-in variants pass the same check (every CPU matvec variant, 3 threads: uneven ranges)
expect_status "built-in variants pass the range check" 0 "" --kernel 'q4k_*' --threads 2 --hot --top 3 \
  --min-samples 1 --max-time 0.05
# 2. packed_size 0 or 2^62: one line, exit 2, before anything is allocated
expect_refusal "packed_size 0" "evil_matvec: packed_size(256, 1024) is 0 bytes" \
  --plugin "$dir/qkb_evil_pack_zero.so" --kernel evil_matvec $S
expect_refusal "packed_size 2^62" "packed_size(256, 1024) is 4611686018427387904 bytes: absurd" \
  --plugin "$dir/qkb_evil_pack_huge.so" --kernel evil_matvec $S
# 4, 5. a MOE run failing in calibration, or while sampling: the row fails with the plug-in's
# reason in one line (escaped), the run exits 1, the JSON marks it as an error
expect_status "a MOE run failing in calibration" 1 \
  "^bench: 1 row failed: moe_fail_late/256x1024/k1/hot: the plug-in's run failed (it returned -1): device lost\\\\x0a| at call 8 |" \
  --plugin "$dir/qkb_moe_fail_late.so" --kernel moe_fail_late --threads 1 --hot --json "$tmp/fail.json"
if grep -q '^moe_fail_late  *FAILED: the plug-in' "$tmp/out" && [ "$(grep -c 'at call' "$tmp/out")" -eq 1 ] &&
   /usr/bin/python3 -c '
import json, sys
b = {x["name"]: x for x in json.load(open(sys.argv[1]))["benchmarks"]}
r = b["moe_fail_late/256x1024/k1/hot/iterations:1/manual_time"]
sys.exit(0 if r.get("error_occurred") and "device lost" in r["error_message"] else 1)' "$tmp/fail.json"
then ok; else bad "a failed MOE run in the table and the JSON: $(cat "$tmp/out")"; fi
/usr/bin/python3 "$src/plot/compare.py" "$tmp/fail.json" "$tmp/fail.json" > "$tmp/cmp" 2>&1; rc=$?
if [ $rc -eq 1 ] && grep -q "device lost" "$tmp/cmp"; then ok; else bad "compare.py on a failed MOE row: rc=$rc $(cat "$tmp/cmp")"; fi
# (11 runs before the sampling: the check, 6 counting busy threads, 4 calibrating; 3 samples
# take at least 6 more)
QK_MOE_FAIL_AT=16 expect_status "a MOE run failing while sampling" 1 \
  "^bench: 1 row failed: moe_fail_late/256x1024/k1/hot: the plug-in's run failed (it returned -1): device lost\\\\x0a| at call 16 |" \
  --plugin "$dir/qkb_moe_fail_late.so" --kernel moe_fail_late --threads 1 --hot
# 6. a MOE output that writes nothing after its first call fails the last-output check
expect_status "a MOE output written once" 1 \
  "moe_output_once/256x1024/k1/hot: the output of the last timed call differs" \
  --plugin "$dir/qkb_moe_output_once.so" --kernel moe_output_once --threads 1 --hot
# 7. a MOE plug-in keeping 1 of 2 threads busy: timed against the threads it uses, and said so
threads=$(/usr/bin/python3 -c 'import os; print(min(2, len(os.sched_getaffinity(0))))')
expect_status "a MOE plug-in on one thread" 0 "" --plugin "$dir/qkb_moe_one_thread.so" \
  --kernel moe_one_thread --threads "$threads" --hot
if grep -q "^moe_one_thread  *[0-9]" "$tmp/out" && grep -q "^# moe_one_thread: .*1 of $threads busy in calibration" "$tmp/out"
then ok; else bad "a MOE plug-in on one thread: $(cat "$tmp/out")"; fi
# 8. --cold with only a MOE variant without evict: refused up front
expect_refusal "--cold, a MOE variant without evict" \
  "^bench: --cold: moe_no_evict has no cold row: its plug-in gives no evict" \
  --plugin "$dir/qkb_moe_no_evict.so" --kernel moe_no_evict --cold $S
# 9, 10. names bench uses itself
for c in name_cold:"variant 'cold' clashes with a temperature" name_k8:"variant 'k8' clashes with the k<digits>" \
         name_shape:"variant '256x1024' clashes with the shape" name_oracle:"variant 'oracle_f64' clashes with a file bench writes" \
         name_activations:"variant 'activations' clashes with a file bench writes"; do
  expect_refusal "reserved name ${c%%:*}" "${c#*:}" --plugin "$dir/qkb_evil_${c%%:*}.so" --list
done
/usr/bin/python3 - "$src/plot" <<'PY' && ok || bad "qkresults reads the temperature from the right"
import sys
sys.path.insert(0, sys.argv[1])
from qkresults import Row
assert Row("cold/256x1024/k1/hot", 2).temperature == "hot"
assert Row("decode/256x1024/k1/cold", 2).temperature == "cold"
assert Row("q4k_f32_ref/256x1024/k1/cold/iterations:1/manual_time", 1).temperature == "cold"
PY
# 11. a quantizer writing past its output: refused at load
expect_refusal "a quantizer overrun" "quantizer 'quant_plugin_q8k_overrun': it writes outside its output: byte 4672 of the 4672 bytes" \
  --plugin "$dir/qkb_quant_overrun.so" --list
# 13. version characters, plug-in names unique and without quotes, control characters escaped
expect_refusal "a version with '; ' and '('" "plug-in version '1; other 2 (/tmp/x.so)' is not 1..64 of letters" \
  --plugin "$dir/qkb_evil_version_semicolon.so" --list
expect_refusal "a plug-in name with a quote" "plug-in name 'it's' is not" --plugin "$dir/qkb_evil_plugin_name_quote.so" --list
expect_refusal "two plug-ins of one name" "plug-in name 'example' is the name of the plug-in loaded from" \
  --plugin "$example" --plugin "$dir/qkb_evil_plugin_name_dup.so" --list
mkdir -p "$tmp/a
b" && cp "$dir/qkb_evil_ok.so" "$tmp/a
b/"
list=$("$bench" --no-default-plugins --plugin "$tmp/a
b/qkb_evil_ok.so" --list 2>&1)
if printf '%s\n' "$list" | grep -q '^evil_matvec .*\[plug-in evil 1.0-rc1+g00, .*/a\\x0ab/qkb_evil_ok.so\]$'
then ok; else bad "a path with a newline in --list: $(printf '%s\n' "$list" | grep -A1 evil)"; fi
# 14. a directory; an ELF for another machine
expect_refusal "a directory" "^bench: --plugin $tmp: is a directory" --plugin "$tmp" --list
cp "$example" "$tmp/other.so" && printf '\267\000' | dd of="$tmp/other.so" bs=1 seek=18 conv=notrunc 2>/dev/null
expect_refusal "an ELF for another machine" "other.so: an ELF for another machine (aarch64; this is" \
  --plugin "$tmp/other.so" --list
# 15. crashes in plug-in code: one line naming it, exit 1; stdout from a constructor kept off
expect_status "a crash in the entry point" 1 "^bench: SIGSEGV (invalid memory access) in plug-in code: the constructors or entry point of .*qkb_evil_crash_entry.so" \
  --plugin "$dir/qkb_evil_crash_entry.so" --list
expect_status "a crash in a matvec" 1 "^bench: SIGSEGV (invalid memory access) in plug-in code: variant 'evil_matvec' of plug-in 'evil'" \
  --plugin "$dir/qkb_evil_crash_matvec.so" --kernel evil_matvec --threads 1 --hot
list=$("$bench" --no-default-plugins --plugin "$dir/qkb_evil_ctor_stdout.so" --list 2> "$tmp/err")
if ! printf '%s\n' "$list" | grep -q "writing to stdout" && [ "$(grep -c "writing to stdout" "$tmp/err")" -eq 2 ]
then ok; else bad "a constructor's stdout in --list"; fi
# 16. QK_INJECT_SLOWDOWN on a CPU MOE variant slows it; a 63-character name keeps the columns
QK_INJECT_SLOWDOWN=moe_one_thread=2 expect_status "QK_INJECT_SLOWDOWN on a MOE variant" 0 "" \
  --plugin "$dir/qkb_moe_one_thread.so" --kernel moe_one_thread --threads 1 --hot --json "$tmp/slow.json"
timeout 120 "$bench" --no-default-plugins $S --plugin "$dir/qkb_moe_one_thread.so" --kernel moe_one_thread --threads 1 --hot \
  --json "$tmp/fast.json" > /dev/null 2>&1
/usr/bin/python3 - "$tmp" <<'PY' && ok || bad "QK_INJECT_SLOWDOWN=...=2 does not slow the MOE row"
import json, sys
t = [json.load(open(f"{sys.argv[1]}/{n}.json"))["benchmarks"][0]["real_time"] for n in ("fast", "slow")]
sys.exit(0 if t[1] > 1.5 * t[0] else 1)  # 3x asked; a busy machine blurs it
PY
expect_status "a 63-character name" 0 "" --plugin "$dir/qkb_evil_name_long.so" \
  --kernel 'evil_*,q4k_f32_ref' --threads 1 --hot
col=$(awk '/^variant /{print index($0, "median_us")}' "$tmp/out")
if [ "$(awk -v c="$col" '/^(evil_a_name|q4k_f32_ref) /{ if (substr($0, c - 2, 1) != " ") bad = 1 } END { print bad + 0 }' "$tmp/out")" -eq 0 ] &&
   grep -q "^evil_a_name_of_sixty_three_characters_x* *[0-9]" "$tmp/out"
then ok; else bad "a 63-character name: $(cat "$tmp/out")"; fi
# 3. a q4_K x f32 plug-in variant named like the q8 rule's glob is held to q4_K x f32's bound
/usr/bin/python3 - "$src" <<'PY' && ok || bad "a plug-in variant picks its contract by its name"
import sys
sys.path.insert(0, f"{sys.argv[1]}/plot")
import contracts
c = contracts.load(f"{sys.argv[1]}/results/contracts.json")
bound = lambda ctx, v: sorted(r.get("rel_l2") for r in contracts.rules_for(c, ctx, v)[0] if "rel_l2" in r)
f32 = {"formats.q4k_q8k_sloppy": "q4_K x f32"}
assert bound(dict(f32, **{"plugin.q4k_q8k_sloppy": "p"}), "q4k_q8k_sloppy") == [2e-5]  # a plug-in's
assert bound(f32, "q4k_q8k_sloppy") == [2e-5]  # a name rule of other formats does not apply
assert 0.03 in bound({"formats.q4k_q8k_ref": "q4_K x q8_K"}, "q4k_q8k_ref")  # the built-in's
# a plug-in variant listed by its exact name in plugin_variants (ggml_cuda: its MMQ kernels from
# 16 tokens are not the reference Q8_1 arithmetic) gets those rules, and no exact bound
q81 = {"formats.ggml_cuda": "q4_K x q8_1", "plugin.ggml_cuda": "p"}
rules = contracts.rules_for(c, q81, "ggml_cuda")[0]
assert rules and not any("exact_rel_l2" in r for r in rules) and 0.03 in bound(q81, "ggml_cuda")
# ... but a plug-in of another name with the same formats keeps the exact bound
other = {"formats.ggml_cudax": "q4_K x q8_1", "plugin.ggml_cudax": "p"}
assert any(r.get("exact_rel_l2") == 2e-5 for r in contracts.rules_for(c, other, "ggml_cudax")[0])
PY

echo "plugins: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
