#!/usr/bin/env bash
# Sets up the Python reference environment (HF transformers 4.30.2 + PEFT 0.6.2 on
# Debian's python3-torch 1.13.1) in a git-ignored venv, .venv-ref/. Idempotent.
# Usage: scripts/setup-reference.sh [VENV_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(realpath -m "${1:-.venv-ref}")  # absolute: the torch checks run from /
STAMP="$VENV/.loraqa-reference-ok"
PINS="jinja2 transformers==4.30.2 tokenizers==0.13.3 safetensors==0.3.3 huggingface-hub==0.16.4 accelerate==0.21.0"

log() { echo "setup-reference: $*" >&2; }

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PINS peft==0.6.2" ]; then
  log "ok ($VENV already set up)"; exit 0
fi

SYSPY=/usr/bin/python3
# Checked from / : in the repository root, the Go package directory torch/ would
# import as an (empty) namespace package and pass for PyTorch.
debian_torch() { (cd / && "$1" -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("1.13") else 1)') 2>/dev/null; }
if ! debian_torch "$SYSPY"; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian's python3-torch (PyTorch 1.13.1, CPU)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3-torch python3-venv python3-pip libopenblas0-pthread >/dev/null
  else
    log "error: $SYSPY cannot import torch; install python3-torch (apt-get install python3-torch python3-venv) and run again"
    exit 1
  fi
fi
"$SYSPY" -c 'import venv, ensurepip' 2>/dev/null || {
  if [ "$(id -u)" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  else log "error: python3-venv is missing"; exit 1; fi
}

[ -x "$VENV/bin/python" ] || "$SYSPY" -m venv --system-site-packages "$VENV"
PY="$VENV/bin/python"
log "installing $PINS peft==0.6.2 into $VENV"
"$PY" -m pip install -q --disable-pip-version-check $PINS 'numpy<2' 'pyyaml' 'psutil' 'jinja2' 'packaging' 'tqdm' 'regex' 'requests' 'filelock'
# PEFT without deps: Debian's torch calls itself 1.13.0a0, which pip does not count as >=1.13.0.
"$PY" -m pip install -q --disable-pip-version-check --no-deps peft==0.6.2
if ! debian_torch "$PY"; then
  log "error: $VENV imports PyTorch $(cd / && "$PY" -c 'import torch; print(torch.__version__)' 2>&1 | tail -1), not Debian's 1.13 (the LibTorch loraqa links); remove $VENV and run again"
  exit 1
fi
(cd / && HF_HUB_OFFLINE=1 "$PY" -c 'import torch, transformers, peft; print("reference:", "torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)')
echo "$PINS peft==0.6.2" > "$STAMP"
