"""Reference kind ``folder``: every visible regular file below a folder, in
the canonical order of ``plada_codec.ReferenceSet.folder_files``; each must be
an image (a stray file would shift every index after it)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

import plada_codec
from plada_codec import ReferenceSet
from plada_codec.kinds import FolderWalk, Listing
from plada_codec.kinds.folder import FolderKind
from plada_codec.kinds.images import is_image_name

from ..preprocess import Preprocess
from .checks import IMAGE_EXTENSIONS, DataError, _first_info
from .reference import ListingImages

__all__ = ["FolderImages"]


class FolderImages(ListingImages):
    """Every regular file below *root*, in canonical order; each must be an image.

    The listing is the codec's :class:`~plada_codec.kinds.Listing` of the folder
    (the paths' UTF-8 bytes, their offsets and sizes), about 16 bytes an item
    more than the paths themselves. With *shared_index*, a listing that another
    process of this job saved for the same folder moments before
    (``Listing.save``), the listing is memory-mapped from it instead of walking
    the folder again: processes on one machine then share one copy; one that
    does not check out is a miss, listed again. With *progress*, a bar of the
    files listed (standard error, a terminal only)."""

    kind = "folder"

    def __init__(self, root: str | os.PathLike, shared_index: str | os.PathLike | None = None,
                 progress: bool = False, *, preprocess: Preprocess | None = None) -> None:
        root = Path(root)
        super().__init__(str(root))
        self.root = str(root)
        # The walk (ids, sizes, mtimes) is kept until the fingerprint is asked for, which
        # checks it against the manifest cache instead of walking the folder again.
        self._walk = None
        listing = Listing.load(shared_index, FolderKind) if shared_index is not None else None
        if listing is not None and listing.root != os.path.abspath(self.root):
            listing = None
        if listing is None:
            self._walk = self._list(root, progress)
            n = len(self._walk.names)
            listing = Listing(FolderKind, os.path.abspath(self.root), [], self._walk.names,
                              np.zeros(n, np.int32), np.zeros(n, np.int64), self._walk.size, [])
            if shared_index is not None:
                listing.save(shared_index)
        self.listing = listing
        _first_info(self)  # decode the first image now: a wrong folder fails before any work
        self._set_initial(preprocess)

    def _list(self, root: Path, progress: bool) -> FolderWalk:
        try:
            walk = ReferenceSet.folder_listing(root, progress)
        except plada_codec.ReferenceSetError as exc:
            if "no visible regular files" in str(exc):
                raise DataError(f"{root}: the folder holds no files; point the reference at a folder of images") \
                    from None
            raise DataError(f"{exc}; rename or move the offending entry") from None
        for item_id in walk.names:
            if not is_image_name(item_id):
                raise DataError(f"{root}: {item_id!r} is not an image file (extensions: "
                                f"{' '.join(sorted(IMAGE_EXTENSIONS))}); a folder reference is every file "
                                f"below it: move that file out")
        return walk

    def item_id(self, index: int) -> str:
        return self.listing.names[index]

    def where(self, index: int) -> str:
        return os.path.join(self.root, self.listing.names[index])

    def _fingerprint(self, manifest, rehash, progress=False) -> ReferenceSet:
        walk, self._walk = self._walk, None
        return ReferenceSet.open(self.root, manifest=manifest, rehash=rehash, kind="folder", listing=walk,
                                 progress=progress)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_walk"] = None  # DataLoader workers (spawned) need the listing only
        return state
