"""The base of every reference data set: item i -> (input tensor, i), in the
order the reference fingerprint is computed over."""

from __future__ import annotations

import mmap
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

import plada_codec
from plada_codec import PackedStrings, ReferenceSet
from plada_codec.kinds import Listing

from ..preprocess import Preprocess
from .checks import DataError, _apply, _checked_transform, _decode, _first_info, default_preprocess

__all__ = ["ReferenceImages", "ListingImages"]


class ReferenceImages(Dataset):
    """An ordered reference set; item i -> (input tensor, i).

    ``raw(i)`` gives the undecoded-by-model image (a PIL image for files, a uint8
    array (C, H, W) for arrays). Every kind takes ``preprocess=`` (the model's
    recipe, checked against the first image) at construction, as torchvision's
    datasets take ``transform=``; ``set_preprocess`` changes it later. Without
    one, items use the SmallCNN's recipe at native size and channels.
    """

    kind = "reference"

    def __init__(self, source: str) -> None:
        self.source = source
        self._transform = None

    def __len__(self) -> int:
        raise NotImplementedError

    def raw(self, index: int):
        raise NotImplementedError

    def item_id(self, index: int) -> str:
        raise NotImplementedError

    def _fingerprint(self, manifest, rehash: bool, progress: bool = False) -> ReferenceSet:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if self._transform is None:
            self.set_preprocess(default_preprocess(self))
        return _apply(self._transform, self.raw(index), self, index), index

    def _set_initial(self, preprocess: Preprocess | None) -> None:
        # The last step of every kind's constructor: the set is listed and its first image known.
        if preprocess is not None:
            self.set_preprocess(preprocess)

    def set_preprocess(self, preprocess: Preprocess, train: bool = False) -> ReferenceImages:
        """Use *preprocess* for items (checked against the first image first)."""
        self._transform = _checked_transform(preprocess, train, self)
        return self

    def reference_set(self, progress: bool = False) -> ReferenceSet:
        """The fingerprint of this set (the same as ``plada ref-hash``); with
        *progress*, bars of the hashing on standard error (a terminal only)."""
        return self._fingerprint(getattr(self, "_manifest", None), getattr(self, "_rehash", False), progress)

    def describe(self) -> dict[str, Any]:
        """n, channels and image size (of the first item; ``uniform`` says whether
        all items are known to share it)."""
        first = _first_info(self)
        return {"source": self.source, "kind": self.kind, "n": len(self), "channels": first[0],
                "image_size": list(first[1]), "uniform": self._uniform_size()}

    def _uniform_size(self) -> bool | None:
        return None  # unknown without reading every file

    def index_nbytes(self) -> int:
        """Bytes held per set for locating items (ids, offsets): what grows with N."""
        total = 0
        for value in vars(self).values():
            if isinstance(value, PackedStrings):
                total += (0 if _mapped(value.blob) else len(value.blob)) + (0 if _mapped(value.offsets)
                                                                            else value.offsets.nbytes)
            elif isinstance(value, np.ndarray) and not _mapped(value):
                total += value.nbytes
        return total


def _mapped(buffer) -> bool:
    """Whether *buffer* (an array or a memoryview) is a view of a memory-mapped file."""
    while buffer is not None:
        if isinstance(buffer, (np.memmap, mmap.mmap)):
            return True
        buffer = buffer.obj if isinstance(buffer, memoryview) else getattr(buffer, "base", None)
    return False


class ListingImages(ReferenceImages):
    """A reference set read through the codec's :class:`~plada_codec.kinds.Listing`:
    item i is ``listing.read(i)`` (the kind's one reader: positional reads, so
    threads and forked DataLoader workers never share a file position), decoded
    as an image. Subclasses say how the listing is made and fingerprinted."""

    listing: Listing

    def __len__(self) -> int:
        return len(self.listing)

    def read_bytes(self, index: int) -> bytes:
        try:
            return self.listing.read(index)
        except plada_codec.ReferenceSetError as exc:
            raise DataError(f"{exc}") from None

    def where(self, index: int) -> str:
        return self.listing.where(index)

    def raw(self, index: int):
        return _decode(self.read_bytes(index), self.where(index))

    def close(self) -> None:
        self.listing.close()

    def index_nbytes(self) -> int:
        listing = self.listing
        parts = [listing.names, listing.source, listing.offset, listing.size,
                 *(v for v in listing.extra.values() if isinstance(v, (PackedStrings, np.ndarray)))]
        total = 0
        for value in parts:
            if isinstance(value, PackedStrings):
                total += (0 if _mapped(value.blob) else len(value.blob)) + (0 if _mapped(value.offsets)
                                                                            else value.offsets.nbytes)
            elif not _mapped(value):
                total += value.nbytes
        return total

