"""Reference kind ``folder``: every visible regular file below a folder, in
the canonical order of ``plada_codec.ReferenceSet.folder_files``; each must be
an image (a stray file would shift every index after it)."""

from __future__ import annotations

import os
from pathlib import Path

import plada_codec
from plada_codec import ReferenceSet
from plada_codec.kinds.images import is_image_name

from .._tar_index import _Strings
from .checks import IMAGE_EXTENSIONS, DataError, _decode, _first_info
from .reference import ReferenceImages

__all__ = ["FolderImages"]


class FolderImages(ReferenceImages):
    """Every regular file below *root*, in canonical order; each must be an image."""

    kind = "folder"

    def __init__(self, root: str | os.PathLike) -> None:
        root = Path(root)
        super().__init__(str(root))
        self.root = str(root)
        try:
            ids = ReferenceSet.folder_files(root)
        except plada_codec.ReferenceSetError as exc:
            if "no visible regular files" in str(exc):
                ids = []
            else:
                raise DataError(f"{exc}; rename or move the offending entry") from None
        if not ids:
            raise DataError(f"{root}: the folder holds no files; point the reference at a folder of images")
        for item_id in ids:
            if not is_image_name(item_id):
                raise DataError(f"{root}: {item_id!r} is not an image file (extensions: "
                                f"{' '.join(sorted(IMAGE_EXTENSIONS))}); a folder reference is every file "
                                f"below it: move that file out")
        self._ids = _Strings(ids)
        del ids
        _first_info(self)  # decode the first image now: a wrong folder fails before any work

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

    def _fingerprint(self, manifest, rehash) -> ReferenceSet:
        return ReferenceSet.open(self.root, manifest=manifest, rehash=rehash, kind="folder")
