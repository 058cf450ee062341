"""Decoding, inspecting and verifying payloads (spec/FORMAT.md section 9)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _backend, codecs
from ._compression import COMPRESSION_NAMES, COMPRESSION_NONE, open_raw, stored_to_raw
from ._constants import (
    DEFAULT_MAX_ANCILLARY_BYTES,
    DEFAULT_MAX_COUNT,
    DEFAULT_MAX_METADATA_ITEMS,
    DEFAULT_MAX_SECTION_BYTES,
    FORMAT_MAJOR,
    FORMAT_MINOR,
    SECTION_NAMES,
    UNBOUND_FINGERPRINT,
    parse_version,
    version_text,
)
from ._container import Header, Section, as_buffer, parse_header, parse_sections
from ._errors import (
    InvalidOptionError,
    LimitExceededError,
    PayloadFormatError,
    ReferenceMismatchError,
    UnsupportedFeatureError,
)
from ._reference import ReferenceSet
from ._results import Payload, PayloadInfo, SectionInfo
from .codecs._entries import read_entries

__all__ = ["PayloadDecoder", "decode", "verify", "inspect"]


def _reader_version(format_version) -> tuple[int, int] | None:
    """None: every registered codec; else only those a reader of that version knows."""
    if format_version is None:
        return None
    try:
        version = parse_version(format_version)
    except ValueError as exc:
        raise InvalidOptionError(str(exc)) from None
    if version[0] != FORMAT_MAJOR or version[1] > FORMAT_MINOR:
        raise InvalidOptionError(
            f"format_version {version_text(version)}: this library reads "
            f"{FORMAT_MAJOR}.0 .. {FORMAT_MAJOR}.{FORMAT_MINOR}"
        )
    return version


def _understood(section: Section, version: tuple[int, int] | None) -> codecs.Codec | None:
    codec = codecs.find(section.type, section.codec, version)
    if codec is None or section.compression not in COMPRESSION_NAMES:
        return None
    return codec


def _resolve_codecs(sections: list[Section], header: Header, version: tuple[int, int] | None):
    """Step 8a: the codec of every section to decode, ancillary ones not
    understood left out; every rule about codec ids checked before any body."""
    plan: list[tuple[Section, codecs.Codec]] = []
    for section in sections:
        codec = _understood(section, version)
        if codec is None:
            if section.ancillary:
                continue  # ancillary sections a decoder does not understand are skipped
            if codecs.find(section.type, section.codec, version) is None:
                what = f"codec id {section.codec}"
            else:
                what = f"compression id {section.compression}"
            reader = "" if version is None else f" for a format {version_text(version)} reader"
            raise UnsupportedFeatureError(f"{section.where} uses unknown {what}{reader}")
        if codec.introduced > (FORMAT_MAJOR, header.minor):
            raise PayloadFormatError(
                f"{section.where} uses codec {codec.name!r} of format {version_text(codec.introduced)}, "
                f"but the header declares format {FORMAT_MAJOR}.{header.minor}"
            )
        if section.compression != COMPRESSION_NONE and not codec.allows_compression:
            raise PayloadFormatError(
                f"{section.where} uses codec {codec.name!r} with compression "
                f"{COMPRESSION_NAMES[section.compression]!r}; this codec's body is stored uncompressed"
            )
        plan.append((section, codec))
    chosen = {section.type: codec for section, codec in plan}
    for section, codec in plan:
        if codec.partner is None:
            continue
        partner_type, partner_id = codec.partner
        other = chosen.get(partner_type)
        if other is None or other.id != partner_id:
            raise PayloadFormatError(
                f"{section.where} uses codec {codec.name!r}, which needs the "
                f"{SECTION_NAMES.get(partner_type, hex(partner_type))} section's codec id {partner_id}"
            )
    return plan


def _section_info(section: Section) -> SectionInfo:
    known = codecs.find(section.type, section.codec)
    return SectionInfo(
        type=section.type,
        name=SECTION_NAMES.get(section.type, f"unknown-{section.type:#06x}"),
        critical=not section.ancillary,
        codec=section.codec,
        codec_name=known.name if known is not None else f"unknown-{section.codec}",
        compression=section.compression,
        compression_name=COMPRESSION_NAMES.get(section.compression, f"unknown-{section.compression}"),
        raw_length=section.raw_length,
        stored_length=section.stored_length,
        offset=section.offset,
        understood=_understood(section, None) is not None,
    )


def _info(header: Header, sections: list[Section]) -> PayloadInfo:
    return PayloadInfo(
        version=(FORMAT_MAJOR, header.minor),
        n_ref=header.n_ref,
        n_classes=header.n_classes,
        count=header.count,
        fingerprint=None if header.fingerprint == UNBOUND_FINGERPRINT else header.fingerprint,
        total_length=header.total_length,
        sections=tuple(_section_info(s) for s in sections),
    )


def inspect(data) -> PayloadInfo:
    """Summarise a payload's header and sections without decoding the bodies.

    Checks the framing and every CRC32C; raises the same errors as
    :func:`decode` for anything wrong with them.
    """
    view = as_buffer(data)
    header = parse_header(view)
    sections = parse_sections(view, header)
    return _info(header, sections)


def _source(reference: ReferenceSet) -> str:
    return f" ({reference.source})" if reference.source else ""


def _limit(value, name: str) -> int:
    """A limit option: a non-negative int (bool, float, str and None are refused, not truncated)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InvalidOptionError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def _check_reference(header: Header, reference: ReferenceSet | None) -> None:
    if reference is None:
        return
    if not isinstance(reference, ReferenceSet):
        raise InvalidOptionError(f"reference must be a ReferenceSet or None, not {type(reference).__name__} "
                                 f"(a fingerprint alone: ReferenceSet(n_ref, fingerprint))")
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
        Largest k accepted (default 2**24: every real selection, all of
        ImageNet-21K); beyond it :class:`LimitExceededError`, before any
        allocation. Output memory is 12 bytes per entry; decoding against
        *reference* bounds k by its N too (spec/FORMAT.md 13).
    max_section_bytes : int
        Largest ``raw_length`` and ``stored_length`` of any section, skipped
        ones included.
    max_ancillary_bytes : int
        Largest ``raw_length`` of a task-name or metadata section, and of a
        class-names section counted at 64 bytes a name or more (checked
        before decompressing it).
    max_metadata_items : int
        Largest item count of the metadata JSON: the bytes ``[``, ``{``,
        ``,`` and ``:`` of its raw body, inside strings or not (spec 5.5),
        checked before parsing it.
    backend : {"auto", "c", "python"}
        Kernel backend for this decoder.
    format_version : str, optional
        Read as a decoder of this format version would, e.g. ``"1.0"``:
        codecs introduced later are unknown to it
        (:class:`UnsupportedFeatureError` in a critical section, skipped in
        an ancillary one). Default: every registered codec.
    """

    def __init__(
        self,
        *,
        reference: ReferenceSet | None = None,
        max_count: int = DEFAULT_MAX_COUNT,
        max_section_bytes: int = DEFAULT_MAX_SECTION_BYTES,
        max_ancillary_bytes: int = DEFAULT_MAX_ANCILLARY_BYTES,
        max_metadata_items: int = DEFAULT_MAX_METADATA_ITEMS,
        backend: str = "auto",
        format_version: str | None = None,
    ) -> None:
        self.reference = reference
        self.limits = codecs.Limits(_limit(max_count, "max_count"), _limit(max_section_bytes, "max_section_bytes"),
                                    _limit(max_ancillary_bytes, "max_ancillary_bytes"),
                                    _limit(max_metadata_items, "max_metadata_items"))
        self.max_count = self.limits.max_count
        self.max_section_bytes = self.limits.max_section_bytes
        self.format_version = _reader_version(format_version)
        self._kernels = _backend.get_kernels(backend)

    def decode(self, data) -> Payload:
        return self._decode(data)[0]

    def _check_raw_length(self, section: Section, codec: codecs.Codec, header: Header) -> None:
        """The bounds of 5.5 and the local limit of this section, before its body is read."""
        low, high = codec.raw_length_bounds(header)
        if not low <= section.raw_length <= high:
            raise PayloadFormatError(
                f"{section.where}: raw_length {section.raw_length} outside the {low}..{high} "
                f"its codec allows for this header"
            )
        if codec.limit is not None:
            cost, limit = codec.limit_cost(section.raw_length, header), getattr(self.limits, codec.limit)
            if cost > limit:
                what = f"raw_length {section.raw_length}" if cost == section.raw_length else \
                    f"raw_length {section.raw_length} (counted as {cost} bytes: {codec.limit_rule})"
                raise LimitExceededError(f"{section.where}: {what} is above {codec.limit} = {limit}")

    def _decode_critical(self, critical: list[tuple[Section, codecs.Codec]],
                         context: codecs.DecodeContext) -> dict[str, Any]:
        """The index and label bodies, CHUNK entries of each at a time, so the
        first bad entry of either stops the decoding (FORMAT.md 9, step 8b)."""
        readers = []
        for section, codec in critical:
            reader = codec.reader(open_raw(section), context, self._kernels, section.where)
            if reader is None:
                break
            readers.append((reader, codec))
        else:
            arrays = read_entries([(reader, codec.dtype) for reader, codec in readers], context.count)
            return {codec.fields[0]: array for (_, codec), array in zip(readers, arrays)}
        # A codec that decodes its whole body at once (the 1.1 context model and its partner).
        fields: dict[str, Any] = {}
        for section, codec in critical:
            fields.update(codec.decode(stored_to_raw(section), context, self._kernels, section.where))
        return fields

    def _decode(self, data) -> tuple[Payload, PayloadInfo]:
        view = as_buffer(data)
        header = parse_header(view)  # steps 1-4
        if header.count > self.limits.max_count:  # step 5
            raise LimitExceededError(
                f"count at offset 24 is {header.count}, above max_count = {self.limits.max_count}"
            )
        sections = parse_sections(view, header, self.limits.max_section_bytes)  # step 6
        _check_reference(header, self.reference)  # step 7
        plan = _resolve_codecs(sections, header, self.format_version)  # step 8a
        context = codecs.DecodeContext(header.n_ref, header.n_classes, header.count, header.minor, self.limits)
        fields: dict[str, Any] = {}
        # Step 8b: the critical sections first, decoded together entry by entry.
        critical = [(section, codec) for section, codec in plan if not section.ancillary]
        for section, codec in critical:
            self._check_raw_length(section, codec, header)
        fields.update(self._decode_critical(critical, context))
        for section, codec in plan:
            if section.ancillary:
                self._check_raw_length(section, codec, header)
                fields.update(codec.decode(stored_to_raw(section), context, self._kernels, section.where))
        for required in ("indices", "labels"):
            if required not in fields:  # only a codec registered without its partner gets here
                raise PayloadFormatError(f"no section of this payload carries the {required}")
        payload = Payload(
            n_ref=header.n_ref,
            n_classes=header.n_classes,
            fingerprint=None if header.fingerprint == UNBOUND_FINGERPRINT else header.fingerprint,
            version=(FORMAT_MAJOR, header.minor),
            **fields,
        )
        return payload, _info(header, sections)


def decode(
    data,
    *,
    reference: ReferenceSet | None = None,
    max_count: int = DEFAULT_MAX_COUNT,
    max_section_bytes: int = DEFAULT_MAX_SECTION_BYTES,
    max_ancillary_bytes: int = DEFAULT_MAX_ANCILLARY_BYTES,
    max_metadata_items: int = DEFAULT_MAX_METADATA_ITEMS,
    backend: str = "auto",
    format_version: str | None = None,
) -> Payload:
    """Decode a payload; see :class:`PayloadDecoder` for the parameters.

    Raises a subclass of :class:`PayloadError` for any malformed payload, a
    payload beyond the limits, or one bound to another reference set.
    """
    return PayloadDecoder(
        reference=reference, max_count=max_count, max_section_bytes=max_section_bytes,
        max_ancillary_bytes=max_ancillary_bytes, max_metadata_items=max_metadata_items, backend=backend,
        format_version=format_version,
    ).decode(data)


def verify(data, *, reference: ReferenceSet | None = None, **limits) -> PayloadInfo:
    """Fully decode *data* (checksums, every body, the reference binding when
    given) and return its :class:`PayloadInfo`; raises on any problem."""
    return PayloadDecoder(reference=reference, **limits)._decode(data)[1]
