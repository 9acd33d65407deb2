#!/usr/bin/env bash
# The SQuAD 2.0 fine-tune side by side (docs/quality.md, "SQuAD 2.0"): loraqa and
# HF transformers + PEFT (scripts/ref/hf_train_qa.py --version-2-with-negative,
# in the reference venv) from the same all-MiniLM-L6-v2 weights on the same
# split of ../shared/data/squad-v2.0-dev-part1.json (90/10 by loraqa prepare,
# split seed 42; unanswerable questions kept and trained at [CLS]), r 16 α 32
# dropout 0.05 on query/value + qa_outputs, AdamW lr $LR (weight decay 0.01),
# linear schedule, batch 8, $EPOCHS epoch(s), windows $MAXLEN/$STRIDE, fp32, the
# same batches for a seed (the reference draws them with loraqa's shuffle).
#
# Both sides' final adapters are evaluated the same way, by HF's own
# postprocess_qa_predictions (version_2_with_negative) and the official SQuAD
# 2.0 evaluation (transformers 4.57.6's squad_metrics) in .build/venv-squad2
# (scripts/ref/squad2_eval.py):
#   t0     null_score_diff_threshold 0, with null_odds.json as the no-answer
#          probabilities: exact, f1, HasAns_*, NoAns_*, best_f1 and best_f1_thresh
#   saved  each side's own threshold: loraqa's saved in the adapter
#          (loraqa_squad2.json), HF's the best_f1_thresh of its t0 evaluation
#          (as run_qa's null_score_diff_threshold would be tuned); the predictions
#          scored as they are, and the abstention's precision and recall
#   span   threshold 1e9: every question answered by its best span, never "",
#          so that HasAns F1 measures the spans apart from the null decision
# loraqa's predictions come from `loraqa eval --output-dir`; its own printed
# metrics are kept beside (lq-*/eval_results.json).
#
#   LOCKSTEP_STEPS=N  also a short lockstep check: dropout off, loraqa starting
#          from the adapter PEFT initialised (lora.init_from), N steps each, and
#          the training losses compared step by step
#   LOCKSTEP=1  the whole recipe so (OUT/lockstep), evaluated as the seed run
#   LOCKSTEP_DROPOUT=1  the whole recipe with dropout on (OUT/lockstep-dropout):
#          loraqa starts from PEFT's initial adapter and both sides reseed the
#          generator before every batch from (seed, step, batch), so they draw
#          the same masks; evaluated as the seed run
#   PARALLEL=1  the seed run's two sides at once, one thread each (on a 2-core
#          machine about the same total time, but neither waits for the other)
#   SEED_RUN=0  skip the seed run (only the lockstep runs asked for)
#
# Runs that finished are kept, so an interrupted run picks up where it stopped.
# Usage: scripts/quality_squad2.sh [OUT]
#   (env: EPOCHS=1 LR=1e-3 SEED=42 MAXLEN=384 STRIDE=128 LOCKSTEP_STEPS=0
#    LOCKSTEP=0 LOCKSTEP_DROPOUT=0 PARALLEL=0 SEED_RUN=1 MINILM=dir, else scripts/minilm.sh fetches it)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/quality-squad2}; EPOCHS=${EPOCHS:-1}; LR=${LR:-1e-3}; SEED=${SEED:-42}
MAXLEN=${MAXLEN:-384}; STRIDE=${STRIDE:-128}; LOCKSTEP_STEPS=${LOCKSTEP_STEPS:-0}; LOCKSTEP=${LOCKSTEP:-0}
LOCKSTEP_DROPOUT=${LOCKSTEP_DROPOUT:-0}; PARALLEL=${PARALLEL:-0}; SEED_RUN=${SEED_RUN:-1}
DATA=../shared/data/squad-v2.0-dev-part1.json
PY=${LORAQA_REF_PYTHON:-.venv-ref/bin/python}
SQ=${LORAQA_SQUAD2_PYTHON:-.build/venv-squad2/bin/python}
export LORAQA_SQUAD2_PYTHON=$SQ
mkdir -p "$OUT"
MINILM=${MINILM:-$(scripts/minilm.sh "$OUT/minilm")}
[ -f "$OUT/split/train.jsonl" ] || bin/loraqa prepare --input "$DATA" --out "$OUT/split" >/dev/null
TEST="$OUT/split/test.jsonl"

hf() { # name seed extra-args...
  local name=$1 seed=$2; shift 2
  [ -s "$OUT/$name/hf.done" ] && return 0
  echo "== HF transformers + PEFT: $name" >&2
  mkdir -p "$OUT/$name" && rm -rf "$OUT/$name/hf" "$OUT/$name/hf.jsonl" "$OUT/$name/hf-steps.jsonl"
  local t0=$SECONDS
  $PY scripts/ref/hf_train_qa.py --model "$MINILM" --train "$OUT/split/train.jsonl" --test "$TEST" \
    --epochs "$EPOCHS" --lr "$LR" --seed "$seed" --max-len "$MAXLEN" --stride "$STRIDE" \
    --version-2-with-negative --output-dir "$OUT/$name/hf" --steps "$OUT/$name/hf-steps.jsonl" "$@" \
    > "$OUT/$name/hf.jsonl" 2> "$OUT/$name/hf.log"
  echo $((SECONDS - t0)) > "$OUT/$name/hf.seconds"
  date > "$OUT/$name/hf.done"
}
lq() { # name seed extra --set args...
  local name=$1 seed=$2; shift 2
  [ -s "$OUT/$name/loraqa.done" ] && return 0
  echo "== loraqa: $name" >&2
  rm -rf "$OUT/$name/run" "$OUT/$name/adapter" "$OUT/$name/loraqa.log" && mkdir -p "$OUT/$name"
  local t0=$SECONDS
  bin/loraqa train --set base_qa_model="$MINILM" --set seed="$seed" --set device=cpu \
    --set train.learning_rate="$LR" --set train.epochs="$EPOCHS" --set train.batch_size=8 \
    --set train.logging_steps=1 --set train.load_best_model_at_end=false --set lora.target_modules=[query,value] \
    --set data.max_seq_length="$MAXLEN" --set data.doc_stride="$STRIDE" \
    --set data.train_file="$OUT/split/train.jsonl" --set data.test_file="$TEST" \
    --set fine_tuned_adapter_path="$OUT/$name/adapter" --set output_dir="$OUT/$name/run" "$@" 2> "$OUT/$name/loraqa.log"
  echo $((SECONDS - t0)) > "$OUT/$name/loraqa.seconds"
  date > "$OUT/$name/loraqa.done"
}
official() { # predictions-dir [--na-prob] -> the official keys and the abstention, JSON
  local dir=$1 na=()
  [ "${2:-}" = --na-prob ] && na=(--na-prob "$dir/null_odds.json")
  $SQ scripts/ref/squad2_eval.py evaluate --data "$TEST" --pred "$dir/predictions.json" "${na[@]}"
}
thresh() { python3 -c 'import json, sys; print(repr(json.load(open(sys.argv[1]))[sys.argv[2]]))' "$@"; }
evaluate() { # name: both sides at threshold 0 and at their own threshold, into OUT/name/eval
  local name=$1 ev="$OUT/$1/eval"
  [ -s "$ev/done" ] && return 0
  mkdir -p "$ev"
  # HF + PEFT: the last epoch's logits, post-processed at 0 (as during training) and at its best_f1_thresh
  local last="$OUT/$name/hf/epoch-$EPOCHS"
  official "$last" --na-prob > "$ev/hf-t0.json"
  local t; t=$(thresh "$ev/hf-t0.json" best_f1_thresh)
  $SQ scripts/ref/squad2_eval.py postprocess --logits "$last/logits.json" --threshold "$t" --out "$ev/hf-saved"
  official "$ev/hf-saved" > "$ev/hf-saved.json"
  echo "$t" > "$ev/hf-saved.thresh"
  # loraqa: loraqa eval's predictions at 0 and at the adapter's saved threshold
  bin/loraqa eval --adapter "$OUT/$name/adapter" --data "$TEST" --device cpu --json \
    --null-score-diff-threshold 0 --output-dir "$ev/lq-t0" > "$ev/lq-t0.loraqa.json" 2> "$ev/lq-t0.log"
  official "$ev/lq-t0" --na-prob > "$ev/lq-t0.json"
  bin/loraqa eval --adapter "$OUT/$name/adapter" --data "$TEST" --device cpu --json \
    --output-dir "$ev/lq-saved" > "$ev/lq-saved.loraqa.json" 2> "$ev/lq-saved.log"
  official "$ev/lq-saved" > "$ev/lq-saved.json"
  thresh "$OUT/$name/adapter/loraqa_squad2.json" null_score_diff_threshold > "$ev/lq-saved.thresh"
  date > "$ev/done"
}
spans() { # name: both sides answering every question (threshold 1e9: the best span, never ""), into OUT/name/eval
  local name=$1 ev="$OUT/$1/eval"
  [ -s "$ev/span.done" ] && return 0
  $SQ scripts/ref/squad2_eval.py postprocess --logits "$OUT/$name/hf/epoch-$EPOCHS/logits.json" --threshold 1e9 --out "$ev/hf-span"
  official "$ev/hf-span" > "$ev/hf-span.json"
  bin/loraqa eval --adapter "$OUT/$name/adapter" --data "$TEST" --device cpu --json \
    --null-score-diff-threshold 1e9 --output-dir "$ev/lq-span" > "$ev/lq-span.loraqa.json" 2> "$ev/lq-span.log"
  official "$ev/lq-span" > "$ev/lq-span.json"
  date > "$ev/span.done"
}

if [ "$SEED_RUN" != 0 ]; then
  if [ "$PARALLEL" = 1 ]; then
    hf "seed-$SEED" "$SEED" --threads 1 & hfpid=$!
    lq "seed-$SEED" "$SEED" --set train.threads=1 & lqpid=$!
    wait "$hfpid"; wait "$lqpid"
  else
    hf "seed-$SEED" "$SEED"
    lq "seed-$SEED" "$SEED"
  fi
  evaluate "seed-$SEED"
  spans "seed-$SEED"
fi

nodropout() { # a copy of MiniLM with every dropout at 0 (the weights linked, not copied)
  nodrop=$(scripts/minilm.sh --no-dropout "$MINILM" "$OUT/minilm-nodropout")
}
if [ "$LOCKSTEP_STEPS" -gt 0 ]; then
  nodropout
  name=lockstep-$LOCKSTEP_STEPS
  MINILM=$nodrop hf "$name" "$SEED" --no-dropout --save-init "$OUT/$name/init" --max-steps "$LOCKSTEP_STEPS"
  MINILM=$nodrop lq "$name" "$SEED" --set lora.init_from="$OUT/$name/init" \
    --set train.max_steps="$LOCKSTEP_STEPS" --set train.eval_every_epoch=false
fi
if [ "$LOCKSTEP" = 1 ]; then # the whole recipe in lockstep (dropout off, the same initial adapter), evaluated as above
  nodropout
  MINILM=$nodrop hf lockstep "$SEED" --no-dropout --save-init "$OUT/lockstep/init"
  MINILM=$nodrop lq lockstep "$SEED" --set lora.init_from="$OUT/lockstep/init"
  evaluate lockstep
  spans lockstep
fi
if [ "$LOCKSTEP_DROPOUT" = 1 ]; then # the whole recipe with dropout on, the same initial adapter and masks
  name=lockstep-dropout init="$OUT/lockstep-dropout/init"
  if [ "$PARALLEL" = 1 ]; then # loraqa starts once PEFT has saved its initial adapter
    hf "$name" "$SEED" --reseed --save-init "$init" --threads 1 & hfpid=$!
    until [ -s "$init/adapter_model.safetensors" ] || [ -s "$OUT/$name/hf.done" ] || ! kill -0 "$hfpid" 2>/dev/null; do sleep 5; done
    sleep 5
    lq "$name" "$SEED" --set lora.init_from="$init" --set train.threads=1 & lqpid=$!
    wait "$hfpid"; wait "$lqpid"
  else
    hf "$name" "$SEED" --reseed --save-init "$init"
    lq "$name" "$SEED" --set lora.init_from="$init"
  fi
  evaluate "$name"
  spans "$name"
fi
[ "$SEED_RUN" = 0 ] || python3 scripts/quality_squad2_report.py "$OUT" "seed-$SEED"
[ "$LOCKSTEP" = 1 ] && python3 scripts/quality_squad2_report.py "$OUT" lockstep
[ "$LOCKSTEP_DROPOUT" = 1 ] && python3 scripts/quality_squad2_report.py "$OUT" lockstep-dropout
exit 0
