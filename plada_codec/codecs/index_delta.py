"""Index codec 0, index-delta (spec/FORMAT.md 6.2): per-block bit widths, then
each block of 128 gaps bit-packed at its width."""

from __future__ import annotations

from .._constants import BLOCK, SECTION_INDEX
from ._registry import Codec, register


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

    def decode(self, raw, context, kernels, where):
        return {"indices": kernels.delta_decode(raw, context.count, context.n_ref)}
