#!/usr/bin/env bash
# The README's test command: set up, then the whole suite on the C backend
# (every codec test also runs on numpy), again with the numpy backend forced,
# then the codec tests and a mutation run under AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
export PLADA_REQUIRE_C=1  # the C core must build here; users without a compiler still install
bash scripts/setup.sh

run_pytest() {
    # pytest exits 5 when it collected no test: that is a failure for us too.
    set +e
    .venv/bin/python -m pytest "$@"
    local rc=$?
    set -e
    if [ "$rc" -eq 5 ]; then echo "pytest collected no tests" >&2; return 1; fi
    return "$rc"
}

echo "== full suite (auto backend: C, with numpy twins)"
.venv/bin/python -c "import plada_codec; assert plada_codec.backend == 'c', plada_codec.backend"
run_pytest -q -p no:cacheprovider

echo "== codec suite with the numpy backend forced"
PLADA_BACKEND=python run_pytest -q -p no:cacheprovider tests --ignore=tests/test_train.py

echo "== C core under AddressSanitizer + UndefinedBehaviorSanitizer"
bash scripts/sanitize.sh
