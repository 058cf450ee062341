"""Constants of the PLADA format (spec/FORMAT.md section 2) and the library's defaults."""

from __future__ import annotations

import re
import struct

import crc32c as _crc32c

# -- the format's constants ---------------------------------------------------
MAGIC = b"\x89PLADA\r\n"
FORMAT_MAJOR = 1
FORMAT_MINOR = 2  # the newest minor version this library reads and writes
HEADER_SIZE = 80
SECTION_HEADER_SIZE = 24
SECTION_CRC_SIZE = 4
MAX_N_REF = 1 << 48
MAX_CLASSES = 1 << 24
MAX_SECTIONS = 256
BLOCK = 128
ANCILLARY_BIT = 0x8000
ANCILLARY_MAX_RAW = 1 << 26
ZSTD_MAX_WINDOW = 1 << 27
ZSTD_FRAME_MAGIC = b"\x28\xb5\x2f\xfd"
METADATA_MAX_DEPTH = 64
UNBOUND_FINGERPRINT = bytes(32)

SECTION_INDEX = 0x0001
SECTION_LABELS = 0x0002
SECTION_CLASS_NAMES = 0x8001
SECTION_TASK_NAME = 0x8002
SECTION_METADATA = 0x8003
SECTION_NAMES = {
    SECTION_INDEX: "index",
    SECTION_LABELS: "labels",
    SECTION_CLASS_NAMES: "class-names",
    SECTION_TASK_NAME: "task-name",
    SECTION_METADATA: "metadata",
}
CRITICAL_SECTIONS = (SECTION_INDEX, SECTION_LABELS)

COMPRESSION_NONE = 0
COMPRESSION_ZSTD = 1
COMPRESSION_NAMES = {COMPRESSION_NONE: "none", COMPRESSION_ZSTD: "zstd"}

# -- library defaults, not format rules ----------------------------------------
# 2**24 pairs: every real payload (all of ImageNet-21K, N = 14,197,122, fits),
# 192 MiB of output arrays at most (12 bytes a pair; spec 13 states the bound).
DEFAULT_MAX_COUNT = 1 << 24
DEFAULT_MAX_SECTION_BYTES = 1 << 28
# Known ancillary sections hold text for people: a few KB in practice. These
# bound a decoder's time and memory on ones that claim megabytes (spec 5.5).
DEFAULT_MAX_ANCILLARY_BYTES = 1 << 22
DEFAULT_MAX_METADATA_ITEMS = 1 << 16
DEFAULT_ZSTD_LEVEL = 19  # the level of effort 3 and 4 (and of every frame when zstd_level is given)
# Encoder effort (zstd's levels are the model): 1 fastest, 2 the default (fast,
# decided by exact sizes), 3 the previous default (level 19 where it might win),
# 4 every candidate at the slow level. PayloadEncoder's docstring has the table.
EFFORTS = (1, 2, 3, 4)
DEFAULT_EFFORT = 2
# The encoder only tries the bitmap codec under "auto" when the bitmap is this small.
BITMAP_TRY_MAX_BYTES = 1 << 26

HEADER_STRUCT = struct.Struct("<8sBBHIQQ32sQHHI")
SECTION_STRUCT = struct.Struct("<HBBIQQ")
assert HEADER_STRUCT.size == HEADER_SIZE and SECTION_STRUCT.size == SECTION_HEADER_SIZE


def crc32c(data) -> int:
    """CRC-32C (Castagnoli, RFC 3720) of *data*."""
    return _crc32c.crc32c(data)


def label_bit_width(n_classes: int) -> int:
    """Bits per packed label: ceil(log2(n_classes)), 0 when n_classes == 1."""
    return (n_classes - 1).bit_length()


def label_byte_width(n_classes: int) -> int:
    """Bytes per label in the ``bytes`` label codec: 1, 2 or 4."""
    width = label_bit_width(n_classes)
    return 1 if width <= 8 else 2 if width <= 16 else 4


def version_text(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def parse_version(text) -> tuple[int, int]:
    """``"1.0"`` or ``(1, 0)`` -> ``(1, 0)``; ValueError for anything else
    (a float such as 1.0, bools, negative numbers, digits other than ASCII 0-9)."""
    if isinstance(text, tuple) and len(text) == 2 \
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in text):
        return text
    if not isinstance(text, str):
        raise ValueError(f"a format version is 'MAJOR.MINOR' or a (MAJOR, MINOR) pair of ints, got {text!r}")
    major, sep, minor = text.partition(".")
    if not (sep and _ASCII_DIGITS.fullmatch(major) and _ASCII_DIGITS.fullmatch(minor)) \
            or int(major) > 255 or int(minor) > 255:
        raise ValueError(f"a format version is 'MAJOR.MINOR' or a (MAJOR, MINOR) pair of ints, got {text!r}")
    return int(major), int(minor)


_ASCII_DIGITS = re.compile(r"[0-9]{1,3}")
