#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME (default 5m), JOBS at a time (default 1),
# and prints how long each ran. New failing inputs land in the package's
# testdata/fuzz/<Target>/ and are then replayed by `make test`.
# Usage: scripts/fuzz.sh [FUZZTIME] ; env JOBS=2
set -uo pipefail
cd "$(dirname "$0")/.."
T=${1:-5m}
JOBS=${JOBS:-1}
targets="./torch/safetensors:FuzzParse ./config:FuzzLoadYAML ./peft:FuzzAdapterConfig ./serve:FuzzAnswerRequest ./serve:FuzzV2Infer
./data:FuzzReadQAText ./data:FuzzReadCSV ./data:FuzzReadTSV ./data:FuzzReadJSONL ./data:FuzzReadSQuAD
./data:FuzzReadHFJSONL ./data:FuzzReadAuto ./data:FuzzTokenizerEncode"
run() {
  local pkg=${1%%:*} name=${1##*:}
  local start=$(date +%s)
  if go test -run '^$' -fuzz "^$name\$" -fuzztime "$T" -parallel 1 "$pkg" > "/tmp/fuzz-$name.log" 2>&1; then
    echo "$name: ok, ran $(( $(date +%s) - start ))s ($(grep -o 'execs: [0-9]*' "/tmp/fuzz-$name.log" | tail -1))"
  else
    echo "$name: FAILED after $(( $(date +%s) - start ))s (see /tmp/fuzz-$name.log)"; return 1
  fi
}
export -f run; export T
echo "$targets" | tr ' ' '\n' | grep . | xargs -P "$JOBS" -I{} bash -c 'run {}'
