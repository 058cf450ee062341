"""Task-name codec 0, plain (spec/FORMAT.md 5.6): the whole body is UTF-8 text."""

from __future__ import annotations

from .._constants import ANCILLARY_MAX_RAW, SECTION_TASK_NAME
from .._errors import EncodeError
from ._registry import Codec, register
from ._text import utf8_bytes, utf8_text


@register
class TaskNamePlain(Codec):
    section_type = SECTION_TASK_NAME
    id = 0
    name = "plain"
    introduced = (1, 0)
    limit = "max_ancillary_bytes"
    fields = ("task_name",)

    def raw_length_bounds(self, shape):
        return 0, ANCILLARY_MAX_RAW

    def encode(self, selection, kernels):
        if not isinstance(selection.task_name, str):
            raise EncodeError(f"task_name must be a str, got {type(selection.task_name).__name__}")
        return utf8_bytes(selection.task_name, "task_name")

    def decode(self, raw, context, kernels, where):
        return {"task_name": utf8_text(raw, where)}
