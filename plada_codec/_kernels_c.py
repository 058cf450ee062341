"""The C core's kernels behind the same signatures as ``_kernels_py``.

Buffers are allocated here (numpy), passed with ``ffi.from_buffer``, and C
status codes become exceptions through ``_kernel_errors.raise_status``, the
same function the numpy twins call.
"""

from __future__ import annotations

import numpy as np

from . import _kernel_errors as ke
from ._plada_core import ffi, lib  # ImportError when the extension was not built

name = "c"


def _src(buf):
    """A read-only uint8 view of *buf* and its length, without copying."""
    array = np.frombuffer(buf, dtype=np.uint8)
    return ffi.from_buffer("uint8_t[]", array), array.size


def _check(status: int, err, where: str, first: int = 0) -> None:
    if status:
        ke.raise_status(status, where, first + err.position, err.expected, err.actual)


def pack_bits(values: np.ndarray, width: int) -> bytes:
    values = np.ascontiguousarray(values, dtype=np.uint64)
    if not 0 <= width <= 64:
        ke.raise_status(ke.ERR_ARG, "pack_bits", 0, 64, width)
    out = np.empty((values.size * width + 7) // 8, dtype=np.uint8)
    err = ffi.new("plada_error *")
    status = lib.plada_pack_bits(
        ffi.from_buffer("uint64_t[]", values), values.size, width,
        ffi.from_buffer("uint8_t[]", out, require_writable=True), out.size, err,
    )
    _check(status, err, "pack_bits")
    return out.tobytes()


def unpack_bits(buf, count: int, width: int, out: np.ndarray | None = None) -> np.ndarray:
    if not 0 <= width <= 64:
        ke.raise_status(ke.ERR_ARG, "unpack_bits", 0, 64, width)
    src, size = _src(buf)
    need = (count * width + 7) // 8
    if size < need:  # checked before allocating count outputs
        ke.raise_status(ke.ERR_LENGTH, "unpack_bits", 0, need, size)
    if out is None:
        out = np.empty(count, dtype=np.uint64)
    elif out.dtype != np.uint64 or out.shape != (count,) or not out.flags.c_contiguous:
        raise ValueError(f"out must be a contiguous uint64 array of {count} values")
    err = ffi.new("plada_error *")
    status = lib.plada_unpack_bits(
        src, size, count, width, ffi.from_buffer("uint64_t[]", out, require_writable=True), err
    )
    _check(status, err, "unpack_bits")
    return out


def delta_encode(indices: np.ndarray) -> bytes:
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    cap = lib.plada_delta_bound(indices.size)
    out = np.empty(cap, dtype=np.uint8)
    out_len = ffi.new("size_t *")
    err = ffi.new("plada_error *")
    status = lib.plada_delta_encode(
        ffi.from_buffer("int64_t[]", indices), indices.size,
        ffi.from_buffer("uint8_t[]", out, require_writable=True), cap, out_len, err,
    )
    _check(status, err, "delta_encode")
    return out[: out_len[0]].tobytes()


def delta_decode(raw, count: int, n_ref: int, *, first: int = 0, start: int = 0) -> np.ndarray:
    where = "index section (index-delta)"
    src, size = _src(raw)
    if size < (count + 127) // 128:  # nothing sized by count before the width table fits
        ke.raise_status(ke.ERR_LENGTH, where, 0, (count + 127) // 128, size)
    out = np.empty(count, dtype=np.int64)
    err = ffi.new("plada_error *")
    # Indices after *start* are below n_ref iff, counted from start, they are
    # below n_ref - start: the kernel decodes the chunk as a whole body would.
    status = lib.plada_delta_decode(
        src, size, count, n_ref - start, ffi.from_buffer("int64_t[]", out, require_writable=True), err
    )
    if status == ke.ERR_RANGE:
        ke.raise_status(status, where, first + err.position, n_ref, 0)
    _check(status, err, where, first)
    if start:
        out += start
    return out


def bitmap_encode(indices: np.ndarray, n_ref: int) -> bytes:
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    out = np.empty((n_ref + 7) // 8, dtype=np.uint8)
    err = ffi.new("plada_error *")
    status = lib.plada_bitmap_encode(
        ffi.from_buffer("int64_t[]", indices), indices.size, n_ref,
        ffi.from_buffer("uint8_t[]", out, require_writable=True), out.size, err,
    )
    _check(status, err, "bitmap_encode")
    return out.tobytes()


def bitmap_decode(raw, count: int, n_ref: int) -> np.ndarray:
    src, size = _src(raw)
    out = np.empty(count, dtype=np.int64)
    err = ffi.new("plada_error *")
    status = lib.plada_bitmap_decode(
        src, size, count, n_ref, ffi.from_buffer("int64_t[]", out, require_writable=True), err
    )
    _check(status, err, "index section (bitmap)")
    return out


def labels_encode(labels: np.ndarray, width: int) -> bytes:
    return pack_bits(np.asarray(labels).astype(np.uint64), width)


def labels_decode(raw, count: int, width: int, n_classes: int, *, first: int = 0) -> np.ndarray:
    src, size = _src(raw)
    need = (count * width + 7) // 8
    if size != need:
        ke.raise_status(ke.ERR_LENGTH, "label section (packed)", 0, need, size)
    out = np.empty(count, dtype=np.int32)
    err = ffi.new("plada_error *")
    status = lib.plada_labels_decode(
        src, size, count, width, n_classes, ffi.from_buffer("int32_t[]", out, require_writable=True), err
    )
    _check(status, err, "label section (packed)", first)
    return out
