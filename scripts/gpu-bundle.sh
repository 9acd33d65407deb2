#!/usr/bin/env bash
# The GPU bundle: bin/loraqa built here against the LibTorch of the GPU machine's
# PyTorch (PyPI torch 2.11.0, CUDA 13 flavour), to run there with that machine's
# own torch libraries, plus the generated test material scripts/gpu-check.sh needs.
#
#   scripts/gpu-bundle.sh [OUT]          (OUT: .build/gpu-bundle)
#
# It writes
#   OUT/bin/loraqa       a launcher (sh): finds torch/lib from python3 (or $LORAQA_PYTHON,
#                        or $LORAQA_TORCH_LIB), checks its version, sets LD_LIBRARY_PATH
#                        to it and its nvidia-* libraries, and runs loraqa.bin
#   OUT/bin/loraqa.bin   the stripped binary (RUNPATH, not RPATH: LD_LIBRARY_PATH wins)
#   OUT/testdata/        tiny-distilbert-qa/, tiny-roberta-qa/ and tokenizer/ from .build/testdata
#                        ($LORAQA_TESTDATA; made by `make reference`)
#   OUT/BUNDLE.txt       what was built, from which commit, against which LibTorch
#   OUT.tar.xz           the same, compressed (python3's tarfile opens it where tar/xz are missing)
# and fails if either is over 64 MiB (what can be carried to the GPU machine).
#
# The default build is left alone: setup generates the gotch copy for this LibTorch
# in .build/gpu (-out) with its own go.work (.build/gpu/go.work), and the build
# runs with GOWORK pointing there. LibTorch's headers and libraries are unpacked
# into .build/gpu/pypi (about 4 GB with the nvidia-* libraries); the wheels stay in
# ~/.cache/loraqa/wheels.
#
# Environment: GPU_TORCH_VERSION (2.11.0), LORAQA_TESTDATA (.build/testdata),
# GPU_BUNDLE_SMOKE_TORCH=DIR: a site-packages dir (torch/ beside nvidia/, e.g. from
# `pip install --target DIR torch==2.11.0`) to run `loraqa verify` with the bundle
# against, as a check of the launcher on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${GPU_TORCH_VERSION:-2.11.0}
OUT=${1:-.build/gpu-bundle}
OUT=${OUT%/}
BUILD=.build/gpu
TESTDATA=${LORAQA_TESTDATA:-.build/testdata}
LIMIT=$((64 * 1024 * 1024))
say() { echo "gpu-bundle: $*" >&2; }
die() { say "error: $*"; exit 1; }

for d in tiny-distilbert-qa tiny-roberta-qa tokenizer; do
  [ -d "$TESTDATA/$d" ] || die "no $TESTDATA/$d: run \`make reference\` first (or set LORAQA_TESTDATA)"
done

say "setup: LibTorch $VERSION (PyPI, cuda flavour) -> $BUILD (go.work: $BUILD/go.work)"
env -u LIBTORCH LIBTORCH_SOURCE=pypi LIBTORCH_VERSION="$VERSION" LIBTORCH_FLAVOUR=cuda GOWORK=off \
  go run ./tools/setup -out "$BUILD" -gowork "$BUILD/go.work" -no-install

say "go build (stripped; RUNPATH so that LD_LIBRARY_PATH finds the target's LibTorch first)"
GOWORK="$PWD/$BUILD/go.work" go build -ldflags "-s -w -extldflags=-Wl,--enable-new-dtags" -o "$BUILD/loraqa" ./cmd/loraqa
if command -v readelf >/dev/null; then
  readelf -d "$BUILD/loraqa" | grep -q '(RUNPATH)' || die "$BUILD/loraqa has no RUNPATH (an RPATH would beat LD_LIBRARY_PATH)"
fi

tmp="$OUT.tmp"
rm -rf "$tmp"
mkdir -p "$tmp/bin" "$tmp/testdata"
cp "$BUILD/loraqa" "$tmp/bin/loraqa.bin"
sed "s/@VERSION@/$VERSION/" > "$tmp/bin/loraqa" <<'EOF'
#!/bin/sh
# loraqa GPU bundle launcher (scripts/gpu-bundle.sh): runs loraqa.bin, built against
# LibTorch @VERSION@ (PyPI torch, CUDA flavour), with the torch libraries of this
# machine's Python: $LORAQA_TORCH_LIB (a torch/lib directory), else the torch
# package that $LORAQA_PYTHON (python3) finds. LORAQA_ALLOW_TORCH_MISMATCH=1 runs
# against another torch version (the C++ ABI may not match).
here=$(cd "$(dirname "$0")" && pwd)
want=@VERSION@
lib=${LORAQA_TORCH_LIB:-}
if [ -z "$lib" ]; then
  py=${LORAQA_PYTHON:-python3}
  # find_spec locates the package without importing it (fast; no torch dependencies
  # needed); run from / and with an origin (a regular package), so that a torch/
  # directory in the current one (loraqa's own Go package) is not taken for it
  tdir=$(cd / && "$py" -c 'import importlib.util as u, os; s = u.find_spec("torch"); print(os.path.dirname(s.origin) if s and s.origin else "")' 2>/dev/null)
  if [ -z "$tdir" ]; then
    echo "loraqa (GPU bundle): $py finds no torch package; set LORAQA_PYTHON to a python with torch $want, or LORAQA_TORCH_LIB to its torch/lib" >&2
    exit 127
  fi
  lib=$tdir/lib
fi
if [ ! -f "$lib/libtorch_cuda.so" ]; then
  echo "loraqa (GPU bundle): $lib has no libtorch_cuda.so (a CPU-only torch?); the bundle needs torch $want with CUDA" >&2
  exit 127
fi
ver=$(sed -n "s/^__version__ = '\([0-9][0-9.]*\).*/\1/p" "$lib/../version.py" 2>/dev/null)
if [ -n "$ver" ] && [ "$ver" != "$want" ] && [ -z "${LORAQA_ALLOW_TORCH_MISMATCH:-}" ]; then
  echo "loraqa (GPU bundle): built against LibTorch $want, but $lib is torch $ver (set LORAQA_ALLOW_TORCH_MISMATCH=1 to try anyway)" >&2
  exit 127
fi
# torch/lib, then the nvidia-* wheels' libraries beside it (site-packages/nvidia/*/lib),
# as PyTorch itself loads them.
site=$(dirname "$(dirname "$lib")")
path=$lib
for d in "$site"/nvidia/*/lib; do
  [ -d "$d" ] && path=$path:$d
done
LD_LIBRARY_PATH=$path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH
exec "$here/loraqa.bin" "$@"
EOF
chmod +x "$tmp/bin/loraqa" "$tmp/bin/loraqa.bin"
cp -a "$TESTDATA/tiny-distilbert-qa" "$TESTDATA/tiny-roberta-qa" "$TESTDATA/tokenizer" "$tmp/testdata/"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " (with uncommitted changes)" || true)
cat > "$tmp/BUNDLE.txt" <<EOF
loraqa GPU bundle, made by scripts/gpu-bundle.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)
commit:   $commit$dirty
libtorch: $VERSION (PyPI torch wheel, cuda flavour; $(go version | cut -d' ' -f3))
run:      $OUT/bin/loraqa doctor   (finds torch $VERSION through python3; see the launcher)
check:    scripts/gpu-check.sh OUT_DIR   (uses this bundle when it is at .build/gpu-bundle)
EOF
rm -rf "$OUT"
mv "$tmp" "$OUT"

if [ -n "${GPU_BUNDLE_SMOKE_TORCH:-}" ]; then
  say "smoke test: loraqa verify with the torch in $GPU_BUNDLE_SMOKE_TORCH"
  PYTHONPATH="$GPU_BUNDLE_SMOKE_TORCH" "$OUT/bin/loraqa" verify "$OUT/testdata/tiny-distilbert-qa" >&2
fi

say "compressing"
rm -f "$OUT.tar.xz"
tar -C "$(dirname "$OUT")" -cf - "$(basename "$OUT")" | xz -9 -T2 > "$OUT.tar.xz"
raw=$(du -sb "$OUT" | cut -f1)
xzb=$(stat -c %s "$OUT.tar.xz")
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
say "$OUT: $(mib "$raw") ($(mib "$(stat -c %s "$OUT/bin/loraqa.bin")") binary); $OUT.tar.xz: $(mib "$xzb")"
[ "$raw" -le "$LIMIT" ] || die "$OUT is over 64 MiB"
[ "$xzb" -le "$LIMIT" ] || die "$OUT.tar.xz is over 64 MiB"
say "carry $OUT (or $OUT.tar.xz: scripts/gpu-check.sh unpacks it) to the GPU machine, then run scripts/gpu-check.sh OUT_DIR there"
