"""Uncompressed ``.npz`` files read as memory maps: an index written once is
shared, page by page, by every process that opens it (the page cache holds
one copy), and costs a process only the pages it touches."""

from __future__ import annotations

import io
import math
import mmap
import os
import zipfile
from collections.abc import Iterable
from typing import BinaryIO, Union

import numpy as np

from ._atomic import open_for_reading

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["map_npz", "map_npz_member", "map_npz_cache", "regular_descriptor"]


def _npy_header(stream: BinaryIO, where: str = "") -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, Fortran order, dtype) of the ``.npy`` header at *stream*'s position; ValueError for
    another format version or an object array (unpickling would run code)."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise ValueError(f"{where}.npy format version {version}")
    if dtype.hasobject:
        raise ValueError(f"{where}object arrays are not allowed")
    return shape, fortran, dtype


def map_npz_member(path: PathLike, zf: zipfile.ZipFile, fh: BinaryIO, info: zipfile.ZipInfo) -> np.ndarray:
    """One stored (uncompressed) ``.npy`` member of the zip *zf* at *path*
    (open as *fh*), memory-mapped read-only. ValueError if the member is
    compressed, of another ``.npy`` version, holds objects or is truncated."""
    if info.compress_type != zipfile.ZIP_STORED or not info.filename.endswith(".npy"):
        raise ValueError(f"{path}: {info.filename} is not an uncompressed .npy member")
    fh.seek(info.header_offset)
    local = fh.read(30)
    # The local file header: name length at 26..28, extra length at 28..30 (little-endian).
    name_length = int.from_bytes(local[26:28], "little")
    extra_length = int.from_bytes(local[28:30], "little")
    fh.seek(info.header_offset + 30 + name_length + extra_length)
    shape, fortran, dtype = _npy_header(fh, f"{path}: ")
    start = fh.tell()
    count = int(np.prod(shape)) if shape else 1
    if start + count * dtype.itemsize > os.fstat(fh.fileno()).st_size:
        raise ValueError(f"{path}: truncated")
    if count == 0:
        return np.zeros(shape, dtype)
    # Mapped through the open file, not the path: the file checked is the file mapped.
    return np.memmap(fh, dtype=dtype, mode="r", offset=start, shape=shape, order="F" if fortran else "C")


def _open_regular(path: PathLike) -> BinaryIO:
    """*path* opened for reading if it is a regular file (:func:`open_for_reading`); a
    NotARegularFileError (a ValueError too) otherwise."""
    # A file object that keeps its path as .name: np.memmap records it, so a mapped array
    # travels to spawned workers as (file, offset), not as its bytes.
    return open(path, "rb", opener=lambda name, flags: open_for_reading(name))


def map_npz(path: PathLike, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an uncompressed ``.npz`` (all of them, or those *names*),
    memory-mapped read-only, by name. ValueError (a member compressed, missing
    or not a plain ``.npy``) or zipfile.BadZipFile for anything else."""
    with _open_regular(path) as fh, zipfile.ZipFile(fh) as zf:
        if names is None:
            return {info.filename[:-4]: map_npz_member(path, zf, fh, info) for info in zf.infolist()}
        out = {}
        for name in names:
            try:
                info = zf.getinfo(name + ".npy")
            except KeyError:
                raise ValueError(f"{path}: no array {name!r}") from None
            out[name] = map_npz_member(path, zf, fh, info)
        return out


# -- caches at predictable names: never trusted, never waited on ---------------------------------


def regular_descriptor(path: PathLike, follow: bool) -> int | None:
    """A read-only descriptor of *path* if it is a regular file (:func:`open_for_reading`), else None."""
    try:
        return open_for_reading(path, follow=follow)
    except OSError:
        return None


def map_npz_cache(path: PathLike) -> dict[str, np.ndarray] | None:
    """The arrays of an uncompressed ``.npz`` at *path*, mapped read-only from one
    descriptor, or None for anything else: not a regular file (see :func:`regular_descriptor`),
    not a zip, a compressed member, an object array, a member running past the file."""
    fd = regular_descriptor(path, follow=False)
    if fd is None:
        return None
    try:
        if os.fstat(fd).st_size == 0:
            return None
        mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    try:
        arrays = {}
        with zipfile.ZipFile(mapped) as archive:  # type: ignore[call-overload]
            for info in archive.infolist():
                if info.compress_type != zipfile.ZIP_STORED or not info.filename.endswith(".npy"):
                    return None
                arrays[info.filename[:-4]] = _map_member(mapped, info.header_offset)
        return arrays
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def _map_member(mapped: mmap.mmap, header_offset: int) -> np.ndarray:
    """The ``.npy`` member whose zip local header is at *header_offset*, without a copy."""
    local = mapped[header_offset:header_offset + 30]
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        raise ValueError("not a zip local header")
    # name length at 26..28, extra length at 28..30 (little-endian)
    start = header_offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
    head = io.BytesIO(mapped[start:start + (1 << 16)])
    shape, fortran, dtype = _npy_header(head)
    offset = start + head.tell()
    count = math.prod(shape)
    if count * dtype.itemsize > len(mapped) - offset:
        raise ValueError("member runs past the file")
    flat = np.frombuffer(mapped, dtype, count, offset)
    return flat.reshape(shape, order="F" if fortran else "C")
