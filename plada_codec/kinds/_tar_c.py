"""The tar shard lister's hot loop in C: :func:`list_shard_c`, tried first by
:func:`plada_codec.kinds.tar.list_shard`.

csrc/plada_tar.c walks the headers and applies the sample rules of
spec/REFERENCE.md section 3.4 in one pass over the memory-mapped shard, and
writes the samples as the flat arrays of a :class:`~.tar.ShardListing`: no
Python object a member. It decides only what ``tar.py``'s fast walk and
``_samples`` decide; for anything else (a shard tarfile must read, a sample
that breaks a rule, an id that is not a valid manifest id) this module returns
None and ``tar.py`` lists the shard again, giving the reference result or
error message. The C path is used only when the backend is ``c``
(:mod:`plada_codec._backend`), so ``PLADA_BACKEND=python`` runs the Python
lister alone.
"""

from __future__ import annotations

import mmap
import os

import numpy as np

from .. import _backend
from ._base import PackedStrings
from ._shard import ShardListing
from .images import IMAGE_EXTENSIONS

try:
    from .._plada_core import ffi, lib
except ImportError:  # not built: the backend is python, and this path is never taken
    ffi = lib = None

__all__ = ["list_shard_c"]

# plada_tar_list's statuses (plada_core.h): its own plain int, not the codec's plada_status.
_OK, _UNSURE, _RULE = 0, 1, 2
_BLOCK = 512
_EXTENSIONS = b"\0".join(sorted(e.encode("ascii") for e in IMAGE_EXTENSIONS))
# The key table's hash seed: keys chosen to collide would need it (and only send the shard to Python).
_SEED = int.from_bytes(os.urandom(8), "little")


def list_shard_c(shard: str) -> ShardListing | None:
    """The samples of *shard* as the C walk lists them, or None: the backend is
    not ``c``, the shard cannot be opened or mapped, or the Python lister must
    decide it (and word its error)."""
    if lib is None or _backend.backend != "c":
        return None
    try:
        with open(shard, "rb") as fh:
            length = os.fstat(fh.fileno()).st_size
            if length < _BLOCK:
                return None
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _list(data, length, os.path.basename(shard))
    except (OSError, ValueError):  # the Python lister opens it again and says why
        return None


def _list(data: mmap.mmap, length: int, shard_name: str) -> ShardListing | None:
    # A shard of L bytes holds at most L / 512 members, and a sample's key and
    # image name at most half the blocks that hold them (a 256-byte ustar name
    # in its 512-byte header; an L or pax name in its own blocks plus the
    # member's header): outputs sized from L, never from what the file says.
    length = min(length, len(data))  # a file cut since fstat: never read past the map
    cap = length // _BLOCK
    blob_cap = length // 2 + _BLOCK
    keys = np.empty(blob_cap, np.uint8)
    names = np.empty(blob_cap, np.uint8)
    key_offsets = np.empty(cap + 1, np.int64)
    name_offsets = np.empty(cap + 1, np.int64)
    offset = np.empty(cap, np.int64)
    size = np.empty(cap, np.int64)
    table = np.zeros(1 << (4 * cap).bit_length(), np.uint32)  # a load of 1/4 at most
    count = ffi.new("size_t *")
    with ffi.from_buffer("uint8_t[]", data) as src:
        status = lib.plada_tar_list(
            src, length, _EXTENSIONS, len(_EXTENSIONS),
            ffi.from_buffer("uint8_t[]", keys, require_writable=True), blob_cap,
            ffi.from_buffer("int64_t[]", key_offsets, require_writable=True),
            ffi.from_buffer("uint8_t[]", names, require_writable=True), blob_cap,
            ffi.from_buffer("int64_t[]", name_offsets, require_writable=True),
            ffi.from_buffer("int64_t[]", offset, require_writable=True),
            ffi.from_buffer("int64_t[]", size, require_writable=True), cap,
            ffi.from_buffer("uint32_t[]", table, require_writable=True), len(table), _SEED, count,
        )
    if status != _OK:
        if status not in (_UNSURE, _RULE):
            raise AssertionError(f"plada_tar_list: status {status}, an argument outside its contract")
        return None
    n = count[0]
    key_offsets, name_offsets = key_offsets[:n + 1].copy(), name_offsets[:n + 1].copy()
    key_blob = keys[:key_offsets[-1]].tobytes()
    return ShardListing(PackedStrings(key_blob, key_offsets),
                        PackedStrings(names[:name_offsets[-1]].tobytes(), name_offsets),
                        offset[:n].copy(), size[:n].copy())
