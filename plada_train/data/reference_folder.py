"""Reference kind ``folder``: every visible regular file below a folder, in
the canonical order of ``plada_codec.ReferenceSet.folder_files``; each must be
an image (a stray file would shift every index after it)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

import plada_codec
from plada_codec import PackedStrings, ReferenceSet, map_npz, write_atomically
from plada_codec.kinds import FolderWalk
from plada_codec.kinds.images import is_image_name

from ..preprocess import Preprocess
from .checks import IMAGE_EXTENSIONS, DataError, _decode, _first_info
from .reference import ReferenceImages

__all__ = ["FolderImages"]


class FolderImages(ReferenceImages):
    """Every regular file below *root*, in canonical order; each must be an image.

    The listing is two arrays (the ids' UTF-8 bytes and their offsets), about
    8 bytes an item more than the ids themselves. With *shared_index*, a file
    that another process of this job wrote for the same folder moments before
    (``save_index``), the listing is memory-mapped from it instead of walking
    the folder again: processes on one machine then share one copy. With
    *progress*, a bar of the files listed (standard error, a terminal only)."""

    kind = "folder"
    _INDEX_VERSION = 1

    def __init__(self, root: str | os.PathLike, shared_index: str | os.PathLike | None = None,
                 progress: bool = False, *, preprocess: Preprocess | None = None) -> None:
        root = Path(root)
        super().__init__(str(root))
        self.root = str(root)
        # The walk (ids, sizes, mtimes) is kept until the fingerprint is asked for, which
        # checks it against the manifest cache instead of walking the folder again.
        self._walk = None
        ids = self._load_index(Path(shared_index)) if shared_index is not None else None
        if ids is None:
            self._walk = self._list(root, progress)
            ids = self._walk.names
            if shared_index is not None:
                self.save_index(shared_index, ids)
        self._ids = ids
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

    def save_index(self, path: str | os.PathLike, ids: PackedStrings | None = None) -> None:
        """Write the listing to *path* (an uncompressed ``.npz``, atomically)."""
        ids = self._ids if ids is None else ids

        def write(fh) -> None:
            np.savez(fh, version=self._INDEX_VERSION, root=np.array(os.path.abspath(self.root)),
                     ids_blob=np.frombuffer(ids.blob, np.uint8), ids_offsets=ids.offsets)

        write_atomically(Path(path), write)

    def _load_index(self, path: Path) -> PackedStrings | None:
        try:
            data = map_npz(path)
            if int(data["version"]) != self._INDEX_VERSION or str(data["root"]) != os.path.abspath(self.root):
                return None
            offsets = data["ids_offsets"]
            if len(offsets) < 2 or int(offsets[-1]) != len(data["ids_blob"]):
                return None
            return PackedStrings(data["ids_blob"], offsets)
        except FileNotFoundError:
            return None
        except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile) as exc:
            raise DataError(f"{path}: unreadable folder index ({exc}); delete it") from None

    def __len__(self) -> int:
        return len(self._ids)

    def item_id(self, index: int) -> str:
        return self._ids[index]

    def read_bytes(self, index: int) -> bytes:
        path = os.path.join(self.root, self._ids[index])
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise DataError(f"{path}: cannot be read ({exc.strerror}); the folder changed since it was "
                            f"listed") from None

    def raw(self, index: int):
        return _decode(self.read_bytes(index), os.path.join(self.root, self._ids[index]))

    def _fingerprint(self, manifest, rehash, progress=False) -> ReferenceSet:
        walk, self._walk = self._walk, None
        return ReferenceSet.open(self.root, manifest=manifest, rehash=rehash, kind="folder", listing=walk,
                                 progress=progress)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_walk"] = None  # DataLoader workers (spawned) need the ids only
        return state
