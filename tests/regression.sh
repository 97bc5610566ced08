#!/usr/bin/env bash
# The CI regression gate (.ci/run runs it after the tests): this tree's kernels against the
# baseline commit's, on this machine, in the same seconds. The baseline commit is the one named
# by results/ci-gate/baseline.txt; the gate builds its gate_worker (git archive, release, no
# CUDA) under build/regression-base, then tests/gate.py hands the two workers the machine in
# turn, in ABBA batches of ~20 ms, and judges every variant on its own (tests/gate.py says how;
# the README's "The CI gate" what it catches and misses, measured).
# usage: tests/regression.sh [OUT_DIR] [gate.py options...]
#          new worker: $QK_GATE_WORKER (default build/release/bench/gate_worker, brought up to
#          date with cmake); baseline worker: $QK_BASE_WORKER (default: built from the baseline commit)
#        tests/regression.sh --record   (names HEAD, which must be committed and clean, as the
#          baseline in results/ci-gate/baseline.txt)
set -uo pipefail
cd "$(dirname "$0")/.."
record=${QK_GATE_RECORD:-results/ci-gate/baseline.txt}
py=/usr/bin/python3
die() { echo "regression: $*" >&2; echo "regression: 0 passed, 1 failed"; exit 2; }
if [ "${1:-}" = --record ]; then
  [ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && git rev-parse HEAD >/dev/null 2>&1 ||
    die "--record names a committed tree as the baseline: commit first"
  mkdir -p "$(dirname "$record")"
  { echo "# The CI gate's baseline: tests/regression.sh builds this commit's gate_worker and"
    echo "# times it beside the new tree's (tests/gate.py). Written by tests/regression.sh --record."
    echo "baseline_commit $(git rev-parse HEAD)"
    echo "committed $(git log -1 --format=%cI HEAD)"
  } >"$record" || die "cannot write $record"
  echo "regression: the baseline is now $(git rev-parse --short=12 HEAD) ($record): commit it"
  exit 0
fi
out=${1:-build/regression}
[ $# -gt 0 ] && shift
mkdir -p "$out" || die "cannot create $out"
new_worker=${QK_GATE_WORKER:-build/release/bench/gate_worker}
if [ -z "${QK_GATE_WORKER:-}" ]; then
  { cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null &&
    cmake --build build/release --target gate_worker -j"$(nproc)" >/dev/null; } ||
    die "cannot build this tree's gate_worker"
fi
base_worker=${QK_BASE_WORKER:-}
if [ -z "$base_worker" ]; then
  [ -r "$record" ] || die "$record: no such file (tests/regression.sh --record writes it)"
  commit=$(sed -n 's/^baseline_commit \([0-9a-f]\{40\}\)$/\1/p' "$record")
  [ "$(grep -c '^baseline_commit' "$record")" -le 1 ] || die "$record: more than one baseline_commit line"
  [ -n "$commit" ] ||
    die "$record: no 'baseline_commit <40 hex digits>' line (tests/regression.sh --record writes one)"
  # a shallow clone lacks it: fetch that one commit by its whole hash
  git cat-file -e "$commit^{commit}" 2>/dev/null ||
    timeout 120 git fetch --quiet --depth=1 origin "$commit" 2>/dev/null
  git cat-file -e "$commit^{commit}" 2>/dev/null ||
    die "the baseline commit $commit is neither in this clone nor fetchable from origin"
  base_worker=build/regression-base/build-$commit/bench/gate_worker
  if [ ! -x "$base_worker" ]; then
    echo "regression: building the baseline commit ${commit:0:12}"
    src=build/regression-base/src-$commit
    rm -rf "$src" && mkdir -p "$src" && git archive "$commit" | tar -x -C "$src" ||
      die "cannot extract $commit"
    QK_GIT_COMMIT=$commit cmake -S "$src" -B "build/regression-base/build-$commit" \
      -DCMAKE_BUILD_TYPE=Release -DQK_CUDA=OFF >"$out/base-build.txt" 2>&1 &&
      cmake --build "build/regression-base/build-$commit" --target gate_worker \
        -j"$(nproc)" >>"$out/base-build.txt" 2>&1 ||
      { tail -20 "$out/base-build.txt"; die "cannot build the baseline commit $commit"; }
  fi
fi
$py tests/gate.py "$base_worker" "$new_worker" --json "$out/gate.json" "$@"
rc=$?
case $rc in
  0) echo "regression: 1 passed, 0 failed" ;;
  1) echo "regression: 0 passed, 1 failed" ;;
  *) echo "regression: the gate could not run (exit $rc)"; echo "regression: 0 passed, 1 failed" ;;
esac
exit $rc
