#!/usr/bin/env bash
# sweep.sh: a learning-rate × LoRA-rank sweep as a plain shell loop over
# `loraqa train`, doing what `loraqa sweep` does, minus parallel runs and plots.
#
# Usage: scripts/sweep.sh CONFIG OUT_DIR [--set key=value ...]
#
#   LRS="1e-4 2e-4 5e-4"  the train.learning_rate values (default as shown)
#   RS="8 16"             the lora.r values (default as shown)
#   LORAQA=path           the loraqa binary (default: bin/loraqa, else loraqa on PATH)
#   Extra --set flags after OUT_DIR apply to every trial (e.g. --set device=cuda:0).
#
# Each combination is one trial, OUT_DIR/trial-NNN (run/, adapter/, train.log,
# trial.json), numbered with the rank varying fastest, as
#   loraqa sweep --config CONFIG --grid train.learning_rate=1e-4,2e-4,5e-4 --grid lora.r=8,16 --out OUT_DIR
# numbers them, so that command with --report ranks these trials too. A trial
# whose adapter/metrics.json exists is skipped: run the script again after an
# interruption and it finishes the missing trials (resuming from a checkpoint
# when one was saved). At the end it prints the trials ranked by best eval F1
# and writes them to OUT_DIR/results.csv.
set -euo pipefail

usage="usage: scripts/sweep.sh CONFIG OUT_DIR [--set key=value ...]"
CONFIG=${1:?$usage}
OUT=${2:?$usage}
shift 2
read -r -a LRS <<<"${LRS:-1e-4 2e-4 5e-4}"
read -r -a RS <<<"${RS:-8 16}"
if [ -z "${LORAQA:-}" ]; then
  here=$(cd "$(dirname "$0")/.." && pwd)
  if [ -x "$here/bin/loraqa" ]; then LORAQA=$here/bin/loraqa; else LORAQA=loraqa; fi
fi
command -v "$LORAQA" >/dev/null || { echo "sweep.sh: $LORAQA not found: build it (go build -o bin/loraqa ./cmd/loraqa) or set LORAQA" >&2; exit 1; }
[ -f "$CONFIG" ] || { echo "sweep.sh: config file $CONFIG not found" >&2; exit 1; }

mkdir -p "$OUT"
total=$(( ${#LRS[@]} * ${#RS[@]} ))
n=0
failed=()
for lr in "${LRS[@]}"; do
  for r in "${RS[@]}"; do
    trial=$(printf 'trial-%03d' "$n")
    n=$((n + 1))
    dir="$OUT/$trial"
    if [ -f "$dir/adapter/metrics.json" ]; then
      echo "sweep.sh: [$n/$total] $trial finished earlier: skipped" >&2
      continue
    fi
    mkdir -p "$dir"
    printf '{"trial":"%s","settings":{"lora.r":"%s","train.learning_rate":"%s"}}\n' "$trial" "$r" "$lr" >"$dir/trial.json"
    resume=()
    if compgen -G "$dir/run/checkpoint-*" >/dev/null; then
      resume=(--resume latest)
    else
      rm -rf "$dir/run" "$dir/adapter"
    fi
    echo "sweep.sh: [$n/$total] $trial: train.learning_rate=$lr lora.r=$r (log: $dir/train.log)" >&2
    start=$SECONDS
    if "$LORAQA" train --config "$CONFIG" "$@" \
        --set "train.learning_rate=$lr" --set "lora.r=$r" \
        --set "output_dir=$dir/run" --set "fine_tuned_adapter_path=$dir/adapter" \
        ${resume[@]+"${resume[@]}"} >>"$dir/train.log" 2>&1; then
      echo "sweep.sh: [$n/$total] $trial done in $((SECONDS - start))s" >&2
    else
      echo "sweep.sh: [$n/$total] $trial FAILED: $(tail -n 1 "$dir/train.log")" >&2
      failed+=("$trial")
    fi
  done
done

# Rank the finished trials by the best_f1 of their adapter's metrics.json.
rows=$(
  for d in "$OUT"/trial-*/; do
    t=$(basename "$d")
    m="$d/adapter/metrics.json"
    [ -f "$m" ] || continue
    f1=$(sed -n 's/.*"best_f1": *\([-0-9.eE+]*\).*/\1/p' "$m" | head -n 1)
    lr=$(sed -n 's/.*"train.learning_rate":"\([^"]*\)".*/\1/p' "$d/trial.json")
    r=$(sed -n 's/.*"lora.r":"\([^"]*\)".*/\1/p' "$d/trial.json")
    echo "$t,$lr,$r,${f1:-0}"
  done | sort -t, -k4,4gr -k1,1
)
{
  echo "rank,trial,train.learning_rate,lora.r,f1"
  [ -z "$rows" ] || awk -v OFS=, '{ print NR, $0 }' <<<"$rows"
} >"$OUT/results.csv.tmp"
mv "$OUT/results.csv.tmp" "$OUT/results.csv"
column -s, -t <"$OUT/results.csv" 2>/dev/null || cat "$OUT/results.csv"
if [ ${#failed[@]} -gt 0 ]; then
  echo "sweep.sh: ${#failed[@]} trial(s) failed (${failed[*]}): read their train.log, fix the cause and run the script again" >&2
  exit 1
fi
