#!/usr/bin/env bash
# The hostile-load test of `loraqa serve` (docs/serve.md), on loopback only:
# the tiny fixture base with its adapter, bearer and admin tokens, an adapter
# root; 16 good clients checked against `loraqa predict`, alongside slow
# clients, oversized and malformed bodies, wrong tokens, adapter loads and
# unloads.  Usage: scripts/hostile.sh [DURATION (default 60s)] [OUTDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-60s}
OUT=${2:-$(mktemp -d /tmp/loraqa-hostile.XXXXXX)}
SHARED=${LORAQA_SHARED:-$PWD/../shared}
F=$SHARED/fixtures/tiny-distilbert-qa
PORT=${PORT:-18443}
mkdir -p "$OUT/root"
go build -o "$OUT/loraqa" ./cmd/loraqa
go build -o "$OUT/loadtest" ./scripts/loadtest
cp -r "$F/adapter" "$OUT/root/hot"
head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$OUT/tokens"
head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$OUT/admin-tokens"
W=(--model "$F/base" --max-seq-length 128 --doc-stride 32 --device cpu --dtype fp32) # fp32 on both sides: serve defaults to auto
"$OUT/loadtest" inputs -data "$SHARED/data/tatqa-dev-qa.txt" -n 32 -adapters "fix,bin," -o "$OUT/inputs.jsonl"
"$OUT/loadtest" expect -inputs "$OUT/inputs.jsonl" -loraqa "$OUT/loraqa" -adapter fix="$F/adapter" -adapter bin="$F/adapter_bin" \
  -o "$OUT/expected.jsonl" -- "${W[@]}"
"$OUT/loraqa" serve --adapter fix="$F/adapter" --adapter bin="$F/adapter_bin" "${W[@]}" \
  --addr 127.0.0.1:$PORT --auth-token-file "$OUT/tokens" --admin-token-file "$OUT/admin-tokens" \
  --adapter-root "$OUT/root" --timeout 20s 2> "$OUT/serve.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.2; done
"$OUT/loadtest" hostile -url http://127.0.0.1:$PORT -inputs "$OUT/inputs.jsonl" -expected "$OUT/expected.jsonl" \
  -token "$(cat "$OUT/tokens")" -admin-token "$(cat "$OUT/admin-tokens")" -adapter-path hot -pid $PID \
  -duration "$DURATION" -json "$OUT/hostile.json"
echo "report: $OUT/hostile.json; server log: $OUT/serve.log"
