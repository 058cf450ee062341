#!/usr/bin/env bash
# Build the documentation site (mkdocs.yml, docs/) strictly: a broken link or anchor, a page left
# out of the nav, or a public name of plada_codec / plada_train without a docstring
# (docs/_hooks/docstrings.py) fails the build. The site goes to a temporary folder, removed after.
# The API pages are read statically (griffe): building them imports neither package, nor torch.
set -euo pipefail
cd "$(dirname "$0")/.."
MKDOCS="${MKDOCS:-.venv/bin/mkdocs}"
if [ ! -x "$MKDOCS" ]; then
    echo "docs: $MKDOCS not found; run bash scripts/setup.sh (it installs the 'docs' extra)" >&2
    exit 2
fi
site="$(mktemp -d)"
trap 'rm -rf "$site"' EXIT
NO_MKDOCS_2_WARNING=1 "$MKDOCS" build --strict -d "$site" "$@"
