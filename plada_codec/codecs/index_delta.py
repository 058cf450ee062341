"""Index codec 0, index-delta (spec/FORMAT.md 6.2): per-block bit widths, then
each block of 128 gaps bit-packed at its width."""

from __future__ import annotations

import numpy as np

from .._constants import BLOCK, SECTION_INDEX
from .._status import Status, raise_status
from ._registry import Codec, register

_WHERE = "index section (index-delta)"


@register
class IndexDelta(Codec):
    section_type = SECTION_INDEX
    id = 0
    name = "delta"
    introduced = (1, 0)
    fields = ("indices",)

    def raw_length_bounds(self, shape):
        blocks = -(-shape.count // BLOCK)
        return blocks, blocks + 8 * shape.count

    def encode(self, selection, kernels):
        return kernels.delta_encode(selection.indices)

    def reader(self, source, context, kernels, where):
        return _DeltaReader(source, context.count, context.n_ref, kernels)


def _block_bytes(widths: np.ndarray, first_block: int, n_full: int, n_last: int) -> int:
    """Bytes of the blocks whose widths are *widths*, the first being block *first_block*."""
    full = max(0, min(widths.size, n_full - first_block))
    size = 16 * int(widths[:full].sum(dtype=np.int64))
    if full < widths.size:  # the partial last block
        size += (n_last * int(widths[full]) + 7) // 8
    return size


class _DeltaReader:
    """The width table first (k / 128 bytes, checked whole: every width and the
    body's length), then the blocks a chunk at a time."""

    def __init__(self, source, count: int, n_ref: int, kernels) -> None:
        self._source, self._n_ref, self._kernels = source, n_ref, kernels
        self._n_full, self._n_last = divmod(count, BLOCK)
        n_blocks = -(-count // BLOCK)
        self._widths = np.frombuffer(source.read(n_blocks), dtype=np.uint8)
        wide = np.flatnonzero(self._widths > 64)
        if wide.size:
            raise_status(Status.WIDTH, _WHERE, int(wide[0]), 64, int(self._widths[wide[0]]))
        expected = n_blocks + _block_bytes(self._widths, 0, self._n_full, self._n_last)
        if source.size != expected:
            raise_status(Status.LENGTH, _WHERE, 0, expected, source.size)
        self._start = 0  # one more than the last index taken

    def take(self, count: int, first: int) -> np.ndarray:
        if count == 0:
            return np.empty(0, dtype=np.int64)
        block = first // BLOCK  # first is a multiple of CHUNK, so of BLOCK
        widths = self._widths[block : block + -(-count // BLOCK)]
        packed = self._source.read(_block_bytes(widths, block, self._n_full, self._n_last))
        # The chunk's own width table and blocks: a whole index-delta body of count entries.
        indices = self._kernels.delta_decode(widths.tobytes() + bytes(packed), count, self._n_ref,
                                             first=first, start=self._start)
        self._start = int(indices[-1]) + 1
        return indices

    def finish(self) -> None:
        self._source.finish()
