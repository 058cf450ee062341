"""Pure numpy kernels: the executable reference for the C core.

Each function here has a twin of the same name and signature in
``_kernels_c`` (the cffi wrapper over ``csrc/plada_core.c``). The twins return
identical arrays and bytes and raise the same exceptions; the test suite checks
both on every input Hypothesis finds. Bit order everywhere is LSB-first: value
``j`` of width ``w`` occupies stream bits ``j*w .. j*w+w-1``, and stream bit ``b``
is bit ``b % 8`` of byte ``b // 8`` (spec section "Bit packing").
"""

from __future__ import annotations

import numpy as np

from . import _kernel_errors as ke

BLOCK = 128  # values per index-delta block; 128 * w bits is always whole bytes
_FULL_BLOCK_BYTES_PER_BIT = BLOCK // 8

name = "python"


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
        ke.raise_status(ke.ERR_ARG, "pack_bits", 0, 64, width)
    if width < 64:
        too_big = np.flatnonzero(values >> np.uint64(width))
        if too_big.size:
            ke.raise_status(ke.ERR_VALUE, "pack_bits", int(too_big[0]), width, 0)
    if width == 0 or values.size == 0:
        return b""
    nb = _word_bytes(width)
    as_bytes = values.astype(f"<u{nb}").view(np.uint8).reshape(values.size, nb)
    bits = np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :width]
    return np.packbits(bits.ravel(), bitorder="little").tobytes()


def unpack_bits(buf, count: int, width: int, out: np.ndarray | None = None) -> np.ndarray:
    """Unpack *count* values of *width* bits from the start of *buf* (uint64).

    *buf* must hold at least ``ceil(count*width/8)`` bytes; bytes after that and
    the padding bits are ignored here (the codecs check them). *out*, if given,
    is a uint64 array of *count* values that receives the result.
    """
    if out is not None:
        out[...] = unpack_bits(buf, count, width)
        return out
    if not 0 <= width <= 64:
        ke.raise_status(ke.ERR_ARG, "unpack_bits", 0, 64, width)
    need = packed_size(count, width)
    src = np.frombuffer(buf, dtype=np.uint8)
    if src.size < need:
        ke.raise_status(ke.ERR_LENGTH, "unpack_bits", 0, need, src.size)
    if width == 0 or count == 0:
        return np.zeros(count, dtype=np.uint64)
    nb = _word_bytes(width)
    bits = np.unpackbits(src[:need], bitorder="little", count=count * width).reshape(count, width)
    if width != nb * 8:
        bits = np.concatenate([bits, np.zeros((count, nb * 8 - width), np.uint8)], axis=1)
    words = np.packbits(bits, axis=1, bitorder="little")
    return words.view(f"<u{nb}").ravel().astype(np.uint64)


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


def delta_decode(raw, count: int, n_ref: int) -> np.ndarray:
    """Decode an index-delta body into *count* int64 indices in [0, n_ref)."""
    where = "index section (index-delta)"
    src = np.frombuffer(raw, dtype=np.uint8)
    n_full, n_last = divmod(count, BLOCK)
    n_blocks = n_full + (1 if n_last else 0)
    if src.size < n_blocks:
        ke.raise_status(ke.ERR_LENGTH, where, 0, n_blocks, src.size)
    widths = src[:n_blocks]
    wide = np.flatnonzero(widths > 64)
    if wide.size:
        block = int(wide[0])
        ke.raise_status(ke.ERR_WIDTH, where, block, 64, int(widths[block]))
    sizes = widths.astype(np.int64) * _FULL_BLOCK_BYTES_PER_BIT
    if n_last:
        sizes[n_full] = packed_size(n_last, int(widths[n_full]))
    expected = n_blocks + int(sizes.sum())
    if src.size != expected:
        ke.raise_status(ke.ERR_LENGTH, where, 0, expected, src.size)
    offsets = n_blocks + np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    gaps = np.zeros(count, dtype=np.uint64)
    full = gaps[: n_full * BLOCK].reshape(n_full, BLOCK)
    for width in np.unique(widths[:n_full]):
        if width == 0:
            continue
        sel = np.flatnonzero(widths[:n_full] == width)
        nbytes = int(width) * _FULL_BLOCK_BYTES_PER_BIT
        chunk = src[(offsets[sel, None] + np.arange(nbytes)).ravel()]
        full[sel] = unpack_bits(chunk, sel.size * BLOCK, int(width)).reshape(sel.size, BLOCK)
    if n_last:
        width = int(widths[n_full])
        tail = src[offsets[n_full] :]
        gaps[n_full * BLOCK :] = unpack_bits(tail, n_last, width)
        used_bits = (n_last * width) % 8
        if used_bits and tail[-1] >> used_bits:
            ke.raise_status(ke.ERR_PADDING, where, n_full, 0, 0)
    # First entry whose gap alone reaches n_ref, then the first whose running
    # index does: before the former every step is < n_ref <= 2**48, so the
    # uint64 running sum cannot wrap before the first real overflow.
    bad_gap = np.flatnonzero(gaps >= np.uint64(n_ref))
    limit = int(bad_gap[0]) if bad_gap.size else count
    indices = np.cumsum(gaps[:limit] + np.uint64(1), dtype=np.uint64)
    indices -= np.uint64(1)
    bad_index = np.flatnonzero(indices >= np.uint64(n_ref))
    if bad_index.size:
        ke.raise_status(ke.ERR_RANGE, where, int(bad_index[0]), n_ref, 0)
    if limit < count:
        ke.raise_status(ke.ERR_RANGE, where, limit, n_ref, 0)
    return indices.view(np.int64)


def bitmap_encode(indices: np.ndarray, n_ref: int) -> bytes:
    """Bitmap body (codec 1): ceil(n_ref/8) bytes, bit i set iff i is kept."""
    mask = np.zeros(n_ref, dtype=np.bool_)
    mask[np.asarray(indices, dtype=np.int64)] = True
    return np.packbits(mask, bitorder="little").tobytes()


def bitmap_decode(raw, count: int, n_ref: int) -> np.ndarray:
    """Decode a bitmap body holding exactly *count* set bits below *n_ref*."""
    where = "index section (bitmap)"
    src = np.frombuffer(raw, dtype=np.uint8)
    expected = (n_ref + 7) // 8
    if src.size != expected:
        ke.raise_status(ke.ERR_LENGTH, where, 0, expected, src.size)
    used_bits = n_ref % 8
    if used_bits and src[-1] >> used_bits:
        ke.raise_status(ke.ERR_PADDING, where, 0, 0, 0)
    indices = np.flatnonzero(np.unpackbits(src, bitorder="little", count=n_ref))
    if indices.size != count:
        ke.raise_status(ke.ERR_COUNT, where, 0, count, indices.size)
    return indices.astype(np.int64, copy=False)


def labels_encode(labels: np.ndarray, width: int) -> bytes:
    """Packed label body (codec 0): every label at *width* bits."""
    return pack_bits(np.asarray(labels).astype(np.uint64), width)


def labels_decode(raw, count: int, width: int, n_classes: int) -> np.ndarray:
    """Decode *count* packed labels of *width* bits, each below *n_classes*."""
    where = "label section (packed)"
    src = np.frombuffer(raw, dtype=np.uint8)
    expected = packed_size(count, width)
    if src.size != expected:
        ke.raise_status(ke.ERR_LENGTH, where, 0, expected, src.size)
    used_bits = (count * width) % 8
    if used_bits and src[-1] >> used_bits:
        ke.raise_status(ke.ERR_PADDING, where, 0, 0, 0)
    values = unpack_bits(src, count, width)
    bad = np.flatnonzero(values >= np.uint64(n_classes))
    if bad.size:
        ke.raise_status(ke.ERR_LABEL, where, int(bad[0]), n_classes, int(values[bad[0]]))
    return values.astype(np.int32)
