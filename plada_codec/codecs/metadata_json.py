"""Metadata codec 0, json (spec/FORMAT.md 5.6): one JSON object under the
format's JSON rules, written canonically."""

from __future__ import annotations

from .._constants import (
    ANCILLARY_MAX_RAW,
    DEFAULT_MAX_ANCILLARY_BYTES,
    DEFAULT_MAX_METADATA_ITEMS,
    SECTION_METADATA,
)
from .._metadata import decode_metadata, encode_metadata
from ._registry import Codec, register


@register
class MetadataJson(Codec):
    section_type = SECTION_METADATA
    id = 0
    name = "json"
    introduced = (1, 0)
    limit = "max_ancillary_bytes"
    fields = ("metadata",)

    def raw_length_bounds(self, shape):
        return 0, ANCILLARY_MAX_RAW

    def encode(self, selection, kernels):
        return encode_metadata(selection.metadata, DEFAULT_MAX_ANCILLARY_BYTES, DEFAULT_MAX_METADATA_ITEMS)

    def decode(self, raw, context, kernels, where):
        return {"metadata": decode_metadata(raw, where, context.limits.max_metadata_items)}
