"""``python -m plada_train`` (and ``torchrun -m plada_train``): the ``plada-train`` CLI."""

import sys

try:
    from .cli import main

    status = main()
except KeyboardInterrupt:  # Ctrl-C while the CLI itself was still being imported
    status = 130
sys.exit(status)
