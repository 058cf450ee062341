#!/usr/bin/env bash
# A long fuzzing campaign: every harness at once, at the lowest CPU priority,
# each for SECONDS (default 3600), corpora kept in fuzz/corpus/<harness>/
# (grown across campaigns), logs in fuzz/logs/<UTC time>/, findings in
# fuzz/findings/.
#   bash fuzz/campaign.sh [SECONDS]
# CAMPAIGN_NICE=N sets the jobs' niceness (default 19, the lowest priority).
# Python jobs run in --keep-going mode: each new kind of finding is saved
# (input + traceback) and the run goes on. libFuzzer jobs stop at their first
# crash and write it to fuzz/findings/crash-<sha1>.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TOTAL="${1:-3600}"
NICE="${CAMPAIGN_NICE:-19}"  # lower it when other work shares the machine: starved jobs hit -timeout
PY="${PYTHON:-.venv/bin/python}"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
LOGS="fuzz/logs/$STAMP"
mkdir -p "$LOGS" fuzz/findings fuzz/corpus
export PYTHONHASHSEED=0

seed() {  # seed KIND DIR: kernel-harness seeds into an empty corpus dir
    if [ ! -d "fuzz/corpus/$2" ] || [ -z "$(ls -A "fuzz/corpus/$2")" ]; then
        "$PY" fuzz/make_kernel_seeds.py "$1" "fuzz/corpus/$2"
    fi
}

COMMON=(-max_total_time="$SECONDS_TOTAL" -print_final_stats=1 -artifact_prefix=fuzz/findings/)
jobs_started=()
start() {  # start NAME COMMAND...
    local name="$1"; shift
    nice -n "$NICE" "$@" >"$LOGS/$name.log" 2>&1 &
    jobs_started+=("$name:$!")
    echo "started $name (pid $!) -> $LOGS/$name.log"
}

# Decoder, every input on both backends (they must agree), checksum-repairing mutator.
start decode-both "$PY" fuzz/fuzz_decode.py --backend=both --keep-going "${COMMON[@]}" fuzz/corpus/decode
# Decoder on the pure path, against the spec's educational decoder, memory traced.
start decode-python-spec "$PY" fuzz/fuzz_decode.py --backend=python --spec-oracle --keep-going \
    --memory-ratio=4 "${COMMON[@]}" fuzz/corpus/decode-python
if [ -f plada_codec/_cm_py.py ]; then
    seed cm cm
    start cm-twins "$PY" fuzz/fuzz_cm.py --keep-going "${COMMON[@]}" fuzz/corpus/cm
fi
if bash fuzz/build_libfuzzer.sh >"$LOGS/build.log" 2>&1; then
    seed kernels kernels
    start kernels fuzz/build/fuzz_kernels "${COMMON[@]}" -rss_limit_mb=2048 fuzz/corpus/kernels
    if [ -x fuzz/build/fuzz_range ]; then
        seed range range
        start range fuzz/build/fuzz_range "${COMMON[@]}" -rss_limit_mb=2048 fuzz/corpus/range
    fi
else
    echo "libFuzzer harnesses not built: $(tail -n1 "$LOGS/build.log")"
fi
# libplada (csrc/libplada/): the C library's public entry points under ASan/UBSan, seeded with
# every vector; then `plada conformance` at a large size against plada-c and the educational decoder.
mkdir -p fuzz/build
LIBPLADA_SOURCES=(csrc/libplada/plada.c csrc/libplada/text.c csrc/libplada/kernels.c csrc/plada_core.c csrc/plada_cm.c)
if "${CC:-clang}" -g -O1 -fno-omit-frame-pointer -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Icsrc/libplada fuzz/fuzz_libplada.c \
        "${LIBPLADA_SOURCES[@]}" -lzstd -lm -o fuzz/build/fuzz_libplada >"$LOGS/build-libplada.log" 2>&1; then
    if [ ! -d fuzz/corpus/libplada ] || [ -z "$(ls -A fuzz/corpus/libplada)" ]; then
        mkdir -p fuzz/corpus/libplada
        cp spec/vectors/v1.*/*.bin spec/vectors/v1.*/invalid/*.bin fuzz/corpus/libplada/
    fi
    start libplada fuzz/build/fuzz_libplada "${COMMON[@]}" -rss_limit_mb=2048 fuzz/corpus/libplada
else
    echo "libplada harness not built: $(tail -n1 "$LOGS/build-libplada.log")"
fi
if make -s -C csrc/libplada BUILD="$PWD/fuzz/build/libplada" >"$LOGS/build-plada-c.log" 2>&1; then
    CONFORMANCE=(--generated 10000 --mutated 90000 --seed "$(date +%s)" --quiet)
    start conformance-plada-c "$PY" -m plada_codec.cli conformance "${CONFORMANCE[@]}" --exact-classes \
        --decoder "fuzz/build/libplada/plada-c decode --json {}" --repro-dir fuzz/findings/conformance-plada-c
    start conformance-educational "$PY" -m plada_codec.cli conformance "${CONFORMANCE[@]}" --workers 1 \
        --decoder educational --repro-dir fuzz/findings/conformance-educational
else
    echo "plada-c not built: $(tail -n1 "$LOGS/build-plada-c.log")"
fi
printf '%s\n' "${jobs_started[@]}" >"$LOGS/pids"
wait
echo "campaign done; summary:"
for log in "$LOGS"/*.log; do
    case "$(basename "$log")" in build*.log) continue ;; esac
    echo "== $(basename "$log" .log)"
    grep -E "^#[0-9]+.*(DONE|cov:)" "$log" | tail -n1 || true
    grep -E "stat::number_of_executed_units|new finding|ERROR|invariant broken|cases \(|disagreements:" "$log" || true
done
