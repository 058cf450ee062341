"""Label codec 1, bytes (spec/FORMAT.md 7.2): every label as a little-endian
integer of 1, 2 or 4 bytes, which Zstandard often compresses better."""

from __future__ import annotations

import numpy as np

from .. import _kernel_errors as ke
from .._constants import SECTION_LABELS, label_byte_width
from ._registry import Codec, register


@register
class LabelsBytes(Codec):
    section_type = SECTION_LABELS
    id = 1
    name = "bytes"
    introduced = (1, 0)
    fields = ("labels",)

    def raw_length_bounds(self, shape):
        size = shape.count * label_byte_width(shape.n_classes)
        return size, size

    def encode(self, selection, kernels):
        return selection.labels.astype(f"<u{label_byte_width(selection.n_classes)}").tobytes()

    def decode(self, raw, context, kernels, where):
        # A reinterpreting view and one comparison: the same on both backends.
        values = np.frombuffer(raw, dtype=f"<u{label_byte_width(context.n_classes)}")
        bad = np.flatnonzero(values >= context.n_classes)
        if bad.size:
            ke.raise_status(ke.ERR_LABEL, "label section (bytes)", int(bad[0]), context.n_classes,
                            int(values[bad[0]]))
        return {"labels": values.astype(np.int32)}
