"""Index codec 2, context-model (spec/FORMAT.md section 15, format 1.1).

One adaptive binary range-coded stream of the k (gap, label) pairs: the index
section body carries the labels too, and the label section pairs with the
``joint`` codec (id 2, empty body). The body's first byte names the preset;
the encoder codes every preset and keeps the smallest (ties: lower id).
"""

from __future__ import annotations

from .._cm_py import PRESETS
from .._constants import SECTION_INDEX, SECTION_LABELS
from ._registry import Codec, register

# Bytes one pair can take at most: 68 coding steps of at most 2 bytes each (spec 15.1).
MAX_BYTES_PER_PAIR = 136
# Pairs one body byte may carry at most (spec 15.1), a raw bitmap's density:
# decoding work stays proportional to the bytes on the wire, whatever k the
# header declares. Denser selections (near 1 bit a pair) take a 1.0 codec.
MAX_PAIRS_PER_BYTE = 8


def min_raw_length(count: int) -> int:
    """The shortest body the spec allows for *count* pairs: the preset byte, and 1 byte per 8 pairs."""
    return max(1, -(-count // MAX_PAIRS_PER_BYTE))


@register
class IndexContextModel(Codec):
    section_type = SECTION_INDEX
    id = 2
    name = "context-model"
    introduced = (1, 1)
    fields = ("indices", "labels")
    partner = (SECTION_LABELS, 2)
    try_compression = False  # a range-coded stream does not compress
    allows_compression = False  # raw_length must be the size on the wire (spec 15.1)

    def raw_length_bounds(self, shape):
        return min_raw_length(shape.count), 5 + MAX_BYTES_PER_PAIR * shape.count

    def encode(self, selection, kernels):
        """The shortest preset's body of at least min_raw_length(k) bytes, else the
        longest body (which the encoder then refuses: the selection is too dense)."""
        low = min_raw_length(selection.count)
        bodies = [kernels.cm_encode(selection.indices, selection.labels, selection.n_ref, selection.n_classes, preset)
                  for preset in sorted(PRESETS)]
        allowed = [body for body in bodies if len(body) >= low]
        if not allowed:
            return max(bodies, key=len)
        return min(allowed, key=len)  # ties: the lower preset id, listed first

    def decode(self, raw, shape, kernels, where):
        indices, labels = kernels.cm_decode(raw, shape.count, shape.n_ref, shape.n_classes)
        return {"indices": indices, "labels": labels}
