"""Label codec 0, packed (spec/FORMAT.md 7.1): every label at bit_length(C - 1) bits."""

from __future__ import annotations

from .._constants import SECTION_LABELS, label_bit_width
from ._registry import Codec, register


@register
class LabelsPacked(Codec):
    section_type = SECTION_LABELS
    id = 0
    name = "packed"
    introduced = (1, 0)
    fields = ("labels",)

    def raw_length_bounds(self, shape):
        size = (shape.count * label_bit_width(shape.n_classes) + 7) // 8
        return size, size

    def encode(self, selection, kernels):
        return kernels.labels_encode(selection.labels, label_bit_width(selection.n_classes))

    def decode(self, raw, context, kernels, where):
        width = label_bit_width(context.n_classes)
        return {"labels": kernels.labels_decode(raw, context.count, width, context.n_classes)}
