"""The container: header and section framing (spec/FORMAT.md sections 3-5.3, 9 steps 1-6).

Parsing checks only what the framing says (magic, version, CRCs, lengths,
order); section bodies are the codecs' business (``plada_codec.codecs``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ._constants import (
    ANCILLARY_BIT,
    ANCILLARY_MAX_RAW,
    COMPRESSION_NONE,
    CRITICAL_SECTIONS,
    FORMAT_MAJOR,
    HEADER_SIZE,
    HEADER_STRUCT,
    MAGIC,
    MAX_CLASSES,
    MAX_N_REF,
    MAX_SECTIONS,
    SECTION_CRC_SIZE,
    SECTION_HEADER_SIZE,
    SECTION_NAMES,
    SECTION_STRUCT,
    crc32c,
)
from ._errors import (
    ChecksumError,
    LimitExceededError,
    PayloadFormatError,
    TrailingDataError,
    TruncatedPayloadError,
    UnsupportedFeatureError,
    UnsupportedVersionError,
)


@dataclass(frozen=True)
class Header:
    """The header's fields after validation (FORMAT.md section 4)."""

    minor: int
    n_classes: int
    n_ref: int
    count: int
    fingerprint: bytes
    total_length: int
    section_count: int


@dataclass(frozen=True)
class Section:
    """One framed section: its header fields and its stored body."""

    type: int
    codec: int
    compression: int
    raw_length: int
    stored_length: int
    offset: int
    body: memoryview

    @property
    def ancillary(self) -> bool:
        return bool(self.type & ANCILLARY_BIT)

    @property
    def where(self) -> str:
        name = SECTION_NAMES.get(self.type, f"section type {self.type:#06x}")
        return f"{name} section at offset {self.offset}"


def as_buffer(data) -> memoryview:
    """A flat byte view of any bytes-like *data* (TypeError for anything else)."""
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"a payload is bytes-like, not {type(data).__name__}") from None
    if not view.c_contiguous:  # a strided numpy view, say: its bytes in order, copied once
        view = memoryview(view.tobytes())
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    return view


def parse_header_fields(view: memoryview) -> Header:
    """Steps 1-3 of decoding, on the first (up to) 80 bytes of the input."""
    size = len(view)
    if bytes(view[: min(size, 8)]) != MAGIC[: min(size, 8)]:
        raise PayloadFormatError("bad magic at offset 0: not a PLADA payload")
    if size < 10:
        raise TruncatedPayloadError(f"payload is {size} bytes; the header alone is {HEADER_SIZE}")
    if view[8] != FORMAT_MAJOR:
        raise UnsupportedVersionError(
            f"format major version {view[8]} at offset 8; this decoder reads {FORMAT_MAJOR}.x"
        )
    if size < HEADER_SIZE:
        raise TruncatedPayloadError(f"payload is {size} bytes; the header alone is {HEADER_SIZE}")
    (_, _, minor, flags, n_classes, n_ref, count, fingerprint, total, n_sections, reserved,
     header_crc) = HEADER_STRUCT.unpack_from(view, 0)
    actual_crc = crc32c(view[: HEADER_SIZE - 4])
    if actual_crc != header_crc:
        raise ChecksumError(
            f"header CRC32C at offset 76 is {header_crc:#010x}, computed {actual_crc:#010x}"
        )
    if flags:
        raise UnsupportedFeatureError(
            f"feature flags {flags:#06x} at offset 10: no must-understand features exist in 1.{minor}"
        )
    if reserved:
        raise PayloadFormatError(f"reserved field at offset 74 is {reserved}, must be 0")
    if not 1 <= n_ref <= MAX_N_REF:
        raise PayloadFormatError(f"n_ref at offset 16 is {n_ref}, allowed 1..2**48")
    if not 1 <= n_classes <= MAX_CLASSES:
        raise PayloadFormatError(f"n_classes at offset 12 is {n_classes}, allowed 1..2**24")
    if count > n_ref:
        raise PayloadFormatError(f"count at offset 24 is {count}, more than n_ref = {n_ref}")
    if not 2 <= n_sections <= MAX_SECTIONS:
        raise PayloadFormatError(
            f"section_count at offset 72 is {n_sections}, allowed 2..{MAX_SECTIONS}"
        )
    if total < HEADER_SIZE:
        raise PayloadFormatError(f"total_length at offset 64 is {total}, less than the header")
    return Header(minor, n_classes, n_ref, count, bytes(fingerprint), total, n_sections)


def check_total_length(size: int, total: int) -> None:
    """Step 4 of decoding: the input holds exactly total_length bytes."""
    if size < total:
        raise TruncatedPayloadError(f"payload is {size} bytes but total_length declares {total}")
    if size > total:
        raise TrailingDataError(f"{size - total} bytes follow the payload's end at offset {total}")


def parse_header(view: memoryview) -> Header:
    """Steps 1-4 of decoding: the header of a complete payload."""
    header = parse_header_fields(view)
    check_total_length(len(view), header.total_length)
    return header


def parse_sections(view: memoryview, header: Header, max_section_bytes: int | None = None) -> list[Section]:
    """Step 6 of decoding: frame every section, check its CRC and the
    rules that hold for every section whether or not its codec is known."""
    sections = []
    offset = HEADER_SIZE
    previous_type = 0
    for number in range(header.section_count):
        if offset + SECTION_HEADER_SIZE > header.total_length:
            raise TruncatedPayloadError(
                f"section {number} header at offset {offset} runs past the payload's end "
                f"({header.total_length})"
            )
        stype, codec, compression, flags, raw_length, stored = SECTION_STRUCT.unpack_from(view, offset)
        end = offset + SECTION_HEADER_SIZE + stored + SECTION_CRC_SIZE
        if end > header.total_length:
            raise TruncatedPayloadError(
                f"section {number} at offset {offset} declares stored_length {stored}, "
                f"which runs past the payload's end ({header.total_length})"
            )
        (stored_crc,) = struct.unpack_from("<I", view, end - SECTION_CRC_SIZE)
        actual_crc = crc32c(view[offset : end - SECTION_CRC_SIZE])
        if actual_crc != stored_crc:
            raise ChecksumError(
                f"section {number} CRC32C at offset {end - 4} is {stored_crc:#010x}, "
                f"computed {actual_crc:#010x}"
            )
        if flags:
            raise PayloadFormatError(
                f"section {number} reserved flags at offset {offset + 4} are {flags:#x}, must be 0"
            )
        if stype <= previous_type:
            raise PayloadFormatError(
                f"section {number} type {stype:#06x} at offset {offset} is not greater than "
                f"the previous type {previous_type:#06x} (order or duplicate)"
            )
        if not stype & ANCILLARY_BIT and stype not in CRITICAL_SECTIONS:
            raise UnsupportedFeatureError(
                f"section {number} at offset {offset} has unknown critical type {stype:#06x}"
            )
        section = Section(stype, codec, compression, raw_length, stored, offset,
                          view[offset + SECTION_HEADER_SIZE : end - SECTION_CRC_SIZE])
        _check_lengths(section, max_section_bytes)
        previous_type = stype
        sections.append(section)
        offset = end
    if offset != header.total_length:
        raise PayloadFormatError(
            f"{header.total_length - offset} bytes at offset {offset} belong to no section"
        )
    present = {s.type for s in sections}
    for required in CRITICAL_SECTIONS:
        if required not in present:
            raise PayloadFormatError(f"the {SECTION_NAMES[required]} section is missing")
    return sections


def _check_lengths(section: Section, max_section_bytes: int | None) -> None:
    """Length rules that need no codec, so they hold for skipped sections too (5.5)."""
    if section.ancillary and section.raw_length > ANCILLARY_MAX_RAW:
        raise PayloadFormatError(
            f"{section.where}: raw_length {section.raw_length} above the format's "
            f"{ANCILLARY_MAX_RAW} for ancillary sections"
        )
    if section.compression == COMPRESSION_NONE and section.stored_length != section.raw_length:
        raise PayloadFormatError(
            f"{section.where}: uncompressed but stored_length {section.stored_length} "
            f"!= raw_length {section.raw_length}"
        )
    if max_section_bytes is not None:
        for name in ("stored_length", "raw_length"):
            value = getattr(section, name)
            if value > max_section_bytes:
                raise LimitExceededError(
                    f"{section.where}: {name} {value} is above max_section_bytes = {max_section_bytes}"
                )


def assemble(header_fields: dict, sections) -> bytes:
    """Write a payload: *sections* are (type, codec, compression, raw_length,
    stored body) tuples, written in type order with their CRCs."""
    sections = sorted(sections, key=lambda s: s[0])
    total = HEADER_SIZE + sum(SECTION_HEADER_SIZE + len(s[4]) + SECTION_CRC_SIZE for s in sections)
    f = header_fields
    header = bytearray(
        HEADER_STRUCT.pack(MAGIC, FORMAT_MAJOR, f["minor"], 0, f["n_classes"], f["n_ref"], f["count"],
                           f["fingerprint"], total, len(sections), 0, 0)
    )
    struct.pack_into("<I", header, HEADER_SIZE - 4, crc32c(header[: HEADER_SIZE - 4]))
    out = bytearray(header)
    for stype, codec, compression, raw_length, stored in sections:
        framed = SECTION_STRUCT.pack(stype, codec, compression, 0, raw_length, len(stored)) + stored
        out += framed + struct.pack("<I", crc32c(framed))
    assert len(out) == total
    return bytes(out)
