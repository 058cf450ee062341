"""The python backend: numpy kernels, the executable reference for the C core,
as one :class:`~plada_codec._kernels.Kernels` object (with the pure-Python
context model of ``_cm_py``).

Each function here has a twin of the same name and signature in
``_kernels_c`` (the cffi wrapper over ``csrc/``). The twins return
identical arrays and bytes and raise the same exceptions; the test suite checks
both on every input Hypothesis finds. Bit order everywhere is LSB-first: value
``j`` of width ``w`` occupies stream bits ``j*w .. j*w+w-1``, and stream bit ``b``
is bit ``b % 8`` of byte ``b // 8`` (spec section "Bit packing").
"""

from __future__ import annotations

import numpy as np

from . import _cm_py
from ._kernels import Kernels
from ._status import Status, raise_status

BLOCK = 128  # values per index-delta block; 128 * w bits is always whole bytes
_FULL_BLOCK_BYTES_PER_BIT = BLOCK // 8
_CHUNK_BLOCKS = 64  # index-delta blocks decoded per step (8192 values)



def _word_bytes(width: int) -> int:
    """Smallest power-of-two byte count that holds *width* bits."""
    for nb in (1, 2, 4, 8):
        if width <= nb * 8:
            return nb
    raise AssertionError(width)


def packed_size(count: int, width: int) -> int:
    """Bytes taken by *count* values of *width* bits, padded to a byte."""
    return (count * width + 7) // 8


def pack_bits(values: np.ndarray, width: int) -> bytes:
    """Pack uint64 *values* at *width* (0..64) bits each, LSB-first."""
    values = np.ascontiguousarray(values, dtype=np.uint64)
    if not 0 <= width <= 64:
        raise_status(Status.ARG, "pack_bits", 0, 64, width)
    if width < 64:
        too_big = np.flatnonzero(values >> np.uint64(width))
        if too_big.size:
            raise_status(Status.VALUE, "pack_bits", int(too_big[0]), width, 0)
    if width == 0 or values.size == 0:
        return b""
    nb = _word_bytes(width)
    as_bytes = values.astype(f"<u{nb}").view(np.uint8).reshape(values.size, nb)
    bits = np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :width]
    return np.packbits(bits.ravel(), bitorder="little").tobytes()


# Values unpacked per step: bounds the temporaries (one byte per bit) to a few
# MiB, so decoding needs little more than its output (spec 13, "Allocation").
_CHUNK_VALUES = 1 << 13


def _unpack_into(src: np.ndarray, count: int, width: int, out: np.ndarray) -> None:
    """Unpack *count* values of *width* (1..64) bits from the start of uint8 *src* into *out*."""
    nb = _word_bytes(width)
    for start in range(0, count, _CHUNK_VALUES):  # start is a multiple of 8: byte-aligned
        n = min(_CHUNK_VALUES, count - start)
        first = start * width // 8
        chunk = src[first : first + packed_size(n, width)]
        bits = np.unpackbits(chunk, bitorder="little", count=n * width).reshape(n, width)
        if width != nb * 8:
            bits = np.concatenate([bits, np.zeros((n, nb * 8 - width), np.uint8)], axis=1)
        out[start : start + n] = np.packbits(bits, axis=1, bitorder="little").view(f"<u{nb}").ravel()


def unpack_bits(buf, count: int, width: int, out: np.ndarray | None = None) -> np.ndarray:
    """Unpack *count* values of *width* bits from the start of *buf* (uint64).

    *buf* must hold at least ``ceil(count*width/8)`` bytes; bytes after that and
    the padding bits are ignored here (the codecs check them). *out*, if given,
    is a uint64 array of *count* values that receives the result.
    """
    if not 0 <= width <= 64:
        raise_status(Status.ARG, "unpack_bits", 0, 64, width)
    need = packed_size(count, width)
    src = np.frombuffer(buf, dtype=np.uint8)
    if src.size < need:
        raise_status(Status.LENGTH, "unpack_bits", 0, need, src.size)
    if out is None:
        out = np.zeros(count, dtype=np.uint64)
    elif width == 0:
        out[...] = 0
    if width and count:
        _unpack_into(src, count, width, out)
    return out


def _bit_length(values: np.ndarray) -> np.ndarray:
    """Exact bit length of each uint64 value."""
    values = np.asarray(values, dtype=np.uint64)
    _, exponent = np.frexp(values.astype(np.float64))
    exponent = np.minimum(exponent, 64)
    # Above 2**53 float64 can round 2**k - small up to 2**k: step back where it overshot.
    shift = np.maximum(exponent - 1, 0).astype(np.uint64)
    overshot = (exponent > 0) & (values < (np.uint64(1) << shift))
    return (exponent - overshot).astype(np.uint8)


def delta_encode(indices: np.ndarray) -> bytes:
    """Index-delta body (codec 0) for sorted, distinct int64 *indices*.

    Layout: one width byte per 128-value block, then each block's gaps packed
    at that width. gap[0] = indices[0], gap[j] = indices[j] - indices[j-1] - 1.
    """
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    count = indices.size
    if count == 0:
        return b""
    gaps = np.empty(count, dtype=np.uint64)
    gaps[0] = indices[0]
    np.subtract(indices[1:], indices[:-1], out=gaps[1:], casting="unsafe")
    gaps[1:] -= np.uint64(1)
    n_full, n_last = divmod(count, BLOCK)
    n_blocks = n_full + (1 if n_last else 0)
    widths = np.empty(n_blocks, dtype=np.uint8)
    full = gaps[: n_full * BLOCK].reshape(n_full, BLOCK)
    if n_full:
        widths[:n_full] = _bit_length(full.max(axis=1))
    if n_last:
        widths[n_full] = _bit_length(gaps[n_full * BLOCK :].max(keepdims=True))[0]
    sizes = np.empty(n_blocks, dtype=np.int64)
    sizes[:n_full] = widths[:n_full].astype(np.int64) * _FULL_BLOCK_BYTES_PER_BIT
    if n_last:
        sizes[n_full] = packed_size(n_last, int(widths[n_full]))
    offsets = n_blocks + np.concatenate([[0], np.cumsum(sizes)[:-1]])
    out = np.zeros(n_blocks + int(sizes.sum()), dtype=np.uint8)
    out[:n_blocks] = widths
    for width in np.unique(widths[:n_full]):
        if width == 0:
            continue
        sel = np.flatnonzero(widths[:n_full] == width)
        packed = np.frombuffer(pack_bits(full[sel].ravel(), int(width)), np.uint8)
        nbytes = int(width) * _FULL_BLOCK_BYTES_PER_BIT
        out[(offsets[sel, None] + np.arange(nbytes)).ravel()] = packed
    if n_last:
        packed = np.frombuffer(pack_bits(gaps[n_full * BLOCK :], int(widths[n_full])), np.uint8)
        out[offsets[n_full] : offsets[n_full] + packed.size] = packed
    return out.tobytes()


def delta_decode(raw, count: int, n_ref: int, *, first: int = 0, start: int = 0) -> np.ndarray:
    """Decode an index-delta body into *count* int64 indices in [0, n_ref).

    *start* is one more than the index before the body's first entry (0 for a
    whole body), *first* that entry's number in the section (error messages
    name entries by it): a chunk of blocks decodes like its part of the whole.
    """
    where = "index section (index-delta)"
    first_entry = first  # the loops below reuse the names first and start
    src = np.frombuffer(raw, dtype=np.uint8)
    n_full, n_last = divmod(count, BLOCK)
    n_blocks = n_full + (1 if n_last else 0)
    if src.size < n_blocks:
        raise_status(Status.LENGTH, where, 0, n_blocks, src.size)
    widths = src[:n_blocks]
    wide = np.flatnonzero(widths > 64)
    if wide.size:
        block = int(wide[0])
        raise_status(Status.WIDTH, where, block, 64, int(widths[block]))
    sizes = widths.astype(np.int64) * _FULL_BLOCK_BYTES_PER_BIT
    if n_last:
        sizes[n_full] = packed_size(n_last, int(widths[n_full]))
    expected = n_blocks + int(sizes.sum())
    if src.size != expected:
        raise_status(Status.LENGTH, where, 0, expected, src.size)
    ends = n_blocks + np.cumsum(sizes)
    if n_last:  # padding is checked before any range error, as in the C core
        used_bits = (n_last * int(widths[n_full])) % 8
        if used_bits and src[ends[-1] - 1] >> used_bits:
            raise_status(Status.PADDING, where, n_full, 0, 0)
    # The output is the only allocation proportional to count; gaps are
    # unpacked and summed a chunk of blocks at a time, in place.
    out = np.empty(count, dtype=np.uint64)
    previous = np.uint64(start)  # index[j - 1] + 1 before the chunk
    for first in range(0, n_blocks, _CHUNK_BLOCKS):
        last = min(first + _CHUNK_BLOCKS, n_blocks)
        lo, hi = first * BLOCK, min(last * BLOCK, count)
        gaps = out[lo:hi]
        full_last = min(last, n_full)  # full blocks of this chunk: first .. full_last - 1
        if full_last > first:
            full = gaps[: (full_last - first) * BLOCK].reshape(full_last - first, BLOCK)
            chunk_widths = widths[first:full_last]
            for width in np.unique(chunk_widths):
                sel = np.flatnonzero(chunk_widths == width)
                if width == 0:
                    full[sel] = 0
                    continue
                nbytes = int(width) * _FULL_BLOCK_BYTES_PER_BIT
                starts = ends[first + sel] - nbytes
                packed = src[(starts[:, None] + np.arange(nbytes)).ravel()]
                values = np.empty(sel.size * BLOCK, dtype=np.uint64)
                _unpack_into(packed, values.size, int(width), values)
                full[sel] = values.reshape(sel.size, BLOCK)
        if last > n_full:  # the partial last block
            width = int(widths[n_full])
            tail = gaps[(n_full - first) * BLOCK :]
            if width == 0:
                tail[...] = 0
            else:
                start = int(ends[n_full] - sizes[n_full])
                _unpack_into(src[start:], n_last, width, tail)
        # First entry whose gap alone reaches n_ref, then the first whose running
        # index does: before the former every step is < n_ref <= 2**48, start
        # <= n_ref and a chunk holds 2**13 entries, so the uint64 sum cannot wrap.
        bad_gap = np.flatnonzero(gaps >= np.uint64(n_ref))
        limit = int(bad_gap[0]) if bad_gap.size else gaps.size
        head = gaps[:limit]
        head += np.uint64(1)
        np.cumsum(head, out=head)
        head += previous
        bad_index = np.flatnonzero(head > np.uint64(n_ref))
        if bad_index.size:
            raise_status(Status.RANGE, where, first_entry + lo + int(bad_index[0]), n_ref, 0)
        if limit < gaps.size:
            raise_status(Status.RANGE, where, first_entry + lo + limit, n_ref, 0)
        if head.size:
            previous = head[-1]
    out -= np.uint64(1)
    return out.view(np.int64)


def bitmap_encode(indices: np.ndarray, n_ref: int) -> bytes:
    """Bitmap body (codec 1): ceil(n_ref/8) bytes, bit i set iff i is kept."""
    mask = np.zeros(n_ref, dtype=np.bool_)
    mask[np.asarray(indices, dtype=np.int64)] = True
    return np.packbits(mask, bitorder="little").tobytes()


# Bitmap bytes examined per step: 2**13 bytes unpack to 64 KiB of bits.
_CHUNK_BITMAP_BYTES = 1 << 13
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def bitmap_decode(raw, count: int, n_ref: int) -> np.ndarray:
    """Decode a bitmap body holding exactly *count* set bits below *n_ref*."""
    where = "index section (bitmap)"
    src = np.frombuffer(raw, dtype=np.uint8)
    expected = (n_ref + 7) // 8
    if src.size != expected:
        raise_status(Status.LENGTH, where, 0, expected, src.size)
    used_bits = n_ref % 8
    if used_bits and src[-1] >> used_bits:
        raise_status(Status.PADDING, where, 0, 0, 0)
    # Count first, so a bitmap whose population differs from k allocates nothing.
    population = 0
    for start in range(0, src.size, _CHUNK_BITMAP_BYTES):
        population += int(_POPCOUNT[src[start : start + _CHUNK_BITMAP_BYTES]].sum(dtype=np.int64))
    if population != count:
        raise_status(Status.COUNT, where, 0, count, population)
    out = np.empty(count, dtype=np.int64)
    filled = 0
    for start in range(0, src.size, _CHUNK_BITMAP_BYTES):
        chunk = src[start : start + _CHUNK_BITMAP_BYTES]
        if not chunk.any():
            continue
        found = np.flatnonzero(np.unpackbits(chunk, bitorder="little"))
        out[filled : filled + found.size] = found
        out[filled : filled + found.size] += start * 8
        filled += found.size
    return out


def labels_encode(labels: np.ndarray, width: int) -> bytes:
    """Packed label body (codec 0): every label at *width* bits."""
    return pack_bits(np.asarray(labels).astype(np.uint64), width)


def labels_decode(raw, count: int, width: int, n_classes: int, *, first: int = 0) -> np.ndarray:
    """Decode *count* packed labels of *width* bits, each below *n_classes*;
    *first* numbers the body's first entry in error messages."""
    where = "label section (packed)"
    src = np.frombuffer(raw, dtype=np.uint8)
    expected = packed_size(count, width)
    if src.size != expected:
        raise_status(Status.LENGTH, where, 0, expected, src.size)
    used_bits = (count * width) % 8
    if used_bits and src[-1] >> used_bits:
        raise_status(Status.PADDING, where, 0, 0, 0)
    out = np.zeros(count, dtype=np.int32)
    if width == 0:
        return out
    values = np.empty(min(count, _CHUNK_VALUES), dtype=np.uint64)
    for start in range(0, count, _CHUNK_VALUES):  # a multiple of 8: byte-aligned
        n = min(_CHUNK_VALUES, count - start)
        chunk = values[:n]
        _unpack_into(src[start * width // 8 :], n, width, chunk)
        bad = np.flatnonzero(chunk >= np.uint64(n_classes))
        if bad.size:
            raise_status(Status.LABEL, where, first + start + int(bad[0]), n_classes, int(chunk[bad[0]]))
        out[start : start + n] = chunk
    return out


class PythonKernels:
    """The numpy / pure-Python backend (see :class:`~plada_codec._kernels.Kernels`)."""

    name = "python"
    pack_bits = staticmethod(pack_bits)
    unpack_bits = staticmethod(unpack_bits)
    delta_encode = staticmethod(delta_encode)
    delta_decode = staticmethod(delta_decode)
    bitmap_encode = staticmethod(bitmap_encode)
    bitmap_decode = staticmethod(bitmap_decode)
    labels_encode = staticmethod(labels_encode)
    labels_decode = staticmethod(labels_decode)
    cm_encode = staticmethod(_cm_py.encode)
    cm_decode = staticmethod(_cm_py.decode)

    def __repr__(self) -> str:
        return "<plada kernels: python>"


KERNELS: Kernels = PythonKernels()
