"""The member index of one tar shard as flat arrays.

Listing is pure-Python ``tarfile`` work (about 70 us a member), which threads
cannot overlap, so ``TarImages(index_workers=...)`` runs this function in
worker processes; it returns flat arrays, cheap to send back, and needs
nothing from torch.
"""

from __future__ import annotations

import os

import numpy as np

import plada_codec

# (offsets, sizes, ids blob, ids offsets, members blob, members offsets)
ShardIndex = tuple[np.ndarray, np.ndarray, bytes, np.ndarray, bytes, np.ndarray]


def _packed(strings: list[str]) -> tuple[bytes, np.ndarray]:
    encoded = [s.encode("utf-8") for s in strings]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return b"".join(encoded), offsets


def shard_index(shard: str) -> ShardIndex:
    """Data offsets, sizes, item ids (``<shard file name>/<key>``) and member
    names of *shard*'s images in archive order; an empty shard gives empty
    arrays. Raises ``plada_codec.ReferenceSetError`` for a shard that breaks
    the tar rules of ``plada_codec.tar_images``."""
    try:
        images = plada_codec.tar_images([shard])
    except plada_codec.ReferenceSetError as exc:
        if "hold no images" not in str(exc):
            raise
        images = []
    name = os.path.basename(shard)
    offsets = np.fromiter((t.offset for t in images), np.int64, len(images))
    sizes = np.fromiter((t.size for t in images), np.int64, len(images))
    ids = _packed([f"{name}/{t.key}" for t in images])
    members = _packed([t.member for t in images])
    return offsets, sizes, *ids, *members
