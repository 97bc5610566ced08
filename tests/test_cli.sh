#!/usr/bin/env bash
# bench's command line: every bad input gives exactly one line on stderr and exit code 2;
# --list names every variant.
set -u
bench=$1
passed=0 failed=0
expect_error() { # description, args...
  local what=$1; shift
  local out err rc
  out=$("$bench" "$@" 2>/tmp/qk_cli_err.$$); rc=$?
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
expect_error "bad number" --threads two
expect_error "number out of range" --top 129
expect_error "more threads than CPUs" --threads 100000
expect_error "trailing junk" --seed 12abc
expect_error "missing value" --threads
expect_error "unknown option" --frobnicate
expect_error "expert out of range" --experts 0-128
expect_error "backwards range" --experts 7-3
expect_error "empty expert list" --experts ,
list=$("$bench" --list)
for k in q4k_f32_ref q4k_f32_avx2 q4k_f32_avx512 q4k_q8k_ref q4k_q8k_maddubs q4k_q8k_vnni \
         q4k_q8k_vnni_r8 quant_q8k_ref quant_q8k_avx2 quant_q8k_avx512; do
  if printf '%s\n' "$list" | grep -q "^$k "; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: --list does not name $k"; fi
done
rm -f /tmp/qk_cli_err.$$
echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
