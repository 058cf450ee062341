"""A folder tree of image files (``train/n01440764/n01440764_10026.JPEG``).

Items are the visible regular files below the folder whose extension (after
the last ``.``, ASCII case folded) is an image extension; names starting with
``.``, symbolic links and special files are not part of it (spec/REFERENCE.md
section 3.3 rules 1-2). Other files (``README.txt``, ``LICENSE``) are counted
and ignored: in a catalog, positions come from ids, so a stray file shifts
nothing. Names are relative paths joined with ``/``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .._errors import ReferenceSetError
from ._base import Kind, Listing, open_regular, read_exactly
from ._walk import walk_folder
from .images import is_image_name


class FolderKind(Kind):
    name = "folder"
    id_rules = ("stem", "key")

    @classmethod
    def detect(cls, path: Path) -> bool:
        return path.is_dir()

    @classmethod
    def scan(cls, path: str, workers: int | None = None, progress: Callable[[int], None] | None = None,
             previous: Listing | None = None) -> Listing:
        walk = walk_folder(path, keep=is_image_name)
        n = len(walk.names)
        if not n:
            raise ReferenceSetError(f"{path}: holds no image files (extensions: see plada_codec.IMAGE_EXTENSIONS)")
        # One row for the whole tree: a digest over every file's name, size and mtime.
        rows = hashlib.sha256()
        for name, nbytes, mtime_ns in walk.rows():
            rows.update(f"{name}\t{nbytes}\t{mtime_ns}\n".encode("utf-8", "surrogateescape"))
        signature = [(f"tree:{rows.hexdigest()}", n, walk.skipped)]
        return Listing(cls, str(path), [], walk.names, np.arange(n, dtype=np.int32), np.zeros(n, np.int64),
                       walk.size, signature, extra={"ignored": walk.skipped})

    @classmethod
    def read(cls, listing: Listing, i: int) -> bytes:
        path = cls.where(listing, i)
        fd = open_regular(path, path)
        try:
            return read_exactly(fd, 0, int(listing.size[i]), path)
        finally:
            os.close(fd)

    @classmethod
    def extent(cls, listing: Listing, i: int) -> tuple[str, int, int]:
        return cls.where(listing, i), 0, int(listing.size[i])

    @classmethod
    def where(cls, listing: Listing, i: int) -> str:
        return os.path.join(listing.root, listing.names[i])
