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
printf '%s\n' "${jobs_started[@]}" >"$LOGS/pids"
wait
echo "campaign done; summary:"
for log in "$LOGS"/*.log; do
    [ "$(basename "$log")" = build.log ] && continue
    echo "== $(basename "$log" .log)"
    grep -E "^#[0-9]+.*(DONE|cov:)" "$log" | tail -n1 || true
    grep -E "stat::number_of_executed_units|new finding|ERROR|invariant broken" "$log" || true
done
