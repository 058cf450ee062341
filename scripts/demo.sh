#!/usr/bin/env bash
# The README's main command: set up, then the PLADA demo on the built-in miniature.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/plada-train demo --out demo-output "$@"
