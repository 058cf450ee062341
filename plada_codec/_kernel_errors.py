"""Status codes shared by the C core and the numpy kernels, and the one place
that turns a status into an exception, so both backends raise the same class
with the same message for the same bad input."""

from __future__ import annotations

from typing import NoReturn

from ._errors import EncodeError, PayloadFormatError

# Mirrors enum plada_status in csrc/plada_core.h; the values are part of the
# C ABI only, never of the wire format.
OK = 0
ERR_LENGTH = 1  # the buffer is not the length the codec implies
ERR_WIDTH = 2  # a block bit width is above 64
ERR_PADDING = 3  # padding bits after the last value are not zero
ERR_RANGE = 4  # a decoded index is >= n_ref
ERR_LABEL = 5  # a decoded label is >= n_classes
ERR_COUNT = 6  # a bitmap's population count differs from the header's k
ERR_VALUE = 7  # encoder: a value does not fit the requested width
ERR_ARG = 8  # a caller bug: an argument outside the function's contract


def raise_status(status: int, where: str, position: int, expected: int, actual: int) -> NoReturn:
    """Raise the exception for a non-zero kernel *status*.

    *where* names the section or kernel, *position* the first offending entry
    or block, *expected* / *actual* the two quantities that disagree.
    """
    if status == ERR_LENGTH:
        raise PayloadFormatError(
            f"{where}: holds {actual} bytes but its codec needs exactly {expected}"
        )
    if status == ERR_WIDTH:
        raise PayloadFormatError(
            f"{where}: block {position} declares bit width {actual}, allowed 0..64"
        )
    if status == ERR_PADDING:
        raise PayloadFormatError(f"{where}: padding bits after the last value are not zero")
    if status == ERR_RANGE:
        raise PayloadFormatError(
            f"{where}: entry {position} decodes to an index outside [0, {expected})"
        )
    if status == ERR_LABEL:
        raise PayloadFormatError(
            f"{where}: entry {position} has label {actual}, allowed 0..{expected - 1}"
        )
    if status == ERR_COUNT:
        raise PayloadFormatError(
            f"{where}: bitmap has {actual} set bits but the header declares k = {expected}"
        )
    if status == ERR_VALUE:
        raise EncodeError(f"{where}: value at position {position} does not fit in {expected} bits")
    raise AssertionError(f"{where}: kernel status {status} (a bug in plada, please report)")
