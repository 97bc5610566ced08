# Shared by the shell suites (sourced after $tmp is set): the pass/fail counters and expect_rc.
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
# expect_rc RC DESCRIPTION COMMAND...: runs COMMAND, counts whether it exited RC. Its stdout goes
# to $tmp/out.txt and its stderr to $tmp/err.txt, or with merge_stderr=1 both to $tmp/out.txt.
expect_rc() {
  local want=$1 what=$2; shift 2
  if [ "${merge_stderr:-0}" = 1 ]; then
    "$@" >"$tmp/out.txt" 2>&1
  else
    "$@" >"$tmp/out.txt" 2>"$tmp/err.txt"
  fi
  local rc=$?
  if [ "$rc" -eq "$want" ]; then ok; else
    bad "$what: exit $rc, expected $want"
    tail -12 "$tmp/out.txt"
    [ "${merge_stderr:-0}" = 1 ] || tail -12 "$tmp/err.txt"
  fi
}
