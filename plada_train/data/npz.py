"""Arrays of an ``.npz``: memory-mapped when stored uncompressed."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .checks import DataError

__all__ = []


def _npz_array(path: Path, key: str, role: str, required: bool = True) -> np.ndarray | None:
    """One array of a .npz: memory-mapped if stored uncompressed as uint8, else
    loaded (and converted to uint8 by the ImageSet rules for images)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
            if key not in names:
                if not required:
                    return None
                raise DataError(f"{path}: no {key!r} array (found: {', '.join(names) or 'none'}); a {role} "
                                f".npz needs {key!r}")
            info = zf.getinfo(key + ".npy")
            mapped = _memmap_member(path, zf, info) if info.compress_type == zipfile.ZIP_STORED else None
    except zipfile.BadZipFile:
        raise DataError(f"{path}: not a .npz file (not a zip archive); save it with numpy.savez") from None
    if mapped is not None and (key.startswith("y") or mapped.dtype == np.uint8):
        return mapped
    with np.load(path, allow_pickle=False) as data:
        array = data[key]
    if key.startswith("y"):
        return array
    from .builtin import ImageSet

    return ImageSet(array, name=str(path)).images  # the existing float [0, 1] -> uint8 rule


def _memmap_member(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray | None:
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)
        # local file header: 26..28 name length, 28..30 extra length (little-endian)
        name_length, extra_length = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
        start = info.header_offset + 30 + name_length + extra_length
        fh.seek(start)
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            return None
        if fortran or dtype.hasobject:
            return None
        return np.memmap(path, dtype=dtype, mode="r", offset=fh.tell(), shape=shape)
