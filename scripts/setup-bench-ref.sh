#!/usr/bin/env bash
# Sets up the second Python reference of scripts/bench_compare.sh: HF transformers
# 4.30 + PEFT 0.6 on PyPI's PyTorch 2.1.2 (pinned in scripts/ref/requirements-bench-21.txt)
# in a git-ignored venv, .venv-bench-21/. Idempotent: a stamp in the venv holds the
# pins' hash, and nothing is installed again until they change.
# The torch 2.1.2 wheels tools/setup already downloaded (LORAQA_WHEELS, default
# ~/.cache/loraqa/wheels/torch-2.1.2) are offered to pip so it need not fetch them again.
# Usage: scripts/setup-bench-ref.sh [VENV_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=${LORAQA_WHEELS:-$HOME/.cache/loraqa/wheels/torch-2.1.2}
args=()
[ -d "$WHEELS" ] && args+=(--find-links "$WHEELS")
LORAQA_REF_REQ=scripts/ref/requirements-bench-21.txt LORAQA_REF_PIP_ARGS="${args[*]:-}" \
  exec scripts/setup-reference.sh "${1:-.venv-bench-21}"
