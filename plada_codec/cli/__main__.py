"""``python -m plada_codec.cli``: the ``plada`` CLI."""

import sys

from . import main

sys.exit(main())
