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
# The ONNX Runtime anchor (in the default RUNS unless ORT=0; a table of their own): inference of the merged
# model (loraqa bench infer --merged; the same shape, random weights) in loraqa --dtype fp32 and bf16,
# and int8 with the adapter over the int8 base (the int8 that holds #29's accuracy bound; quantizing
# the merged weights does not; ORT_INT8_MERGED=1 merges it too)
# against scripts/ref/bench_ort.py in .venv-ref: ONNX Runtime plain (ORT_ENABLE_ALL),
# fused (onnxruntime.transformers.optimizer), int8 (quantize_dynamic, per-channel QInt8) and the
# same model's PyTorch forward ("hf"), all with THREADS threads; the ratio is the best loraqa
# dtype / the best ORT variant (and fp32 / fp32, int8 / int8). Runs:
#   ort-1x384                            latency, batch 1 x 384 tokens
#   ort-query                            latency of one real short query: a filing of
#                                        examples/sample-filings.json (QUERY_TITLE), its paragraphs
#                                        as the passage and its first question, tokenized with
#                                        TOKENIZER (batch 1 x its token count; loraqa: --seq that count)
#   ort-32x384                           throughput (and latency), batch 32 x 384
# loraqa's bf16 runs without --force: on a CPU that only emulates bf16 it fails and shows "–".
# Writes OUT/<run>-<impl>.json (+ .log, stderr), OUT/table.md, and prints the table.
#
# Usage: scripts/bench_compare.sh [OUT]   (default out/bench-compare)
#   env: THREADS=2 STEPS=6 WARMUP=2 (training steps) INFER_STEPS=10 INFER_WARMUP=2
#        RUNS="..." REAL=1|0  IMPLS="loraqa ref-2.1.2 ref-2.15 ort" (ort: the ort-* runs' Python side)
#        SETUP=1 (make a missing reference venv; 0: fail instead)  BUILD=1 (go build bin/loraqa)
#        REAL_EPOCHS=1 REAL_MAX_STEPS=0 (>0: stop after N steps, to try the pipeline)
#        MINILM=DIR (an all-MiniLM-L6-v2 HF dir)  DATA=../shared/data/tatqa-dev-textspan.squad.json
#        LORAQA_REF_PYTHON, LORAQA_REF21_PYTHON (the two interpreters)
#        ORT=1|0  ORT_SHAPE=distilbert-base (small: a quick try; tiny has only 128 positions)
#        ORT_DTYPES="fp32 bf16 int8" (loraqa's)
#        ORT_VARIANTS="plain fused int8 torch"  ORT_CACHE=OUT/ort-cache (the exported models)
#        TOKENIZER=.build/testdata/tokenizer (a WordPiece vocab.txt; make reference writes it)  QUERY_TITLE="Arbor Lumen Holdings"
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/bench-compare}
THREADS=${THREADS:-2}; STEPS=${STEPS:-6}; WARMUP=${WARMUP:-2}
INFER_STEPS=${INFER_STEPS:-10}; INFER_WARMUP=${INFER_WARMUP:-2}
DEFAULT_RUNS=$([ -z "${RUNS:-}" ] && echo 1 || echo 0)
RUNS=${RUNS:-train-8x128 train-8x384 infer-1x384 train-bf16-8x128 train-bf16-8x384 infer-bf16-1x384}
[ "${REAL:-1}" = 1 ] && [[ " $RUNS " != *" real-epoch "* ]] && RUNS="$RUNS real-epoch"
# the ONNX Runtime runs join the default set only (RUNS=... names them itself)
[ "${ORT:-1}" = 1 ] && [ "$DEFAULT_RUNS" = 1 ] && RUNS="$RUNS ort-1x384 ort-query ort-32x384"
IMPLS=${IMPLS:-loraqa ref-2.1.2 ref-2.15 ort}
REAL_EPOCHS=${REAL_EPOCHS:-1}; REAL_MAX_STEPS=${REAL_MAX_STEPS:-0}
DATA=${DATA:-../shared/data/tatqa-dev-textspan.squad.json}
PY_NEW=${LORAQA_REF_PYTHON:-.venv-ref/bin/python}
PY_OLD=${LORAQA_REF21_PYTHON:-.venv-bench-21/bin/python}
BENCH=scripts/ref/bench_hf.py
ORT_BENCH=scripts/ref/bench_ort.py
ORT_SHAPE=${ORT_SHAPE:-distilbert-base}
ORT_DTYPES=${ORT_DTYPES:-fp32 bf16 int8}
ORT_VARIANTS=${ORT_VARIANTS:-plain fused int8 torch}
ORT_CACHE=${ORT_CACHE:-$OUT/ort-cache}
TOKENIZER=${TOKENIZER:-${LORAQA_TESTDATA:-.build/testdata}/tokenizer}  # bert-base-uncased's vocabulary (make reference)
QUERY_TITLE=${QUERY_TITLE:-Arbor Lumen Holdings}
QUERY_FILE=examples/sample-filings.json
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false ORT_INT8_MERGED=${ORT_INT8_MERGED:-0}
case $ORT_SHAPE in tiny|small|distilbert-base) ;; *) echo "bench_compare: error: ORT_SHAPE=$ORT_SHAPE: tiny, small or distilbert-base" >&2; exit 1 ;; esac

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
    ort) need_venv "$PY_NEW" scripts/setup-reference.sh "ONNX Runtime (the reference venv)" LORAQA_REF_PYTHON
      "$PY_NEW" -c 'import onnxruntime, onnx' 2>/dev/null ||
        die "ort: $PY_NEW has no onnxruntime/onnx (scripts/setup-reference.sh installs scripts/ref/requirements.txt)" ;;
    *) die "IMPLS: unknown $impl (loraqa, ref-2.1.2, ref-2.15, ort)" ;;
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
    ort-1x384|ort-query|ort-32x384) ;;  # below, after the others
    *) die "RUNS: unknown run $run" ;;
  esac
done

# ---------------------------------------------------------------- the ONNX Runtime anchor
has_impl() { [[ " $IMPLS " == *" $1 "* ]]; }
# ort_side(run, batch, seq, query...): loraqa bench infer --merged in each of ORT_DTYPES, then
# bench_ort.py in each of ORT_VARIANTS (query: --question Q --context C --tokenizer DIR, or nothing)
ort_side() {
  local run=$1 batch=$2 seq=$3; shift 3
  local common=(--batch "$batch" --seq "$seq" --steps "$INFER_STEPS" --warmup "$INFER_WARMUP" --threads "$THREADS")
  local dt v
  if has_impl loraqa; then
    for dt in $ORT_DTYPES; do
      local merged=--merged
      [ "$dt" = int8 ] && [ "${ORT_INT8_MERGED:-0}" != 1 ] && merged=--merged=false
      one "$run" "loraqa-$dt" bin/loraqa bench infer "$merged" --shape "$ORT_SHAPE" --dtype "$dt" "${common[@]}"
    done
  fi
  if has_impl ort; then
    for v in $ORT_VARIANTS; do
      one "$run" "ort-$v" "$PY_NEW" "$ORT_BENCH" --shape "$ORT_SHAPE" --variant "$v" --cache "$ORT_CACHE" "${common[@]}" "$@"
    done
  fi
}
# the real query: line 1 the question, line 2 the passage (one filing's paragraphs, joined)
query_text() {
  python3 - "$QUERY_FILE" "$QUERY_TITLE" <<'PY'
import json, sys
path, title = sys.argv[1], sys.argv[2]
for art in json.load(open(path))["data"]:
    if art.get("title") == title:
        ps = art["paragraphs"]
        print(" ".join(ps[0]["qas"][0]["question"].split()))
        print(" ".join(" ".join(p["context"].split()) for p in ps))
        sys.exit(0)
sys.exit(f"no filing titled {title!r} in {path}")
PY
}
ort_query() {
  local q c seq
  [ -f "$QUERY_FILE" ] || die "ort-query: no $QUERY_FILE"
  [ -f "$TOKENIZER/vocab.txt" ] || { log "ort-query: no $TOKENIZER/vocab.txt (TOKENIZER=DIR): skipped"; return 0; }
  [ -x "$PY_NEW" ] || { log "ort-query: no $PY_NEW to tokenize the query with: skipped"; return 0; }
  { IFS= read -r q && IFS= read -r c; } < <(query_text) || die "ort-query: QUERY_TITLE=$QUERY_TITLE: no such filing in $QUERY_FILE"
  seq=$("$PY_NEW" "$ORT_BENCH" --shape "$ORT_SHAPE" --tokenizer "$TOKENIZER" --question "$q" --context "$c" --count-tokens |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["seq"])') || die "ort-query: counting the query's tokens failed"
  log "ort-query: \"$q\" + $QUERY_TITLE's passage = $seq tokens"
  python3 -c 'import json,sys; json.dump({"title": sys.argv[1], "question": sys.argv[2], "context": sys.argv[3], "seq": int(sys.argv[4])}, open(sys.argv[5], "w"))' \
    "$QUERY_TITLE" "$q" "$c" "$seq" "$OUT/ort-query.json"
  ort_side ort-query 1 "$seq" --question "$q" --context "$c" --tokenizer "$TOKENIZER"
}

for run in $RUNS; do
  case $run in
    ort-1x384) ort_side "$run" 1 384 ;;
    ort-query) ort_query ;;
    ort-32x384) ort_side "$run" 32 384 ;;
  esac
done

# ---------------------------------------------------------------- the table
python3 - "$OUT" "$RUNS" "$IMPLS" "threads $THREADS; train: $STEPS steps after $WARMUP; infer: $INFER_STEPS forwards after $INFER_WARMUP" <<'PY' | tee "$OUT/table.md"
import json, os, sys

out, runs, impls, settings = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4]
ORT_RUNS = [r for r in runs if r.startswith("ort-")]
ORT_SIDE = "ort" in impls
runs = [r for r in runs if not r.startswith("ort-")]
impls = [i for i in impls if i != "ort"]
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
if runs:
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

# ---- the ONNX Runtime anchor: loraqa's dtypes against ORT's variants, the same merged model
if ORT_RUNS:
    LQ = [f"loraqa-{d}" for d in ("fp32", "bf16", "int8", "fp16")]
    OV = [f"ort-{v}" for v in ("plain", "fused", "int8")]
    res = {r: {} for r in ORT_RUNS}
    for r in ORT_RUNS:
        for f in sorted(os.listdir(out)):
            if f.startswith(r + "-") and f.endswith(".json"):
                res[r][f[len(r) + 1:-5]] = load(r, f[len(r) + 1:-5])
    sides = [i for i in LQ + ["ort-torch"] + OV if any(res[r].get(i) for r in ORT_RUNS)]
    print()
    print("ONNX Runtime anchor: the merged model (random weights, the same shape on each side), "
          "loraqa bench infer --merged (int8: " + ("merged" if os.environ.get("ORT_INT8_MERGED") == "1" else
                                                  "the adapter over the int8 base, not merged") +
          ") against scripts/ref/bench_ort.py; ratios < 1 on latency and RSS, > 1 on throughput favour loraqa")
    every = [res[r].get(i) for r in ORT_RUNS for i in OV + ["ort-torch"]]
    first = lambda key: next((d for d in every if d and d.get(key)), None)  # noqa: E731
    d = first("onnxruntime")
    if d:
        e = d.get("export", {})
        print(f"- onnxruntime {d['onnxruntime']} ({', '.join(d.get('providers', []))}); export: {e.get('exporter')}, "
              f"opset {e.get('opset')}, torch {e.get('torch')}; model: {d.get('model')}")
    d = first("fusions")
    if d:
        print("- fused (and int8): " + ", ".join(f"{k} {v}" for k, v in d["fusions"].items()))
    d = first("quantized")
    if d:
        q = d["quantized"]
        print("- int8: " + ", ".join(f"{k} {v}" for k, v in q.get("int8_ops", {}).items())
              + f"; fp32: {', '.join(q.get('fp32', [])) or 'none'}")
    d = first("transformers")
    if d:
        print(f"- hf: torch {d.get('torch')}, transformers {d.get('transformers')}, {d.get('attention')} attention")
    try:
        with open(os.path.join(out, "ort-query.json")) as f:
            q = json.load(f)
        print(f"- ort-query: {q['title']}: \"{q['question']}\" + its {len(q['context'].split())}-word passage = {q['seq']} tokens")
    except (OSError, ValueError, KeyError):
        pass
    for r in ORT_RUNS:
        d = next((res[r][i] for i in LQ if res[r].get(i)), None)
        if d:
            print(f"- loraqa: LibTorch {d.get('libtorch')} ({d.get('libtorch_source')}), shape {d.get('shape')}")
            break
    print()

    def fmt_ort(v, unit):  # small models: more digits than the table above
        if v is None or unit == "ex/s" or v >= 100:
            return fmt(v, unit)
        return f"{v:.{1 if v >= 10 else 2}f} {unit}"

    def pick(vals, names, higher):
        got = [(v, n) for n, v in vals.items() if n in names and v is not None]
        return (max if higher else min)(got) if got else None

    def ratio(a, b):
        return "–" if a is None or b is None or not b[0] else f"{a[0] / b[0]:.2f}x"

    cols = ["run", "metric"] + [i.replace("ort-torch", "hf (torch)") for i in sides] + [
        "loraqa best", "ORT best", "loraqa best / ORT best", "fp32: loraqa / ORT", "int8: loraqa / ORT"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in ORT_RUNS:
        shape = next((f"{d['batch']}x{d['seq']}" for d in res[r].values() if d and "seq" in d), "")
        kinds = ["latency"] + (["throughput"] if not r.startswith(("ort-1x", "ort-query")) else []) + ["peak RSS"]
        for k in kinds:
            unit, higher, _ = KIND[k]
            vals = {}
            for i in sides:
                d = res[r].get(i)
                s = median_s(d)
                if k == "latency":
                    vals[i] = None if s is None else s * 1000
                elif k == "throughput":
                    vals[i] = None if not s else d["batch"] / s
                else:
                    vals[i] = None if d is None else d.get("peak_rss_mb")
            lq, ot = pick(vals, LQ, higher), pick(vals, OV, higher)
            row = [f"{r} ({shape})" if shape else r, k] + [fmt_ort(vals[i], unit) for i in sides]
            row += ["–" if lq is None else lq[1].replace("loraqa-", ""), "–" if ot is None else ot[1].replace("ort-", ""),
                    ratio(lq, ot), ratio(pick(vals, ["loraqa-fp32"], higher), pick(vals, ["ort-plain", "ort-fused"], higher)),
                    ratio(pick(vals, ["loraqa-int8"], higher), pick(vals, ["ort-int8"], higher))]
            print("| " + " | ".join(row) + " |")
PY
