#!/usr/bin/env bash
# Generates the test material loraqa's tests read besides the committed testdata/
# (make reference runs it once the reference venv is set up): the tiny DistilBERT
# fixture (tiny-distilbert-qa/: base model, LoRA adapter, golden logits and AdamW
# steps) and a bert-base-uncased tokenizer directory (tokenizer/), made by
# scripts/ref/make_fixtures.py with HF transformers + PEFT, and a byte-level BPE
# (RoBERTa) vocabulary trained on the committed samples (roberta-bpe/: vocab.json,
# merges.txt, tokenizer.json, tokenizer_config.json), made by
# scripts/ref/make_bpe_vocab.py with HF tokenizers, into a git-ignored folder.
# Re-generates only when the generators, the reference pins, the python, the
# samples or the vocabulary change (the stamp OUT/.loraqa-testdata-ok).
# The vocabulary is the bert-base-uncased vocab.txt that the Go module
# github.com/sugarme/tokenizer (a loraqa dependency) ships.
# Usage: scripts/make-testdata.sh [PYTHON] [OUT]   (defaults: .venv-ref/bin/python, .build/testdata)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-${LORAQA_REF_PYTHON:-.venv-ref/bin/python}}
OUT=$(realpath -m "${2:-.build/testdata}")
GEN=scripts/ref/make_fixtures.py
BPE_GEN=scripts/ref/make_bpe_vocab.py
SAMPLES="examples/sample-qa.txt examples/sample-filings.json testdata/squad-sample.json"
STAMP="$OUT/.loraqa-testdata-ok"
log() { echo "make-testdata: $*" >&2; }

command -v "$PY" >/dev/null || { log "error: no python $PY (run make reference)"; exit 1; }
mod=github.com/sugarme/tokenizer@v0.3.0
dir=$(GOWORK=off "${GO:-go}" mod download -json "$mod" |
  "$PY" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])') || { log "error: go mod download $mod failed"; exit 1; }
VOCAB=$dir/pretrained/model/bert-base-uncased-vocab.txt

# shellcheck disable=SC2086 # SAMPLES is a list of paths without spaces
WANT=$( (sha256sum "$GEN" "$BPE_GEN" scripts/ref/requirements.txt "$VOCAB" $SAMPLES | cut -d' ' -f1; realpath -s "$(command -v "$PY")") | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  log "ok ($OUT is up to date)"; exit 0
fi
log "generating $OUT with $GEN"
rm -rf "$OUT.tmp"
mkdir -p "$(dirname "$OUT")"
"$PY" "$GEN" testdata "$OUT.tmp" --vocab "$VOCAB"
"$PY" "$BPE_GEN" . "$OUT.tmp/roberta-bpe"
echo "$WANT" > "$OUT.tmp/.loraqa-testdata-ok"
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
log "ok ($(find "$OUT" -type f | wc -l) files in $OUT)"
