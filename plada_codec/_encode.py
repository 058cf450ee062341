"""Encoding selections as payloads (spec/FORMAT.md section 10)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import zstandard  # f2-cm: the level-1 estimate in _slow_zstd_cannot_win

from . import _backend, codecs
from ._compression import Compressor
from ._constants import (  # f2-cm: COMPRESSION_NONE, COMPRESSION_ZSTD
    COMPRESSION_NAMES,
    COMPRESSION_NONE,
    COMPRESSION_ZSTD,
    CRITICAL_SECTIONS,
    DEFAULT_EFFORT,
    DEFAULT_ZSTD_LEVEL,
    EFFORTS,
    FORMAT_MAJOR,
    FORMAT_MINOR,
    MAX_CLASSES,
    MAX_N_REF,
    SECTION_INDEX,
    SECTION_LABELS,
    SECTION_NAMES,
    UNBOUND_FINGERPRINT,
    parse_version,
)
from ._container import assemble
from ._errors import EncodeError
from ._reference import ReferenceSet

__all__ = ["PayloadEncoder", "encode"]

_DEFAULT_LIMITS = codecs.Limits()
_OPTION_OF = {SECTION_INDEX: "index_codec", SECTION_LABELS: "label_codec"}
# f2-cm: see PayloadEncoder._slow_zstd_cannot_win
ZSTD_FAST_LEVEL = 1
ZSTD_BEST_GAIN = 0.7
# effort -> (level of the critical sections' 1.0 bodies, level of the ancillary
# sections) when zstd_level is not given; see PayloadEncoder.
EFFORT_LEVELS = {1: (1, 3), 2: (3, DEFAULT_ZSTD_LEVEL), 3: (DEFAULT_ZSTD_LEVEL, DEFAULT_ZSTD_LEVEL),
                 4: (DEFAULT_ZSTD_LEVEL, DEFAULT_ZSTD_LEVEL)}


def _integer_array(values, name: str) -> np.ndarray:
    if isinstance(values, np.ma.MaskedArray) and np.ma.getmask(values) is not np.ma.nomask \
            and np.ma.getmask(values).any():
        # np.asarray drops the mask: the masked entries would be encoded as real ones
        raise EncodeError(f"{name} is a masked array with masked entries; pass only the kept ones")
    if isinstance(values, Iterator):  # np.asarray makes a 0-d object array of a generator
        values = list(values)
    try:
        array = np.asarray(values)
    except ValueError as exc:  # ragged nested lists
        raise EncodeError(f"{name} must be a one-dimensional array of integers ({exc})") from None
    if array.ndim != 1:
        raise EncodeError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind not in "iu":
        raise EncodeError(f"{name} must be integers, got dtype {array.dtype}")
    if array.dtype == np.uint64 and array.max() > np.iinfo(np.int64).max:
        raise EncodeError(f"{name} holds a value above 2**63 - 1")
    return array.astype(np.int64, copy=False)


def _show(value) -> str:
    """repr() that cannot fail or flood a message (int repr raises beyond 4300 digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _exact_int(value, name: str, low: int, high: int, high_text: str) -> int:
    # bool is an int to Python; n_classes=True is a bug, not C = 1.
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise EncodeError(f"{name} must be an int in {low}..{high_text}, got {_show(value)}")
    return int(value)


def _resolve_reference(n_ref, reference) -> tuple[int, bytes]:
    if isinstance(reference, ReferenceSet):
        if n_ref is not None and _exact_int(n_ref, "n_ref", 1, MAX_N_REF, "2**48") != reference.n_ref:
            raise EncodeError(f"n_ref = {_show(n_ref)} but the reference set has {reference.n_ref} items")
        n_ref, fingerprint = reference.n_ref, reference.fingerprint
    elif reference is None:
        fingerprint = UNBOUND_FINGERPRINT
    elif isinstance(reference, (bytes, bytearray, memoryview)) and len(reference) == 32:
        fingerprint = bytes(reference)
        if fingerprint == UNBOUND_FINGERPRINT:
            raise EncodeError("an all-zero fingerprint means 'unbound'; pass reference=None")
    else:
        raise EncodeError("reference must be a ReferenceSet, a 32-byte fingerprint or None")
    if n_ref is None:
        raise EncodeError("n_ref is required unless reference is a ReferenceSet")
    return _exact_int(n_ref, "n_ref", 1, MAX_N_REF, "2**48"), fingerprint


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


def _option_codecs(option: str, stype: int, version: tuple[int, int] | None) -> tuple[list[codecs.Codec], bool]:
    """The codecs an ``index_codec``/``label_codec`` option allows, and whether it named one."""
    available = codecs.for_section(stype, version)
    if option == "auto":
        return available, False
    for codec in available:
        if codec.name == option:
            return [codec], True
    raise EncodeError(
        f"{_OPTION_OF[stype]} must be 'auto' or one of {', '.join(c.name for c in available)}, got {_show(option)}"
    )


class PayloadEncoder:
    """Encodes selections with fixed options; ``encode(..., **kw)`` is the
    one-shot form of ``PayloadEncoder(**kw).encode(...)``. One encoder may
    be shared by several threads: each gets the bytes it would get alone.

    Parameters
    ----------
    index_codec : "auto" or a name from ``plada_codec.codecs.names("index")``
    label_codec : "auto" or a name from ``plada_codec.codecs.names("labels")``
    compression : {"auto", "none", "zstd"}
        With ``auto`` the critical sections take the pair of codecs and
        compressions whose stored bodies are smallest together (ties go to
        the lower index codec id, then label codec id, then no compression),
        so output is deterministic. ``zstd`` rules out the 1.1 context
        model, whose body is always stored uncompressed (spec 15.1); so does a
        selection it would code in under 1 byte per 8 pairs.
    zstd_level : int, optional
        Zstandard level, 1..22, of every frame written. Default: the levels
        *effort* names.
    effort : int, 1..4
        How hard the encoder looks for the last bytes, as zstd's levels do
        (``plada encode --effort``). Every choice is the smallest exact size
        among the candidates the effort tries; a higher effort tries more:

        == ========================================================================
        1  the context model's presets; 1.0 bodies at Zstandard level 1,
           ancillary sections at level 3
        2  (default) the same, 1.0 bodies at level 3, ancillary sections at 19
           except class names, which take the 1.2 text codec at level 7 (codec
           plain, at 19, only for names the text codec cannot carry): a few ms
           beyond the context coder, payloads as small as effort 3's wherever
           the context model wins (benchmarks/README.md)
        3  every frame at level 19, except a 1.0 body that a bound (0.7 of its
           level-1 frame, FORMAT.md 15.9) says cannot win; the default before it
           became 2: seconds on uniform selections of 1% of ImageNet-21K
        4  every candidate at level 19, no bound
        == ========================================================================

        With *zstd_level* given, every frame is at that level, both class-names
        codecs are tried, and the bound of effort 3 applies at efforts 1-3. Ancillary frames of 4 KiB or more are
        cached per process by content, so a second payload with the same class
        names does not compress them again (the output is the same either way).
    backend : {"auto", "c", "python"}
    format_version : str, optional
        Write only codecs a decoder of this format version reads, e.g.
        ``"1.0"``. Default: every registered codec. The header's minor
        version is the newest that the chosen codecs need.
    """

    def __init__(
        self,
        *,
        index_codec: str = "auto",
        label_codec: str = "auto",
        compression: str = "auto",
        zstd_level: int | None = None,
        effort: int = DEFAULT_EFFORT,
        backend: str = "auto",
        format_version: str | None = None,
    ) -> None:
        self._version = None
        if format_version is not None:
            try:
                self._version = parse_version(format_version)
            except ValueError as exc:
                raise EncodeError(str(exc)) from None
            if self._version[0] != FORMAT_MAJOR or self._version[1] > FORMAT_MINOR:
                raise EncodeError(f"format_version must be {FORMAT_MAJOR}.0 .. {FORMAT_MAJOR}.{FORMAT_MINOR}, "
                                  f"got {format_version!r}")
        self._options = {
            SECTION_INDEX: _option_codecs(index_codec, SECTION_INDEX, self._version),
            SECTION_LABELS: _option_codecs(label_codec, SECTION_LABELS, self._version),
        }
        names = {name: number for number, name in COMPRESSION_NAMES.items()}
        if compression == "auto":
            allowed = sorted(names.values())
        elif isinstance(compression, str) and compression in names:
            allowed = [names[compression]]
        else:
            raise EncodeError(f"compression must be 'auto' or one of {', '.join(names)}, got {_show(compression)}")
        if isinstance(effort, bool) or not isinstance(effort, int) or effort not in EFFORTS:
            raise EncodeError(f"effort must be an int in {EFFORTS[0]}..{EFFORTS[-1]}, got {_show(effort)}")
        if zstd_level is None:
            critical_level, ancillary_level = EFFORT_LEVELS[effort]
            self._bound_slow_level = effort == 3
        elif isinstance(zstd_level, bool) or not isinstance(zstd_level, int) or not 1 <= zstd_level <= 22:
            raise EncodeError(f"zstd_level must be an int in 1..22, got {_show(zstd_level)}")
        else:
            critical_level = ancillary_level = zstd_level
            self._bound_slow_level = effort <= 3
        self._compressor = Compressor(allowed, critical_level)
        self._ancillary_compressor = Compressor(allowed, ancillary_level, cache=True)
        # Efforts 1-2 without zstd_level: a codec with a fast_level (class-names
        # text) is written at it, and the codec it supersedes is not tried.
        self._fast_ancillary = zstd_level is None and effort <= 2
        self._ancillary_compressors = {ancillary_level: self._ancillary_compressor}
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
        n_classes = _exact_int(n_classes, "n_classes", 1, MAX_CLASSES, "2**24")
        indices = _integer_array(indices, "indices")
        labels = _integer_array(labels, "labels")
        _validate_selection(indices, labels, n_ref, n_classes)
        if class_names is not None and not isinstance(class_names, (str, list, tuple)):
            try:  # an iterator is read once here: both class-names codecs may read the names
                class_names = list(class_names)
            except TypeError:
                pass  # not iterable: the codec says what is wrong
        selection = codecs.PayloadContent(indices, labels, n_ref, n_classes, class_names, task_name, metadata)
        written = self._critical(selection) + self._ancillary(selection)
        minor = max(codec.introduced for codec, _ in written)[1]
        header = {"minor": minor, "n_classes": n_classes, "n_ref": n_ref, "count": selection.count,
                  "fingerprint": fingerprint}
        return assemble(header, [section for _, section in written])

    def _stored(self, codec: codecs.Codec, selection: codecs.PayloadContent, raw: bytes | None = None,
                fast_frames: dict | None = None, compressor: Compressor | None = None):
        """(codec, (type, codec id, compression, raw_length, stored)) with the smallest stored body.

        f2-cm: *raw* when the body was already encoded; *fast_frames* holds
        level-1 Zstandard frames that replace the slow level (see
        _slow_zstd_cannot_win)."""
        if raw is None:
            raw = codec.encode(selection, self._kernels)
        low, high = codec.raw_length_bounds(selection)
        if not low <= len(raw) <= high:
            raise EncodeError(
                f"the {SECTION_NAMES[codec.section_type]} section ({codec.name}) would be {len(raw)} "
                f"bytes, outside the {low}..{high} the format allows"
            )
        if codec.limit is not None and codec.limit_cost(len(raw), selection) > getattr(_DEFAULT_LIMITS, codec.limit):
            counted = "" if codec.limit_cost(len(raw), selection) == len(raw) else \
                f", counted as {codec.limit_cost(len(raw), selection)} ({codec.limit_rule})"
            raise EncodeError(
                f"the {SECTION_NAMES[codec.section_type]} section would be {len(raw)} bytes{counted}, above what "
                f"decoders accept by default ({codec.limit} = {getattr(_DEFAULT_LIMITS, codec.limit)})"
            )
        best = None
        key = (codec.section_type, codec.id)
        if fast_frames is not None and key in fast_frames:
            found = [(COMPRESSION_NONE, raw)] if COMPRESSION_NONE in self._compressor.allowed else []
            found.append((COMPRESSION_ZSTD, fast_frames[key]))
        else:
            found = (compressor or self._compressor).candidates(raw, codec.try_compression)
        for compression, stored in found:
            if best is None or len(stored) < len(best[4]):
                best = (codec.section_type, codec.id, compression, len(raw), stored)
        return codec, best

    def _critical(self, selection: codecs.PayloadContent):
        # f2-cm: every critical body encoded once, then the slow-Zstandard short cut.
        usable = {}
        for stype in CRITICAL_SECTIONS:
            allowed, forced = self._options[stype]
            usable[stype] = [c for c in allowed if c.usable(selection, forced) and self._storable(c, self._named(c))]
        raws = {(c.section_type, c.id): c.encode(selection, self._kernels)
                for stype in CRITICAL_SECTIONS for c in usable[stype]}
        for stype in CRITICAL_SECTIONS:
            usable[stype] = [c for c in usable[stype]
                             if self._dense_enough(c, selection, raws[(c.section_type, c.id)], self._named(c))]
        fast_frames = self._slow_zstd_cannot_win(usable, raws)
        candidates = {
            stype: [self._stored(c, selection, raws[(c.section_type, c.id)], fast_frames) for c in usable[stype]]
            for stype in CRITICAL_SECTIONS
        }
        plans = []
        for pair in itertools.product(*(candidates[t] for t in CRITICAL_SECTIONS)):
            ids = {codec.section_type: codec.id for codec, _ in pair}
            if all(codec.partner is None or ids.get(codec.partner[0]) == codec.partner[1] for codec, _ in pair):
                plans.append(pair)
        if not plans:
            named = ", ".join(f"{_OPTION_OF[t]}={[c.name for c in self._options[t][0]]}" for t in CRITICAL_SECTIONS)
            raise EncodeError(f"no pair of codecs fits these options ({named}): a joint codec needs its partner")
        # Smallest total; ties by codec ids in section order (lists are already id-ordered).
        best = min(plans, key=lambda pair: sum(len(section[4]) for _, section in pair))
        return list(best)

    def _named(self, codec: codecs.Codec) -> bool:
        """Whether the options name *codec*, or name the joint codec whose partner it is."""
        allowed, forced = self._options[codec.section_type]
        return (forced and allowed[0] is codec) or bool(self._implied(codec))

    def _storable(self, codec: codecs.Codec, forced: bool) -> bool:
        """False (EncodeError when *forced*) for a codec whose body must be stored
        uncompressed (spec 15.1) under compression='zstd'."""
        if codec.allows_compression or COMPRESSION_NONE in self._compressor.allowed:
            return True
        if forced:
            raise EncodeError(f"the {codec.name} codec{self._implied(codec)} stores its body uncompressed "
                              f"(spec 15.1); use compression='none' or 'auto', or another codec")
        return False

    def _implied(self, codec: codecs.Codec) -> str:
        """' (which label_codec='joint' implies)' when the options name *codec* only as a partner."""
        for stype, (allowed, forced) in self._options.items():
            if forced and stype != codec.section_type and allowed[0].partner == (codec.section_type, codec.id):
                return f" (which {_OPTION_OF[stype]}={allowed[0].name!r} implies)"
        return ""

    def _dense_enough(self, codec: codecs.Codec, selection: codecs.PayloadContent, raw: bytes, forced: bool) -> bool:
        """False (EncodeError when *forced*) for a body below its codec's minimum
        length, which the context model has where a selection codes in under
        1 bit a pair (spec 15.1); "auto" then picks a 1.0 codec."""
        low = codec.raw_length_bounds(selection)[0]
        if len(raw) >= low:
            return True
        if forced:
            raise EncodeError(
                f"the {codec.name} codec{self._implied(codec)} codes these {selection.count} pairs in "
                f"{len(raw)} byte{'s' if len(raw) != 1 else ''}, under its minimum of 1 byte per 8 pairs "
                f"({low} bytes, spec 15.1); use a 1.0 codec or 'auto'"
            )
        return False

    # -- f2-cm (format 1.1): keep the Zstandard escape cheap -------------------
    # At level 19 the 1.0 candidates cost ~400 ms on 1% of ImageNet-21K (the
    # 1.8 MB bitmap above all), while the joint context-model body takes a few
    # ms. Level 19 was never below 0.72x of level 1's output on the benchmark
    # selections (benchmarks/README.md). So a 1.0 body whose bound (0.7x its
    # level-1 frame, or its raw size) plus the smallest bound of the other
    # critical section is above the joint body cannot be part of the chosen
    # pair: it keeps its level-1 frame (valid, never chosen) instead of the
    # slow level's.
    def _slow_zstd_cannot_win(self, usable, raws) -> dict | None:
        """Level-1 frames standing in for the slow level, by (type, codec id); None: compress as usual."""
        allowed = self._compressor.allowed
        if COMPRESSION_ZSTD not in allowed or not self._bound_slow_level or self._compressor.level <= ZSTD_FAST_LEVEL:
            return None
        joint = [len(raws[(c.section_type, c.id)]) + len(raws[c.partner])
                 for c in usable[SECTION_INDEX] if c.partner is not None and c.partner in raws]
        if not joint:
            return None
        fast = zstandard.ZstdCompressor(level=ZSTD_FAST_LEVEL, write_content_size=True,
                                        write_checksum=False, write_dict_id=False)
        frames: dict = {}
        bounds: dict = {}
        floors: dict = {}
        for stype in CRITICAL_SECTIONS:
            for codec in usable[stype]:
                if codec.partner is not None or not codec.try_compression:
                    continue
                key = (codec.section_type, codec.id)
                frames[key] = fast.compress(raws[key])
                bounds[key] = ZSTD_BEST_GAIN * len(frames[key])
                if COMPRESSION_NONE in allowed:
                    bounds[key] = min(bounds[key], len(raws[key]))
                floors[stype] = min(floors.get(stype, bounds[key]), bounds[key])
        if set(floors) != set(CRITICAL_SECTIONS):
            return None
        total_floor = sum(floors.values())
        return {key: frame for key, frame in frames.items()
                if bounds[key] + total_floor - floors[key[0]] > min(joint)}

    def _ancillary(self, selection: codecs.PayloadContent):
        written = []
        for stype in sorted(codecs.SECTION_NAMES):
            if stype in CRITICAL_SECTIONS:
                continue
            usable = [c for c in codecs.for_section(stype, self._version)
                      if any(selection.has(f) for f in c.fields) and c.usable(selection, False)]
            if self._fast_ancillary:
                superseded = {c.supersedes for c in usable if c.supersedes is not None}
                usable = [c for c in usable if c.id not in superseded]
            if usable:
                stored = [self._stored(c, selection, compressor=self._ancillary_compressor_of(c)) for c in usable]
                written.append(min(stored, key=lambda cs: len(cs[1][4])))  # ties: lower id
        return written

    def _ancillary_compressor_of(self, codec: codecs.Codec) -> Compressor:
        """The ancillary level, or the codec's fast level where that is lower at efforts 1-2."""
        level = self._ancillary_compressor.level
        if self._fast_ancillary and codec.fast_level is not None:
            level = min(level, codec.fast_level)
        compressor = self._ancillary_compressors.get(level)
        if compressor is None:  # setdefault: threads sharing this encoder agree on one
            compressor = self._ancillary_compressors.setdefault(
                level, Compressor(self._compressor.allowed, level, cache=True))
        return compressor


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
    zstd_level: int | None = None,
    effort: int = DEFAULT_EFFORT,
    backend: str = "auto",
    format_version: str | None = None,
) -> bytes:
    """Encode a selection as a PLADA payload.

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
    index_codec, label_codec, compression, zstd_level, effort, backend, format_version :
        See :class:`PayloadEncoder` (*effort*: 1..4, default 2; 3 and 4 spend
        seconds where 2 spends milliseconds, for the last bytes).

    Notes
    -----
    On the wire: an 80-byte header (magic, version, N, k, C, fingerprint, total
    length, CRC32C), then the index section, the label section and any
    ancillary sections, each framed with its codec, compression, lengths and
    CRC32C. The same input and options always give the same bytes.
    """
    return PayloadEncoder(
        index_codec=index_codec, label_codec=label_codec, compression=compression,
        zstd_level=zstd_level, effort=effort, backend=backend, format_version=format_version,
    ).encode(
        indices, labels, n_ref=n_ref, n_classes=n_classes, reference=reference,
        class_names=class_names, task_name=task_name, metadata=metadata,
    )
