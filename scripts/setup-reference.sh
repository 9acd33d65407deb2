#!/usr/bin/env bash
# Sets up the Python reference environment (current PyPI releases of PyTorch,
# transformers and PEFT, pinned in scripts/ref/requirements.txt) in a git-ignored
# venv, .venv-ref/. Idempotent: re-installs only when the pins change.
# Needs python3 with venv (Debian: python3-venv; installed here when run as root).
# Usage: scripts/setup-reference.sh [VENV_DIR]
#   env: LORAQA_REF_REQ (another pin file: scripts/setup-bench-ref.sh),
#        LORAQA_REF_PIP_ARGS (more pip install arguments, e.g. --find-links DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(realpath -m "${1:-.venv-ref}")  # absolute: the checks run from /
REQ=$(realpath "${LORAQA_REF_REQ:-scripts/ref/requirements.txt}")
STAMP="$VENV/.loraqa-reference-ok"
WANT=$(sha256sum "$REQ" | cut -d' ' -f1)

log() { echo "setup-reference: $*" >&2; }

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  log "ok ($VENV already set up)"; exit 0
fi

SYSPY=${LORAQA_REF_SYSPYTHON:-/usr/bin/python3}
if ! "$SYSPY" -c 'import venv, ensurepip' 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing python3-venv"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3 python3-venv >/dev/null
  else
    log "error: $SYSPY lacks venv/ensurepip; install python3-venv and run again"
    exit 1
  fi
fi

# A venv of its own (no system site-packages): Debian's python3-torch 1.13
# must not shadow the pinned PyTorch.
if grep -q '^include-system-site-packages = true' "$VENV/pyvenv.cfg" 2>/dev/null; then
  log "$VENV sees the system site-packages (an older reference venv): making it anew"
  rm -rf "$VENV"
fi
[ -x "$VENV/bin/python" ] || "$SYSPY" -m venv "$VENV"
PY="$VENV/bin/python"
log "installing $(grep -v '^#' "$REQ" | tr '\n' ' ')into $VENV (PyPI; a few minutes the first time)"
"$PY" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
# shellcheck disable=SC2086 # LORAQA_REF_PIP_ARGS: words on purpose
"$PY" -m pip install -q --disable-pip-version-check ${LORAQA_REF_PIP_ARGS:-} -r "$REQ"
(cd / && HF_HUB_OFFLINE=1 "$PY" - "$REQ" <<'PY'
import sys, re
from importlib.metadata import version
pins = {}
for line in open(sys.argv[1]):
    m = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^\s#]+)", line)
    if m:
        pins[m.group(1)] = m.group(3)
bad = []
for name, want in pins.items():
    # the installed distribution's version (kserve has no __version__)
    got = version(name).split("+")[0]
    if got != want:
        bad.append(f"{name} {got} (want {want})")
if bad:
    sys.exit("setup-reference: error: " + ", ".join(bad))
import torch, transformers, peft
print("reference:", "torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)
PY
)
echo "$WANT" > "$STAMP"
