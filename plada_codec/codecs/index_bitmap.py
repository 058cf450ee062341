"""Index codec 1, bitmap (spec/FORMAT.md 6.3): bit i of ceil(N/8) bytes is set
iff item i is selected."""

from __future__ import annotations

import numpy as np

from .._constants import BITMAP_TRY_MAX_BYTES, DEFAULT_MAX_SECTION_BYTES, SECTION_INDEX
from .._errors import EncodeError
from .._status import Status, raise_status
from ._registry import Codec, register

_WHERE = "index section (bitmap)"
# Bytes read from the body at a time; a read with no set bit is skipped whole.
_READ_BYTES = 1 << 18
# Bytes turned into positions at a time: at most 2**16 positions (512 KiB) each.
_SCAN_BYTES = 1 << 13

if hasattr(np, "bitwise_count"):  # numpy >= 2.0

    def _population(chunk: np.ndarray) -> int:
        return int(np.bitwise_count(chunk).sum(dtype=np.int64))

else:  # pragma: no cover - numpy 1.x
    _POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)

    def _population(chunk: np.ndarray) -> int:
        return int(_POPCOUNT[chunk].sum(dtype=np.int64))


@register
class IndexBitmap(Codec):
    section_type = SECTION_INDEX
    id = 1
    name = "bitmap"
    introduced = (1, 0)
    fields = ("indices",)

    def raw_length_bounds(self, shape):
        size = (shape.n_ref + 7) // 8
        return size, size

    def usable(self, selection, forced):
        size = (selection.n_ref + 7) // 8
        if forced and size > DEFAULT_MAX_SECTION_BYTES:
            raise EncodeError(
                f"a bitmap over n_ref = {selection.n_ref} items takes {size} bytes, more than decoders "
                f"accept by default ({DEFAULT_MAX_SECTION_BYTES}); use index_codec='delta' or 'auto'"
            )
        # Under "auto" a bitmap far larger than any delta body is not worth building.
        return forced or size <= BITMAP_TRY_MAX_BYTES

    def encode(self, selection, kernels):
        return kernels.bitmap_encode(selection.indices, selection.n_ref)

    def reader(self, source, context, kernels, where):
        return _BitmapReader(source, context.count, context.n_ref, kernels)


class _BitmapReader:
    """Set bits become positions only as entries are taken, so memory is the
    entries taken plus one scan; the body's length is ceil(N / 8) (5.5), so
    the time is that of reading ceil(N / 8) bytes, bounded by max_section_bytes."""

    def __init__(self, source, count: int, n_ref: int, kernels) -> None:
        self._source, self._count, self._n_ref, self._kernels = source, count, n_ref, kernels
        self._block = np.empty(0, dtype=np.uint8)
        self._block_start = 0  # body offset of _block[0]
        self._used = 0  # bytes of _block turned into positions
        self._pending: list[np.ndarray] = []  # positions found, not yet taken
        self._pending_size = 0
        self._population = 0  # set bits found so far

    def _next_scan(self) -> tuple[int, np.ndarray] | None:
        """(body offset, bytes) of the next stretch holding a set bit, or None at the body's end."""
        while self._used == self._block.size:
            start = self._block_start + self._block.size
            if start == self._source.size:
                return None
            self._block = np.empty(0, dtype=np.uint8)  # the old block is not held while reading
            block = np.frombuffer(self._source.read(min(_READ_BYTES, self._source.size - start)), np.uint8)
            if start + block.size == self._source.size:
                used_bits = self._n_ref % 8
                if used_bits and block[-1] >> used_bits:
                    raise_status(Status.PADDING, _WHERE, 0, 0, 0)
            self._block, self._block_start = block, start
            self._used = 0 if block.any() else block.size
        offset = self._block_start + self._used
        scan = self._block[self._used : self._used + _SCAN_BYTES]
        self._used += scan.size
        return offset, scan

    def take(self, count: int, first: int) -> np.ndarray:
        while self._pending_size < count:
            found = self._next_scan()
            if found is None:  # every byte read: the population is known and short of k
                raise_status(Status.COUNT, _WHERE, 0, self._count, self._population)
            offset, scan = found
            population = _population(scan)
            if not population:
                continue
            self._population += population
            positions = self._kernels.bitmap_decode(scan.tobytes(), population, 8 * scan.size)
            positions += 8 * offset
            self._pending.append(positions)
            self._pending_size += population
        joined = np.concatenate(self._pending) if len(self._pending) != 1 else self._pending[0]
        taken, rest = joined[:count], joined[count:]
        self._pending = [rest] if rest.size else []
        self._pending_size = rest.size
        return taken

    def finish(self) -> None:
        # Positions past the k-th are only counted, for the message.
        while (found := self._next_scan()) is not None:
            self._population += _population(found[1])
        if self._population != self._count:
            raise_status(Status.COUNT, _WHERE, 0, self._count, self._population)
        self._source.finish()
