"""Label codec 0, packed (spec/FORMAT.md 7.1): every label at bit_length(C - 1) bits."""

from __future__ import annotations

import numpy as np

from .._constants import SECTION_LABELS, label_bit_width
from ._registry import Codec, register


@register
class LabelsPacked(Codec):
    section_type = SECTION_LABELS
    id = 0
    name = "packed"
    introduced = (1, 0)
    fields = ("labels",)
    dtype = np.int32

    def raw_length_bounds(self, shape):
        size = (shape.count * label_bit_width(shape.n_classes) + 7) // 8
        return size, size

    def encode(self, selection, kernels):
        return kernels.labels_encode(selection.labels, label_bit_width(selection.n_classes))

    def reader(self, source, context, kernels, where):
        return _PackedReader(source, context.count, context.n_classes, kernels)


class _PackedReader:
    def __init__(self, source, count: int, n_classes: int, kernels) -> None:
        self._source, self._count, self._n_classes, self._kernels = source, count, n_classes, kernels
        self._width = label_bit_width(n_classes)

    def take(self, count: int, first: int) -> np.ndarray:
        if self._width == 0:
            return np.zeros(count, dtype=np.int32)
        # Chunks start at multiples of 8 entries, so on a byte; only the last has padding.
        raw = self._source.read((count * self._width + 7) // 8)
        return self._kernels.labels_decode(raw, count, self._width, self._n_classes, first=first)

    def finish(self) -> None:
        self._source.finish()
