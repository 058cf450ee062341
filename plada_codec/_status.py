"""Kernel status codes and the one table that turns a status into an exception.

:class:`Status` mirrors ``enum plada_status`` in csrc/plada_core.h, name for
name and value for value (tests/codec/test_kernels.py reads the header and checks);
a few statuses are raised only by the Python side of a kernel (an empty
context-model body, an unknown preset), and are in the enum all the same, so
that the enum is the one list. The values are part of the C ABI only, never
of the wire format.

Both backends of every kernel report a failure as (status, position,
expected, actual) and call :func:`raise_status`, so the C and the numpy path
raise the same class with the same message for the same bad input.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NoReturn

from ._errors import EncodeError, PayloadFormatError, UnsupportedFeatureError


class Status(IntEnum):
    OK = 0
    LENGTH = 1  # the buffer is not the length the codec implies
    WIDTH = 2  # a block bit width is above 64
    PADDING = 3  # padding bits after the last value are not zero
    RANGE = 4  # a decoded index is >= n_ref
    LABEL = 5  # a decoded label is >= n_classes
    COUNT = 6  # a bitmap's population count differs from the header's k
    VALUE = 7  # encoder: a value does not fit the requested width
    ARG = 8  # a caller bug: an argument outside the function's contract
    CODED = 9  # context model: a uniformly coded value (raw bits) falls outside its range
    TRAILING = 10  # context model: bytes after the last one the decoder reads
    CANONICAL = 11  # context model: a tree-coded label that is in the move-to-front list
    PRESET = 12  # context model: the body's first byte names no preset (Python side)
    START = 13  # context model: the first code is not below the initial range (15.4)
    END = 14  # context model: the stream does not end canonically (15.7)
    EMPTY = 15  # context model: an empty body, without even the preset byte (Python side)


# The family of kernels a status comes from: the 1.0 kernels, or the 1.1 context model.
KERNEL = "kernel"
CM = "cm"
CM_WHERE = "index section (context-model)"

# (status, family) -> (exception class, message). A status without a row of its
# family uses the KERNEL row. Fields: where, position, expected, actual.
_F, _E, _U = PayloadFormatError, EncodeError, UnsupportedFeatureError
_MESSAGES: dict[tuple[Status, str], tuple[type[Exception], str]] = {
    (Status.LENGTH, KERNEL): (_F, "{where}: holds {actual} bytes but its codec needs exactly {expected}"),
    (Status.WIDTH, KERNEL): (_F, "{where}: block {position} declares bit width {actual}, allowed 0..64"),
    (Status.PADDING, KERNEL): (_F, "{where}: padding bits after the last value are not zero"),
    (Status.RANGE, KERNEL): (_F, "{where}: entry {position} decodes to an index outside [0, {expected})"),
    (Status.LABEL, KERNEL): (_F, "{where}: entry {position} has label {actual}, allowed 0..{last}"),
    (Status.COUNT, KERNEL): (_F, "{where}: bitmap has {actual} set bits but the header declares k = {expected}"),
    (Status.VALUE, KERNEL): (_E, "{where}: value at position {position} does not fit in {expected} bits"),
    (Status.RANGE, CM): (_F, "{where}: pair {position} decodes to index {actual}, outside [0, {expected})"),
    (Status.CODED, CM): (_F, "{where}: pair {position}: a raw value decodes to {actual}, outside [0, {expected}) "
                             "(corrupt or not a context-model stream)"),
    (Status.TRAILING, CM): (_F, "{where}: the coded stream holds {actual} bytes but decoding all {position} pairs "
                                "reads only {expected}"),
    (Status.CANONICAL, CM): (_F, "{where}: pair {position}: label {actual} is coded in full although it is in the "
                                 "move-to-front list (non-canonical)"),
    (Status.PRESET, CM): (_U, "{where}: preset {actual} is unknown (this decoder knows 0..{last})"),
    (Status.START, CM): (_F, "{where}: the stream starts with code {actual:#010x}, not below the initial range "
                             "0xffffffff (spec 15.4; corrupt or not a context-model stream)"),
    (Status.END, CM): (_F, "{where}: the stream does not end with the canonical termination (spec 15.7)"),
    (Status.EMPTY, CM): (_F, "{where}: the body is empty; it needs at least the preset byte"),
}


def message(status: int, where: str, position: int, expected: int, actual: int,
            family: str = KERNEL) -> tuple[type[Exception], str]:
    """The (exception class, message) of *status*, or (AssertionError, ...) for
    a status that no input can cause (ARG, or one without a row: a bug)."""
    row = _MESSAGES.get((Status(status), family)) or _MESSAGES.get((Status(status), KERNEL))
    if row is None:
        return AssertionError, f"{where}: kernel status {int(status)} (a bug in plada, please report)"
    cls, template = row
    return cls, template.format(where=where, position=position, expected=expected, actual=actual,
                                last=expected - 1)


def raise_status(status: int, where: str, position: int, expected: int, actual: int,
                 family: str = KERNEL) -> NoReturn:
    """Raise the exception for a non-zero kernel *status*: *where* names the
    section or kernel, *position* the first offending entry or block,
    *expected* / *actual* the two quantities that disagree."""
    cls, text = message(status, where, position, expected, actual, family)
    raise cls(text)


def raise_cm(status: int, position: int, expected: int, actual: int) -> NoReturn:
    """:func:`raise_status` for the context-model codec's index section."""
    raise_status(status, CM_WHERE, position, expected, actual, CM)
