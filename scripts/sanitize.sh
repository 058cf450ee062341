#!/usr/bin/env bash
# Build the C core with -fsanitize=address,undefined (and the warnings of every C build,
# -Werror under PLADA_REQUIRE_C=1: csrc/build_cffi.py) into build/asan/ (a copy of
# plada_codec), and run the codec tests plus a bounded mutation run there.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf build/asan && mkdir -p build/asan
# A self-contained tree, so neither the source checkout nor the editable
# install can shadow the sanitized package on sys.path.
cp -r plada_codec tests spec pyproject.toml build/asan/
rm -f build/asan/plada_codec/_plada_core*.so
.venv/bin/python csrc/build_cffi.py --sanitize build/asan >/dev/null
ls build/asan/plada_codec/_plada_core*.so >/dev/null
LIBASAN="$(gcc -print-file-name=libasan.so)"
export LD_PRELOAD="$LIBASAN"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export PYTHONPATH="$PWD/build/asan"
export PLADA_REQUIRE_C=1
export PLADA_MUTATIONS="${PLADA_MUTATIONS:-3000}"
PY="$PWD/.venv/bin/python"
cd build/asan
"$PY" -c "import plada_codec; assert plada_codec.__file__.startswith('$PWD/'), plada_codec.__file__; assert plada_codec.backend == 'c'"
set +e
# The codec tests are the files marked `pytestmark = pytest.mark.codec` (tests/conftest.py
# registers the marker): found by the marker anywhere under tests/ (tests/spec/, tests/codec/...),
# so a new codec test file needs no line here.
mapfile -t CODEC_TESTS < <(grep -rl --include='test_*.py' '^pytestmark = pytest.mark.codec' tests | sort)
[ "${#CODEC_TESTS[@]}" -gt 0 ] || { echo "no test file is marked codec" >&2; exit 1; }
"$PY" -m pytest -q -p no:cacheprovider -m codec -k "not vectors_are_up_to_date" "${CODEC_TESTS[@]}"
rc=$?
set -e
[ "$rc" -eq 5 ] && { echo "no tests ran under the sanitizers" >&2; exit 1; }
exit "$rc"
