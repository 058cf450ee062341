"""Reference kind ``array``: ``builtin:pool``, ``builtin:pool-far`` and an
``.npz`` with an ``x`` array (memory-mapped when stored uncompressed)."""

from __future__ import annotations

import numpy as np

from plada_codec import ReferenceSet

from ..preprocess import Preprocess
from .checks import DataError
from .reference import ReferenceImages

__all__ = ["ArrayImages"]


class ArrayImages(ReferenceImages):
    """An in-memory or memory-mapped uint8 array (N, C, H, W); ids ``"0".."N-1"``,
    fingerprinted as ``ReferenceSet.from_array`` (spec 8.2)."""

    kind = "array"

    def __init__(self, images: np.ndarray, source: str = "array", *, preprocess: Preprocess | None = None) -> None:
        super().__init__(source)
        if images.ndim == 3:
            images = images[:, None]
        if images.ndim != 4 or images.dtype != np.uint8:
            raise DataError(f"{source}: expected uint8 images (N, H, W) or (N, C, H, W), got "
                            f"{images.dtype} {images.shape}; convert the array to uint8")
        if len(images) == 0:
            raise DataError(f"{source}: no images; the reference set needs at least one")
        self.images = images
        self._set_initial(preprocess)

    def __len__(self) -> int:
        return len(self.images)

    def __getstate__(self):
        # A memory-mapped array travels to spawned workers as its file position, not its bytes.
        state = self.__dict__.copy()
        if isinstance(self.images, np.memmap) and self.images.filename:
            state["images"] = ("memmap", self.images.filename, self.images.offset, self.images.shape,
                               self.images.dtype.str)
        return state

    def __setstate__(self, state):
        images = state["images"]
        if isinstance(images, tuple):
            _, filename, offset, shape, dtype = images
            state["images"] = np.memmap(filename, dtype=np.dtype(dtype), mode="r", offset=offset, shape=shape)
        self.__dict__.update(state)

    def raw(self, index: int) -> np.ndarray:
        return np.asarray(self.images[index])

    def item_id(self, index: int) -> str:
        return str(index)

    def _fingerprint(self, manifest, rehash, progress=False) -> ReferenceSet:
        return ReferenceSet.from_array(self.images)

    def _uniform_size(self) -> bool:
        return True
