"""Arrays of an ``.npz``: memory-mapped when stored uncompressed."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from plada_codec import map_npz

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
            mapped = _try_map(path, zf, info)
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


def _try_map(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray | None:
    """The member memory-mapped, or None where it cannot be (compressed, another .npy version)."""
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    try:
        return map_npz(path, [info.filename[:-4]])[info.filename[:-4]]
    except ValueError:
        return None
