"""The C backend: the C core's kernels (csrc/) over cffi, as one :class:`~plada_codec._kernels.Kernels` object.

Same signatures, bytes and exceptions as ``_kernels_py``. Buffers are
allocated here (numpy) and passed with ``ffi.from_buffer``; C status codes
become exceptions through ``_status.raise_status``, the function the numpy
twins call.
"""

from __future__ import annotations

import numpy as np

from ._cm_py import PRESETS
from ._kernels import Kernels
from ._plada_core import ffi, lib  # ImportError when the extension was not built
from ._status import Status, raise_cm, raise_status


def _src(buf):
    """A read-only uint8 view of *buf* and its length, without copying."""
    array = np.frombuffer(buf, dtype=np.uint8)
    return ffi.from_buffer("uint8_t[]", array), array.size


def _check(status: int, err, where: str, first: int = 0) -> None:
    if status:
        raise_status(status, where, first + err.position, err.expected, err.actual)


def pack_bits(values: np.ndarray, width: int) -> bytes:
    values = np.ascontiguousarray(values, dtype=np.uint64)
    if not 0 <= width <= 64:
        raise_status(Status.ARG, "pack_bits", 0, 64, width)
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
        raise_status(Status.ARG, "unpack_bits", 0, 64, width)
    src, size = _src(buf)
    need = (count * width + 7) // 8
    if size < need:  # checked before allocating count outputs
        raise_status(Status.LENGTH, "unpack_bits", 0, need, size)
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
        raise_status(Status.LENGTH, where, 0, (count + 127) // 128, size)
    out = np.empty(count, dtype=np.int64)
    err = ffi.new("plada_error *")
    # Indices after *start* are below n_ref iff, counted from start, they are
    # below n_ref - start: the kernel decodes the chunk as a whole body would.
    status = lib.plada_delta_decode(
        src, size, count, n_ref - start, ffi.from_buffer("int64_t[]", out, require_writable=True), err
    )
    if status == Status.RANGE:
        raise_status(status, where, first + err.position, n_ref, 0)
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
        raise_status(Status.LENGTH, "label section (packed)", 0, need, size)
    out = np.empty(count, dtype=np.int32)
    err = ffi.new("plada_error *")
    status = lib.plada_labels_decode(
        src, size, count, width, n_classes, ffi.from_buffer("int32_t[]", out, require_writable=True), err
    )
    _check(status, err, "label section (packed)", first)
    return out


# -- format 1.1: the context model (FORMAT.md 15; the pure twin is _cm_py) ---------
# Most streams are far below plada_cm_bound (136 bytes a pair); try this first.
_FIRST_TRY_BYTES_PER_PAIR = 16


def _params(preset):
    params = ffi.new("plada_cm_params *")
    params.slots = preset.slots
    params.mantissa_bits = preset.mantissa_bits
    params.average_shift = preset.average_shift
    params.rate_limit = preset.rate_limit
    return params


def cm_encode(indices, labels, n_ref: int, n_classes: int, preset_id: int) -> bytes:
    preset = PRESETS[preset_id]
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    labels = np.ascontiguousarray(labels, dtype=np.int32)
    if labels.shape != indices.shape:
        raise_cm(Status.ARG, 0, indices.size, labels.size)
    params = _params(preset)
    err = ffi.new("plada_error *")
    out_len = ffi.new("size_t *")
    bound = lib.plada_cm_bound(indices.size)
    for cap in (min(bound, 64 + _FIRST_TRY_BYTES_PER_PAIR * indices.size), bound):
        out = np.empty(cap + 1, dtype=np.uint8)
        out[0] = preset_id
        status = lib.plada_cm_encode(
            ffi.from_buffer("int64_t[]", indices), ffi.from_buffer("int32_t[]", labels),
            indices.size, n_ref, n_classes, params,
            ffi.from_buffer("uint8_t[]", out[1:], require_writable=True), cap, out_len, err,
        )
        if status != Status.LENGTH:
            break
    if status:
        raise_cm(status, err.position, err.expected, err.actual)
    return out[: 1 + out_len[0]].tobytes()


def cm_decode(body, count: int, n_ref: int, n_classes: int):
    src = np.frombuffer(body, dtype=np.uint8)
    if src.size == 0:
        raise_cm(Status.EMPTY, 0, 1, 0)
    preset = PRESETS.get(int(src[0]))
    if preset is None:
        raise_cm(Status.PRESET, 0, len(PRESETS), int(src[0]))
    indices = np.empty(count, dtype=np.int64)
    labels = np.empty(count, dtype=np.int32)
    err = ffi.new("plada_error *")
    status = lib.plada_cm_decode(
        ffi.from_buffer("uint8_t[]", src[1:]), src.size - 1, count, n_ref, n_classes,
        _params(preset), ffi.from_buffer("int64_t[]", indices, require_writable=True),
        ffi.from_buffer("int32_t[]", labels, require_writable=True), err,
    )
    if status:
        raise_cm(status, err.position, err.expected, err.actual)
    return indices, labels


class CKernels:
    """The C backend (see :class:`~plada_codec._kernels.Kernels`)."""

    name = "c"
    pack_bits = staticmethod(pack_bits)
    unpack_bits = staticmethod(unpack_bits)
    delta_encode = staticmethod(delta_encode)
    delta_decode = staticmethod(delta_decode)
    bitmap_encode = staticmethod(bitmap_encode)
    bitmap_decode = staticmethod(bitmap_decode)
    labels_encode = staticmethod(labels_encode)
    labels_decode = staticmethod(labels_decode)
    cm_encode = staticmethod(cm_encode)
    cm_decode = staticmethod(cm_decode)

    def __repr__(self) -> str:
        return "<plada kernels: c>"


KERNELS: Kernels = CKernels()
