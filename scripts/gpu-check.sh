#!/usr/bin/env bash
# The whole GPU verification in one run of at most 8 minutes (GPU_CHECK_BUDGET=480 s),
# cheap checks first, each stage under its own timeout. Every stage writes its output
# to OUT/<stage>.out and .log as it runs, and OUT/summary.txt and OUT/summary.json are
# rewritten after each stage (stages not reached yet say "pending"), so that a run
# cut short still reports what it did.
#
#   scripts/gpu-check.sh OUT [--device cuda|cuda:N|cpu]      (default cuda)
#
# Stages:
#   doctor                 loraqa doctor --json (on CUDA: cuda_available must be true)
#   verify-FIXTURE-DTYPE   loraqa verify against the tiny DistilBERT fixture (tiny-distilbert-qa,
#                          made by `make reference`; in the GPU bundle) and testdata/tiny-bert-qa,
#                          in fp32, bf16 and fp16 (fp16: CUDA only, skipped on the CPU)
#   train-resume           3 epochs on examples/sample-qa.txt with the tiny fixture as base and
#                          train.deterministic: true, then a second run resumed from the first
#                          run's epoch-2 checkpoint: both adapter_model.safetensors must be
#                          equal byte for byte
#   bench-train-B-DTYPE    loraqa bench train (--shape distilbert-base --seq 384, 50 steps), batch
#                          8 and 32, fp32 and bf16; the JSON it prints is kept whole; device memory
#                          over the timed steps (device_mem_mb after the warmup steps) must stay
#                          flat: max - min <= GPU_CHECK_MEM_TOL_MB (8) or 1% of max
#   bench-infer-B-DTYPE    loraqa bench infer, batch 1 and 64 × 384, fp32 and bf16
#   hf-train-B-DTYPE       the same steps with HF transformers + PEFT (scripts/ref/bench_hf.py) on
#                          the machine's PyTorch, bf16 autocast (and fp32); skipped when no python
#                          with torch, transformers and peft is found
#
# The loraqa binary: $LORAQA_BIN, else the GPU bundle (.build/gpu-bundle/bin/loraqa, unpacked
# from .build/gpu-bundle.tar.xz when only that is there; scripts/gpu-bundle.sh), else
# bin/loraqa (with --device cpu the order of the last two is reversed). The generated test
# material: $LORAQA_TESTDATA, else the bundle's testdata/ when the bundle runs, else
# .build/testdata. The HF python: $GPU_CHECK_PYTHON, else the first of python3,
# $LORAQA_REF_PYTHON, .venv-ref/bin/python that imports torch, transformers and peft and sees
# CUDA (with --device cpu: $LORAQA_REF_PYTHON, .venv-ref/bin/python, python3; no CUDA needed).
#
# --device cpu is the dry run (CI: make gpu-check-cpu): small defaults (the small shape:
# dim 128, 2 layers; seq 128, batches 4 and 8, 10 steps) so that it takes a few minutes on 2 cores. Each default can be set:
#   GPU_CHECK_SHAPE, GPU_CHECK_SEQ, GPU_CHECK_TRAIN_BATCHES ("8 32"), GPU_CHECK_STEPS (50),
#   GPU_CHECK_WARMUP, GPU_CHECK_DTYPES ("fp32 bf16"), GPU_CHECK_INFER_BATCHES ("1 64"),
#   GPU_CHECK_INFER_STEPS, GPU_CHECK_HF_DTYPES ("bf16 fp32"), GPU_CHECK_EPOCHS (3),
#   GPU_CHECK_BUDGET (480), GPU_CHECK_MEM_TOL_MB (flatness tolerance, 8).
# Exit status 0 when no stage failed or timed out (skips, each with its reason, are allowed).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

usage() { echo "usage: scripts/gpu-check.sh OUT [--device cuda|cuda:N|cpu]" >&2; exit 2; }
[ $# -ge 1 ] || usage
OUT=$1; shift
DEVICE=cuda
while [ $# -gt 0 ]; do
  case $1 in
    --device) [ $# -ge 2 ] || usage; DEVICE=$2; shift 2 ;;
    --device=*) DEVICE=${1#--device=}; shift ;;
    *) usage ;;
  esac
done
case $DEVICE in cpu|cuda|cuda:[0-9]*) ;; *) echo "gpu-check: --device $DEVICE: want cuda, cuda:N or cpu" >&2; exit 2 ;; esac
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
START=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET:-480}

if [ "$DEVICE" = cpu ]; then
  SHAPE=${GPU_CHECK_SHAPE:-small} SEQ=${GPU_CHECK_SEQ:-128} TRAIN_BATCHES=${GPU_CHECK_TRAIN_BATCHES:-"4 8"}
  STEPS=${GPU_CHECK_STEPS:-10} WARMUP=${GPU_CHECK_WARMUP:-2} INFER_BATCHES=${GPU_CHECK_INFER_BATCHES:-"1 8"}
  INFER_STEPS=${GPU_CHECK_INFER_STEPS:-5} VERIFY_DTYPES="fp32 bf16 fp16"
else
  SHAPE=${GPU_CHECK_SHAPE:-distilbert-base} SEQ=${GPU_CHECK_SEQ:-384} TRAIN_BATCHES=${GPU_CHECK_TRAIN_BATCHES:-"8 32"}
  STEPS=${GPU_CHECK_STEPS:-50} WARMUP=${GPU_CHECK_WARMUP:-3} INFER_BATCHES=${GPU_CHECK_INFER_BATCHES:-"1 64"}
  INFER_STEPS=${GPU_CHECK_INFER_STEPS:-20} VERIFY_DTYPES="fp32 bf16 fp16"
fi
DTYPES=${GPU_CHECK_DTYPES:-"fp32 bf16"}
HF_DTYPES=${GPU_CHECK_HF_DTYPES:-"bf16 fp32"}
EPOCHS=${GPU_CHECK_EPOCHS:-3}
MEM_TOL=${GPU_CHECK_MEM_TOL_MB:-8}

log() { echo "gpu-check: $*" >&2; }

# --- the binary and the test material ---------------------------------------------
bundle_bin() {
  if [ ! -x .build/gpu-bundle/bin/loraqa ] && [ -f .build/gpu-bundle.tar.xz ]; then
    log "unpacking .build/gpu-bundle.tar.xz"
    tar -C .build -xJf .build/gpu-bundle.tar.xz 2>/dev/null ||
      python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' .build/gpu-bundle.tar.xz .build ||
      log "could not unpack .build/gpu-bundle.tar.xz"
  fi
  [ -x .build/gpu-bundle/bin/loraqa ] && echo "$ROOT/.build/gpu-bundle/bin/loraqa"
}
BIN=${LORAQA_BIN:-}
if [ -z "$BIN" ]; then
  if [ "$DEVICE" = cpu ]; then
    [ -x bin/loraqa ] && BIN=$ROOT/bin/loraqa || BIN=$(bundle_bin)
  else
    BIN=$(bundle_bin) || { [ -x bin/loraqa ] && BIN=$ROOT/bin/loraqa; }
  fi
fi
[ -n "$BIN" ] || { log "no loraqa binary: run make build or scripts/gpu-bundle.sh, or set LORAQA_BIN"; exit 2; }
TESTDATA=${LORAQA_TESTDATA:-}
if [ -z "$TESTDATA" ]; then
  TESTDATA=$ROOT/.build/testdata
  case $BIN in */gpu-bundle/bin/loraqa) TESTDATA=$(dirname "$(dirname "$BIN")")/testdata ;; esac
fi
TINY=$TESTDATA/tiny-distilbert-qa

HFPY=${GPU_CHECK_PYTHON:-}
hf_ok() { "$1" -c "import torch, transformers, peft$( [ "$DEVICE" = cpu ] || echo '; assert torch.cuda.is_available()')" >/dev/null 2>&1; }
if [ -z "$HFPY" ]; then
  if [ "$DEVICE" = cpu ]; then cands="${LORAQA_REF_PYTHON:-} .venv-ref/bin/python python3"; else cands="python3 ${LORAQA_REF_PYTHON:-} .venv-ref/bin/python"; fi
  for c in $cands; do
    if command -v "$c" >/dev/null 2>&1 && hf_ok "$c"; then HFPY=$c; break; fi
  done
fi

# --- stages and the summary ---------------------------------------------------------
NAMES=() STATUS=() SECS=() NOTES=()
plan() { NAMES+=("$1"); STATUS+=(pending); SECS+=(0); NOTES+=(""); }
plan doctor
for fx in tiny-distilbert-qa tiny-bert-qa; do for dt in $VERIFY_DTYPES; do plan "verify-$fx-$dt"; done; done
plan train-resume
for b in $TRAIN_BATCHES; do for dt in $DTYPES; do plan "bench-train-$b-$dt"; done; done
for b in $INFER_BATCHES; do for dt in $DTYPES; do plan "bench-infer-$b-$dt"; done; done
for b in $TRAIN_BATCHES; do for dt in $HF_DTYPES; do plan "hf-train-$b-$dt"; done; done

jesc() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | tr '\n\t' '  '; }
write_summary() {
  local i overall=pass n_pass=0 n_fail=0 n_skip=0 n_pend=0 elapsed=$(( $(date +%s) - START ))
  for i in "${!NAMES[@]}"; do
    case ${STATUS[$i]} in
      pass) n_pass=$((n_pass + 1)) ;;
      skip) n_skip=$((n_skip + 1)) ;;
      pending|running) n_pend=$((n_pend + 1)); [ "$overall" = fail ] || overall=incomplete ;;
      *) n_fail=$((n_fail + 1)); overall=fail ;;
    esac
  done
  {
    echo "gpu-check on $DEVICE, $(date -u +%Y-%m-%dT%H:%M:%SZ), ${elapsed}s of ${BUDGET}s; binary $BIN; test material $TESTDATA; HF python ${HFPY:-none}"
    for i in "${!NAMES[@]}"; do
      printf '%-31s %-8s %4ss  %s\n' "${NAMES[$i]}" "${STATUS[$i]}" "${SECS[$i]}" "${NOTES[$i]}"
    done
    echo "overall: $overall ($n_pass passed, $n_fail failed, $n_skip skipped, $n_pend not run)"
  } > "$OUT/summary.txt.tmp" && mv "$OUT/summary.txt.tmp" "$OUT/summary.txt"
  {
    printf '{"device":"%s","binary":"%s","testdata":"%s","hf_python":"%s","budget_s":%s,"elapsed_s":%s,"overall":"%s","stages":[' \
      "$DEVICE" "$(jesc "$BIN")" "$(jesc "$TESTDATA")" "$(jesc "${HFPY:-}")" "$BUDGET" "$elapsed" "$overall"
    for i in "${!NAMES[@]}"; do
      [ "$i" -gt 0 ] && printf ','
      printf '{"name":"%s","status":"%s","seconds":%s,"note":"%s","out":"%s.out","log":"%s.log"}' \
        "${NAMES[$i]}" "${STATUS[$i]}" "${SECS[$i]}" "$(jesc "${NOTES[$i]}")" "${NAMES[$i]}" "${NAMES[$i]}"
    done
    printf ']}\n'
  } > "$OUT/summary.json.tmp" && mv "$OUT/summary.json.tmp" "$OUT/summary.json"
  OVERALL=$overall
}
idx() { local i; for i in "${!NAMES[@]}"; do [ "${NAMES[$i]}" = "$1" ] && { echo "$i"; return; }; done; echo -1; }
CURRENT=-1
on_signal() {
  if [ "$CURRENT" -ge 0 ]; then STATUS[$CURRENT]=killed; NOTES[$CURRENT]="the check was stopped during this stage"; fi
  write_summary; cat "$OUT/summary.txt" >&2; exit 130
}
trap on_signal INT TERM HUP

# stage NAME TIMEOUT_S FUNCTION ARGS...: runs FUNCTION in its own bash under timeout,
# stdout to OUT/NAME.out, stderr to OUT/NAME.log. The function may write a one-line
# note to $NOTE; it exits 0 (pass), 3 (skip; the note says why) or anything else (fail).
stage() {
  local name=$1 limit=$2 i rc t0 left
  shift 2
  i=$(idx "$name")
  left=$(( BUDGET - ($(date +%s) - START) - 5 ))
  if [ "$left" -lt 10 ]; then
    STATUS[$i]=skip NOTES[$i]="no time left in the ${BUDGET}s budget"; write_summary; return
  fi
  [ "$limit" -le "$left" ] || limit=$left
  STATUS[$i]=running CURRENT=$i; write_summary
  log "$name (timeout ${limit}s)"
  export NOTE="$OUT/$name.note"
  rm -f "$NOTE"
  t0=$(date +%s)
  timeout -k 10 "$limit" bash -c '"$@"' _ "$@" > "$OUT/$name.out" 2> "$OUT/$name.log"
  rc=$?
  SECS[$i]=$(( $(date +%s) - t0 ))
  NOTES[$i]=$(head -c 400 "$NOTE" 2>/dev/null | tr '\n' ' ')
  case $rc in
    0) STATUS[$i]=pass ;;
    3) STATUS[$i]=skip ;;
    124|137) STATUS[$i]=timeout NOTES[$i]="over its ${limit}s timeout; ${NOTES[$i]}" ;;
    *) STATUS[$i]=fail
       [ -n "${NOTES[$i]}" ] || NOTES[$i]="exit $rc: $(tail -n 1 "$OUT/$name.log" | head -c 300)" ;;
  esac
  CURRENT=-1
  write_summary
  log "$name: ${STATUS[$i]} (${SECS[$i]}s) ${NOTES[$i]}"
}

export BIN DEVICE OUT ROOT TINY SHAPE SEQ STEPS WARMUP INFER_STEPS EPOCHS MEM_TOL HFPY

# json_num KEY FILE: the number KEY has in the (one-line) JSON of FILE.
json_num() { sed -n "s/.*\"$1\": *\(-\{0,1\}[0-9.eE+-]*\).*/\1/p" "$2" | head -1; }
note() { echo "$*" >> "$NOTE"; }
export -f json_num note

st_doctor() {
  "$BIN" doctor --json || return 1
  local f=$NAME_OUT.out
  note "libtorch $(sed -n 's/.*"libtorch": *"\([^"]*\)".*/\1/p' "$f" | head -1) ($(sed -n 's/.*"flavour": *"\([^"]*\)".*/\1/p' "$f" | head -1)), cuda_available $(sed -n 's/.*"cuda_available": *\([a-z]*\).*/\1/p' "$f" | head -1), devices $(tr -d ' \n' < "$f" | sed -n 's/.*"devices":\[\([^]]*\)\].*/\1/p')"
  if [ "$DEVICE" != cpu ]; then
    grep -q '"cuda_available": *true' "$f" || { note "but --device $DEVICE needs CUDA"; return 1; }
  fi
}

st_verify() { # FIXTURE_DIR DTYPE
  if [ "$2" = fp16 ] && [ "$DEVICE" = cpu ]; then note "fp16 is CUDA only: not run on the CPU"; return 3; fi
  [ -d "$1" ] || { note "no fixture $1 (make reference; or the GPU bundle's testdata)"; return 1; }
  "$BIN" verify --device "$DEVICE" --dtype "$2" --force --json "$1"
  local rc=$?
  local f=$NAME_OUT.out
  note "$(awk '/"max_abs_diff"/ { n++; v = $2 + 0; if (v > m) m = v } /^      "pass": false/ { bad++ }
    END { printf "%d checks, %d failed, largest max|Δ| %.2e", n, bad, m }' "$f")"
  return $rc
}

st_train_resume() {
  local dir=$OUT/train cfg ck a b c e
  rm -rf "$dir"; mkdir -p "$dir"
  cfg=$dir/config.yaml
  [ -d "$TINY/base" ] || { note "no fixture $TINY/base"; return 1; }
  cat > "$cfg" <<EOF
# written by scripts/gpu-check.sh: the tiny fixture on the sample data, deterministic
base_qa_model: $TINY/base
fine_tuned_adapter_path: $dir/full/adapter
output_dir: $dir/full/run
device: $DEVICE
seed: 42
data: {input: $ROOT/examples/sample-qa.txt, max_seq_length: 128, doc_stride: 32, negative_fraction: 0.02, test_fraction: 0.1}
lora: {r: 16, alpha: 32, dropout: 0.05, target_modules: [q_lin, v_lin], bias: none}
train: {learning_rate: 1e-3, batch_size: 8, epochs: $EPOCHS, save_total_limit: 0, load_best_model_at_end: false, deterministic: true}
EOF
  export CUBLAS_WORKSPACE_CONFIG=${CUBLAS_WORKSPACE_CONFIG:-:4096:8}
  echo "== full run: $EPOCHS epochs" >&2
  if ! "$BIN" train --config "$cfg" 2> "$dir/full.log"; then
    cat "$dir/full.log" >&2
    if grep -q 'train.deterministic' "$dir/full.log"; then
      note "this loraqa rejects train.deterministic; ran without it."
      sed -i 's/, deterministic: true//' "$cfg"
      "$BIN" train --config "$cfg" 2> "$dir/full.log" || { cat "$dir/full.log" >&2; note "full run failed"; return 1; }
    else
      note "full run failed"; return 1
    fi
  fi
  cat "$dir/full.log" >&2
  ck=""
  for c in "$dir"/full/run/checkpoint-*; do
    # the state's own epoch: its first "epoch" key (log_history has more)
    e=$(grep -m1 -o '"epoch": *[0-9.]*' "$c/trainer_state.json" 2>/dev/null | sed 's/.*: *//')
    [ "$e" = 2 ] && ck=$c
  done
  [ -n "$ck" ] || { note "no epoch-2 checkpoint in $dir/full/run"; return 1; }
  echo "== resumed run from $ck" >&2
  "$BIN" train --config "$cfg" --set output_dir="$dir/resumed/run" --set fine_tuned_adapter_path="$dir/resumed/adapter" \
    --resume "$ck" 2> "$dir/resumed.log" || { cat "$dir/resumed.log" >&2; note "resumed run failed"; return 1; }
  cat "$dir/resumed.log" >&2
  # The final adapters (the last epoch's weights: load_best_model_at_end is off), and the
  # last checkpoints' adapters when both runs wrote one.
  local last bad=0 msg="resumed from $(basename "$ck") (epoch 2):"
  last=$(cd "$dir/full/run" && ls -d checkpoint-* 2>/dev/null | sort -t- -k2 -n | tail -1)
  for pair in "adapter/adapter_model.safetensors" "run/$(basename "$last")/adapter_model.safetensors"; do
    a=$dir/full/$pair b=$dir/resumed/$pair
    if [ ! -f "$b" ]; then
      [ "$pair" = adapter/adapter_model.safetensors ] && { note "$msg no $b"; return 1; }
      msg="$msg (no $pair in the resumed run);"; continue
    fi
    sha256sum "$a" "$b"
    if cmp -s "$a" "$b"; then
      msg="$msg $pair identical ($(sha256sum < "$a" | cut -c1-12));"
    else
      msg="$msg $pair DIFFERS ($(cmp "$a" "$b" 2>&1 | head -1));"; bad=1
    fi
  done
  note "$msg"
  return $bad
}

st_bench() { # train|infer BATCH DTYPE
  local mode=$1 b=$2 dt=$3 steps=$STEPS
  [ "$mode" = infer ] && steps=$INFER_STEPS
  "$BIN" bench "$mode" --shape "$SHAPE" --batch "$b" --seq "$SEQ" --steps "$steps" --warmup "$WARMUP" --device "$DEVICE" --dtype "$dt" --force || return 1
  local f=$NAME_OUT.out msg k v
  msg="$(json_num step_ms_median "$f" | awk '{printf "%.1f ms/step", $1}'), $(json_num examples_per_s "$f" | awk '{printf "%.1f ex/s", $1}')"
  for k in calls_per_step optimizer_calls_per_step syncs_per_step live_tensor_growth; do
    v=$(json_num "$k" "$f"); [ -n "$v" ] && msg="$msg, $k $v"
  done
  local mem
  mem=$(sed -n 's/.*"device_mem_mb":\[\([^]]*\)\].*/\1/p' "$f" | tr ',' '\n' |
    awk -v tol="$MEM_TOL" -v skip="$WARMUP" 'NF && ++i > skip { if (n == 0 || $1 < lo) lo = $1; if (n == 0 || $1 > hi) hi = $1; n++ }
      END { if (n) { t = tol; if (hi * 0.01 > t) t = hi * 0.01; printf "%s %.0f %.0f %d", (hi - lo <= t ? "flat" : "GROWS"), lo, hi, n } }')
  if [ -n "$mem" ]; then
    set -- $mem
    msg="$msg, device memory $2-$3 MiB over $4 steps ($1)"
    note "$msg"
    [ "$1" = flat ] || return 1
  else
    note "$msg"
  fi
}

st_hf() { # BATCH DTYPE
  [ -n "$HFPY" ] || { note "no python with torch, transformers and peft$( [ "$DEVICE" = cpu ] || echo ' and CUDA') (set GPU_CHECK_PYTHON)"; return 3; }
  local hfshape=$SHAPE
  "$HFPY" "$ROOT/scripts/ref/bench_hf.py" --mode train --shape "$hfshape" --device "$DEVICE" --dtype "$2" --batch "$1" --seq "$SEQ" \
    --steps "$STEPS" --warmup "$WARMUP" || return 1
  local f=$NAME_OUT.out msg
  msg="$(json_num median_step_s "$f" | awk '{printf "%.1f ms/step", $1 * 1000}'), $(json_num examples_per_s "$f" | awk '{printf "%.1f ex/s", $1}')"
  local peak; peak=$(json_num device_peak_mem_mb "$f")
  [ -n "$peak" ] && msg="$msg, peak device memory $(printf %.0f "$peak") MiB"
  note "$msg; torch $(sed -n 's/.*"torch": *"\([^"]*\)".*/\1/p' "$f"), transformers $(sed -n 's/.*"transformers": *"\([^"]*\)".*/\1/p' "$f")"
}
export -f st_doctor st_verify st_train_resume st_bench st_hf


write_summary
log "binary $BIN, test material $TESTDATA, HF python ${HFPY:-none}; summary in $OUT/summary.txt"
NAME_OUT=$OUT/doctor; export NAME_OUT
stage doctor 60 st_doctor
for fx in tiny-distilbert-qa tiny-bert-qa; do
  dir=$TINY; [ "$fx" = tiny-bert-qa ] && dir=$ROOT/testdata/tiny-bert-qa
  for dt in $VERIFY_DTYPES; do
    NAME_OUT=$OUT/verify-$fx-$dt; export NAME_OUT
    stage "verify-$fx-$dt" 90 st_verify "$dir" "$dt"
  done
done
NAME_OUT=$OUT/train-resume; export NAME_OUT
stage train-resume 240 st_train_resume
for b in $TRAIN_BATCHES; do for dt in $DTYPES; do
  NAME_OUT=$OUT/bench-train-$b-$dt; export NAME_OUT
  stage "bench-train-$b-$dt" 120 st_bench train "$b" "$dt"
done; done
for b in $INFER_BATCHES; do for dt in $DTYPES; do
  NAME_OUT=$OUT/bench-infer-$b-$dt; export NAME_OUT
  stage "bench-infer-$b-$dt" 60 st_bench infer "$b" "$dt"
done; done
for b in $TRAIN_BATCHES; do for dt in $HF_DTYPES; do
  NAME_OUT=$OUT/hf-train-$b-$dt; export NAME_OUT
  stage "hf-train-$b-$dt" 120 st_hf "$b" "$dt"
done; done

write_summary
cat "$OUT/summary.txt"
[ "$OVERALL" = pass ]
