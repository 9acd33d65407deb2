#!/usr/bin/env bash
# The real fine-tune side by side (docs/quality.md): loraqa and HF transformers +
# PEFT (scripts/ref/hf_train_qa.py, in the reference venv) from the same
# all-MiniLM-L6-v2 weights on the same split of TAT-QA text-span questions
# (contexts given, 90/10, split seed 42), r 16 α 32 on query/value, lr $LR,
# batch 8, $EPOCHS epochs, windows 384/128, the same batches for a seed (the
# reference draws them with loraqa's shuffle).
#
#   lockstep   dropout off, and loraqa starts from the very adapter PEFT
#              initialised (lora.init_from): the two runs differ only in the
#              implementations, so their losses are compared step by step
#   lockstep-dropout
#              the same with dropout on: both reseed LibTorch's generator
#              before every batch from (seed, step, batch), so the same
#              weights draw the same dropout masks
#   seed-S     the recipe as users run it (dropout 0.05 LoRA, 0.1 model), each
#              side with its own initialisation and dropout masks, for $SEEDS
#   random     loraqa on a randomly initialised MiniLM-shaped BERT (baseline)
#   joined-*   the reference recipe: tatqa-dev-qa.txt with all answers joined
#              into one context, in truncate and in windows mode ($JOINED=1)
#
# Runs that finished are kept, so an interrupted run picks up where it stopped.
# Usage: scripts/quality.sh [OUT]   (env: EPOCHS=5 LR=1e-3 SEEDS="42 1 2 3" JOINED=1)
# The tables: python3 scripts/quality_report.py OUT
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/quality}; EPOCHS=${EPOCHS:-5}; LR=${LR:-1e-3}; SEEDS=${SEEDS:-42 1 2 3}; JOINED=${JOINED:-1}
PY=${LORAQA_REF_PYTHON:-.venv-ref/bin/python}
mkdir -p "$OUT"
MINILM=$(scripts/minilm.sh "$OUT/minilm")
[ -f "$OUT/split/train.jsonl" ] || bin/loraqa prepare --input ../shared/data/tatqa-dev-textspan.squad.json --out "$OUT/split" >/dev/null
split=(--set data.train_file="$OUT/split/train.jsonl" --set data.test_file="$OUT/split/test.jsonl")

hf() { # name seed extra-args...
  local name=$1 seed=$2; shift 2
  [ -s "$OUT/$name/hf.done" ] && return 0
  echo "== HF transformers + PEFT: $name" >&2
  mkdir -p "$OUT/$name" && rm -f "$OUT/$name/hf.jsonl" "$OUT/$name/hf-steps.jsonl"
  $PY scripts/ref/hf_train_qa.py --train "$OUT/split/train.jsonl" --test "$OUT/split/test.jsonl" \
    --epochs "$EPOCHS" --lr "$LR" --seed "$seed" --steps "$OUT/$name/hf-steps.jsonl" "$@" > "$OUT/$name/hf.jsonl"
  date > "$OUT/$name/hf.done"
}
lq() { # name seed base extra --set args...
  local name=$1 seed=$2 base=$3; shift 3
  [ -s "$OUT/$name/loraqa.done" ] && return 0
  echo "== loraqa: $name" >&2
  rm -rf "$OUT/$name/run" "$OUT/$name/loraqa.log" && mkdir -p "$OUT/$name"
  bin/loraqa train --set base_qa_model="$base" --set seed="$seed" --set device=cpu \
    --set train.learning_rate="$LR" --set train.epochs="$EPOCHS" --set train.batch_size=8 \
    --set train.logging_steps=1 --set train.load_best_model_at_end=false --set lora.target_modules=[query,value] \
    --set fine_tuned_adapter_path="$OUT/$name/adapter" --set output_dir="$OUT/$name/run" "$@" 2> "$OUT/$name/loraqa.log"
  date > "$OUT/$name/loraqa.done"
}

# lockstep: a copy of MiniLM with every dropout at 0 (the weights linked, not copied)
nodrop=$(scripts/minilm.sh --no-dropout "$MINILM" "$OUT/minilm-nodropout")
hf lockstep 42 --model "$nodrop" --no-dropout --save-init "$OUT/lockstep/init"
lq lockstep 42 "$nodrop" "${split[@]}" --set lora.init_from="$OUT/lockstep/init"
hf lockstep-dropout 42 --model "$MINILM" --save-init "$OUT/lockstep-dropout/init" --reseed
lq lockstep-dropout 42 "$MINILM" "${split[@]}" --set lora.init_from="$OUT/lockstep-dropout/init"

first=1
for s in $SEEDS; do
  hf "seed-$s" "$s" --model "$MINILM"
  lq "seed-$s" "$s" "$MINILM" "${split[@]}"
  if [ $first = 1 ]; then # the baseline after the first seed: it is the figure the others are read against
    first=0
    rnd="$OUT/random-minilm"
    if [ ! -f "$rnd/config.json" ]; then
      # MiniLM's shape and tokenizer, weights drawn as BertForQuestionAnswering initialises them
      $PY -c 'import shutil, sys, torch
from transformers import BertConfig, BertForQuestionAnswering
torch.manual_seed(42)
BertForQuestionAnswering(BertConfig.from_pretrained(sys.argv[1])).save_pretrained(sys.argv[2], safe_serialization=True)
for f in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
    try: shutil.copy(f"{sys.argv[1]}/{f}", sys.argv[2])
    except FileNotFoundError: pass' "$MINILM" "$rnd"
    fi
    lq random 42 "$rnd" "${split[@]}"
  fi
done

if [ "$JOINED" = 1 ]; then
  lq joined-truncate 42 "$MINILM" --set data.input=../shared/data/tatqa-dev-qa.txt --set data.mode=truncate
  lq joined-windows 42 "$MINILM" --set data.input=../shared/data/tatqa-dev-qa.txt --set data.mode=windows \
    --set data.negative_fraction=0.05
fi
python3 scripts/quality_report.py "$OUT"
