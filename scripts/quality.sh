#!/usr/bin/env bash
# The real fine-tune side by side (docs/quality.md): loraqa and HF transformers +
# PEFT (scripts/ref/hf_train_qa.py, in the reference venv) from the same
# all-MiniLM-L6-v2 weights, the same split of TAT-QA text-span questions
# (contexts given, 90/10, seed 42), r 16 α 32 dropout 0.05 on query/value,
# lr $LR, batch 8, $EPOCHS epochs, windows 384/128; then a random-weights baseline
# and the reference recipe's joined context in truncate and windows mode.
# Usage: scripts/quality.sh [OUT]   (env: EPOCHS=3 LR=5e-4)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/quality}; EPOCHS=${EPOCHS:-3}; LR=${LR:-5e-4}
mkdir -p "$OUT"
MINILM=$(scripts/minilm.sh "$OUT/minilm")
bin/loraqa prepare --input ../shared/data/tatqa-dev-textspan.squad.json --out "$OUT/split" >/dev/null
PY=${LORAQA_REF_PYTHON:-.venv-ref/bin/python}
common=(--set train.learning_rate=$LR --set train.epochs=$EPOCHS --set train.batch_size=8 --set seed=42 --set device=cpu
        --set lora.target_modules=[query,value] --set train.load_best_model_at_end=false)
echo "== HF transformers + PEFT" >&2
$PY scripts/ref/hf_train_qa.py --model "$MINILM" --train "$OUT/split/train.jsonl" --test "$OUT/split/test.jsonl" \
  --epochs $EPOCHS --lr $LR > "$OUT/hf.jsonl"
run() { # name, base, extra --set args...
  local name=$1 base=$2; shift 2
  echo "== loraqa $name" >&2
  bin/loraqa train "${common[@]}" --set base_qa_model="$base" --set fine_tuned_adapter_path="$OUT/$name/adapter" \
    --set output_dir="$OUT/$name/run" "$@" 2> "$OUT/$name.log"
}
run textspan "$MINILM" --set data.train_file="$OUT/split/train.jsonl" --set data.test_file="$OUT/split/test.jsonl"
vocab="$(GOWORK=off go mod download -json github.com/sugarme/tokenizer@v0.3.0 | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')/pretrained/model/bert-base-uncased-vocab.txt"
bin/loraqa init --shape small --vocab "$vocab" --out "$OUT/random-base" 2>/dev/null
run random "$OUT/random-base" --set data.train_file="$OUT/split/train.jsonl" --set data.test_file="$OUT/split/test.jsonl" \
  --set lora.target_modules=[q_lin,v_lin]
run joined-truncate "$MINILM" --set data.input=../shared/data/tatqa-dev-qa.txt --set data.mode=truncate
run joined-windows "$MINILM" --set data.input=../shared/data/tatqa-dev-qa.txt --set data.mode=windows --set data.negative_fraction=0.05
echo done >&2
