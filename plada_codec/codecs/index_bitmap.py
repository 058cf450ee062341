"""Index codec 1, bitmap (spec/FORMAT.md 6.3): bit i of ceil(N/8) bytes is set
iff item i is selected."""

from __future__ import annotations

from .._constants import BITMAP_TRY_MAX_BYTES, DEFAULT_MAX_SECTION_BYTES, SECTION_INDEX
from .._errors import EncodeError
from ._registry import Codec, register


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

    def decode(self, raw, context, kernels, where):
        return {"indices": kernels.bitmap_decode(raw, context.count, context.n_ref)}
