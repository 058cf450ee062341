"""Errors of the format 1.1 context-model codec, shared by its two twins.

Status values mirror ``enum plada_status`` in csrc/plada_core.h (9 and up are
the context-model codec's own); 1..8 keep the meaning they have in
``_kernel_errors``. Both twins call :func:`raise_cm`, so the C and the pure
path raise the same class with the same message for the same input.
"""

from __future__ import annotations

from typing import NoReturn

from . import _kernel_errors as ke
from ._errors import PayloadFormatError, UnsupportedFeatureError

ERR_LENGTH = ke.ERR_LENGTH
ERR_RANGE = ke.ERR_RANGE
ERR_LABEL = ke.ERR_LABEL
ERR_ARG = ke.ERR_ARG
ERR_CODED = 9  # a uniformly coded value (raw bits) falls outside its range
ERR_TRAILING = 10  # the body holds bytes the decoder never reads
ERR_CANONICAL = 11  # a non-canonical encoding (termination, or a tree label already in the list)
ERR_PRESET = 12  # the body's first byte names no known preset

WHERE = "index section (context-model)"


def raise_cm(status: int, position: int, expected: int, actual: int) -> NoReturn:
    """Raise the exception for a context-model kernel *status*."""
    if status == ERR_CODED and expected == 0:  # the kernels' mark for the 15.4 init check
        raise PayloadFormatError(
            f"{WHERE}: the stream starts with code {actual:#010x}, not below the initial range "
            "0xffffffff (spec 15.4; corrupt or not a context-model stream)"
        )
    if status == ERR_CODED:
        raise PayloadFormatError(
            f"{WHERE}: pair {position}: a raw value decodes to {actual}, outside [0, {expected}) "
            "(corrupt or not a context-model stream)"
        )
    if status == ERR_TRAILING:
        raise PayloadFormatError(
            f"{WHERE}: the coded stream holds {actual} bytes but decoding all {position} pairs "
            f"reads only {expected}"
        )
    if status == ERR_CANONICAL:
        if expected:
            raise PayloadFormatError(
                f"{WHERE}: pair {position}: label {actual} is coded in full although it is in "
                "the move-to-front list (non-canonical)"
            )
        raise PayloadFormatError(
            f"{WHERE}: the stream does not end with the canonical termination (spec 15.7)"
        )
    if status == ERR_PRESET:
        raise UnsupportedFeatureError(
            f"{WHERE}: preset {actual} is unknown (this decoder knows 0..{expected - 1})"
        )
    if status == ERR_RANGE:
        raise PayloadFormatError(
            f"{WHERE}: pair {position} decodes to index {actual}, outside [0, {expected})"
        )
    if status == ERR_LENGTH and expected == 1 and actual == 0:
        raise PayloadFormatError(f"{WHERE}: the body is empty; it needs at least the preset byte")
    ke.raise_status(status, WHERE, position, expected, actual)
