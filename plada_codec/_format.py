"""The PLADA payload container, format version 1.0 (spec/FORMAT.md).

Python owns the format: framing, validation, versioning and error messages
live here; the loops that touch every integer are in the kernel modules.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import crc32c as _crc32c
import numpy as np
import zstandard

from . import _backend
from . import _kernel_errors as ke
from ._errors import (
    ChecksumError,
    EncodeError,
    LimitExceededError,
    PayloadFormatError,
    ReferenceMismatchError,
    TrailingDataError,
    TruncatedPayloadError,
    UnsupportedFeatureError,
    UnsupportedVersionError,
)
from ._reference import ReferenceSet

# -- constants of format 1.0 (spec section "Constants") -----------------------
MAGIC = b"\x89PLADA\r\n"
FORMAT_MAJOR = 1
FORMAT_MINOR = 0
HEADER_SIZE = 80
SECTION_HEADER_SIZE = 24
SECTION_CRC_SIZE = 4
MAX_N_REF = 1 << 48
MAX_CLASSES = 1 << 24
MAX_SECTIONS = 256
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

INDEX_DELTA = 0
INDEX_BITMAP = 1
LABEL_PACKED = 0
LABEL_BYTES = 1
ANCILLARY_PLAIN = 0
CODEC_NAMES = {
    SECTION_INDEX: {INDEX_DELTA: "delta", INDEX_BITMAP: "bitmap"},
    SECTION_LABELS: {LABEL_PACKED: "packed", LABEL_BYTES: "bytes"},
    SECTION_CLASS_NAMES: {ANCILLARY_PLAIN: "plain"},
    SECTION_TASK_NAME: {ANCILLARY_PLAIN: "plain"},
    SECTION_METADATA: {ANCILLARY_PLAIN: "json"},
}

COMPRESSION_NONE = 0
COMPRESSION_ZSTD = 1
COMPRESSION_NAMES = {COMPRESSION_NONE: "none", COMPRESSION_ZSTD: "zstd"}

# Library defaults, not format rules.
DEFAULT_MAX_COUNT = 1 << 27
DEFAULT_MAX_SECTION_BYTES = 1 << 28
DEFAULT_ZSTD_LEVEL = 19
# The encoder only tries the bitmap codec when the bitmap is this small.
BITMAP_TRY_MAX_BYTES = 1 << 26

_HEADER = struct.Struct("<8sBBHIQQ32sQHHI")
_SECTION = struct.Struct("<HBBIQQ")
assert _HEADER.size == HEADER_SIZE and _SECTION.size == SECTION_HEADER_SIZE


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


# -- results ------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Payload:
    """A decoded payload: k sorted distinct indices into the reference set
    and one label per index, plus what the payload says about itself."""

    indices: np.ndarray
    labels: np.ndarray
    n_ref: int
    n_classes: int
    fingerprint: bytes | None = None
    class_names: tuple[str, ...] | None = None
    task_name: str | None = None
    metadata: dict[str, Any] | None = None
    version: tuple[int, int] = (FORMAT_MAJOR, FORMAT_MINOR)

    def __len__(self) -> int:
        return int(self.indices.size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Payload):
            return NotImplemented
        return (
            np.array_equal(self.indices, other.indices)
            and np.array_equal(self.labels, other.labels)
            and (self.n_ref, self.n_classes, self.fingerprint, self.class_names)
            == (other.n_ref, other.n_classes, other.fingerprint, other.class_names)
            and (self.task_name, self.metadata) == (other.task_name, other.metadata)
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the layout of the test vectors' ``.json`` files)."""
        return {
            "format_version": f"{self.version[0]}.{self.version[1]}",
            "n_ref": self.n_ref,
            "n_classes": self.n_classes,
            "count": len(self),
            "fingerprint": None if self.fingerprint is None else self.fingerprint.hex(),
            "indices": self.indices.tolist(),
            "labels": self.labels.tolist(),
            "class_names": None if self.class_names is None else list(self.class_names),
            "task_name": self.task_name,
            "metadata": self.metadata,
        }


@dataclass(frozen=True)
class SectionInfo:
    """One section as framed on the wire (no body decoding)."""

    type: int
    name: str
    critical: bool
    codec: int
    codec_name: str
    compression: int
    compression_name: str
    raw_length: int
    stored_length: int
    offset: int
    understood: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class PayloadInfo:
    """Header fields and section table of a payload, from :func:`inspect`."""

    version: tuple[int, int]
    n_ref: int
    n_classes: int
    count: int
    fingerprint: bytes | None
    total_length: int
    sections: tuple[SectionInfo, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": f"{self.version[0]}.{self.version[1]}",
            "n_ref": self.n_ref,
            "n_classes": self.n_classes,
            "count": self.count,
            "fingerprint": None if self.fingerprint is None else self.fingerprint.hex(),
            "total_length": self.total_length,
            "sections": [s.to_dict() for s in self.sections],
        }


# -- framing ----------------------------------------------------------------


@dataclass(frozen=True)
class _Header:
    minor: int
    n_classes: int
    n_ref: int
    count: int
    fingerprint: bytes
    total_length: int
    section_count: int


@dataclass(frozen=True)
class _Section:
    type: int
    codec: int
    compression: int
    raw_length: int
    stored_length: int
    offset: int
    body: memoryview


def _as_buffer(data) -> memoryview:
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"a payload is bytes-like, not {type(data).__name__}") from None
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    return view


def _parse_header(view: memoryview) -> _Header:
    """Steps 1-4 of decoding: the header of a complete payload."""
    header = _parse_header_fields(view)
    _check_total_length(len(view), header.total_length)
    return header


def _parse_header_fields(view: memoryview) -> _Header:
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
     header_crc) = _HEADER.unpack_from(view, 0)
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
    return _Header(minor, n_classes, n_ref, count, bytes(fingerprint), total, n_sections)


def _check_total_length(size: int, total: int) -> None:
    """Step 4 of decoding: the input holds exactly total_length bytes."""
    if size < total:
        raise TruncatedPayloadError(f"payload is {size} bytes but total_length declares {total}")
    if size > total:
        raise TrailingDataError(f"{size - total} bytes follow the payload's end at offset {total}")


def _parse_sections(view: memoryview, header: _Header) -> list[_Section]:
    sections = []
    offset = HEADER_SIZE
    previous_type = 0
    for number in range(header.section_count):
        if offset + SECTION_HEADER_SIZE > header.total_length:
            raise TruncatedPayloadError(
                f"section {number} header at offset {offset} runs past the payload's end "
                f"({header.total_length})"
            )
        stype, codec, compression, flags, raw_length, stored = _SECTION.unpack_from(view, offset)
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
        if not stype & ANCILLARY_BIT and stype not in SECTION_NAMES:
            raise UnsupportedFeatureError(
                f"section {number} at offset {offset} has unknown critical type {stype:#06x}"
            )
        previous_type = stype
        body = view[offset + SECTION_HEADER_SIZE : end - SECTION_CRC_SIZE]
        sections.append(_Section(stype, codec, compression, raw_length, stored, offset, body))
        offset = end
    if offset != header.total_length:
        raise PayloadFormatError(
            f"{header.total_length - offset} bytes at offset {offset} belong to no section"
        )
    present = {s.type for s in sections}
    for required in (SECTION_INDEX, SECTION_LABELS):
        if required not in present:
            raise PayloadFormatError(f"the {SECTION_NAMES[required]} section is missing")
    return sections


def _understood(section: _Section) -> bool:
    return (
        section.type in SECTION_NAMES
        and section.codec in CODEC_NAMES[section.type]
        and section.compression in COMPRESSION_NAMES
    )


def _section_info(section: _Section) -> SectionInfo:
    return SectionInfo(
        type=section.type,
        name=SECTION_NAMES.get(section.type, f"unknown-{section.type:#06x}"),
        critical=not section.type & ANCILLARY_BIT,
        codec=section.codec,
        codec_name=CODEC_NAMES.get(section.type, {}).get(section.codec, f"unknown-{section.codec}"),
        compression=section.compression,
        compression_name=COMPRESSION_NAMES.get(section.compression, f"unknown-{section.compression}"),
        raw_length=section.raw_length,
        stored_length=section.stored_length,
        offset=section.offset,
        understood=_understood(section),
    )


def _raw_length_bound(section: _Section, header: _Header) -> tuple[int, int]:
    """(smallest, largest) raw_length the spec allows for a known section."""
    k = header.count
    if section.type == SECTION_INDEX:
        if section.codec == INDEX_DELTA:
            blocks = -(-k // 128)
            return blocks, blocks + 8 * k
        size = (header.n_ref + 7) // 8
        return size, size
    if section.type == SECTION_LABELS:
        if section.codec == LABEL_PACKED:
            size = (k * label_bit_width(header.n_classes) + 7) // 8
        else:
            size = k * label_byte_width(header.n_classes)
        return size, size
    return 0, ANCILLARY_MAX_RAW


def _section_body(section: _Section, header: _Header, max_section_bytes: int) -> bytes | memoryview:
    """The raw (decompressed) body, bounded before anything is allocated."""
    name = SECTION_NAMES[section.type]
    low, high = _raw_length_bound(section, header)
    if not low <= section.raw_length <= high:
        raise PayloadFormatError(
            f"{name} section at offset {section.offset}: raw_length {section.raw_length} "
            f"outside the {low}..{high} its codec allows for this header"
        )
    if section.raw_length > max_section_bytes:
        raise LimitExceededError(
            f"{name} section at offset {section.offset} decompresses to {section.raw_length} "
            f"bytes, above max_section_bytes = {max_section_bytes}"
        )
    if section.compression == COMPRESSION_NONE:
        if section.stored_length != section.raw_length:
            raise PayloadFormatError(
                f"{name} section at offset {section.offset}: uncompressed but stored_length "
                f"{section.stored_length} != raw_length {section.raw_length}"
            )
        return section.body
    return _zstd_decompress(section, name)


def _zstd_decompress(section: _Section, name: str) -> bytes:
    body = bytes(section.body)
    where = f"{name} section at offset {section.offset}"
    if body[:4] != ZSTD_FRAME_MAGIC:
        raise PayloadFormatError(f"{where}: body does not start with a zstd frame magic")
    try:
        declared = zstandard.frame_content_size(body)
        params = zstandard.get_frame_parameters(body)
    except zstandard.ZstdError as exc:
        raise PayloadFormatError(f"{where}: not a zstd frame ({exc})") from None
    if declared < 0:
        raise PayloadFormatError(f"{where}: zstd frame does not declare its content size")
    if declared != section.raw_length:
        raise PayloadFormatError(
            f"{where}: zstd frame declares {declared} bytes, raw_length says {section.raw_length}"
        )
    if params.window_size > ZSTD_MAX_WINDOW:
        raise PayloadFormatError(
            f"{where}: zstd window {params.window_size} bytes exceeds the format's 2**27"
        )
    if params.dict_id:
        raise PayloadFormatError(f"{where}: zstd frame needs dictionary {params.dict_id}")
    if section.raw_length == 0:
        # python-zstandard cannot size an output for an empty frame; decode by stream.
        out = zstandard.ZstdDecompressor().decompressobj()
        try:
            data = out.decompress(body)
        except zstandard.ZstdError as exc:
            raise PayloadFormatError(f"{where}: corrupt zstd frame ({exc})") from None
        if data or not out.eof or out.unused_data:
            raise PayloadFormatError(f"{where}: zstd frame is not one empty frame")
        return b""
    decompressor = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
    try:
        data = decompressor.decompress(
            body, max_output_size=section.raw_length, allow_extra_data=False
        )
    except zstandard.ZstdError as exc:
        raise PayloadFormatError(f"{where}: corrupt zstd frame ({exc})") from None
    if len(data) != section.raw_length:
        raise PayloadFormatError(
            f"{where}: zstd frame holds {len(data)} bytes, raw_length says {section.raw_length}"
        )
    return data


# -- ancillary bodies -----------------------------------------------------------


def _encode_class_names(names: Sequence[str]) -> bytes:
    out = bytearray()
    for name in names:
        data = name.encode("utf-8")
        out += struct.pack("<I", len(data)) + data
    return bytes(out)


def _decode_class_names(raw, n_classes: int, offset: int) -> tuple[str, ...]:
    where = f"class-names section at offset {offset}"
    raw = bytes(raw)
    if len(raw) < 4 * n_classes:
        raise PayloadFormatError(f"{where}: {len(raw)} bytes cannot hold {n_classes} names")
    names = []
    pos = 0
    for number in range(n_classes):
        if pos + 4 > len(raw):
            raise PayloadFormatError(f"{where}: name {number} length runs past the section")
        (length,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if pos + length > len(raw):
            raise PayloadFormatError(f"{where}: name {number} runs past the section")
        try:
            names.append(raw[pos : pos + length].decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise PayloadFormatError(f"{where}: name {number} is not UTF-8 ({exc.reason})") from None
        pos += length
    if pos != len(raw):
        raise PayloadFormatError(f"{where}: {len(raw) - pos} bytes follow the last class name")
    return tuple(names)


def _decode_text(raw, where: str) -> str:
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadFormatError(f"{where}: not UTF-8 ({exc.reason})") from None


def canonical_json(metadata: Mapping[str, Any]) -> bytes:
    """The metadata section's body: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(
        metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _json_depth_ok(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return True


def _decode_metadata(raw, offset: int) -> dict[str, Any]:
    where = f"metadata section at offset {offset}"
    text = _decode_text(raw, where)

    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise PayloadFormatError(f"{where}: duplicate key in a JSON object")
        return dict(pairs)

    def no_constants(name):
        raise PayloadFormatError(f"{where}: {name} is not JSON (RFC 8259)")

    try:
        value = json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constants)
    except RecursionError:
        raise PayloadFormatError(f"{where}: JSON nested deeper than {METADATA_MAX_DEPTH}") from None
    except json.JSONDecodeError as exc:
        raise PayloadFormatError(f"{where}: invalid JSON ({exc.msg} at char {exc.pos})") from None
    if not isinstance(value, dict):
        raise PayloadFormatError(f"{where}: top-level JSON value must be an object")
    if not _json_depth_ok(value, METADATA_MAX_DEPTH):
        raise PayloadFormatError(f"{where}: JSON nested deeper than {METADATA_MAX_DEPTH}")
    return value


# -- public one-shot functions ------------------------------------------------


def inspect(data) -> PayloadInfo:
    """Summarise a payload's header and sections without decoding the bodies.

    Checks the framing and every CRC32C; raises the same errors as
    :func:`decode` for anything wrong with them.
    """
    view = _as_buffer(data)
    header = _parse_header(view)
    sections = _parse_sections(view, header)
    return _info(header, sections)


def _info(header: _Header, sections: list[_Section]) -> PayloadInfo:
    return PayloadInfo(
        version=(FORMAT_MAJOR, header.minor),
        n_ref=header.n_ref,
        n_classes=header.n_classes,
        count=header.count,
        fingerprint=None if header.fingerprint == UNBOUND_FINGERPRINT else header.fingerprint,
        total_length=header.total_length,
        sections=tuple(_section_info(s) for s in sections),
    )


def _source(reference: ReferenceSet) -> str:
    return f" ({reference.source})" if reference.source else ""


def _check_reference(header: _Header, reference: ReferenceSet | None) -> None:
    if reference is None:
        return
    if not isinstance(reference, ReferenceSet):
        raise TypeError(f"reference must be a ReferenceSet, not {type(reference).__name__}")
    if header.n_ref != reference.n_ref:
        raise ReferenceMismatchError(
            f"payload indexes a reference set of {header.n_ref} items; the local "
            f"one{_source(reference)} has {reference.n_ref}"
        )
    if header.fingerprint == UNBOUND_FINGERPRINT:
        raise ReferenceMismatchError(
            "payload is not bound to a reference set (all-zero fingerprint), so it cannot be "
            "checked against the local one; decode without reference= to accept it unchecked"
        )
    if header.fingerprint != reference.fingerprint:
        raise ReferenceMismatchError(
            f"payload was made for reference set {header.fingerprint.hex()[:16]}..., the local "
            f"one{_source(reference)} is {reference.hex[:16]}..."
        )


class PayloadDecoder:
    """Decodes payloads under fixed limits; ``decode(data, **kw)`` is the
    one-shot form of ``PayloadDecoder(**kw).decode(data)``.

    Parameters
    ----------
    reference : ReferenceSet, optional
        Check that each payload is bound to this reference set.
    max_count : int
        Largest k accepted; beyond it :class:`LimitExceededError`, before any
        allocation. Output memory is 12 bytes per entry.
    max_section_bytes : int
        Largest decompressed section accepted.
    backend : {"auto", "c", "python"}
        Kernel backend for this decoder.
    """

    def __init__(
        self,
        *,
        reference: ReferenceSet | None = None,
        max_count: int = DEFAULT_MAX_COUNT,
        max_section_bytes: int = DEFAULT_MAX_SECTION_BYTES,
        backend: str = "auto",
    ) -> None:
        self.reference = reference
        self.max_count = int(max_count)
        self.max_section_bytes = int(max_section_bytes)
        self._kernels = _backend.get_kernels(backend)

    def decode(self, data) -> Payload:
        return self._decode(data)[0]

    def _decode(self, data) -> tuple[Payload, PayloadInfo]:
        view = _as_buffer(data)
        header = _parse_header(view)
        if header.count > self.max_count:
            raise LimitExceededError(
                f"count at offset 24 is {header.count}, above max_count = {self.max_count}"
            )
        sections = _parse_sections(view, header)
        _check_reference(header, self.reference)
        kernels = self._kernels
        indices = labels = None
        extras: dict[str, Any] = {}
        for section in sections:
            if not _understood(section):
                if section.type & ANCILLARY_BIT:
                    continue  # ancillary sections a decoder does not understand are skipped
                what = (
                    f"codec {section.codec}" if section.codec not in CODEC_NAMES[section.type]
                    else f"compression {section.compression}"
                )
                raise UnsupportedFeatureError(
                    f"{SECTION_NAMES[section.type]} section at offset {section.offset} uses "
                    f"unknown {what}"
                )
            raw = _section_body(section, header, self.max_section_bytes)
            if section.type == SECTION_INDEX:
                if section.codec == INDEX_DELTA:
                    indices = kernels.delta_decode(raw, header.count, header.n_ref)
                else:
                    indices = kernels.bitmap_decode(raw, header.count, header.n_ref)
            elif section.type == SECTION_LABELS:
                labels = _decode_labels(kernels, section, raw, header)
            elif section.type == SECTION_CLASS_NAMES:
                extras["class_names"] = _decode_class_names(raw, header.n_classes, section.offset)
            elif section.type == SECTION_TASK_NAME:
                extras["task_name"] = _decode_text(raw, f"task-name section at offset {section.offset}")
            elif section.type == SECTION_METADATA:
                extras["metadata"] = _decode_metadata(raw, section.offset)
        payload = Payload(
            indices=indices,
            labels=labels,
            n_ref=header.n_ref,
            n_classes=header.n_classes,
            fingerprint=None if header.fingerprint == UNBOUND_FINGERPRINT else header.fingerprint,
            version=(FORMAT_MAJOR, header.minor),
            **extras,
        )
        return payload, _info(header, sections)


def _decode_labels(kernels, section: _Section, raw, header: _Header) -> np.ndarray:
    if section.codec == LABEL_PACKED:
        width = label_bit_width(header.n_classes)
        return kernels.labels_decode(raw, header.count, width, header.n_classes)
    nbytes = label_byte_width(header.n_classes)
    values = np.frombuffer(raw, dtype=f"<u{nbytes}")
    bad = np.flatnonzero(values >= header.n_classes)
    if bad.size:
        ke.raise_status(
            ke.ERR_LABEL, "label section (bytes)", int(bad[0]), header.n_classes, int(values[bad[0]])
        )
    return values.astype(np.int32)


def decode(
    data,
    *,
    reference: ReferenceSet | None = None,
    max_count: int = DEFAULT_MAX_COUNT,
    max_section_bytes: int = DEFAULT_MAX_SECTION_BYTES,
    backend: str = "auto",
) -> Payload:
    """Decode a payload; see :class:`PayloadDecoder` for the parameters.

    Raises a subclass of :class:`PayloadError` for any malformed payload, a
    payload beyond the limits, or one bound to another reference set.
    """
    return PayloadDecoder(
        reference=reference, max_count=max_count, max_section_bytes=max_section_bytes,
        backend=backend,
    ).decode(data)


def verify(data, *, reference: ReferenceSet | None = None, **limits) -> PayloadInfo:
    """Fully decode *data* (checksums, every body, the reference binding when
    given) and return its :class:`PayloadInfo`; raises on any problem."""
    return PayloadDecoder(reference=reference, **limits)._decode(data)[1]


# -- encoding --------------------------------------------------------------------

_INDEX_CODECS = {"delta": INDEX_DELTA, "bitmap": INDEX_BITMAP}
_LABEL_CODECS = {"packed": LABEL_PACKED, "bytes": LABEL_BYTES}
_COMPRESSIONS = {"none": COMPRESSION_NONE, "zstd": COMPRESSION_ZSTD}


def _integer_array(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise EncodeError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind not in "iu":
        raise EncodeError(f"{name} must be integers, got dtype {array.dtype}")
    if array.dtype == np.uint64 and array.max() > np.iinfo(np.int64).max:
        raise EncodeError(f"{name} holds a value above 2**63 - 1")
    return array.astype(np.int64, copy=False)


def _choose(option: str, table: dict[str, int], name: str) -> list[int]:
    if option == "auto":
        return list(table.values())
    if option not in table:
        raise EncodeError(f"{name} must be 'auto' or one of {', '.join(table)}, got {option!r}")
    return [table[option]]


class PayloadEncoder:
    """Encodes selections with fixed options; ``encode(..., **kw)`` is the
    one-shot form of ``PayloadEncoder(**kw).encode(...)``.

    Parameters
    ----------
    index_codec : {"auto", "delta", "bitmap"}
    label_codec : {"auto", "packed", "bytes"}
    compression : {"auto", "none", "zstd"}
        With ``auto`` each section takes the smallest of the candidates (ties go
        to the earlier codec, then to no compression), so output is deterministic.
    zstd_level : int
        Zstandard level, 1..22.
    backend : {"auto", "c", "python"}
    """

    def __init__(
        self,
        *,
        index_codec: str = "auto",
        label_codec: str = "auto",
        compression: str = "auto",
        zstd_level: int = DEFAULT_ZSTD_LEVEL,
        backend: str = "auto",
    ) -> None:
        self._index_codecs = _choose(index_codec, _INDEX_CODECS, "index_codec")
        self._label_codecs = _choose(label_codec, _LABEL_CODECS, "label_codec")
        self._compressions = _choose(compression, _COMPRESSIONS, "compression")
        self._auto_index = index_codec == "auto"
        if not isinstance(zstd_level, int) or not 1 <= zstd_level <= 22:
            raise EncodeError(f"zstd_level must be an int in 1..22, got {zstd_level!r}")
        self._zstd = zstandard.ZstdCompressor(
            level=zstd_level, write_content_size=True, write_checksum=False, write_dict_id=False
        )
        self._kernels = _backend.get_kernels(backend)

    def encode(
        self,
        indices,
        labels,
        *,
        n_ref: int | None = None,
        n_classes: int,
        reference: ReferenceSet | bytes | None = None,
        class_names: Sequence[str] | None = None,
        task_name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> bytes:
        n_ref, fingerprint = _resolve_reference(n_ref, reference)
        if not isinstance(n_classes, (int, np.integer)) or not 1 <= n_classes <= MAX_CLASSES:
            raise EncodeError(f"n_classes must be an int in 1..2**24, got {n_classes!r}")
        n_classes = int(n_classes)
        indices = _integer_array(indices, "indices")
        labels = _integer_array(labels, "labels")
        _validate_selection(indices, labels, n_ref, n_classes)
        count = indices.size
        kernels = self._kernels

        index_bodies = [(INDEX_DELTA, lambda: kernels.delta_encode(indices))]
        bitmap_size = (n_ref + 7) // 8
        if not self._auto_index and INDEX_BITMAP in self._index_codecs and bitmap_size > DEFAULT_MAX_SECTION_BYTES:
            raise EncodeError(
                f"a bitmap over n_ref = {n_ref} items takes {bitmap_size} bytes, more than decoders "
                f"accept by default ({DEFAULT_MAX_SECTION_BYTES}); use index_codec='delta' or 'auto'"
            )
        if INDEX_BITMAP in self._index_codecs and (
            not self._auto_index or bitmap_size <= BITMAP_TRY_MAX_BYTES
        ):
            index_bodies.append((INDEX_BITMAP, lambda: kernels.bitmap_encode(indices, n_ref)))
        index_bodies = [(c, f) for c, f in index_bodies if c in self._index_codecs]

        width = label_bit_width(n_classes)
        label_bodies = [
            (LABEL_PACKED, lambda: kernels.labels_encode(labels, width)),
            (LABEL_BYTES, lambda: labels.astype(f"<u{label_byte_width(n_classes)}").tobytes()),
        ]
        label_bodies = [(c, f) for c, f in label_bodies if c in self._label_codecs]

        sections = [
            self._best(SECTION_INDEX, index_bodies),
            self._best(SECTION_LABELS, label_bodies),
        ]
        if class_names is not None:
            names = _check_class_names(class_names, n_classes)
            sections.append(self._ancillary(SECTION_CLASS_NAMES, _encode_class_names(names)))
        if task_name is not None:
            if not isinstance(task_name, str):
                raise EncodeError(f"task_name must be a str, got {type(task_name).__name__}")
            sections.append(self._ancillary(SECTION_TASK_NAME, _utf8(task_name, "task_name")))
        if metadata is not None:
            sections.append(self._ancillary(SECTION_METADATA, _metadata_body(metadata)))
        return _assemble(n_ref, n_classes, count, fingerprint, sections)

    def _compress(self, raw: bytes) -> list[tuple[int, bytes]]:
        out = []
        if COMPRESSION_NONE in self._compressions:
            out.append((COMPRESSION_NONE, raw))
        if COMPRESSION_ZSTD in self._compressions:
            out.append((COMPRESSION_ZSTD, self._zstd.compress(raw)))
        return out

    def _best(self, stype: int, bodies) -> tuple[int, int, int, int, bytes]:
        best = None
        for codec, make in bodies:
            raw = make()
            for compression, stored in self._compress(raw):
                if best is None or len(stored) < len(best[4]):
                    best = (stype, codec, compression, len(raw), stored)
        return best

    def _ancillary(self, stype: int, raw: bytes) -> tuple[int, int, int, int, bytes]:
        if len(raw) > ANCILLARY_MAX_RAW:
            raise EncodeError(
                f"{SECTION_NAMES[stype]} is {len(raw)} bytes, above the format's {ANCILLARY_MAX_RAW}"
            )
        return self._best(stype, [(ANCILLARY_PLAIN, lambda: raw)])


def _utf8(text: str, name: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodeError(f"{name} is not valid Unicode text ({exc.reason})") from None


def _check_class_names(class_names: Sequence[str], n_classes: int) -> list[str]:
    if isinstance(class_names, str):
        raise EncodeError("class_names must be a sequence of str, not one str")
    names = list(class_names)
    if len(names) != n_classes:
        raise EncodeError(f"class_names has {len(names)} names, n_classes is {n_classes}")
    for number, name in enumerate(names):
        if not isinstance(name, str):
            raise EncodeError(f"class_names[{number}] is {type(name).__name__}, not str")
        _utf8(name, f"class_names[{number}]")
    return names


def _metadata_body(metadata: Mapping[str, Any]) -> bytes:
    if not isinstance(metadata, Mapping):
        raise EncodeError(f"metadata must be a mapping, got {type(metadata).__name__}")
    try:
        body = canonical_json(dict(metadata))
    except (TypeError, ValueError) as exc:
        raise EncodeError(f"metadata is not JSON-serialisable: {exc}") from None
    value = json.loads(body)
    if not _json_depth_ok(value, METADATA_MAX_DEPTH):
        raise EncodeError(f"metadata is nested deeper than {METADATA_MAX_DEPTH}")
    return body


def _resolve_reference(n_ref, reference) -> tuple[int, bytes]:
    if isinstance(reference, ReferenceSet):
        if n_ref is not None and int(n_ref) != reference.n_ref:
            raise EncodeError(f"n_ref = {n_ref} but the reference set has {reference.n_ref} items")
        n_ref, fingerprint = reference.n_ref, reference.fingerprint
    elif reference is None:
        fingerprint = UNBOUND_FINGERPRINT
    elif isinstance(reference, (bytes, bytearray)) and len(reference) == 32:
        fingerprint = bytes(reference)
        if fingerprint == UNBOUND_FINGERPRINT:
            raise EncodeError("an all-zero fingerprint means 'unbound'; pass reference=None")
    else:
        raise EncodeError("reference must be a ReferenceSet, a 32-byte fingerprint or None")
    if n_ref is None:
        raise EncodeError("n_ref is required unless reference is a ReferenceSet")
    if not isinstance(n_ref, (int, np.integer)) or not 1 <= n_ref <= MAX_N_REF:
        raise EncodeError(f"n_ref must be an int in 1..2**48, got {n_ref!r}")
    return int(n_ref), fingerprint


def _validate_selection(indices: np.ndarray, labels: np.ndarray, n_ref: int, n_classes: int) -> None:
    if indices.size != labels.size:
        raise EncodeError(f"{indices.size} indices but {labels.size} labels")
    if indices.size == 0:
        return
    if indices[0] < 0:
        raise EncodeError(f"indices[0] = {indices[0]} is negative")
    steps = np.flatnonzero(indices[1:] <= indices[:-1])
    if steps.size:
        j = int(steps[0]) + 1
        raise EncodeError(
            f"indices[{j}] = {indices[j]} is not greater than indices[{j - 1}] = {indices[j - 1]}: "
            "indices must be sorted and distinct"
        )
    if indices[-1] >= n_ref:
        raise EncodeError(f"indices[{indices.size - 1}] = {indices[-1]} is not below n_ref = {n_ref}")
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if bad.size:
        j = int(bad[0])
        raise EncodeError(f"labels[{j}] = {labels[j]} outside 0..{n_classes - 1}")


def _assemble(n_ref, n_classes, count, fingerprint, sections) -> bytes:
    sections = sorted(sections, key=lambda s: s[0])
    total = HEADER_SIZE + sum(SECTION_HEADER_SIZE + len(s[4]) + SECTION_CRC_SIZE for s in sections)
    header = bytearray(
        _HEADER.pack(MAGIC, FORMAT_MAJOR, FORMAT_MINOR, 0, n_classes, n_ref, count, fingerprint,
                     total, len(sections), 0, 0)
    )
    struct.pack_into("<I", header, HEADER_SIZE - 4, crc32c(header[: HEADER_SIZE - 4]))
    out = bytearray(header)
    for stype, codec, compression, raw_length, stored in sections:
        framed = _SECTION.pack(stype, codec, compression, 0, raw_length, len(stored)) + stored
        out += framed + struct.pack("<I", crc32c(framed))
    assert len(out) == total
    return bytes(out)


def encode(
    indices,
    labels,
    *,
    n_ref: int | None = None,
    n_classes: int,
    reference: ReferenceSet | bytes | None = None,
    class_names: Sequence[str] | None = None,
    task_name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    index_codec: str = "auto",
    label_codec: str = "auto",
    compression: str = "auto",
    zstd_level: int = DEFAULT_ZSTD_LEVEL,
    backend: str = "auto",
) -> bytes:
    """Encode a selection as a PLADA payload (format 1.0).

    Parameters
    ----------
    indices : array of int
        Sorted, distinct positions in the reference set, each in [0, n_ref).
    labels : array of int
        One label per index, each in [0, n_classes).
    n_ref : int
        Size of the reference set; taken from *reference* when that is a
        :class:`ReferenceSet`.
    n_classes : int
        Number of classes C, 1..2**24.
    reference : ReferenceSet or 32-byte fingerprint, optional
        Binds the payload to a reference set; ``None`` writes an unbound payload.
    class_names, task_name, metadata : optional ancillary sections.
    index_codec, label_codec, compression, zstd_level, backend :
        See :class:`PayloadEncoder`.

    Notes
    -----
    On the wire: an 80-byte header (magic, version, N, k, C, fingerprint, total
    length, CRC32C), then the index section, the label section and any
    ancillary sections, each framed with its codec, compression, lengths and
    CRC32C. The same input and options always give the same bytes.
    """
    return PayloadEncoder(
        index_codec=index_codec, label_codec=label_codec, compression=compression,
        zstd_level=zstd_level, backend=backend,
    ).encode(
        indices, labels, n_ref=n_ref, n_classes=n_classes, reference=reference,
        class_names=class_names, task_name=task_name, metadata=metadata,
    )
