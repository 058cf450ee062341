"""What one tar shard lists as (``kinds/tar.py`` and its C walk ``kinds/_tar_c.py`` both give it)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._base import PackedStrings


class ShardListing(NamedTuple):
    """The samples of one shard in archive order, as flat arrays (cheap to send
    back from a worker process). ``members`` is None where they were not asked for."""

    keys: PackedStrings
    members: PackedStrings | None
    offset: np.ndarray
    size: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)
