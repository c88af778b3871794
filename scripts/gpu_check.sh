#!/usr/bin/env bash
# The GPU check (docs/PERFORMANCE.md, "GPU check"): a 1-GPU training run through
# `python -m dlrm.train`, then scripts/bench_throughput.py at the default and at the MLPerf
# DLRM-DCNv2 shapes, with the published single-GPU reference beside: one run of at most
# 6 minutes, install included (scripts/gpu_check.py runs the steps).
#
# Needs the TorchRec stack on the GPU machine: `make setup DEVICE=gpu` (CUDA torch, fbgemm-gpu,
# torchrec), or, for a GPU machine without a network, the files `pack` writes:
#   scripts/gpu_check.sh pack     on a machine with a network: fills gpu-wheels/ (git-ignored) with
#                                 deps.tar.xz (hydra-core, omegaconf, antlr4-python3-runtime,
#                                 torchmetrics at .venv's versions), MANIFEST (their sha256) and,
#                                 when WHEELS_SH names a script, part00.. of the TorchRec stack:
#                                 `bash $WHEELS_SH DIR PART_MIB` writes one xz-compressed tar of an
#                                 importable tree (fbgemm-gpu CUDA, torchrec, tensordict, iopath, ...)
#                                 split into DIR/part00.. of at most PART_MIB MiB.  WHEELS_SH unset:
#                                 no parts are made, the GPU machine's stack is assumed installed.
#                                 PACK=deps packs deps.tar.xz alone (parts already there).
#   scripts/gpu_check.sh stage    on the GPU machine, after copying some of gpu-wheels/ there:
#                                 keeps them in /tmp/gpu-wheels, so files copied in several goes add up.
#   scripts/gpu_check.sh install  installs what is missing from the staged files into /tmp/site.
#   scripts/gpu_check.sh [--dry-run] [gpu_check.py options]
#                                 install if needed, then the check; results in $OUT (or
#                                 runs/gpu_check): gpu_check.txt, gpu_check.json, bench_*.json, ...
#                                 Its Python is $PY (python3 on the GPU; after make setup
#                                 DEVICE=gpu: PY=.venv/bin/python scripts/gpu_check.sh).
#   DEVICE=cpu scripts/gpu_check.sh --dry-run     the same steps at tiny sizes, on the CPU
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
WHEELS=${GPU_WHEELS:-gpu-wheels}        # the files pack writes (the repo's ignored folder)
STAGE=${GPU_STAGE:-/tmp/gpu-wheels}     # where stage keeps them on the GPU machine
SITE=${GPU_SITE:-/tmp/site}
WHEELS_SH=${WHEELS_SH:-}                # optional: the script that packs the TorchRec stack (see pack)
PART_MIB=${PART_MIB:-60}
BUDGET_S=${BUDGET_S:-360}

die() { echo "gpu_check: $*" >&2; exit 2; }
first_of() { for d in "$STAGE" "$WHEELS"; do if [ -f "$d/$1" ]; then echo "$d/$1"; return; fi; done; }

pack_deps() {
  local vpy=${VENV_PY:-.venv/bin/python} tmp
  [ -x "$vpy" ] || die "pack needs $vpy (make setup): its versions are the ones packed"
  tmp=$(mktemp -d)
  ver() { "$vpy" -c "import importlib.metadata as m; print(m.version('$1'))"; }
  "$vpy" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d "$tmp/whl" \
    "hydra-core==$(ver hydra-core)" "omegaconf==$(ver omegaconf)" "torchmetrics==$(ver torchmetrics)"
  # antlr4-python3-runtime 4.9.3 (what omegaconf 2.3 needs) is published as an sdist only: built here, pure Python.
  "$vpy" -m pip download -q --no-deps --no-binary=:all: -d "$tmp/sdist" \
    "antlr4-python3-runtime==$(ver antlr4-python3-runtime)"
  "$vpy" -m pip wheel -q --no-deps --no-build-isolation --no-index -w "$tmp/whl" "$tmp"/sdist/*
  mkdir -p "$tmp/site" "$WHEELS"
  for w in "$tmp"/whl/*.whl; do "$vpy" -m zipfile -e "$w" "$tmp/site"; done
  tar -C "$tmp/site" -cJf "$WHEELS/deps.tar.xz" .
  rm -rf "$tmp"
}

pack() {
  if [ "${PACK:-all}" = all ] && [ -z "$WHEELS_SH" ]; then
    echo "gpu_check: WHEELS_SH unset: no TorchRec parts packed (the GPU machine's stack is assumed installed)"
  elif [ "${PACK:-all}" = all ]; then
    [ -f "$WHEELS_SH" ] || die "$WHEELS_SH not found (set WHEELS_SH=...)"
    bash "$WHEELS_SH" "$WHEELS" "$PART_MIB"
  fi
  pack_deps
  (cd "$WHEELS" && sha256sum $(ls part* 2>/dev/null) deps.tar.xz > MANIFEST)
  ls -la "$WHEELS"
  echo "gpu_check: copy gpu-wheels/ (MANIFEST, deps.tar.xz and every part) to the GPU machine, then run stage and install there"
}

stage() {
  mkdir -p "$STAGE"
  local f found=0
  for f in "$WHEELS"/*; do [ -f "$f" ] && cp "$f" "$STAGE/" && found=1; done
  [ "$found" = 1 ] || die "nothing copied into $WHEELS/"
  ls -la "$STAGE"
  [ -f "$STAGE/MANIFEST" ] || return 0
  local missing=""
  while read -r _ name; do [ -n "$(first_of "$name")" ] || missing="$missing $name"; done < "$STAGE/MANIFEST"
  if [ -n "$missing" ]; then echo "gpu_check: still to copy:$missing"; else echo "gpu_check: every part staged"; fi
}

unpack() {  # unpack FILE... : one xz-compressed tar, split or not, into $SITE
  mkdir -p "$SITE"
  if command -v xz >/dev/null; then
    cat "$@" | xz -dc -T0 | tar -x -C "$SITE"
  else
    cat "$@" | "$PY" -c "import sys, tarfile; tarfile.open(fileobj=sys.stdin.buffer, mode='r|xz').extractall(sys.argv[1])" "$SITE"
  fi
}

install() {
  local manifest parts=() missing="" sum name f
  manifest=$(first_of MANIFEST)
  [ -n "$manifest" ] || die "no MANIFEST in $STAGE or $WHEELS: run 'scripts/gpu_check.sh pack' on a machine with the network, copy gpu-wheels/ here"
  while read -r sum name; do
    f=$(first_of "$name")
    if [ -z "$f" ]; then missing="$missing $name"; continue; fi
    echo "$sum  $f" | sha256sum -c --quiet - || die "$f is damaged (sha256): copy it again"
    case "$name" in part*) parts+=("$f") ;; esac
  done < "$manifest"
  [ -z "$missing" ] || die "not copied yet:$missing (copy them into gpu-wheels/ and run 'scripts/gpu_check.sh stage')"
  local t0=$SECONDS
  [ "${#parts[@]}" -gt 0 ] && unpack "${parts[@]}"
  unpack "$(first_of deps.tar.xz)"
  echo "gpu_check: installed into $SITE in $((SECONDS - t0)) s"
}

DRY=0
for a in "$@"; do [ "$a" = --dry-run ] && DRY=1; done
DEVICE=${DEVICE:-$([ "$DRY" = 1 ] && echo cpu || echo cuda)}
if [ -z "${PY:-}" ]; then
  if [ "$DEVICE" = cpu ] && [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi

case "${1:-}" in
  pack) pack; exit 0 ;;
  stage) stage; exit 0 ;;
  install) install; exit 0 ;;
esac

export PYTHONPATH="$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
check='import torchrec, fbgemm_gpu, tensordict, hydra, omegaconf, torchmetrics'
if ! "$PY" -c "$check" >/dev/null 2>&1; then
  install
  "$PY" -c "$check" || die "the TorchRec stack does not import after the install (see above)"
fi
"$PY" -c "import torch, torchrec; print('gpu_check: torch', torch.__version__, 'torchrec', torchrec.__version__, \
'cuda', torch.cuda.is_available() and torch.cuda.get_device_name(0))"
left=$((BUDGET_S - SECONDS - 5))
exec "$PY" scripts/gpu_check.py --device "$DEVICE" --budget-s "$left" "$@"
