"""Label codec 2, joint (spec/FORMAT.md 15.1, format 1.1): an empty body; the
labels travel in the index section's context-model stream (index codec 2)."""

from __future__ import annotations

from .._constants import SECTION_INDEX, SECTION_LABELS
from ._registry import Codec, register


@register
class LabelsJoint(Codec):
    section_type = SECTION_LABELS
    id = 2
    name = "joint"
    introduced = (1, 1)
    fields = ()
    partner = (SECTION_INDEX, 2)
    try_compression = False

    def raw_length_bounds(self, shape):
        return 0, 0

    def encode(self, selection, kernels):
        return b""

    def decode(self, raw, shape, kernels, where):
        return {}
