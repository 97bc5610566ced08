#!/usr/bin/env bash
# bench's command line: every bad input gives exactly one line on stderr and exit code 2;
# --list names every variant.
set -u
bench=$1
passed=0 failed=0
src=$(dirname "$0")/..
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
expect_error() { # description, args...
  local what=$1; shift
  local out err rc
  # a hang (a FIFO waited on, a loop driven by a hostile count) fails as rc 124
  out=$(timeout 20 "$bench" "$@" 2>/tmp/qk_cli_err.$$); rc=$?
  err=$(cat /tmp/qk_cli_err.$$)
  if [ "$rc" -eq 2 ] && [ -z "$out" ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && [ -n "$err" ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)); echo "FAIL: $what: rc=$rc stderr='$err' stdout='${out:0:80}'"
  fi
}
expect_error "unknown kernel" --kernel no_such_kernel
expect_error "empty kernel list" --kernel ,
expect_error "glob matching nothing" --kernel 'zz*'
expect_error "bad shape word" --shape sideways
expect_error "cols not a multiple of 256" --shape 768x1000
expect_error "zero rows" --shape 0x256
expect_error "negative shape" --shape -5x256
expect_error "a blank in the shape" --shape ' 16x 256'
expect_error "a plus sign in the shape" --shape '+16x256'
expect_error "a plus sign in a number" --tokens +2
expect_error "bad number" --threads two
expect_error "number out of range" --top 129
expect_error "more threads than CPUs" --threads 100000
expect_error "trailing junk" --seed 12abc
expect_error "missing value" --threads
expect_error "unknown option" --frobnicate
expect_error "expert out of range" --experts 0-128
expect_error "backwards range" --experts 7-3
expect_error "empty expert list" --experts ,
expect_error "top and experts together" --top 2 --experts 1,2
expect_error "unknown activation profile" --act spiky
expect_error "act and activations together" --act normal --activations /dev/null
expect_error "missing activations file" --activations /nonexistent/x.npy
expect_error "activations not a .npy" --activations "$0"
/usr/bin/python3 -c "import numpy, sys; numpy.save(sys.argv[1], numpy.zeros(4, numpy.float32))" \
  "$tmp/short.npy"
expect_error "activations of the wrong length" --activations "$tmp/short.npy"
expect_error "unwritable json" --json /nonexistent/dir/out.json
expect_error "dump dir under a file" --dump-output "$0/sub"
has_msg() { # description, fixed string the last expect_error's line must contain
  if grep -qF -- "$2" /tmp/qk_cli_err.$$; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: $1: '$(cat /tmp/qk_cli_err.$$)' does not say '$2'"; fi
}
# a blank before a number is refused as one after it is (strtol would skip it)
expect_error "leading blank in a number" --seed ' 12'
expect_error "leading blank in a token count" --tokens '1, 2'
has_msg "leading blank in a token count" "--tokens: ' 2'"
expect_error "leading blank in a time" --min-time ' 0.1'
expect_error "leading blank in an expert id" --tokens 2 --experts '0/ 1'
# an empty item in an expert list is refused, as in --tokens (not read as a shorter list)
for e in 0,,1 ,0,1 0,1, 0,1/,2,3; do
  expect_error "--experts $e" --tokens 2 --experts "$e/1,2"
  has_msg "--experts $e" "has an empty item"
done
# the stop rule's options (each row samples until its median is precise enough)
expect_error "bad min time" --min-time fast
expect_error "zero min time" --min-time 0
expect_error "zero min samples" --min-samples 0
has_msg "zero min samples" "--min-samples: '0'"
expect_error "negative min samples" --min-samples -3
expect_error "zero max time" --max-time 0
for v in 0 101 abc -1 1%; do
  expect_error "--target-ci $v" --target-ci "$v"
  has_msg "--target-ci $v" "--target-ci: '$v'"
done
expect_error "max time below min time" --min-time 0.2 --max-time 0.1
has_msg "max time below min time" "--max-time 0.1 is below --min-time 0.2"
expect_error "max time below min time, given first" --max-time 0.1 --min-time 0.2
# ... and below the default --min-time (0.5 s)
expect_error "max time below the default min time" --max-time 0.1
has_msg "max time below the default min time" "below --min-time 0.5"
# the options of the fixed counts are gone: each is refused in one line naming it and saying
# what replaced it, with or without a value, before anything runs
for opt in "--repetitions 5" "--repetitions" "--cold-iterations 20" "--gpu-iterations 50"; do
  expect_error "removed option $opt" $opt --kernel q4k_f32_ref --hot --shape 16x256 --experts 0
  has_msg "removed option $opt" "${opt%% *}: bench no longer runs a fixed count"
  has_msg "removed option $opt names its replacement" "--min-samples, --min-time, --target-ci, --max-time"
done
for flag in --benchmark_repetitions=2 --benchmark_repetitions=1 \
  --benchmark_enable_random_interleaving=true --benchmark_enable_random_interleaving=false \
  --benchmark_min_warmup_time=0.1 --benchmark_min_warmup_time=abc \
  --benchmark_report_aggregates_only=true --benchmark_display_aggregates_only=true; do
  expect_error "removed flag $flag" "$flag" --kernel q4k_f32_ref --hot --shape 16x256 --experts 0
  has_msg "removed flag $flag" "$flag: not supported by bench ("
  case $flag in --benchmark_repetitions=*)
    has_msg "$flag names its replacement" "--min-samples, --min-time, --target-ci and --max-time";;
  esac
done
QK_INJECT_SLOWDOWN=nonsense expect_error "a malformed slowdown hook" --experts 0 --kernel q4k_q8k_ref --hot --min-time 0.001 --max-time 0.01 --min-samples 3 --threads 1 --json /dev/null
expect_error "unknown Google Benchmark flag" --benchmark_frobnicate=1
expect_error "empty json name" --json ""
expect_error "layer without a model" --layer 3
expect_error "proj without a model" --proj gate
expect_error "inspect without a model" --inspect
expect_error "bad projection" --model x.gguf --proj sideways
expect_error "model without layer and proj" --model "$0"
expect_error "model and shape together" --model "$0" --shape gate
expect_error "tensor and layer together" --model "$0" --tensor a --layer 1
expect_error "missing model file" --model /nonexistent/m.gguf --layer 0 --proj gate
expect_error "model that is not GGUF" --model "$0" --layer 0 --proj gate
expect_error "inspect a file that is not GGUF" --model "$0" --inspect
head -c 30 "$src/tests/fuzz/gguf_corpus/qwen3moe-tiny.gguf" > "$tmp/truncated.gguf"
expect_error "truncated model" --model "$tmp/truncated.gguf" --inspect
expect_error "expert beyond the model's" --model "$src/tests/fuzz/gguf_corpus/qwen3moe-tiny.gguf" \
  --layer 0 --proj gate --experts 2
expect_error "Q6_K projection" --model "$src/tests/fuzz/gguf_corpus/qwen3moe-tiny.gguf" \
  --layer 0 --proj down
# hostile files (issue 12; the GGUF ones are seeds of the fuzz corpus): one line, exit 2, within
# a second and 100 MB
corpus=$src/tests/fuzz/gguf_corpus
# The second is CPU time (user + system): the wall clock of a loaded machine (ctest -j2, a
# neighbour) is not the program's; a sanitizer build (QK_TEST_TIME_FACTOR=5, set by CMake) runs
# several times slower by design.
time_limit=$(awk -v f="${QK_TEST_TIME_FACTOR:-1}" 'BEGIN { print 1.0 * f }')
expect_error_fast() { # description, args...: expect_error, and at most 1 s and 100 MB
  local what=$1; shift
  expect_error "$what" "$@"
  /usr/bin/time -f '%U %S %M' -o "$tmp/usage" timeout 20 "$bench" "$@" >/dev/null 2>&1
  local user sys kb
  read -r user sys kb < <(tail -1 "$tmp/usage")
  if awk -v u="$user" -v s="$sys" -v k="$kb" -v l="$time_limit" \
    'BEGIN { exit !(u + s <= l && k <= 100 * 1024) }'; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $what: took ${user} + ${sys} s of CPU and ${kb} KB (at most $time_limit s, 100 MB)"
  fi
}
expect_error_fast "f32 tensor whose 2^64 bytes wrap to 0" --model "$corpus/hostile-size-wrap-f32.gguf" --inspect
expect_error_fast "f64 tensor whose 2^64+8 bytes wrap to 8" --model "$corpus/hostile-size-wrap-f64.gguf" --inspect
expect_error_fast "header claiming ~300 key/values of zeros" --model "$corpus/hostile-kv-count.gguf" --inspect
# the same claim in a sparse 200 MiB file: memory follows what is read, not the claim
/usr/bin/python3 - "$tmp/sparse.gguf" <<'PY'
import struct, sys
size = 200 << 20
with open(sys.argv[1], "wb") as f:
    f.write(b"GGUF" + struct.pack("<IQQ", 3, 0, (size - 24) // 13))
    f.truncate(size)
PY
expect_error_fast "sparse 200 MiB file claiming 16 million key/values" --model "$tmp/sparse.gguf" --inspect
# a string array claiming 26 million (empty) strings in a sparse 200 MiB file: read as quickly,
# and not kept resident
/usr/bin/python3 - "$tmp/sparse-strings.gguf" <<'PY'
import struct, sys
size, key = 200 << 20, b"a.strings"
with open(sys.argv[1], "wb") as f:
    f.write(b"GGUF" + struct.pack("<IQQ", 3, 0, 2) + struct.pack("<Q", len(key)) + key +
            struct.pack("<IIQ", 9, 8, (size - 100) // 8))
    f.truncate(size)
PY
expect_error_fast "sparse 200 MiB string array of 26 million strings" --model "$tmp/sparse-strings.gguf" --inspect
/usr/bin/python3 - "$tmp/sparse.npy" <<'PY'
import sys
n = 1 << 28  # 1 GiB of float32 that the header describes exactly, on disk only as a hole
h = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }" % n
h += " " * (-(10 + len(h) + 1) % 64) + "\n"
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h.encode())
    f.truncate(10 + len(h) + 4 * n)
PY
expect_error_fast "sparse 1 GiB .npy" --activations "$tmp/sparse.npy"
# a general.name as long as the file (190 MB, sparse): strings stay in the map, not copied
/usr/bin/python3 - "$tmp/long-name.gguf" <<'PY'
import struct, sys
n = 190 << 20
key = b"general.name"
with open(sys.argv[1], "wb") as f:
    f.write(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key +
            struct.pack("<IQ", 8, n))
    f.truncate(f.tell() + n)
PY
out=$(/usr/bin/time -f '%U %S %M' -o "$tmp/usage" timeout 20 "$bench" --model "$tmp/long-name.gguf" --inspect 2>&1); rc=$?
read -r user sys kb < <(tail -1 "$tmp/usage")
secs=$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')
if [ "$rc" -eq 0 ] && awk -v s="$secs" -v k="$kb" -v l="$time_limit" 'BEGIN { exit !(s <= l && k <= 100 * 1024) }' &&
   printf '%s\n' "$out" | grep -q '^architecture unknown, name \(\\x00\)*\.\.\.$'; then
  passed=$((passed + 1))
else
  failed=$((failed + 1)); echo "FAIL: --inspect of a 190 MB name: rc=$rc, ${secs} s, ${kb} KB: ${out:0:300}"
fi
expect_error "json is a directory" --json "$tmp"
mkfifo "$tmp/fifo"
expect_error_fast "a FIFO as the model" --model "$tmp/fifo" --inspect
expect_error_fast "a FIFO as the activations" --activations "$tmp/fifo"
expect_error "a directory as the activations" --activations "$tmp"
# block_count 4e9 with one tensor: --inspect lists what the file holds, quickly
out=$(timeout 20 "$bench" --model "$corpus/hostile-block-count.gguf" --inspect 2>&1); rc=$?
if [ "$rc" -eq 0 ] && [ "$(printf '%s\n' "$out" | wc -l)" -le 12 ] &&
   printf '%s\n' "$out" | grep -q '^0 .*q4_K 256x1x1' && printf '%s\n' "$out" | grep -q '4000000000'; then
  passed=$((passed + 1))
else
  failed=$((failed + 1)); echo "FAIL: --inspect of block_count 4000000000: rc=$rc, $(printf '%s\n' "$out" | wc -l) lines: ${out:0:300}"
fi
# strings from the file reach the terminal escaped: no escape byte, no line of their own
expect_error "architecture with a newline and an escape, in an error" \
  --model "$corpus/hostile-escapes.gguf" --tensor missing
if grep -q $'\x1b' /tmp/qk_cli_err.$$; then
  failed=$((failed + 1)); echo "FAIL: an escape byte from the file reached stderr"
else passed=$((passed + 1)); fi
out=$(timeout 20 "$bench" --model "$corpus/hostile-escapes.gguf" --inspect 2>&1); rc=$?
if [ "$rc" -eq 0 ] && ! printf '%s' "$out" | grep -q $'[\x1b\r]' && ! printf '%s\n' "$out" | grep -q '^bench: fake' &&
   printf '%s\n' "$out" | grep -qF 'qwen3moe\x0abench: fake\x1b[31m' && printf '%s\n' "$out" | grep -qF 'red\x1b[31m\x0dline\x00hidden'; then
  passed=$((passed + 1))
else
  failed=$((failed + 1)); echo "FAIL: --inspect printed the file's strings raw: rc=$rc: $(printf '%s' "$out" | head -3 | od -c | head -5)"
fi

# Google Benchmark flags that cannot work with bench's own table and JSON are refused in one line
expect_error "Google Benchmark's display format" --benchmark_format=json
expect_error "Google Benchmark's output file" --benchmark_out="$tmp/x.json"
expect_error "Google Benchmark's output format" --benchmark_out_format=csv
expect_error "Google Benchmark's test list" --benchmark_list_tests=true
expect_error "Google Benchmark's time unit" --benchmark_time_unit=ms
expect_error "a filter that matches no row" --experts 0 --kernel q4k_f32_ref --hot \
  --min-samples 3 --min-time 0.001 --max-time 0.01 --threads 1 --benchmark_filter=no_such_row

# the last of repeated options wins: --experts all, then --experts 3, runs expert 3 only
quick=(--kernel q4k_f32_ref --hot --min-samples 3 --min-time 0.001 --max-time 0.05 --shape 16x256)
expect_header() { # description, extended regex the header must match, args...
  local what=$1 pattern=$2; shift 2
  local out rc
  out=$(timeout 60 "$@" 2>&1); rc=$?
  if [ "$rc" -eq 0 ] && printf '%s\n' "$out" | grep -qE "$pattern"; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: $what: rc=$rc, no line matching '$pattern' in: ${out:0:400}"; fi
}
# a machine without the NVIDIA driver is told so in plain words (the CUDA runtime's own text,
# "driver version is insufficient", says something else)
if ! /usr/bin/python3 -c 'import ctypes; ctypes.CDLL("libcuda.so.1")' 2>/dev/null &&
  "$bench" --list | grep '^gpu_q4k_f32 .* no: ' | grep -qv 'without nvcc\|without CUDA'; then
  expect_header "--list without a driver" '^gpu_q4k_f32 .* no: no NVIDIA driver on this machine' \
    "$bench" --list
fi
expect_header "--experts all then 3" '^# shape .*experts 3;' "$bench" --experts all --experts 3 "${quick[@]}"
expect_header "--experts 3 then all" '^# shape .*experts 0,1,2,3,4,5,.*,127;' "$bench" --experts 3 --experts all "${quick[@]}"

# threads and pinning follow the CPUs the process may run on (taskset), not the machine's
if [ "$(nproc --all)" -ge 2 ] && taskset -c 1 true 2>/dev/null; then
  expect_header "pinned within taskset -c 1" '; 1 threads \(cores 1\)$' taskset -c 1 "$bench" --threads 1 --experts 0 "${quick[@]}"
  expect_header "default threads under taskset -c 1" '; 1 threads \(cores 1\)$' taskset -c 1 "$bench" --experts 0 "${quick[@]}"
  out=$(taskset -c 1 "$bench" --threads 2 --experts 0 "${quick[@]}" 2>&1); rc=$?
  if [ "$rc" -eq 2 ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] && printf '%s' "$out" | grep -q '^bench: --threads 2'; then
    passed=$((passed + 1))
  else failed=$((failed + 1)); echo "FAIL: --threads 2 under taskset -c 1: rc=$rc: $out"; fi
else
  echo "note: fewer than 2 CPUs or no taskset: the affinity cases are not run"
fi

# issue 12, second review: ----------------------------------------------------------------------
tiny=(--kernel q4k_f32_ref --hot --min-samples 3 --min-time 0.001 --max-time 0.05 --shape 16x256 --experts 0 --threads 1)
# --json: a write that fails (a full device, a file size limit) is one line and exit 2, and an
# existing file is kept
expect_run_error() { # description, args...: exit 2 and one line on stderr (the header may be out)
  local what=$1; shift
  local err rc
  timeout 60 "$bench" "$@" >/dev/null 2>"$tmp/err"; rc=$?
  err=$(cat "$tmp/err")
  if [ "$rc" -eq 2 ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && [ -n "$err" ]; then
    passed=$((passed + 1))
  else failed=$((failed + 1)); echo "FAIL: $what: rc=$rc stderr='$err'"; fi
}
if [ -w /dev/full ]; then expect_run_error "--json /dev/full" "${tiny[@]}" --json /dev/full; fi
echo '{"old": true}' >"$tmp/old.json"
(trap '' XFSZ; ulimit -f 2; expect_run_error "--json past the file size limit" "${tiny[@]}" --json "$tmp/old.json"
 [ "$passed" -gt 0 ] && echo "$passed $failed" >"$tmp/counts") ; read -r passed failed <"$tmp/counts"
if [ "$(cat "$tmp/old.json")" = '{"old": true}' ] && [ -z "$(ls "$tmp" | grep 'old.json.tmp')" ]; then
  passed=$((passed + 1))
else failed=$((failed + 1)); echo "FAIL: a failed --json write replaced the old file or left its temporary file"; fi
# GGUF counts and budgets: memory and time stay bounded however many keys, tensors or strings
/usr/bin/python3 - "$tmp" <<'PY'
import struct, sys
d = sys.argv[1]
al = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
def key(i): return bytes([al[i % 62], al[i // 62 % 62], al[i // 3844 % 62], al[i // 238328 % 62]])
def kvs(n): return b"".join(b"\x04\0\0\0\0\0\0\0" + key(i) + b"\0\0\0\0\x07" for i in range(n))
for name, n in (("keys-1.2M", 1200000), ("keys-at-cap", 65536)):  # a truncated tensor after them
    open(f"{d}/{name}.gguf", "wb").write(b"GGUF" + struct.pack("<IQQ", 3, 1, n) + kvs(n) + b"\x05\0")
def tensors(n):
    return b"".join(struct.pack("<Q", len(b"%x" % i)) + b"%x" % i + struct.pack("<IQIQ", 1, 0, 0, 0)
                    for i in range(n))
for name, n in (("tensors-600k", 600000), ("tensors-at-cap", 65535)):  # the last one past the end
    open(f"{d}/{name}.gguf", "wb").write(b"GGUF" + struct.pack("<IQQ", 3, n + 1, 0) + tensors(n) +
        struct.pack("<Q", 4) + b"last" + struct.pack("<IQIQ", 1, 1 << 20, 0, 0))
# a sparse 4 GiB file whose one string array claims half a billion (empty) strings, and one at
# the budget
for name, count in (("strings-4g", (4 << 30) // 8 - 64), ("strings-at-cap", 16 << 20)):
    with open(f"{d}/{name}.gguf", "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, 0, 2) + struct.pack("<Q", 9) + b"a.strings" +
                struct.pack("<IIQ", 9, 8, count))
        f.truncate(4 << 30)
PY
expect_error_fast "1.2 million keys (20 MB)" --model "$tmp/keys-1.2M.gguf" --inspect
has_msg "1.2 million keys" "1200000 key/values: more than the 65536"
expect_error_fast "65536 keys (the cap)" --model "$tmp/keys-at-cap.gguf" --inspect
expect_error_fast "600000 tensors (22 MB)" --model "$tmp/tensors-600k.gguf" --inspect
has_msg "600000 tensors" "600001 tensors: more than the 65536"
expect_error_fast "65536 tensors (the cap)" --model "$tmp/tensors-at-cap.gguf" --inspect
expect_error_fast "sparse 4 GiB string array of 536 million strings" --model "$tmp/strings-4g.gguf" --inspect
has_msg "536 million strings" "more than the 16777216 strings"
expect_error_fast "sparse 4 GiB string array at the budget" --model "$tmp/strings-at-cap.gguf" --inspect
rm -f "$tmp"/keys-*.gguf "$tmp"/tensors-*.gguf "$tmp"/strings-*.gguf
# --benchmark_context may add keys, not replace bench's
expect_error "--benchmark_context replacing cpu_model" --benchmark_context=cpu_model=fake "${tiny[@]}"
has_msg "--benchmark_context replacing cpu_model" "'cpu_model' is a key bench writes"
expect_error "--benchmark_context replacing threads" --benchmark_context=runner=ci,threads=99 "${tiny[@]}"
# a filter that leaves out the peak rows still gets them (the peak samples are taken beside the
# row's: pct_peak is the ratio of the two medians); the header states the stop rule that was
# used; the context's extra key
out=$(timeout 60 "$bench" "${tiny[@]}" --kernel q4k_f32_ref,q4k_q8k_ref --min-samples 4 \
  --benchmark_context=runner=ci --benchmark_filter='q4k_f32_ref' --json "$tmp/f.json" 2>&1); rc=$?
if [ "$rc" -eq 0 ] &&
   printf '%s\n' "$out" | grep -q '^# sampling: at least 4 clean samples and 0.001 s per row, then until the median.s 95 % interval is within +-1 %, at most 0.05 s$' &&
   ! printf '%s\n' "$out" | grep -q '^q4k_q8k_ref ' && /usr/bin/python3 - "$tmp/f.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["context"]["runner"] == "ci"
assert d["context"]["qkbench_schema"] == "2"
names = [b["name"] for b in d["benchmarks"]]
assert len(names) == 2 and names[0] == "q4k_f32_ref/16x256/k1/hot/iterations:1/manual_time" and \
    names[1].startswith("peak_read/") and names[1].endswith("/hot/iterations:1/manual_time"), names
b = d["benchmarks"][0]
assert b["repetitions"] == 1 and b["iterations"] == 1 and b["run_type"] == "iteration", b
assert b["pct_peak"] > 0 and abs(b["pct_peak"] - 100 * b["peak_us"] / b["real_time"]) <= 1e-9 * b["pct_peak"], b
assert sorted(d["qkbench_samples"]) == sorted(n.split("/iterations:")[0] for n in names)
PY
then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: filter without peak rows / stop rule in the header: rc=$rc ${out:0:600}"; fi
# environment hooks: a value that names nothing is an error
QK_DISABLE_ISA=avx9 expect_error "QK_DISABLE_ISA naming no instruction set" "${tiny[@]}"
has_msg "QK_DISABLE_ISA" "'avx9' is not avx2, avx512 or avx512_vnni"
QK_DISABLE_ISA=AVX512 expect_header "QK_DISABLE_ISA in capitals" 'q4k_f32_ref' "$bench" "${tiny[@]}"
QK_INJECT_SLOWDOWN=typo=1 expect_error "a slowdown hook naming no variant" "${tiny[@]}"
QK_INJECT_SLOWDOWN=q4k_q8k_ref=1 expect_error "a slowdown hook naming an unselected variant" "${tiny[@]}"
QK_INJECT_LATE_FAULT=nope expect_error "a late-fault hook naming no variant" "${tiny[@]}"
# options --inspect does not use; --benchmark_min_time's value
corpus_tiny=$corpus/qwen3moe-tiny.gguf
expect_error "--inspect with options it ignores" --model "$corpus_tiny" --inspect --threads 200 --kernel nope
has_msg "--inspect with options" "--threads is not used with it"
expect_error "--inspect with --json" --inspect --model "$corpus_tiny" --json "$tmp/keep.json"
expect_error "--benchmark_min_time=abc" --benchmark_min_time=abc "${tiny[@]}"
has_msg "--benchmark_min_time=abc" "'abc' is not a number of seconds"
expect_error "--benchmark_min_time=-5" --benchmark_min_time=-5 "${tiny[@]}"
# --benchmark_min_time sets --min-time (the last given wins)
expect_header "--benchmark_min_time=0.01s" '^# sampling: .* and 0.01 s per row,' "$bench" "${tiny[@]}" --benchmark_min_time=0.01s
expect_header "--min-time after --benchmark_min_time" '^# sampling: .* and 0.002 s per row,' "$bench" "${tiny[@]}" --benchmark_min_time=0.01s --min-time 0.002
# a missing tensor names the layers the tensors have, not block_count's claim (4e9)
expect_error "a missing layer in a file claiming 4e9 layers" --model "$corpus/hostile-block-count.gguf" --layer 5 --proj gate
has_msg "a missing layer" "the tensors name 1 layer, 0 to 0"
# non-canonical layer numbers ("blk.007.") are not layers; an inf fp16 scale: the run stands,
# the table says the deviation is not finite and the JSON stays JSON
/usr/bin/python3 - "$tmp" <<'PY'
import struct, sys
d = sys.argv[1]
def s(b): return struct.pack("<Q", len(b)) + b
def gguf(tensors, data):
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), 1) + s(b"general.architecture") + \
        struct.pack("<I", 8) + s(b"qwen3moe")
    for name, ne, off in tensors:
        head += s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", x) for x in ne) + \
            struct.pack("<IQ", 12, off)
    return head + b"\0" * (-len(head) % 32) + data
blocks = bytearray()
for r in range(4):
    blk = bytearray(144); blk[0:4] = b"\x00\x3c\x00\x3c"  # d = dmin = 1.0
    blk[4:16] = bytes([1] * 12); blk[16:] = bytes((r * 7 + i) % 256 for i in range(128))
    blocks += blk
inf = bytearray(blocks); inf[0:2] = b"\x00\x7c"  # row 0's d = +inf
open(f"{d}/inf.gguf", "wb").write(gguf([(b"blk.0.ffn_gate_exps.weight", [256, 4, 1], 0)], bytes(inf)))
open(f"{d}/pad.gguf", "wb").write(gguf([(b"blk.007.ffn_gate_exps.weight", [256, 4, 1], 0),
                                        (b"blk.3.ffn_gate_exps.weight", [256, 4, 1], 0)], bytes(blocks)))
PY
out=$(timeout 20 "$bench" --model "$tmp/pad.gguf" --inspect 2>&1); rc=$?
if [ "$rc" -eq 0 ] && ! printf '%s\n' "$out" | grep -q '^7 ' && printf '%s\n' "$out" | grep -q '^3 .*q4_K 256x4x1'; then
  passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: --inspect of blk.007: rc=$rc: ${out:0:400}"; fi
out=$(timeout 60 "$bench" --model "$tmp/inf.gguf" --layer 0 --proj gate --experts 0 --kernel q4k_f32_ref \
  --hot --min-samples 3 --min-time 0.001 --max-time 0.05 --threads 1 --json "$tmp/inf.json" 2>&1); rc=$?
if [ "$rc" -eq 0 ] && printf '%s\n' "$out" | grep -q '^# q4k_f32_ref: the deviation is not finite' &&
   /usr/bin/python3 -c 'import json, sys
def bad(c): raise ValueError(c)
d = json.load(open(sys.argv[1]), parse_constant=bad)
assert any(b.get("rel_l2", 0) is None for b in d["benchmarks"])' "$tmp/inf.json"; then
  passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: an inf scale: rc=$rc: ${out:0:600}"; fi

# issue 12, third review: -----------------------------------------------------------------------
# GGUF names crafted so that FNV-1a's low bits collide (the table's slots): a valid file of 60000
# tensors, and one of 65536 keys, take bounded CPU time (they had taken 14 s)
/usr/bin/python3 - "$tmp" <<'PY'
import itertools, struct, sys
M, P, OFF, MASK = (1 << 64) - 1, 0x100000001b3, 0xcbf29ce484222325, (1 << 17) - 1
al = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
def step(h, bs):
    for c in bs: h = ((h ^ c) * P) & M
    return h
h, blocks = step(OFF, b"t."), []
for _ in range(16):  # pairs of 3-byte blocks taking the low 17 bits of the state to one value
    seen = {}
    for x in itertools.product(al, repeat=3):
        s = step(h, bytes(x)) & MASK
        if s in seen: blocks.append((seen[s], bytes(x))); h = step(h, seen[s]); break
        seen[s] = bytes(x)
names = [b"t." + b"".join(blocks[k][(i >> k) & 1] for k in range(16)) for i in range(65536)]
def s(b): return struct.pack("<Q", len(b)) + b
def write(path, tensors=(), keys=()):
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(keys))
    out += b"".join(s(k) + struct.pack("<II", 4, 1) for k in keys)
    out += b"".join(s(t) + struct.pack("<IQIQ", 1, 1, 0, 0) for t in tensors)
    open(path, "wb").write(out + b"\0" * (-len(out) % 32) + b"\0" * 32)
write(sys.argv[1] + "/collide-tensors.gguf", tensors=names[:60000])
write(sys.argv[1] + "/collide-keys.gguf", keys=names)
PY
for f in collide-tensors collide-keys; do
  /usr/bin/time -f '%U %S %M' -o "$tmp/usage" timeout 60 "$bench" --model "$tmp/$f.gguf" --inspect >/dev/null 2>&1; rc=$?
  read -r user sys kb < <(tail -1 "$tmp/usage")
  if [ "$rc" -eq 0 ] && awk -v u="$user" -v s="$sys" -v k="$kb" -v l="$time_limit" 'BEGIN { exit !(u + s <= l && k <= 100 * 1024) }'; then
    passed=$((passed + 1))
  else failed=$((failed + 1)); echo "FAIL: --inspect of $f.gguf: rc=$rc, ${user} + ${sys} s of CPU, ${kb} KB (at most $time_limit s)"; fi
done
rm -f "$tmp"/collide-*.gguf
# Google Benchmark flags that abort or bypass bench, and bad values of those passed through
expect_error "--benchmark_perf_counters" --benchmark_perf_counters=CYCLES "${tiny[@]}"
expect_error "--benchmark_context without '='" --benchmark_context=novalue "${tiny[@]}"
expect_error "--benchmark_context with two '='" --benchmark_context=a=b=c "${tiny[@]}"
expect_error "--benchmark_context ending in a comma" --benchmark_context=a=b, "${tiny[@]}"
# --benchmark_context may not replace Google Benchmark's own keys
for key in date host_name executable num_cpus mhz_per_cpu cpu_scaling_enabled caches load_avg \
  library_build_type json_schema_version; do
  expect_error "--benchmark_context replacing $key" --benchmark_context=$key=x "${tiny[@]}"
done
# a control byte in a string (a context value, a path) is escaped: strict JSON
mkdir -p "$tmp/a"$'\001'"b"
ctl=$(printf 'a\033[31mb\001\177')
out=$(timeout 60 "$bench" "${tiny[@]}" --benchmark_context=k="$ctl" --json "$tmp/a"$'\001'"b/c.json" 2>&1); rc=$?
if [ "$rc" -eq 0 ] && /usr/bin/python3 - "$tmp/a"$'\001'"b/c.json" "$ctl" <<'PY'
import json, sys
d = json.loads(open(sys.argv[1], encoding="utf-8").read(), strict=True)
assert d["context"]["k"] == sys.argv[2], repr(d["context"]["k"])
PY
then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: a control byte in the JSON's strings: rc=$rc ${out:0:300}"; fi
# environment values in messages are escaped: one line, no escape byte
QK_INJECT_SLOWDOWN=$'x=1\nbench: ok\033[31m' expect_error "a slowdown hook with a newline and an escape" "${tiny[@]}"
if grep -q $'\x1b' /tmp/qk_cli_err.$$; then
  failed=$((failed + 1)); echo "FAIL: an escape byte from the environment reached stderr"
else passed=$((passed + 1)); fi
# a test hook whose variant's rows the filter leaves out is an error, not a silent no-op
two=(--kernel q4k_f32_ref,q4k_q8k_ref --hot --min-samples 3 --min-time 0.001 --max-time 0.05 --shape 16x256 --experts 0 --threads 1)
QK_INJECT_LATE_FAULT=q4k_f32_ref expect_error "a late-fault hook filtered out" "${two[@]}" --benchmark_filter=q4k_q8k_ref
QK_INJECT_SLOWDOWN=q4k_f32_ref=1 expect_error "a slowdown hook filtered out" "${two[@]}" --benchmark_filter=q4k_q8k_ref
QK_INJECT_SLOWDOWN=q4k_f32_ref=0.1 expect_header "a slowdown hook its filter keeps" 'q4k_f32_ref' "$bench" "${two[@]}" --benchmark_filter=q4k_f32_ref
# --json replacing a file: a read-only file is refused; the mode is kept; a symbolic link's
# target is replaced (the link stays); a file with hard links and a FIFO are refused
echo old >"$tmp/ro.json"; chmod 444 "$tmp/ro.json"
expect_error "--json a read-only file" "${tiny[@]}" --json "$tmp/ro.json"
[ "$(cat "$tmp/ro.json")" = old ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: a read-only --json file was replaced"; }
echo old >"$tmp/p.json"; chmod 600 "$tmp/p.json"
timeout 60 "$bench" "${tiny[@]}" --json "$tmp/p.json" >/dev/null 2>&1
[ "$(stat -c %a "$tmp/p.json")" = 600 ] && grep -q benchmarks "$tmp/p.json" && passed=$((passed + 1)) ||
  { failed=$((failed + 1)); echo "FAIL: --json over a 600 file: mode $(stat -c %a "$tmp/p.json")"; }
mkdir -p "$tmp/real"; echo old >"$tmp/real/t.json"; ln -s real/t.json "$tmp/link.json"
timeout 60 "$bench" "${tiny[@]}" --json "$tmp/link.json" >/dev/null 2>&1
[ -L "$tmp/link.json" ] && grep -q benchmarks "$tmp/real/t.json" && [ -z "$(ls "$tmp/real" | grep tmp)" ] && passed=$((passed + 1)) ||
  { failed=$((failed + 1)); echo "FAIL: --json through a symbolic link: $(ls -l "$tmp/link.json")"; }
ln -s nowhere "$tmp/dangling.json"
expect_error "--json a dangling symbolic link" "${tiny[@]}" --json "$tmp/dangling.json"
echo old >"$tmp/h1.json"; ln "$tmp/h1.json" "$tmp/h2.json"
expect_error "--json a file with two hard links" "${tiny[@]}" --json "$tmp/h1.json"
expect_error_fast "--json a FIFO" "${tiny[@]}" --json "$tmp/fifo"
expect_header "--json /dev/null" 'q4k_f32_ref' "$bench" "${tiny[@]}" --json /dev/null
# SIGINT or SIGTERM during a --json run: the temporary file is removed, the old file kept
for sig in INT TERM; do
  echo old >"$tmp/sig.json"
  /usr/bin/python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)  # a background job of a script ignores SIGINT
os.execv(sys.argv[1], sys.argv[1:])' "$bench" --kernel q4k_f32_ref --hot --min-time 20 --threads 1 \
    --json "$tmp/sig.json" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 100); do ls "$tmp" | grep -q 'sig.json.tmp' && break; sleep 0.1; done
  sleep 0.3; kill -$sig $pid; wait $pid; rc=$?
  if [ "$rc" -gt 128 ] && [ "$(cat "$tmp/sig.json")" = old ] && [ -z "$(ls "$tmp" | grep 'sig.json.tmp')" ]; then
    passed=$((passed + 1))
  else failed=$((failed + 1)); echo "FAIL: SIG$sig during a --json run: rc=$rc, $(ls "$tmp" | grep sig.json | tr '\n' ' ')"; fi
done

# review 13: ---------------------------------------------------------------------------------
# --decode where no GPU variant runs is refused before anything is written (no --dump-output
# folder, no weights laid out)
expect_error "--decode without a GPU variant" --decode --kernel q4k_f32_ref --shape 16x256 \
  --experts 0 --threads 1 --dump-output "$tmp/decode-dump"
has_msg "--decode without a GPU variant" "--decode: decode rows are GPU rows"
if [ ! -e "$tmp/decode-dump" ]; then passed=$((passed + 1)); else
  failed=$((failed + 1)); echo "FAIL: --decode refused after --dump-output wrote $(ls "$tmp/decode-dump" | tr '\n' ' ')"; fi
# a filter that keeps one temperature prints no empty section for the others
out=$(timeout 60 "$bench" --kernel q4k_f32_ref --shape 16x256 --experts 0 --threads 1 --min-samples 3 \
  --min-time 0.001 --max-time 0.05 --benchmark_filter=hot 2>&1); rc=$?
if [ "$rc" -eq 0 ] && printf '%s\n' "$out" | grep -q '^hot:' && ! printf '%s\n' "$out" | grep -q '^cold:'; then
  passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: --benchmark_filter=hot printed a cold section: rc=$rc ${out:0:600}"; fi
# noisy means what the table's footnote says: more than 25 % dropped, or an interval that missed
# --target-ci (fewer than 6 clean samples: no interval); a row stopped by --max-time before its
# --min-samples but within its target is not noisy
timeout 60 "$bench" --kernel q4k_f32_ref --shape 16x256 --experts 0 --threads 1 --min-samples 100000 \
  --target-ci 100 --min-time 0.001 --max-time 0.05 --json "$tmp/noisy.json" >/dev/null 2>&1; rc=$?
if [ "$rc" -eq 0 ] && /usr/bin/python3 - "$tmp/noisy.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for b in d["benchmarks"]:
    if b["name"].startswith("peak_read"):
        continue
    t = b["real_time"]
    total = b["samples"] + b["dropped"]
    missed = b["samples"] < 6 or (t - b["ci_low_us"]) > t or (b["ci_high_us"] - t) > t
    want = b["dropped"] > 0.25 * total or missed
    assert bool(b["noisy"]) == want, (b["name"], b["noisy"], b["samples"], b["dropped"],
                                      b["ci_low_us"], t, b["ci_high_us"])
PY
then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: noisy beyond its definition (rc=$rc)"; fi

# every row of the variant tables, read from the source, is listed
list=$("$bench" --list)
names=$(grep -ohE '^\s*(GPU_)?(MATVEC|QUANT)\([a-z0-9_]+' "$src"/cpu/cpu_table.c "$src"/gpu/gpu_table.c |
  sed -E 's/.*\(//')
[ "$(printf '%s\n' "$names" | wc -l)" -ge 16 ] || { failed=$((failed + 1)); echo "FAIL: no table rows found"; }
for k in $names; do
  if printf '%s\n' "$list" | grep -q "^$k "; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: --list does not name $k"; fi
done
rm -f /tmp/qk_cli_err.$$
echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
