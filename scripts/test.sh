#!/usr/bin/env bash
# The README's test command, which .ci/run calls. In order:
#   1. set-up (scripts/setup.sh), then lint: ruff and mypy (the package ships py.typed);
#   2. the whole suite on the C backend (every codec test also runs on the numpy twins),
#      including the torchrun tests and a short fuzzing smoke run;
#   3. the codec's tests in a second environment without torch, timm or root (.venv-codec,
#      scripts/setup.sh --codec), with the numpy backend forced;
#   4. the codec tests and a mutation run under AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
export PLADA_REQUIRE_C=1  # the C core must build here; users without a compiler still install
bash scripts/setup.sh

run_pytest() {
    # pytest exits 5 when it collected no test: that is a failure for us too.
    local python="$1"; shift
    set +e
    "$python" -m pytest "$@"
    local rc=$?
    set -e
    if [ "$rc" -eq 5 ]; then echo "pytest collected no tests" >&2; return 1; fi
    return "$rc"
}

echo "== lint: ruff, mypy"
.venv/bin/ruff check .
.venv/bin/mypy

echo "== full suite (auto backend: C, with numpy twins)"
.venv/bin/python -c "import plada_codec; assert plada_codec.backend == 'c', plada_codec.backend"
run_pytest .venv/bin/python -q -p no:cacheprovider

echo "== codec suite without the training extras, numpy backend forced"
bash scripts/setup.sh --codec
.venv-codec/bin/python -c "import importlib.util as u; assert u.find_spec('torch') is None, 'torch leaked into the codec env'"
PLADA_BACKEND=python run_pytest .venv-codec/bin/python -q -p no:cacheprovider

echo "== C core under AddressSanitizer + UndefinedBehaviorSanitizer"
bash scripts/sanitize.sh
