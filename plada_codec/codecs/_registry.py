"""The codec registry: one table keyed by (section type, codec id).

A codec is one way to write one section's raw body. The decoder looks the
codec up by the ids on the wire, the encoder tries every registered codec its
options allow, and the CLI, ``inspect``, the test strategies and the vector
generator read their names from here, so adding a codec is adding one file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from .._constants import (
    DEFAULT_MAX_ANCILLARY_BYTES,
    DEFAULT_MAX_COUNT,
    DEFAULT_MAX_METADATA_ITEMS,
    DEFAULT_MAX_SECTION_BYTES,
    SECTION_NAMES,
    version_text,
)
from .._errors import UnsupportedFeatureError

__all__ = [
    "Codec", "PayloadContent", "Shape", "Limits", "DecodeContext", "register", "unregister", "get", "find",
    "for_section",
    "names", "by_name", "all_codecs", "section_type_of",
]


class Shape(Protocol):
    """What a codec may know about a payload besides its body: the header's N, C and k."""

    @property
    def n_ref(self) -> int: ...

    @property
    def n_classes(self) -> int: ...

    @property
    def count(self) -> int: ...


@dataclass(frozen=True)
class Limits:
    """A decoder's local limits (spec 5.5): refusals happen before the work."""

    max_count: int = DEFAULT_MAX_COUNT
    max_section_bytes: int = DEFAULT_MAX_SECTION_BYTES
    max_ancillary_bytes: int = DEFAULT_MAX_ANCILLARY_BYTES
    max_metadata_items: int = DEFAULT_MAX_METADATA_ITEMS


@dataclass(frozen=True)
class DecodeContext:
    """What a codec's decode knows besides the body: the header's N, C, k and
    minor version, and the decoder's limits."""

    n_ref: int
    n_classes: int
    count: int
    minor: int
    limits: Limits


@dataclass(frozen=True)
class PayloadContent:
    """The validated content an encoder writes: the header's N, C, k, the
    selection, and the optional ancillary fields (None when absent)."""

    indices: np.ndarray  # int64, sorted, distinct, in [0, n_ref)
    labels: np.ndarray  # int64, in [0, n_classes)
    n_ref: int
    n_classes: int
    class_names: Sequence[str] | None = None
    task_name: str | None = None
    metadata: Mapping[str, Any] | None = None

    @property
    def count(self) -> int:
        return int(self.indices.size)

    def has(self, field: str) -> bool:
        return getattr(self, field) is not None


class Codec:
    """Base class of every section codec; subclasses set the class attributes.

    A codec's ``encode`` turns a :class:`PayloadContent` into the raw body (before
    compression); its ``decode`` turns a raw body into the payload fields it
    carries, raising :class:`PayloadFormatError` for a body that breaks its
    rules. Both receive the backend's kernel object
    (:class:`~plada_codec._kernels.Kernels`), whose ``name`` says which it is.
    """

    section_type: ClassVar[int]
    id: ClassVar[int]
    name: ClassVar[str]
    introduced: ClassVar[tuple[int, int]] = (1, 0)  # the format version that added it
    fields: ClassVar[tuple[str, ...]]  # the Payload fields its body carries
    # A joint codec names the codec the other section must use, e.g. an index
    # codec whose body also carries the labels pairs with a label codec whose
    # body is empty; the decoder rejects either without the other.
    partner: ClassVar[tuple[int, int] | None] = None
    # False where the body is already entropy coded and Zstandard cannot win.
    try_compression: ClassVar[bool] = True
    # False where the spec requires compression 0, so that raw_length (which
    # bounds the decoding work) is the body's real size on the wire.
    allows_compression: ClassVar[bool] = True
    # The Limits field that bounds limit_cost() before decompression, if any,
    # and the rule limit_cost() follows where it is not the raw length.
    limit: ClassVar[str | None] = None
    limit_rule: ClassVar[str] = ""
    # For an ancillary codec whose body is laid out to compress well at a fast
    # Zstandard level: the level efforts 1 and 2 write it at (never above the
    # effort's own ancillary level), and the id of the codec of the same section
    # that those efforts then do not try while this one can write the section.
    fast_level: ClassVar[int | None] = None
    supersedes: ClassVar[int | None] = None

    def raw_length_bounds(self, shape: Shape) -> tuple[int, int]:
        """(smallest, largest) raw_length the spec allows for this header."""
        raise NotImplementedError

    def usable(self, selection: PayloadContent, forced: bool) -> bool:
        """Whether the encoder should try this codec; *forced* when the user
        named it (then a codec that cannot write the selection raises EncodeError)."""
        return True

    def limit_cost(self, raw_length: int, shape: Shape) -> int:
        """What a body of *raw_length* bytes counts against ``limit`` (5.5):
        its length, unless decoding it costs more than its bytes say."""
        return raw_length

    def encode(self, selection: PayloadContent, kernels) -> bytes:
        raise NotImplementedError

    def reader(self, source, context: DecodeContext, kernels, where: str):
        """An :class:`~plada_codec.codecs._entries.EntryReader` over the raw body
        *source* (a ``RawSource``) for a critical codec that decodes entry by
        entry, so the decoder steps it together with the other critical
        section; None for a codec that decodes its whole body at once."""
        return None

    def decode(self, raw, context: DecodeContext, kernels, where: str) -> dict[str, Any]:
        """The payload fields of a whole raw body; the default reads it through :meth:`reader`."""
        from .._compression import memory_source
        from ._entries import read_entries

        reader = self.reader(memory_source(raw, where), context, kernels, where)
        if reader is None:
            raise NotImplementedError
        (values,) = read_entries([(reader, self.dtype)], context.count)
        return {self.fields[0]: values}

    # The dtype of the one field an entry reader yields (int64 indices, int32 labels).
    dtype: ClassVar[type] = np.int64

    def __repr__(self) -> str:
        return (f"<codec {SECTION_NAMES.get(self.section_type, hex(self.section_type))}/{self.name} "
                f"id {self.id}, format {version_text(self.introduced)}>")


_CODECS: dict[tuple[int, int], Codec] = {}


def register(cls: type[Codec]) -> type[Codec]:
    """Class decorator: add one instance of *cls* to the registry."""
    codec = cls()
    key = (codec.section_type, codec.id)
    if key in _CODECS:
        raise ValueError(f"codec id {codec.id} of section {codec.section_type:#06x} is taken by {_CODECS[key]!r}")
    if not 0 <= codec.id <= 255:
        raise ValueError(f"codec ids are 0..255, got {codec.id}")
    if any(c.name == codec.name for c in for_section(codec.section_type)):
        raise ValueError(f"codec name {codec.name!r} is taken in section {codec.section_type:#06x}")
    _CODECS[key] = codec
    return cls


def unregister(section_type: int, codec_id: int) -> None:
    """Remove a codec (for tests that register a temporary one)."""
    del _CODECS[(section_type, codec_id)]


def _visible(codec: Codec, version: tuple[int, int] | None) -> bool:
    return version is None or codec.introduced <= version


def find(section_type: int, codec_id: int, version: tuple[int, int] | None = None) -> Codec | None:
    """The codec for these wire ids as a reader of *version* knows it, or None."""
    codec = _CODECS.get((section_type, codec_id))
    return codec if codec is not None and _visible(codec, version) else None


def get(section_type: int, codec_id: int, version: tuple[int, int] | None = None) -> Codec:
    """Like :func:`find`, but an unknown id raises :class:`UnsupportedFeatureError`."""
    codec = find(section_type, codec_id, version)
    if codec is None:
        name = SECTION_NAMES.get(section_type, f"{section_type:#06x}")
        reader = "" if version is None else f" (reading as format {version_text(version)})"
        raise UnsupportedFeatureError(f"{name} section: unknown codec id {codec_id}{reader}")
    return codec


def section_type_of(section: int | str) -> int:
    """A section type from its number or its name ("index", "labels", ...)."""
    if isinstance(section, str):
        for number, name in SECTION_NAMES.items():
            if name == section:
                return number
        raise ValueError(f"unknown section {section!r}; known: {', '.join(SECTION_NAMES.values())}")
    return int(section)


def for_section(section: int | str, version: tuple[int, int] | None = None) -> list[Codec]:
    """Every codec of one section type, lowest id first."""
    stype = section_type_of(section)
    return sorted((c for (t, _), c in _CODECS.items() if t == stype and _visible(c, version)),
                  key=lambda c: c.id)


def names(section: int | str, version: tuple[int, int] | None = None) -> list[str]:
    """Names of the codecs of one section type, lowest id first (CLI choices)."""
    return [c.name for c in for_section(section, version)]


def by_name(section: int | str, name: str, version: tuple[int, int] | None = None) -> Codec:
    for codec in for_section(section, version):
        if codec.name == name:
            return codec
    raise KeyError(name)


def all_codecs(version: tuple[int, int] | None = None) -> list[Codec]:
    """Every registered codec, by (section type, id)."""
    return [c for key, c in sorted(_CODECS.items()) if _visible(c, version)]
