#!/usr/bin/env bash
# Build the libFuzzer harnesses of the C decode kernels (csrc/) with
# AddressSanitizer and UndefinedBehaviorSanitizer into fuzz/build/.
#   bash fuzz/build_libfuzzer.sh            # all harnesses
#   CC=clang-16 bash fuzz/build_libfuzzer.sh
# Needs clang with libFuzzer (Debian 12: apt-get install -y clang, which pulls
# libclang-rt-14-dev). Exits 2 with a one-line hint when the compiler cannot
# link -fsanitize=fuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."

CC="${CC:-clang}"
OUT="${OUT:-fuzz/build}"
# The warnings of every C build (csrc/build_cffi.py WARNING_FLAGS); -Werror under PLADA_REQUIRE_C=1.
WARN=(-Wall -Wextra -Wshadow)
[ "${PLADA_REQUIRE_C:-}" = "1" ] && WARN+=(-Werror)
FLAGS=("${WARN[@]}" -g -O1 -fno-omit-frame-pointer -std=c99 -D_DEFAULT_SOURCE
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
       -Icsrc)

if ! command -v "$CC" >/dev/null 2>&1; then
    echo "build_libfuzzer.sh: $CC not found; install clang (Debian: apt-get install -y clang)" >&2
    exit 2
fi
mkdir -p "$OUT"
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$probe/p.c"
if ! "$CC" -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" 2>"$probe/err"; then
    echo "build_libfuzzer.sh: $CC cannot link -fsanitize=fuzzer ($(head -n1 "$probe/err")); install libFuzzer (Debian: libclang-rt-<ver>-dev)" >&2
    exit 2
fi

# harness : the C sources it links (the kernels it fuzzes)
declare -A HARNESSES=(
    [fuzz_kernels]="csrc/plada_core.c"
)
# The format 1.1 range decoder, once csrc/plada_cm.c exists.
if [ -f csrc/plada_cm.c ]; then
    HARNESSES[fuzz_range]="csrc/plada_cm.c"
fi

for name in "${!HARNESSES[@]}"; do
    # shellcheck disable=SC2086
    "$CC" "${FLAGS[@]}" "fuzz/libfuzzer/$name.c" ${HARNESSES[$name]} -o "$OUT/$name"
    echo "built $OUT/$name"
done
