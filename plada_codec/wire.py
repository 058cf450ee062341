"""Raw, unvalidated access to the wire layout, for test vectors and fuzzing.

:func:`split` cuts a well-framed payload into a :class:`RawPayload` without
checking anything; :func:`join` writes one back, recomputing lengths and CRCs
unless they are set explicitly. Together they build payloads that break
exactly one rule of the spec.

>>> import plada_codec
>>> raw = split(plada_codec.encode([1, 2], [0, 1], n_ref=4, n_classes=2))
>>> raw.flags = 1
>>> plada_codec.decode(join(raw))
Traceback (most recent call last):
  ...
plada_codec._errors.UnsupportedFeatureError: feature flags 0x0001 at offset 10: no must-understand features exist in 1.0
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ._constants import HEADER_SIZE, MAGIC, SECTION_CRC_SIZE, SECTION_HEADER_SIZE, crc32c
from ._constants import HEADER_STRUCT as _HEADER
from ._constants import SECTION_STRUCT as _SECTION

__all__ = ["RawSection", "RawPayload", "split", "join"]


@dataclass
class RawSection:
    type: int
    codec: int
    compression: int
    body: bytes
    raw_length: int | None = None  # None: len(body) (only right when uncompressed)
    stored_length: int | None = None  # None: len(body)
    flags: int = 0
    crc: int | None = None  # None: computed

    def to_bytes(self) -> bytes:
        raw_length = len(self.body) if self.raw_length is None else self.raw_length
        stored = len(self.body) if self.stored_length is None else self.stored_length
        framed = _SECTION.pack(self.type, self.codec, self.compression, self.flags, raw_length, stored)
        framed += self.body
        crc = crc32c(framed) if self.crc is None else self.crc
        return framed + struct.pack("<I", crc)


@dataclass
class RawPayload:
    n_classes: int
    n_ref: int
    count: int
    fingerprint: bytes = bytes(32)
    sections: list[RawSection] = field(default_factory=list)
    magic: bytes = MAGIC
    major: int = 1
    minor: int = 0
    flags: int = 0
    reserved: int = 0
    total_length: int | None = None  # None: computed
    section_count: int | None = None  # None: len(sections)
    header_crc: int | None = None  # None: computed
    trailing: bytes = b""


def split(data: bytes) -> RawPayload:
    """Cut a well-framed payload into its fields (no validation)."""
    (magic, major, minor, flags, n_classes, n_ref, count, fingerprint, total, n_sections,
     reserved, _) = _HEADER.unpack_from(data, 0)
    sections = []
    offset = HEADER_SIZE
    for _ in range(n_sections):
        stype, codec, compression, sflags, raw_length, stored = _SECTION.unpack_from(data, offset)
        body = bytes(data[offset + SECTION_HEADER_SIZE : offset + SECTION_HEADER_SIZE + stored])
        sections.append(RawSection(stype, codec, compression, body, raw_length, None, sflags))
        offset += SECTION_HEADER_SIZE + stored + SECTION_CRC_SIZE
    return RawPayload(
        n_classes, n_ref, count, bytes(fingerprint), sections, magic, major, minor, flags, reserved,
        trailing=bytes(data[total:]),
    )


def join(raw: RawPayload) -> bytes:
    """Write *raw* as bytes, filling in every field left as None."""
    body = b"".join(s.to_bytes() for s in raw.sections)
    total = HEADER_SIZE + len(body) if raw.total_length is None else raw.total_length
    n_sections = len(raw.sections) if raw.section_count is None else raw.section_count
    header = bytearray(
        _HEADER.pack(raw.magic, raw.major, raw.minor, raw.flags, raw.n_classes, raw.n_ref,
                     raw.count, raw.fingerprint, total, n_sections, raw.reserved, 0)
    )
    crc = crc32c(header[: HEADER_SIZE - 4]) if raw.header_crc is None else raw.header_crc
    struct.pack_into("<I", header, HEADER_SIZE - 4, crc)
    return bytes(header) + body + raw.trailing
