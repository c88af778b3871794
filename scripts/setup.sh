#!/usr/bin/env bash
# Idempotent set-up: creates .venv/ in the repo root and installs the stack.
#   DEVICE=cpu (default): torch 2.13 CPU + fbgemm-gpu-cpu 1.8 + torchrec 1.8
#   DEVICE=gpu          : CUDA torch 2.13 + fbgemm-gpu 1.8 (CUDA) + torchrec 1.8
# The install trap (README.md): torchrec's metadata asks for `fbgemm-gpu`, the CUDA
# build, which overwrites fbgemm-gpu-cpu's files.  So torchrec is installed with
# --no-deps and its real dependencies are listed in pyproject.toml instead.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cpu}
PY=${PYTHON:-python3}
TORCH_VERSION=2.13.0
FBGEMM_VERSION=1.8.0
TORCHREC_VERSION=1.8.0

case "$DEVICE" in
  cpu) FBGEMM_PKG=fbgemm-gpu-cpu ;;
  gpu) FBGEMM_PKG=fbgemm-gpu ;;
  *) echo "setup: DEVICE must be cpu or gpu, got '$DEVICE'" >&2; exit 2 ;;
esac

# The stamp records what was installed; set-up is skipped when nothing changed.
stamp_key="$DEVICE $TORCH_VERSION $FBGEMM_VERSION $TORCHREC_VERSION $(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ -f .venv/.setup-stamp ] && [ "$(cat .venv/.setup-stamp)" = "$stamp_key" ]; then
  exit 0
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=".venv/bin/python -m pip --disable-pip-version-check -q"
$PIP install --upgrade pip setuptools wheel
if [ "$DEVICE" = cpu ]; then
  $PIP install "torch==$TORCH_VERSION" "$FBGEMM_PKG==$FBGEMM_VERSION"
else
  # Never leave the CPU build beside the CUDA one (they share files).
  $PIP uninstall -y fbgemm-gpu-cpu >/dev/null 2>&1 || true
  $PIP install "torch==$TORCH_VERSION" "$FBGEMM_PKG==$FBGEMM_VERSION"
fi
$PIP install --no-deps "torchrec==$TORCHREC_VERSION"
$PIP install -e ".[test]"
.venv/bin/python -c "import torchrec, fbgemm_gpu, hydra, scipy; print('setup ok: torch', __import__('torch').__version__, 'torchrec', torchrec.__version__)"
echo "$stamp_key" > .venv/.setup-stamp
