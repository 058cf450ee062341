#!/usr/bin/env bash
# The README's test command, which .ci/run calls. Stages, in order:
#   1. set-up (scripts/setup.sh); lint: ruff; types: mypy (the package ships py.typed); the docs
#      site built with --strict (scripts/docs.sh: a broken link or a public name without a docstring fails);
#   2. the whole suite on the C backend (every codec test also runs on the numpy twins),
#      including the torchrun tests and a short fuzzing smoke run;
#   2a. libplada (csrc/libplada): built with -Werror and its C tests run (tests/libplada/test_libplada.py also
#      runs them under ASan/UBSan);
#   2b. scripts/gpu-check.sh's offline path rehearsed on the CPU (scripts/gpu-rehearsal.sh): a wheel
#      bundle, `pip --no-index` into a stand-in for the GPU machine's Python, tests/train/test_gpu.py with
#      bf16 autocast on the CPU;
#   3. the codec's tests in a second environment without torch, timm or root (.venv-codec,
#      scripts/setup.sh --codec), with the numpy backend forced;
#   4. the codec tests and a mutation run under AddressSanitizer + UBSan.
# Every stage runs even when an earlier one failed (a stage stops at its own first failing
# command); one table at the end gives each stage's result and duration, and the script exits
# non-zero when any stage failed. Sourcing this file defines the functions without running them.
set -uo pipefail  # no -e at the top: a failed stage must not stop the next ones

STAGE_NAMES=()
STAGE_RESULTS=()
STAGE_SECONDS=()

stage() {
    # stage NAME COMMAND [ARGS...]: run COMMAND (a function or program) under `set -e` in a
    # subshell, so it stops at its first failing command, and record the outcome.
    local name="$1"; shift
    echo "== $name"
    local start=$SECONDS rc
    (set -e; "$@")  # a plain statement: `if`, `||` or `&&` here would switch set -e off inside
    rc=$?
    STAGE_NAMES+=("$name")
    STAGE_SECONDS+=("$((SECONDS - start))")
    if [ "$rc" -eq 0 ]; then STAGE_RESULTS+=("ok"); else STAGE_RESULTS+=("FAILED (exit $rc)"); fi
    return 0
}

summary() {
    # Print one table of every recorded stage; return 1 when any failed, 0 otherwise.
    local i failed=0 width=5
    for i in "${!STAGE_NAMES[@]}"; do
        [ "${#STAGE_NAMES[$i]}" -gt "$width" ] && width=${#STAGE_NAMES[$i]}
    done
    echo
    echo "== summary"
    printf "%-${width}s  %-16s  %8s\n" stage result duration
    for i in "${!STAGE_NAMES[@]}"; do
        printf "%-${width}s  %-16s  %7ss\n" "${STAGE_NAMES[$i]}" "${STAGE_RESULTS[$i]}" "${STAGE_SECONDS[$i]}"
        [ "${STAGE_RESULTS[$i]}" = ok ] || failed=$((failed + 1))
    done
    if [ "$failed" -gt 0 ]; then
        echo "$failed of ${#STAGE_NAMES[@]} stages failed"
        return 1
    fi
    echo "all ${#STAGE_NAMES[@]} stages passed"
}

run_pytest() {
    # pytest exits 5 when it collected no test: that is a failure for us too.
    local python="$1"; shift
    local rc=0
    "$python" -m pytest "$@" || rc=$?
    if [ "$rc" -eq 5 ]; then echo "pytest collected no tests" >&2; return 1; fi
    return "$rc"
}

full_suite() {
    .venv/bin/python -c "import plada_codec; assert plada_codec.backend == 'c', plada_codec.backend"
    run_pytest .venv/bin/python -q -p no:cacheprovider
}

codec_suite() {
    .venv-codec/bin/python -c "import importlib.util as u; assert u.find_spec('torch') is None, 'torch leaked into the codec env'"
    PLADA_BACKEND=python run_pytest .venv-codec/bin/python -q -p no:cacheprovider
}

main() {
    cd "$(dirname "${BASH_SOURCE[0]}")/.." || return 1
    export PLADA_REQUIRE_C=1  # the C core must build here; users without a compiler still install
    stage "set-up" bash scripts/setup.sh
    stage "lint: ruff" .venv/bin/ruff check .
    stage "types: mypy" .venv/bin/mypy
    stage "docs: mkdocs build --strict" bash scripts/docs.sh
    stage "full suite (C + numpy twins)" full_suite
    stage "libplada: make check (-Werror)" make -C csrc/libplada EXTRA_CFLAGS=-Werror check
    stage "gpu rehearsal (offline path, CPU bf16)" bash scripts/gpu-rehearsal.sh
    stage "set-up: codec env" bash scripts/setup.sh --codec
    stage "codec suite (numpy, no torch)" codec_suite
    stage "ASan + UBSan" bash scripts/sanitize.sh
    summary
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    main "$@"
fi
