#!/usr/bin/env bash
# loraqa on each LibTorch source, in one run: builds the current commit once per
# source (a git worktree each under OUT, with its own .build; the wheels and Go's
# build cache are shared), then runs `loraqa bench` on each build, one after the
# other: train 8 x 128 and infer 1 x 384 at distilbert-base shapes, fp32 and bf16.
# Prints a markdown table (docs/benchmarks.md keeps one) and leaves the JSON in OUT.
#
#   scripts/bench_sources.sh [OUT]        (env: SOURCES, THREADS=2, STEPS=6, WARMUP=2)
#
# SOURCES is a list of debian | pypi-<version> | pypi-<version>-cuda.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-out/sources}")
SOURCES=${SOURCES:-"debian pypi-2.1.2 pypi-2.15.0"}
THREADS=${THREADS:-2}; STEPS=${STEPS:-6}; WARMUP=${WARMUP:-2}
mkdir -p "$OUT"
say() { echo "bench_sources: $*" >&2; }

for s in $SOURCES; do
  dir="$OUT/build-$s"
  if [ ! -d "$dir" ]; then
    git worktree add --detach -f "$dir" HEAD >/dev/null
  else
    git -C "$dir" checkout -q --detach "$(git rev-parse HEAD)"
  fi
  case "$s" in
    debian) env=(LIBTORCH_SOURCE=debian) ;;
    pypi-*-cuda) v=${s#pypi-}; env=(LIBTORCH_SOURCE=pypi LIBTORCH_VERSION=${v%-cuda} LIBTORCH_FLAVOUR=cuda) ;;
    pypi-*) env=(LIBTORCH_SOURCE=pypi LIBTORCH_VERSION=${s#pypi-} LIBTORCH_FLAVOUR=cpu) ;;
    *) say "unknown source $s (want debian, pypi-<version> or pypi-<version>-cuda)"; exit 2 ;;
  esac
  say "building for $s"
  (cd "$dir" && env -u LIBTORCH "${env[@]}" make build >"$OUT/build-$s.log" 2>&1) || { say "build for $s failed: $OUT/build-$s.log"; tail -5 "$OUT/build-$s.log" >&2; exit 1; }
done

for s in $SOURCES; do
  bin="$OUT/build-$s/bin/loraqa"
  "$bin" doctor --json > "$OUT/$s-doctor.json"
  for dt in fp32 bf16; do
    say "$s $dt: train 8x128"
    "$bin" bench train --shape distilbert-base --batch 8 --seq 128 --steps "$STEPS" --warmup "$WARMUP" --threads "$THREADS" --dtype "$dt" --force 2>/dev/null | tail -1 > "$OUT/$s-$dt-train.json"
    say "$s $dt: infer 1x384"
    "$bin" bench infer --shape distilbert-base --batch 1 --seq 384 --steps 10 --warmup 2 --threads "$THREADS" --dtype "$dt" --force 2>/dev/null | tail -1 > "$OUT/$s-$dt-infer.json"
  done
done

python3 - "$OUT" $SOURCES <<'PY'
import json, os, sys
out, sources = sys.argv[1], sys.argv[2:]
def j(n):
    with open(os.path.join(out, n)) as f:
        return json.load(f)
print("| LibTorch | source | kernels | dtype | train 8×128 examples/s | train peak RSS | infer 1×384 latency | infer peak RSS |")
print("|---|---|---|---|---|---|---|---|")
for s in sources:
    d = j(f"{s}-doctor.json")
    kern = f"{d.get('cpu_capability','?')}, {d.get('blas_info') or 'blas ' + ','.join(os.path.basename(b) for b in d.get('blas') or [])}"
    if d.get("onednn"):
        kern += f", oneDNN {d['onednn']}"
    for dt in ("fp32", "bf16"):
        try:
            t, i = j(f"{s}-{dt}-train.json"), j(f"{s}-{dt}-infer.json")
        except (OSError, ValueError):
            print(f"| {d['libtorch']} | {d['libtorch_source']} {d['flavour']} | {kern} | {dt} | failed | | | |")
            continue
        print(f"| {d['libtorch']} | {d['libtorch_source']} {d['flavour']} | {kern} | {dt} | {t['examples_per_s']:.2f} | {t['peak_rss_mb']:.0f} MB | {i['step_ms_median']:.0f} ms | {i['peak_rss_mb']:.0f} MB |")
PY
