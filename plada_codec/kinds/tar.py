"""WebDataset-style tar shards, in any order and under any shard names.

Samples are read by the tar rules of spec/REFERENCE.md section 3.4 (a sample
is the adjacent members sharing a key; exactly one image member; ``.cls``,
``.json`` and other siblings ignored). A sample's name is its key, without the
shard's name, so shuffled shards of the same images give the same names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._errors import ReferenceSetError
from ._base import Kind, Listing, PackedStrings, file_signature, holds_only, read_exactly


def _shard_files(path: Path) -> list[str]:
    from .._reference import tar_shards

    return tar_shards(path)


class TarKind(Kind):
    name = "tar"
    id_rules = ("stem", "key")

    @classmethod
    def detect(cls, path: Path) -> bool:
        if path.is_file():
            if path.name.endswith((".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar.zst")):
                raise ReferenceSetError(
                    f"{path}: compressed tar shards cannot be read by offset; store them uncompressed (.tar)"
                )
            return path.name.endswith(".tar")
        return holds_only(path, ".tar")

    @classmethod
    def scan(cls, path: str) -> Listing:
        from .._reference import _shard_images

        shards = _shard_files(Path(path))
        names, sources, offsets, sizes = [], [], [], []
        for number, shard in enumerate(shards):
            images = list(_shard_images(shard))
            names.append(PackedStrings.pack(t.key for t in images))
            sources.append(np.full(len(images), number, np.int32))
            offsets.append(np.fromiter((t.offset for t in images), np.int64, len(images)))
            sizes.append(np.fromiter((t.size for t in images), np.int64, len(images)))
        packed = PackedStrings.concatenate(names)
        if not len(packed):
            raise ReferenceSetError(f"{path}: the tar shards hold no image samples")
        return Listing(cls, path, shards, packed, np.concatenate(sources), np.concatenate(offsets),
                       np.concatenate(sizes), file_signature(shards))

    @classmethod
    def signature(cls, path: str) -> list[tuple[str, int, int]]:
        return file_signature(_shard_files(Path(path)))

    @classmethod
    def read(cls, listing: Listing, i: int) -> bytes:
        handles = listing.handles()
        number = int(listing.source[i])
        fh = handles.get(number)
        shard = listing.sources[number]
        if fh is None:
            try:
                fh = handles[number] = open(shard, "rb")
            except OSError as exc:
                raise ReferenceSetError(f"{shard}: cannot be read ({exc.strerror or exc})") from None
        return read_exactly(fh, int(listing.offset[i]), int(listing.size[i]), f"{shard}:{listing.names[i]}")

    @classmethod
    def where(cls, listing: Listing, i: int) -> str:
        return f"{listing.sources[listing.source[i]]}:{listing.names[i]}"
