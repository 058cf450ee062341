"""The member index of one tar shard as flat arrays.

Listing is pure-Python ``tarfile`` work (about 70 us a member), which threads
cannot overlap, so ``TarImages(index_workers=...)`` runs this function in
worker processes; it returns flat arrays (strings packed by the codec's
``PackedStrings``, which the datasets use too), cheap to send back, and needs
nothing from torch.
"""

from __future__ import annotations

import os

import numpy as np

import plada_codec
from plada_codec import PackedStrings

# (data offsets, sizes, item ids, member names)
ShardIndex = tuple[np.ndarray, np.ndarray, PackedStrings, PackedStrings]


def shard_index(shard: str) -> ShardIndex:
    """Data offsets, sizes, item ids (``<shard file name>/<key>``) and member
    names of *shard*'s images in archive order; an empty shard gives empty
    arrays. Raises ``plada_codec.ReferenceSetError`` for a shard that breaks
    the tar rules of ``plada_codec.tar_images``, which is also what finds a
    shard cut inside a member header (tarfile alone would stop there silently
    and list a shorter shard)."""
    try:
        images = plada_codec.tar_images([shard])
    except plada_codec.ReferenceSetError as exc:
        if "hold no images" not in str(exc):
            raise
        images = []
    name = os.path.basename(shard)
    offsets = np.fromiter((t.offset for t in images), np.int64, len(images))
    sizes = np.fromiter((t.size for t in images), np.int64, len(images))
    return (offsets, sizes, PackedStrings.pack(f"{name}/{t.key}" for t in images),
            PackedStrings.pack(t.member for t in images))
