#!/usr/bin/env bash
# How sensitive the CI gate is, and how often it cries wolf, on this machine: TRIALS runs of
# tests/regression.sh (the real gate: the baseline commit's worker against this tree's) with
# unchanged code, then TRIALS with an injected slowdown of each size in QK_STUDY_SIZES (%),
# the slowed variant taking turns over every gated one; with QK_STUDY_LOAD=1 also TRIALS runs
# of each size in QK_STUDY_LOAD_SIZES (default "0 15") beside a loop of the other ctest suites
# (what `ctest -j2` puts beside the gate). Prints a table: per size, how many trials failed, and the slowed case's measured
# change. A benchmark of the gate, not a test: it takes about half a minute a trial.
# usage: tests/gate_study.sh [TRIALS] [OUT.md]   (default 10, results/ci-gate/study-<cpu>.md)
set -uo pipefail
cd "$(dirname "$0")/.."
trials=${1:-10}
sizes=${QK_STUDY_SIZES:-0 5 10 15 20}
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
family=$(lscpu | sed -n 's/^CPU family: *//p' | head -1)
model=$(lscpu | sed -n 's/^Model: *//p' | head -1)
slug=$(echo "$cpu" | tr 'A-Z' 'a-z' | sed 's/([^)]*)//g; s/[^a-z0-9]\+/-/g; s/^-//; s/-$//')
out=${2:-results/ci-gate/study-$slug.md}
work=build/gate-study
commit=$(git rev-parse --short=12 HEAD)$(git diff --quiet HEAD 2>/dev/null || echo "-dirty")
mkdir -p "$work" "$(dirname "$out")"
# a copy of this tree's worker, so that a rebuild during the study does not change what it measures
cp build/release/bench/gate_worker "$work/gate_worker" || { echo "gate_study: build first (tests/run.sh)"; exit 2; }
export QK_GATE_WORKER=$PWD/$work/gate_worker
variants=$("$QK_GATE_WORKER" --list) || exit 2
read -r -a gated <<<"$(echo $variants)"
rows=$work/rows.txt
: >"$rows"
trial() { # LABEL SIZE VARIANT
  local label=$1 size=$2 variant=$3 dir=$work/$1-$2-$3-$RANDOM
  local t0=$SECONDS rc
  if [ "$size" = 0 ]; then
    bash tests/regression.sh "$dir" >"$dir.log" 2>&1
  else
    QK_INJECT_SLOWDOWN=$variant=$(awk "BEGIN{print $size/100}") \
      bash tests/regression.sh "$dir" >"$dir.log" 2>&1
  fi
  rc=$?
  /usr/bin/python3 - "$dir/gate.json" "$label" "$size" "$variant" "$rc" "$((SECONDS - t0))" \
    "$(cut -d' ' -f1 /proc/loadavg)" >>"$rows" <<'PY'
import json, sys
path, label, size, variant, rc, secs, load = sys.argv[1:]
try:
    res = json.load(open(path))["results"]
except (OSError, ValueError, KeyError):
    print(f"{label}\t{size}\t{variant}\t{rc}\tno gate.json\t-\t{secs}\t{load}")
    sys.exit()
first = [r for r in res if r["round"] == "first"]
if size == "0":  # the case that moved most, either way
    r = max(first, key=lambda r: abs(r["change_pct"]))
else:
    r = [r for r in first if r["case"].startswith(variant + ":")][0]
conf = [x for x in res if x["round"] == "confirm" and x["case"] == r["case"]]
c = f"{conf[0]['change_pct']:+.1f}" if conf else "-"
print(f"{label}\t{size}\t{r['case']}\t{rc}\t{r['change_pct']:+.1f} [{r['interval_pct'][0]:+.1f}, "
      f"{r['interval_pct'][1]:+.1f}] {r['pairs']}p\t{c}\t{secs}\t{load}")
PY
  tail -1 "$rows"
}
for size in $sizes; do
  for ((i = 0; i < trials; i++)); do
    trial quiet "$size" "${gated[$((i % ${#gated[@]}))]}"
  done
done
if [ "${QK_STUDY_LOAD:-0}" = 1 ]; then
  ( while :; do ctest --test-dir build/release -j1 -E regression_gate >/dev/null 2>&1; done ) &
  load_pid=$!
  for size in ${QK_STUDY_LOAD_SIZES:-0 15}; do
    for ((i = 0; i < trials; i++)); do trial loaded "$size" "${gated[$((i % ${#gated[@]}))]}"; done
  done
  children=$(pgrep -P $load_pid)
  kill $load_pid $children 2>/dev/null
  wait $load_pid 2>/dev/null
fi
{
  echo "# CI gate study: $cpu (family $family, model $model), $(nproc) vCPUs"
  echo
  echo "$(date -u +%Y-%m-%d), this tree at commit $commit (its gate_worker copied at the start), baseline" \
    "$(sed -n 's/^baseline_commit \(.\{12\}\).*/\1/p' results/ci-gate/baseline.txt),"
  echo "\`tests/gate_study.sh $trials\` (QK_STUDY_SIZES='$sizes', QK_STUDY_LOAD=${QK_STUDY_LOAD:-0}," \
    "QK_STUDY_LOAD_SIZES='${QK_STUDY_LOAD_SIZES:-0 15}')."
  echo "Each trial is one run of \`tests/regression.sh\`; a failure is a run that exited 1. \"quiet\""
  echo "trials have no load of the study's own; \"loaded\" ones run beside a loop of the other ctest"
  echo "suites. The load average column says what else the machine was doing."
  echo
  echo "| load | injected slowdown | trials | gate failed |"
  echo "|---|---|---|---|"
  awk -F'\t' '{k=$1" "$2; n[k]++; if ($4==1) f[k]++; if (!(k in o)) {o[k]=++c; key[c]=k}}
    END {for (i=1;i<=c;i++) {split(key[i],p," "); printf "| %s | %s %% | %d | %d |\n", p[1], p[2], n[key[i]], f[key[i]]}}' "$rows"
  echo
  echo "Every trial (change: the first round's median change of the slowed case, or of the case"
  echo "that moved most when nothing was injected, its 95 % interval and pairs; confirm: the"
  echo "second measurement's change when the first failed; load: 1-minute load average after):"
  echo
  echo "| load | size % | case | exit | change | confirm | seconds | load avg |"
  echo "|---|---|---|---|---|---|---|---|"
  awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8}' "$rows"
} >"$out"
echo "gate_study: wrote $out"
