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
from pathlib import Path

import numpy as np

from .._errors import ReferenceSetError
from ._base import Kind, Listing, PackedStrings, read_exactly
from .images import is_image_name


class FolderKind(Kind):
    name = "folder"
    id_rules = ("stem", "key")

    @classmethod
    def detect(cls, path: Path) -> bool:
        return path.is_dir()

    @classmethod
    def scan(cls, path: str) -> Listing:
        root = Path(path)
        if not root.is_dir():
            raise ReferenceSetError(f"{root}: not a folder" if root.exists() else f"{root}: no such folder")
        names: list[str] = []
        sizes: list[int] = []
        mtimes: list[int] = []
        ignored = 0
        stack = [(str(root), "")]
        while stack:
            folder, prefix = stack.pop()
            try:
                with os.scandir(folder) as listing:
                    children = list(listing)
            except OSError as exc:
                raise ReferenceSetError(f"{folder}: cannot list ({exc.strerror or exc})") from exc
            for child in children:
                if child.name.startswith("."):
                    continue
                name = prefix + child.name
                try:
                    if child.is_dir(follow_symlinks=False):
                        stack.append((child.path, name + "/"))
                        continue
                    if not child.is_file(follow_symlinks=False):
                        continue  # symbolic link, FIFO, socket, device
                    if not is_image_name(child.name):
                        ignored += 1
                        continue
                    stat = child.stat(follow_symlinks=False)
                except OSError as exc:
                    raise ReferenceSetError(f"{child.path}: cannot stat ({exc.strerror or exc})") from exc
                names.append(name)
                sizes.append(stat.st_size)
                mtimes.append(stat.st_mtime_ns)
        if not names:
            raise ReferenceSetError(f"{root}: holds no image files (extensions: see plada_codec.IMAGE_EXTENSIONS)")
        order = sorted(range(len(names)), key=names.__getitem__)
        names = [names[i] for i in order]
        size = np.asarray(sizes, np.int64)[order]
        mtime = np.asarray(mtimes, np.int64)[order]
        packed = PackedStrings.pack(names)
        # One row for the whole tree: a digest over every file's name, size and mtime.
        rows = hashlib.sha256()
        for name, nbytes, mtime_ns in zip(names, size.tolist(), mtime.tolist()):
            rows.update(f"{name}\t{nbytes}\t{mtime_ns}\n".encode("utf-8", "surrogateescape"))
        signature = [(f"tree:{rows.hexdigest()}", len(names), ignored)]
        n = len(names)
        return Listing(cls, str(root), [], packed, np.arange(n, dtype=np.int32), np.zeros(n, np.int64), size,
                       signature, extra={"ignored": ignored})

    @classmethod
    def read(cls, listing: Listing, i: int) -> bytes:
        path = os.path.join(listing.root, listing.names[i])
        try:
            with open(path, "rb") as fh:
                return read_exactly(fh, 0, int(listing.size[i]), path)
        except OSError as exc:
            raise ReferenceSetError(f"{path}: cannot be read ({exc.strerror or exc}); "
                                    "the folder changed since it was listed") from None

    @classmethod
    def where(cls, listing: Listing, i: int) -> str:
        return os.path.join(listing.root, listing.names[i])
