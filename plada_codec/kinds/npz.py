"""An ``.npz`` file with an ``x`` array of N images: item i is ``x[i]``, its
name the decimal ``i`` and its digest the array manifest's item digest
(spec/REFERENCE.md section 3.2); ``read`` gives the item's C-order bytes."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .._errors import ReferenceSetError
from ._base import Kind, Listing, PackedStrings, file_signature

# numpy dtype -> the spec's type code for array items (little-endian implied).
# The codes are part of the hashed bytes: renaming one changes fingerprints.
_ARRAY_TYPE_CODES = frozenset(
    ["b1", "u1", "u2", "u4", "u8", "i1", "i2", "i4", "i8", "f2", "f4", "f8"]
)


def array_item_digest(item: np.ndarray) -> str:
    """SHA-256 hex digest of one array item: ``"CODE:SHAPE\\n"`` + little-endian C-order bytes.

    CODE is the element type (``u1``, ``f4``, ...), SHAPE the item's dimensions
    joined by ``x`` (empty for a scalar), e.g. ``b"u1:28x28\\n"`` then 784 bytes.
    """
    item = np.asarray(item)
    code = "b1" if item.dtype.kind == "b" else f"{item.dtype.kind}{item.dtype.itemsize}"
    if code not in _ARRAY_TYPE_CODES:
        raise ReferenceSetError(f"array items of dtype {item.dtype} cannot be fingerprinted")
    data = np.ascontiguousarray(item, dtype=item.dtype.newbyteorder("<"))
    head = f"{code}:{'x'.join(str(d) for d in item.shape)}\n".encode("ascii")
    digest = hashlib.sha256(head)
    digest.update(data.tobytes())
    return digest.hexdigest()



class NpzKind(Kind):
    name = "npz"
    id_rules = ("stem",)

    @classmethod
    def detect(cls, path: Path) -> bool:
        return path.is_file() and path.name.endswith(".npz")

    @classmethod
    def array(cls, path: str) -> np.ndarray:
        """The items: the file's ``x`` array, memory-mapped where it is stored uncompressed."""
        return cls._array(path)

    @classmethod
    def _array(cls, path: str) -> np.ndarray:
        try:
            data = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise ReferenceSetError(f"{path}: not a readable .npz file ({exc})") from None
        with data:
            if "x" not in data.files:
                raise ReferenceSetError(f"{path}: an .npz reference holds its images in an 'x' array "
                                        f"(arrays: {', '.join(data.files)})")
            return data["x"]

    @classmethod
    def scan(cls, path: str, workers: int | None = None, progress: Callable[[int], None] | None = None,
             previous: Listing | None = None) -> Listing:
        array = cls._array(path)
        n = len(array)
        if n == 0:
            raise ReferenceSetError(f"{path}: the 'x' array holds no items")
        return Listing(cls, path, [path], PackedStrings.pack(str(i) for i in range(n)),
                       np.zeros(n, np.int32), np.arange(n, dtype=np.int64), np.full(n, -1, np.int64),
                       file_signature([path]))

    @classmethod
    def signature(cls, path: str) -> list[tuple[str, int, int]]:
        return file_signature([path])

    @classmethod
    def item_names(cls, listing: Listing, rule: str):
        if rule != "stem":
            return super().item_names(listing, "none")
        return iter(listing.names)

    @classmethod
    def read(cls, listing: Listing, i: int) -> bytes:
        return np.ascontiguousarray(cls._item(listing, i)).tobytes()

    @classmethod
    def digest(cls, listing: Listing, i: int) -> str:
        return array_item_digest(cls._item(listing, i))

    @classmethod
    def _item(cls, listing: Listing, i: int) -> np.ndarray:
        handles = listing.handles()
        array = handles.get(0)
        if array is None:
            array = handles[0] = cls._array(listing.sources[0])
        return np.asarray(array[int(listing.offset[i])])

    @classmethod
    def where(cls, listing: Listing, i: int) -> str:
        return f"{listing.sources[0]}[{int(listing.offset[i])}]"
