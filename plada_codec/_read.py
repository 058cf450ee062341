"""Reading one payload from a file or stream without trusting its size.

:func:`read_payload` reads the 80-byte header first and checks it (magic,
version, CRC32C, field ranges) before it reads anything else, so a file of
zeros, a 2 GB file or ``/dev/zero`` is refused after 80 bytes instead of
being read whole into memory.
"""

from __future__ import annotations

import os
import sys
from typing import BinaryIO

from ._constants import HEADER_SIZE
from ._container import check_total_length, parse_header_fields
from ._errors import InvalidOptionError, LimitExceededError, TrailingDataError, TruncatedPayloadError

__all__ = ["read_payload", "DEFAULT_MAX_TOTAL_LENGTH"]

# Library default, not a format rule: two critical sections at the decoder's
# default max_section_bytes (2**28 each) plus ancillary sections fit below it.
DEFAULT_MAX_TOTAL_LENGTH = 1 << 30


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    """Up to *size* bytes; fewer only at end of input (pipes return short reads)."""
    first = stream.read(size)
    if first is None:
        first = b""
    if not isinstance(first, (bytes, bytearray)):
        raise TypeError(f"a payload source must be opened in binary mode (read gave {type(first).__name__})")
    if len(first) == size or not first:
        return first
    parts = [first]
    have = len(first)
    while have < size:
        more = stream.read(size - have)
        if not more:
            break
        parts.append(more)
        have += len(more)
    return b"".join(parts)


def _read_from(stream: BinaryIO, max_total_length: int) -> bytes:
    head = _read_exactly(stream, HEADER_SIZE)
    header = parse_header_fields(memoryview(head))  # steps 1-3 of FORMAT.md 9
    total = header.total_length
    if total > max_total_length:
        raise LimitExceededError(
            f"total_length at offset 64 is {total} bytes, above max_total_length = {max_total_length}"
        )
    rest = _read_exactly(stream, total - HEADER_SIZE)
    if len(rest) < total - HEADER_SIZE:
        raise TruncatedPayloadError(
            f"input is {HEADER_SIZE + len(rest)} bytes but total_length declares {total}"
        )
    extra = stream.read(1)
    if extra:
        # Count what follows, a piece at a time and no further than a bound, so the message is
        # as exact as decode()'s without holding, or reading for long, an endless input.
        bound = min(max_total_length, _COUNT_LIMIT)
        trailing = len(extra)
        while trailing <= bound:
            more = stream.read(_COUNT_PIECE)
            if not more:
                break
            trailing += len(more)
        else:
            raise TrailingDataError(f"more than {bound} bytes follow the payload's end at offset {total}")
        check_total_length(total + trailing, total)  # raises TrailingDataError
    return head + rest


_COUNT_PIECE = 1 << 16
_COUNT_LIMIT = 1 << 26  # trailing bytes counted for the message at most


def read_payload(source, *, max_total_length: int = DEFAULT_MAX_TOTAL_LENGTH) -> bytes:
    """Read exactly one payload from *source*, checking its header first.

    Parameters
    ----------
    source : path, ``"-"`` or binary file object
        A file path (str or path-like), ``"-"`` for standard input, or an
        object with a ``read`` method returning bytes (it is not closed).
    max_total_length : int
        Largest ``total_length`` accepted; beyond it :class:`LimitExceededError`
        is raised after reading only the header.

    Returns
    -------
    bytes
        The payload, exactly ``total_length`` bytes, ready for :func:`decode`.

    Notes
    -----
    Reads the 80-byte header, checks magic, version, header CRC32C and field
    ranges (spec section 9, steps 1-3), then reads ``total_length - 80`` more
    bytes and one more to prove the input ends there: a shorter input raises
    :class:`TruncatedPayloadError`, a longer one :class:`TrailingDataError`
    saying how many bytes follow (counted up to 64 MiB or *max_total_length*).
    The sections are not checked here; :func:`decode` does that. A path that
    cannot be opened raises what :func:`open` raises (``OSError``, or
    ``ValueError`` for a NUL in it); a *source* of another type ``TypeError``.
    """
    if isinstance(max_total_length, bool) or not isinstance(max_total_length, int) or max_total_length < 0:
        raise InvalidOptionError(f"max_total_length must be a non-negative int, got {max_total_length!r}")
    if hasattr(source, "read"):
        return _read_from(source, max_total_length)
    if isinstance(source, str) and source == "-":
        return _read_from(sys.stdin.buffer, max_total_length)
    if not isinstance(source, (str, bytes, os.PathLike)):
        raise TypeError(f"source must be a path, '-' or a binary file object, not {type(source).__name__}")
    with open(source, "rb") as stream:
        return _read_from(stream, max_total_length)
