#!/usr/bin/env bash
# loraqa against the faster of two Python references, side by side on this machine,
# in one go (issue #16). Each run is its own process, one after the other, all with
# the same thread count:
#   loraqa     bin/loraqa bench train|infer (built here unless BUILD=0)
#   ref-2.1.2  scripts/ref/bench_hf.py in .venv-bench-21: HF transformers 4.30.2 + PEFT 0.6.2
#              on PyPI's PyTorch 2.1.2 (scripts/setup-bench-ref.sh)
#   ref-2.15   scripts/ref/bench_hf.py in .venv-ref: the pins of scripts/ref/requirements.txt
#              (torch 2.15, transformers 5.24, PEFT 0.21; make reference)
# Runs (RUNS, names separated by spaces; default: all of them; REAL=0 leaves out the real-data one):
#   train-8x128 train-8x384              fp32 training throughput (examples/s), goal >= 1.2x
#   infer-1x384                          fp32 eval forward latency, batch 1, goal <= 0.8x
#   train-bf16-8x128 train-bf16-8x384    loraqa --dtype bf16 (bf16 frozen base) vs the reference
#   infer-bf16-1x384                     under torch.autocast("cpu", bfloat16); >= 1.2x, <= 0.8x
#   real-epoch                           one epoch of the MiniLM fine-tune of docs/quality.md
#                                        (scripts/quality.sh's seed-42 recipe), wall time of the
#                                        whole one-epoch run (load, tokenize, train, evaluate) on
#                                        each side, <= 0.8x; downloads MiniLM once (scripts/minilm.sh).
#                                        REAL_MAX_STEPS>0 only tries the plumbing: loraqa then still
#                                        evaluates, hf_train_qa.py does not, so its row is no figure
# and the peak RSS of every run, <= 0.8x. Ratios are loraqa / the best reference on each
# metric (the higher throughput, the lower latency, the lower RSS).
# Writes OUT/<run>-<impl>.json (+ .log, stderr), OUT/table.md, and prints the table.
#
# Usage: scripts/bench_compare.sh [OUT]   (default out/bench-compare)
#   env: THREADS=2 STEPS=6 WARMUP=2 (training steps) INFER_STEPS=10 INFER_WARMUP=2
#        RUNS="..." REAL=1|0  IMPLS="loraqa ref-2.1.2 ref-2.15"
#        SETUP=1 (make a missing reference venv; 0: fail instead)  BUILD=1 (go build bin/loraqa)
#        REAL_EPOCHS=1 REAL_MAX_STEPS=0 (>0: stop after N steps, to try the pipeline)
#        MINILM=DIR (an all-MiniLM-L6-v2 HF dir)  DATA=../shared/data/tatqa-dev-textspan.squad.json
#        LORAQA_REF_PYTHON, LORAQA_REF21_PYTHON (the two interpreters)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/bench-compare}
THREADS=${THREADS:-2}; STEPS=${STEPS:-6}; WARMUP=${WARMUP:-2}
INFER_STEPS=${INFER_STEPS:-10}; INFER_WARMUP=${INFER_WARMUP:-2}
RUNS=${RUNS:-train-8x128 train-8x384 infer-1x384 train-bf16-8x128 train-bf16-8x384 infer-bf16-1x384}
[ "${REAL:-1}" = 1 ] && [[ " $RUNS " != *" real-epoch "* ]] && RUNS="$RUNS real-epoch"
IMPLS=${IMPLS:-loraqa ref-2.1.2 ref-2.15}
REAL_EPOCHS=${REAL_EPOCHS:-1}; REAL_MAX_STEPS=${REAL_MAX_STEPS:-0}
DATA=${DATA:-../shared/data/tatqa-dev-textspan.squad.json}
PY_NEW=${LORAQA_REF_PYTHON:-.venv-ref/bin/python}
PY_OLD=${LORAQA_REF21_PYTHON:-.venv-bench-21/bin/python}
BENCH=scripts/ref/bench_hf.py
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

die() { echo "bench_compare: error: $*" >&2; exit 1; }
log() { echo "bench_compare: $*" >&2; }

# ---------------------------------------------------------------- what the runs need
need_venv() { # python, setup command, what
  local py=$1 setup=$2 what=$3
  [ -x "$py" ] && return 0
  [ "${SETUP:-1}" = 1 ] || die "$what: no $py (make it with $setup, or point ${4} at one)"
  log "$what: $py missing, running $setup"
  $setup || die "$what: $setup failed"
  [ -x "$py" ] || die "$what: still no $py after $setup"
}
for impl in $IMPLS; do
  case $impl in
    loraqa)
      if [ "${BUILD:-1}" = 1 ]; then
        go build -o bin/loraqa ./cmd/loraqa || die "go build failed (run make build first: it sets up LibTorch and go.work)"
      fi
      [ -x bin/loraqa ] || die "no bin/loraqa (make build)" ;;
    ref-2.1.2) need_venv "$PY_OLD" scripts/setup-bench-ref.sh "reference torch 2.1.2" LORAQA_REF21_PYTHON ;;
    ref-2.15) need_venv "$PY_NEW" scripts/setup-reference.sh "reference torch 2.15" LORAQA_REF_PYTHON ;;
    *) die "IMPLS: unknown $impl (loraqa, ref-2.1.2, ref-2.15)" ;;
  esac
done
mkdir -p "$OUT"

# ---------------------------------------------------------------- the runs
# one(run, impl, command...): stdout's last line (one JSON object) -> OUT/run-impl.json
one() {
  local run=$1 impl=$2; shift 2
  local base="$OUT/$run-$impl"
  log "$run: $impl"
  rm -f "$base.json"
  if "$@" 2> "$base.log" | tail -1 > "$base.json.tmp" && python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$base.json.tmp" 2>/dev/null; then
    mv "$base.json.tmp" "$base.json"
  else
    rm -f "$base.json.tmp"
    log "$run: $impl FAILED (see $base.log):"; tail -3 "$base.log" >&2 || true
  fi
}
synthetic() { # run mode dtype batch seq
  local run=$1 mode=$2 dtype=$3 batch=$4 seq=$5 steps=$STEPS warmup=$WARMUP impl
  if [ "$mode" = infer ]; then steps=$INFER_STEPS; warmup=$INFER_WARMUP; fi
  local common=(--dtype "$dtype" --batch "$batch" --seq "$seq" --steps "$steps" --warmup "$warmup" --threads "$THREADS")
  for impl in $IMPLS; do
    case $impl in
      loraqa) one "$run" "$impl" bin/loraqa bench "$mode" --shape distilbert-base --force "${common[@]}" ;;
      ref-2.1.2) one "$run" "$impl" "$PY_OLD" "$BENCH" --mode "$mode" "${common[@]}" ;;
      ref-2.15) one "$run" "$impl" "$PY_NEW" "$BENCH" --mode "$mode" "${common[@]}" ;;
    esac
  done
}

# timed OUT_BASE command...: runs it, its stdout to OUT_BASE.stdout, stderr to OUT_BASE.log;
# prints one JSON object: wall seconds and the child's peak RSS (ru_maxrss)
timed() {
  python3 - "$@" <<'PY'
import json, resource, subprocess, sys, time
base, cmd = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
with open(base + ".stdout", "w") as o, open(base + ".log", "w") as e:
    rc = subprocess.run(cmd, stdout=o, stderr=e).returncode
wall = time.perf_counter() - t0
if rc != 0:
    sys.exit(f"exit status {rc}")
print(json.dumps({"epoch_s": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0,
                  "cmd": cmd}))
PY
}
real_epoch() {
  local d="$OUT/real" minilm impl lq hf
  mkdir -p "$d"
  [ -f "$DATA" ] || { log "real-epoch: no $DATA (DATA=...): skipped"; return 0; }
  minilm=${MINILM:-$(scripts/minilm.sh "$d/minilm")} || { log "real-epoch: no MiniLM (scripts/minilm.sh failed; MINILM=DIR): skipped"; return 0; }
  [ -f "$d/split/train.jsonl" ] || bin/loraqa prepare --input "$DATA" --out "$d/split" >/dev/null
  lq=(--set base_qa_model="$minilm" --set seed=42 --set device=cpu --set train.threads="$THREADS"
      --set train.learning_rate=1e-3 --set train.epochs="$REAL_EPOCHS" --set train.batch_size=8
      --set train.load_best_model_at_end=false --set lora.target_modules=[query,value]
      --set data.train_file="$d/split/train.jsonl" --set data.test_file="$d/split/test.jsonl")
  hf=(--model "$minilm" --train "$d/split/train.jsonl" --test "$d/split/test.jsonl" --epochs "$REAL_EPOCHS"
      --lr 1e-3 --seed 42 --threads "$THREADS")
  if [ "$REAL_MAX_STEPS" -gt 0 ]; then lq+=(--set train.max_steps="$REAL_MAX_STEPS"); hf+=(--max-steps "$REAL_MAX_STEPS"); fi
  for impl in $IMPLS; do
    case $impl in
      loraqa) rm -rf "$d/loraqa-run"
        one real-epoch "$impl" timed "$d/$impl" bin/loraqa train "${lq[@]}" --set fine_tuned_adapter_path="$d/loraqa-run/adapter" --set output_dir="$d/loraqa-run" ;;
      ref-2.1.2) one real-epoch "$impl" timed "$d/$impl" "$PY_OLD" scripts/ref/hf_train_qa.py "${hf[@]}" ;;
      ref-2.15) one real-epoch "$impl" timed "$d/$impl" "$PY_NEW" scripts/ref/hf_train_qa.py "${hf[@]}" ;;
    esac
  done
}

for run in $RUNS; do
  case $run in
    train-8x128) synthetic "$run" train fp32 8 128 ;;
    train-8x384) synthetic "$run" train fp32 8 384 ;;
    infer-1x384) synthetic "$run" infer fp32 1 384 ;;
    train-bf16-8x128) synthetic "$run" train bf16 8 128 ;;
    train-bf16-8x384) synthetic "$run" train bf16 8 384 ;;
    infer-bf16-1x384) synthetic "$run" infer bf16 1 384 ;;
    real-epoch) real_epoch ;;
    *) die "RUNS: unknown run $run" ;;
  esac
done

# ---------------------------------------------------------------- the table
python3 - "$OUT" "$RUNS" "$IMPLS" "threads $THREADS; train: $STEPS steps after $WARMUP; infer: $INFER_STEPS forwards after $INFER_WARMUP" <<'PY' | tee "$OUT/table.md"
import json, os, sys

out, runs, impls, settings = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4]
REFS = [i for i in ("ref-2.1.2", "ref-2.15") if i in impls]


def load(run, impl):
    try:
        with open(os.path.join(out, f"{run}-{impl}.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def median_s(d):  # loraqa: step_ms_median; the references: median_step_s
    if d is None:
        return None
    return d["step_ms_median"] / 1000 if "step_ms_median" in d else d.get("median_step_s")


def metrics(run, d):
    """{metric: value} of one run's result (None where the run failed)."""
    if d is None:
        return {}
    m = {}
    if run == "real-epoch":
        m["epoch"] = d.get("epoch_s")
    elif run.startswith("infer"):
        s = median_s(d)
        m["latency"] = None if s is None else s * 1000
    else:
        s = median_s(d)
        m["throughput"] = None if not s else d["batch"] / s
    m["peak RSS"] = d.get("peak_rss_mb")
    return m


KIND = {  # metric: (unit, higher is better, goal)
    "throughput": ("ex/s", True, 1.2), "latency": ("ms", False, 0.8),
    "epoch": ("s", False, 0.8), "peak RSS": ("MB", False, 0.8),
}


def cpu():
    model, flags = "?", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                k = k.strip()
                if k == "model name" and model == "?":
                    model = v.strip()
                elif k == "flags" and not flags:
                    flags = set(v.split())
    except OSError:
        pass
    want = ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8"]
    return model, os.cpu_count(), " ".join(f"{w}{'✓' if w in flags else '✗'}" for w in want)


def fmt(v, unit):
    if v is None:
        return "–"
    return f"{v:.2f} {unit}" if unit == "ex/s" else f"{v:.0f} {unit}"


model, ncpu, flags = cpu()
print(f"CPU: {model}, {ncpu} CPUs; {flags}")
print(f"Settings: {settings}")
for impl in impls:  # versions, from the first result of each side
    for run in runs:
        d = load(run, impl)
        if d is None or run == "real-epoch":
            continue
        if impl == "loraqa":
            print(f"- loraqa: LibTorch {d.get('libtorch')} ({d.get('libtorch_source')})")
        else:
            b = d.get("torch_build", {})
            print(f"- {impl}: torch {d.get('torch')}, transformers {d.get('transformers')}, peft {d.get('peft')}, "
                  f"{d.get('attention')} attention; BLAS {b.get('blas_info')}, oneDNN {b.get('onednn')}, "
                  f"CPU capability {b.get('cpu_capability')}")
        break
print()
cols = ["run", "metric"] + impls + ["best ref", "loraqa / best", "goal", "met"]
print("| " + " | ".join(cols) + " |")
print("|" + "---|" * len(cols))
for run in runs:
    res = {i: metrics(run, load(run, i)) for i in impls}
    main = "epoch" if run == "real-epoch" else "latency" if run.startswith("infer") else "throughput"
    for k in (main, "peak RSS"):
        unit, higher, goal = KIND[k]
        vals = {i: res[i].get(k) for i in impls}
        refs = [(vals[i], i) for i in REFS if vals[i] is not None]
        best = (max if higher else min)(refs) if refs else None
        ratio = vals.get("loraqa") / best[0] if best and vals.get("loraqa") is not None and best[0] else None
        met = "–" if ratio is None else ("yes" if (ratio >= goal if higher else ratio <= goal) else "**no**")
        row = [run, k] + [fmt(vals[i], unit) for i in impls]
        row += [best[1] if best else "–", "–" if ratio is None else f"{ratio:.2f}x",
                f"{'≥' if higher else '≤'} {goal}x", met]
        print("| " + " | ".join(row) + " |")
PY
