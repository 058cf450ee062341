"""Label codec 1, bytes (spec/FORMAT.md 7.2): every label as a little-endian
integer of 1, 2 or 4 bytes, which Zstandard often compresses better."""

from __future__ import annotations

import numpy as np

from .._constants import SECTION_LABELS, label_byte_width
from .._status import Status, raise_status
from ._registry import Codec, register


@register
class LabelsBytes(Codec):
    section_type = SECTION_LABELS
    id = 1
    name = "bytes"
    introduced = (1, 0)
    fields = ("labels",)
    dtype = np.int32

    def raw_length_bounds(self, shape):
        size = shape.count * label_byte_width(shape.n_classes)
        return size, size

    def encode(self, selection, kernels):
        return selection.labels.astype(f"<u{label_byte_width(selection.n_classes)}").tobytes()

    def reader(self, source, context, kernels, where):
        return _BytesReader(source, context.n_classes)


class _BytesReader:
    """A reinterpreting view and one comparison a chunk: the same on both backends."""

    def __init__(self, source, n_classes: int) -> None:
        self._source, self._n_classes = source, n_classes
        self._width = label_byte_width(n_classes)

    def take(self, count: int, first: int) -> np.ndarray:
        values = np.frombuffer(self._source.read(count * self._width), dtype=f"<u{self._width}")
        bad = np.flatnonzero(values >= self._n_classes)
        if bad.size:
            raise_status(Status.LABEL, "label section (bytes)", first + int(bad[0]), self._n_classes,
                            int(values[bad[0]]))
        return values.astype(np.int32)

    def finish(self) -> None:
        self._source.finish()
