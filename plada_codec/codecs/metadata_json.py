"""Metadata codec 0, json (spec/FORMAT.md 5.6): one JSON object under the
format's JSON rules, written canonically."""

from __future__ import annotations

from .._constants import ANCILLARY_MAX_RAW, SECTION_METADATA
from .._metadata import encode_metadata, decode_metadata
from ._registry import Codec, register


@register
class MetadataJson(Codec):
    section_type = SECTION_METADATA
    id = 0
    name = "json"
    introduced = (1, 0)
    fields = ("metadata",)

    def raw_length_bounds(self, shape):
        return 0, ANCILLARY_MAX_RAW

    def encode(self, selection, kernels):
        return encode_metadata(selection.metadata)

    def decode(self, raw, shape, kernels, where):
        return {"metadata": decode_metadata(raw, where)}
