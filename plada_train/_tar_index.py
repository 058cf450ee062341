"""The member index of one tar shard as flat arrays.

Listing is pure-Python ``tarfile`` work (about 70 us a member), which threads
cannot overlap, so ``TarImages(index_workers=...)`` runs this function in
worker processes; it returns flat arrays (strings packed by ``_Strings``,
which the datasets use too), cheap to send back, and needs nothing from torch.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np

import plada_codec


class _Strings:
    """N strings in one UTF-8 blob + an offsets array: two objects instead of N."""

    def __init__(self, strings: Iterable[str]) -> None:
        encoded = [s.encode("utf-8") for s in strings]
        self._offsets = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum([len(b) for b in encoded], out=self._offsets[1:])
        self._blob = b"".join(encoded)

    @classmethod
    def concatenate(cls, parts: Sequence[_Strings]) -> _Strings:
        joined = cls(())
        joined._blob = b"".join(p._blob for p in parts)
        lengths = np.concatenate([np.diff(p._offsets) for p in parts]) if parts else np.zeros(0, np.int64)
        joined._offsets = np.zeros(len(lengths) + 1, np.int64)
        np.cumsum(lengths, out=joined._offsets[1:])
        return joined

    @classmethod
    def from_arrays(cls, blob: np.ndarray, offsets: np.ndarray) -> _Strings:
        strings = cls(())
        strings._blob, strings._offsets = blob.tobytes(), np.asarray(offsets, np.int64)
        return strings

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def nbytes(self) -> int:
        return len(self._blob) + self._offsets.nbytes

    def __getitem__(self, i: int) -> str:
        return self._blob[self._offsets[i] : self._offsets[i + 1]].decode("utf-8")

    def __iter__(self):
        return (self[i] for i in range(len(self)))



# (data offsets, sizes, item ids, member names)
ShardIndex = tuple[np.ndarray, np.ndarray, _Strings, _Strings]


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
    return offsets, sizes, _Strings(f"{name}/{t.key}" for t in images), _Strings(t.member for t in images)
