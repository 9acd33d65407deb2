#!/usr/bin/env bash
# Sets up the SQuAD 2.0 reference of data/squad2_ref_test.go in a git-ignored venv,
# .build/venv-squad2: HF transformers 4.57.6 for transformers.data.metrics.squad_metrics
# (the official SQuAD 2.0 evaluation) and, installed without its dependencies, sparseml 1.8.0
# for the source of HF's postprocess_qa_predictions (pins and reasons:
# scripts/ref/requirements-squad2*.txt). No PyTorch. Idempotent: a stamp in the venv holds
# the pins' hash, and nothing is installed again until they change.
# Needs python3 with venv (Debian: python3-venv).
# Usage: scripts/setup-squad2-ref.sh [VENV_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(realpath -m "${1:-.build/venv-squad2}")
REQ=$(realpath scripts/ref/requirements-squad2.txt)
NODEPS=$(realpath scripts/ref/requirements-squad2-nodeps.txt)
STAMP="$VENV/.loraqa-squad2-ok"
WANT=$(cat "$REQ" "$NODEPS" scripts/ref/squad2_ref.py | sha256sum | cut -d' ' -f1)

log() { echo "setup-squad2-ref: $*" >&2; }

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  log "ok ($VENV already set up)"; exit 0
fi
SYSPY=${LORAQA_REF_SYSPYTHON:-/usr/bin/python3}
"$SYSPY" -c 'import venv, ensurepip' 2>/dev/null || { log "error: $SYSPY lacks venv/ensurepip; install python3-venv (make reference does)"; exit 1; }
[ -x "$VENV/bin/python" ] || "$SYSPY" -m venv "$VENV"
PY="$VENV/bin/python"
log "installing $(grep -hv '^#' "$REQ" "$NODEPS" | tr '\n' ' ')into $VENV (PyPI)"
"$PY" -m pip install -q --disable-pip-version-check -r "$REQ"
"$PY" -m pip install -q --disable-pip-version-check --no-deps -r "$NODEPS"
# the pins are what is installed, and both references load
(cd / && HF_HUB_OFFLINE=1 "$PY" - "$REQ" "$NODEPS" <<'PY'
import re, sys
from importlib.metadata import version
bad = []
for path in sys.argv[1:]:
    for line in open(path):
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", line)
        if m and version(m.group(1)) != m.group(2):
            bad.append(f"{m.group(1)} {version(m.group(1))} (want {m.group(2)})")
if bad:
    sys.exit("setup-squad2-ref: error: " + ", ".join(bad))
PY
)
"$PY" scripts/ref/squad2_ref.py --check
echo "$WANT" > "$STAMP"
