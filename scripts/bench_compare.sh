#!/usr/bin/env bash
# Side by side on this machine: HF transformers + PEFT (../shared/tools/bench_reference.py,
# in the reference venv) and `loraqa bench`, same shapes, same thread count, one
# after the other in one go. Prints each JSON result and the ratios.
# Usage: scripts/bench_compare.sh [OUT_DIR]   (env: THREADS=2 STEPS=6 WARMUP=2)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/bench}
THREADS=${THREADS:-2}; STEPS=${STEPS:-6}; WARMUP=${WARMUP:-2}
REF=${REF:-../shared/tools/bench_reference.py}
PY=${LORAQA_REF_PYTHON:-.venv-ref/bin/python}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1
run() { # name, ref args, loraqa args
  local name=$1 refargs=$2 ourargs=$3
  echo "== $name" >&2
  $PY "$REF" $refargs --threads "$THREADS" 2>/dev/null | tail -1 > "$OUT/ref-$name.json"
  bin/loraqa bench $ourargs --threads "$THREADS" 2>/dev/null | tail -1 > "$OUT/loraqa-$name.json"
}
run matmul "--mode matmul" "infer --shape tiny --batch 1 --seq 8 --steps 1 --warmup 0" || true
run train-8x128 "--mode train --batch 8 --seq 128 --steps $STEPS --warmup $WARMUP" "train --shape distilbert-base --batch 8 --seq 128 --steps $STEPS --warmup $WARMUP"
run train-8x384 "--mode train --batch 8 --seq 384 --steps $STEPS --warmup $WARMUP" "train --shape distilbert-base --batch 8 --seq 384 --steps $STEPS --warmup $WARMUP"
run infer-1x384 "--mode infer --seq 384" "infer --shape distilbert-base --batch 1 --seq 384 --steps 10 --warmup 2"
bin/loraqa bench infer --shape distilbert-base --batch 1 --seq 384 --steps 10 --warmup 2 --merged --threads "$THREADS" 2>/dev/null | tail -1 > "$OUT/loraqa-infer-1x384-merged.json"
python3 - "$OUT" <<'PY'
import json, sys, os
d = sys.argv[1]
def j(n):
    with open(os.path.join(d, n)) as f:
        return json.load(f)
print(f"{'run':<14}{'reference':>22}{'loraqa':>22}{'ratio':>10}")
for name in ("train-8x128", "train-8x384"):
    r, o = j(f"ref-{name}.json"), j(f"loraqa-{name}.json")
    print(f"{name:<14}{r['median_step_s']:>18.2f} s/st{o['step_ms_median']/1000:>18.2f} s/st{r['median_step_s']/(o['step_ms_median']/1000):>9.2f}x  (throughput)")
    print(f"{'  peak RSS':<14}{r['peak_rss_mb']:>19.0f} MB{o['peak_rss_mb']:>19.0f} MB{o['peak_rss_mb']/r['peak_rss_mb']:>9.2f}x")
r, o, om = j("ref-infer-1x384.json"), j("loraqa-infer-1x384.json"), j("loraqa-infer-1x384-merged.json")
print(f"{'infer-1x384':<14}{r['latency_median_s']*1000:>19.0f} ms{o['step_ms_median']:>19.0f} ms{o['step_ms_median']/(r['latency_median_s']*1000):>9.2f}x  (latency, unmerged)")
print(f"{'  merged':<14}{r['merged_latency_median_s']*1000:>19.0f} ms{om['step_ms_median']:>19.0f} ms{om['step_ms_median']/(r['merged_latency_median_s']*1000):>9.2f}x")
print(f"{'  peak RSS':<14}{r['peak_rss_mb']:>19.0f} MB{o['peak_rss_mb']:>19.0f} MB{o['peak_rss_mb']/r['peak_rss_mb']:>9.2f}x")
PY
