"""The per-codec test battery: shared checks that each codec's test file calls
with that codec's inputs (in the style of numcodecs' ``tests/common.py``).

A *codec* here is a registry entry (``plada_codec.codecs.get(type, id)``), a
*case* one named input (:class:`Case`). Every expected value below is written
from spec/FORMAT.md, never read from plada_codec: the codec table of 5.2, the
raw-length bounds of 5.5 and the codec sections, the encoders' exact layouts
(6.2 minimal widths, 6.3, 7.1, 7.2, 5.6), the body rules each decoded value
must satisfy, and the error classes of 9.1. The spec's own vectors
(spec/vectors/v1.*, section 12) are the independent source of decoded values.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

import plada_codec
from plada_codec import codecs, wire
from plada_codec._backend import get_kernels
from plada_codec.synthetic import class_names as synthetic_names
from plada_codec.synthetic import clustered_selection, uniform_selection
from tests.conftest import BACKENDS
from tests.helpers import REPO
from tests.strategies import class_name_lists, selections

# -- what FORMAT.md says, written out -------------------------------------------------------------

INDEX, LABELS, CLASS_NAMES, TASK_NAME, METADATA = 0x0001, 0x0002, 0x8001, 0x8002, 0x8003
SECTION = {INDEX: "index", LABELS: "labels", CLASS_NAMES: "class-names", TASK_NAME: "task-name",
           METADATA: "metadata"}  # 5.2
ANCILLARY_MAX_RAW = 2**26  # 2
MAX_SAFE_INTEGER = 2**53 - 1  # 2, 5.7 rule 5
METADATA_MAX_DEPTH = 64  # 2, 5.7 rule 7
BLOCK = 128  # 2, 6.2

# 9.1: error class -> the Python class plada_codec reports it as.
SPEC_ERRORS = {
    "FormatError": plada_codec.PayloadFormatError,
    "Truncated": plada_codec.TruncatedPayloadError,
    "TrailingData": plada_codec.TrailingDataError,
    "Checksum": plada_codec.ChecksumError,
    "UnsupportedVersion": plada_codec.UnsupportedVersionError,
    "UnsupportedFeature": plada_codec.UnsupportedFeatureError,
    "LimitExceeded": plada_codec.LimitExceededError,
    "ReferenceMismatch": plada_codec.ReferenceMismatchError,
}
# 9 step 8b: every rule of a body is a FormatError (or one of its kinds); the only other
# refusal a body can meet is a local limit of 5.5 (LimitExceeded).
BODY_ERRORS = (plada_codec.PayloadFormatError, plada_codec.LimitExceededError)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def label_bits(n_classes: int) -> int:
    """7.1: w = bit_length(C - 1)."""
    return (n_classes - 1).bit_length()


def label_bytes(n_classes: int) -> int:
    """7.2: b = 1 if w <= 8, 2 if w <= 16, else 4."""
    w = label_bits(n_classes)
    return 1 if w <= 8 else 2 if w <= 16 else 4


@dataclass(frozen=True)
class Spec:
    """One row of 5.2's codec table, with its 5.5 bound (N, C, k) -> (low, high)."""

    section: str
    name: str
    introduced: tuple[int, int]
    fields: tuple[str, ...]  # what the body carries (5.2 "content", 15.1)
    bounds: Callable[[int, int, int], tuple[int, int]]
    partner: tuple[int, int] | None = None  # 5.2 "joint codecs", 15.1
    compressible: bool = True  # 15.1: the context-model body MUST be stored with compression 0


SPEC = {
    (INDEX, 0): Spec("index", "delta", (1, 0), ("indices",),
                     lambda n, c, k: (_ceil(k, 128), _ceil(k, 128) + 8 * k)),
    (INDEX, 1): Spec("index", "bitmap", (1, 0), ("indices",), lambda n, c, k: (_ceil(n, 8), _ceil(n, 8))),
    (INDEX, 2): Spec("index", "context-model", (1, 1), ("indices", "labels"),
                     lambda n, c, k: (max(1, _ceil(k, 8)), 5 + 136 * k), partner=(LABELS, 2), compressible=False),
    (LABELS, 0): Spec("labels", "packed", (1, 0), ("labels",),
                      lambda n, c, k: (_ceil(k * label_bits(c), 8), _ceil(k * label_bits(c), 8))),
    (LABELS, 1): Spec("labels", "bytes", (1, 0), ("labels",),
                      lambda n, c, k: (k * label_bytes(c), k * label_bytes(c))),
    (LABELS, 2): Spec("labels", "joint", (1, 1), (), lambda n, c, k: (0, 0), partner=(INDEX, 2)),
    (CLASS_NAMES, 0): Spec("class-names", "plain", (1, 0), ("class_names",),
                           lambda n, c, k: (4 * c, ANCILLARY_MAX_RAW)),
    (CLASS_NAMES, 1): Spec("class-names", "text", (1, 2), ("class_names",),
                           lambda n, c, k: (c - 1, ANCILLARY_MAX_RAW)),
    (TASK_NAME, 0): Spec("task-name", "plain", (1, 0), ("task_name",), lambda n, c, k: (0, ANCILLARY_MAX_RAW)),
    (METADATA, 0): Spec("metadata", "json", (1, 0), ("metadata",), lambda n, c, k: (0, ANCILLARY_MAX_RAW)),
}


def codec_named(section: str, name: str) -> codecs.Codec:
    """The registry entry at the (type, id) that 5.2 gives *section*/*name*."""
    (key,) = [key for key, spec in SPEC.items() if (spec.section, spec.name) == (section, name)]
    return codecs.get(*key)


def _spec(codec) -> Spec:
    return SPEC[(codec.section_type, codec.id)]


def _key(codec) -> tuple[int, int]:
    return codec.section_type, codec.id


def spec_encoded_length(codec, sel: codecs.PayloadContent) -> int | None:
    """The exact body length the spec makes an encoder write, where it fixes one (None: it does not)."""
    key, k, c = _key(codec), sel.count, sel.n_classes
    if key == (INDEX, 0):  # 6.2: nb width bytes, then each block at width = bit_length(max gap)
        indices = [int(i) for i in sel.indices]
        gaps = [b - a - 1 for a, b in zip([-1, *indices], indices)]
        size = _ceil(k, BLOCK)
        for start in range(0, k, BLOCK):
            block = gaps[start : start + BLOCK]
            size += _ceil(len(block) * max(block).bit_length(), 8)
        return size
    if key in ((INDEX, 1), (LABELS, 0), (LABELS, 1), (LABELS, 2)):  # exact bounds (5.5)
        return _spec(codec).bounds(sel.n_ref, c, k)[0]
    if key == (CLASS_NAMES, 0):  # 5.6: a uint32le length and the UTF-8 of each name
        return sum(4 + len(name.encode("utf-8")) for name in sel.class_names)
    if key == (CLASS_NAMES, 1):  # 5.6: the names' UTF-8 joined by C - 1 LF bytes
        return sum(len(name.encode("utf-8")) for name in sel.class_names) + c - 1
    if key == (TASK_NAME, 0):  # 5.6: the whole body is the UTF-8 text
        return len(sel.task_name.encode("utf-8"))
    return None  # context-model (an adaptive code) and metadata (no canonical form, 5.7)


# -- inputs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One named input of a codec family."""

    name: str
    sel: codecs.PayloadContent

    def __str__(self) -> str:
        return self.name


def selection(indices, labels, n_ref: int, n_classes: int, **extra) -> codecs.PayloadContent:
    return codecs.PayloadContent(np.asarray(indices, dtype=np.int64), np.asarray(labels, dtype=np.int64),
                            int(n_ref), int(n_classes), **extra)


# Entries the decoder reads per step (plada_codec/codecs/_entries.py: CHUNK): a case of more
# entries crosses a step. 2**21 items are 2**18 bitmap bytes, one read of the bitmap reader.
MULTI_CHUNK = 70_000
MULTI_CHUNK_N = 2**21 + 2**13 + 5


def index_cases(top: int = 2**48, multi_chunk: bool = True) -> list[Case]:
    """Index-family inputs over reference sets of at most *top* items (2**48: MAX_N_REF);
    *multi_chunk* adds one of MULTI_CHUNK entries (too slow for the numpy context model)."""
    big_c = 2**24  # MAX_CLASSES
    wide = np.cumsum([2**j for j in range(min(top.bit_length() - 2, 47))])  # gaps of every bit length
    clustered = clustered_selection(min(top, 60_000), 1_500, 20, seed=1)
    rng = np.random.default_rng(7)
    dense = np.flatnonzero(rng.random(777) < 0.5)
    sparse = uniform_selection(min(top, 10**9), 50, 1000, seed=3)
    return [
        Case("empty", selection([], [], 1, 1)),
        Case("empty-wide", selection([], [], top, big_c)),
        Case("one-first", selection([0], [0], 1, 1)),
        Case("one-last", selection([top - 1], [big_c - 1], top, big_c)),
        Case("largest", selection([0, top - 1], [big_c - 1, 0], top, big_c)),
        Case("all-selected", selection(np.arange(1000), np.arange(1000) % 5, 1000, 5)),
        Case("dense", selection(dense, dense % 3, 777, 3)),
        Case("sparse", selection(sparse[0], sparse[1], min(top, 10**9), 1000)),
        Case("clustered", selection(*clustered, min(top, 60_000), 20)),
        Case("periodic", selection(np.arange(0, 3000, 3), np.arange(1000) % 7, 3000, 7)),
        Case("block-edge", selection(np.r_[np.arange(128) * 3, top - 1], np.arange(129) % 2, top, 2)),
        Case("gap-widths", selection(wide, np.zeros(wide.size), top, 1)),
    ] + ([_multi_chunk(min(top, MULTI_CHUNK_N))] if multi_chunk and top > MULTI_CHUNK else [])


def _multi_chunk(n_ref: int) -> Case:
    """MULTI_CHUNK entries over *n_ref* items, the last item among them."""
    rng = np.random.default_rng(13)
    indices = np.union1d(rng.choice(n_ref - 1, MULTI_CHUNK - 1, replace=False), [n_ref - 1])
    return Case("multi-chunk", selection(indices, rng.integers(0, 2**24, indices.size), n_ref, 2**24))


def label_cases(multi_chunk: bool = True) -> list[Case]:
    """Label-family inputs: every label width class of 7.1 / 7.2, the largest C, runs and cycles;
    *multi_chunk* adds MULTI_CHUNK labels at each width of 7.2 (too slow for the numpy context model)."""
    rng = np.random.default_rng(11)

    def labelled(name, labels, n_classes):
        labels = np.asarray(labels, dtype=np.int64)
        k = labels.size  # indices spread out (gap 4), so that the context model has gaps to code
        return Case(name, selection(np.arange(k) * 5 + 2, labels, 5 * k + 3, n_classes))

    clustered = clustered_selection(30_000, 800, 12, seed=2)
    return [
        labelled("empty-c1", [], 1),
        labelled("empty", [], 300),
        labelled("one-c1", [0], 1),  # w = 0: an empty body
        labelled("one-largest", [2**24 - 1], 2**24),
        labelled("binary", rng.integers(0, 2, 1000), 2),
        labelled("byte-wide", np.arange(512) % 256, 256),
        labelled("w9", [256, 0, 255, 256, 1, 128, 256], 257),
        labelled("w16", [65535, 0, 65535, 1], 65536),
        labelled("w17", [65536, 1, 0, 65535], 65537),
        labelled("max-classes", np.r_[rng.integers(0, 2**24, 299), 2**24 - 1], 2**24),
        labelled("constant-run", np.full(5000, 3), 10),
        labelled("periodic", np.arange(700) % 7, 7),
        Case("clustered", selection(*clustered, 30_000, 12)),
    ] + ([labelled(f"multi-chunk-c{c}", rng.integers(0, c, MULTI_CHUNK + 1), c) for c in (3, 257, 2**24)]
         if multi_chunk else [])


def class_name_cases(with_lf: bool = True) -> list[Case]:
    """Class-names inputs; *with_lf* adds names holding LF (which codec 1 cannot carry, 5.6)."""
    lists = {
        "one-empty": [""],
        "one": ["a"],
        "all-empty": [""] * 5,
        "unicode": ["é", "🍎", "\x00", "\ufeffx", "a\rb", "\U0010ffff", "日本語", " "],
        "repeated": ["same"] * 40,
        "imagenet-like": synthetic_names(1000),
        "long-name": ["x" * 100_000 + "🍎", "y"],
    }
    if with_lf:
        lists["lf"] = ["a\nb", "\n", "", "\n\n"]
    return [Case(name, selection([], [], 1, len(names), class_names=names)) for name, names in lists.items()]


def task_name_cases() -> list[Case]:
    texts = {
        "empty": "", "one": "x", "ascii": "ImageNet-1k, 1% keep",
        "unicode": "é🍎\x00\U0010ffff\ufeff日本", "lines": "a\nb\r\nc\n", "long": "t" * 200_000 + "é",
    }
    return [Case(name, selection([], [], 1, 1, task_name=text)) for name, text in texts.items()]


def metadata_cases() -> list[Case]:
    deep: object = 0
    for _ in range(METADATA_MAX_DEPTH - 1):  # the top-level object is depth 1 (5.7 rule 7)
        deep = [deep]
    objects = {
        "empty": {},
        "one": {"method": "energy"},
        "numbers": {"max": MAX_SAFE_INTEGER, "min": -MAX_SAFE_INTEGER, "big": 1e308, "tiny": 5e-324,
                    "negzero": -0.0, "zero": 0, "half": 0.5, "float-int": 2.0},
        "deepest": {"deep": deep},
        "unicode": {"é": "🍎", "\U0010ffff": "", "": "empty key", "日本": ["語"]},
        "escapes": {"q": "\"\\\n\t\x00\x1f/", "k\n": None},
        "mixed": {"a": [None, True, False, 1, 1.5, "s", [], {}], "b": {"c": {"d": [1, [2, [3]]]}}},
        "many": {f"key{i:04d}": i for i in range(1000)},
    }
    return [Case(name, selection([], [], 1, 1, metadata=value)) for name, value in objects.items()]


def small_cases(codec, cases: list[Case], limit: int = 160) -> list[Case]:
    """The cases whose body is at most *limit* bytes: every truncation of them is tried."""
    kernels = get_kernels("python")
    return [case for case in cases if len(codec.encode(case.sel, kernels)) <= limit]


# -- building and decoding ------------------------------------------------------------------------


def _kernels(kernels_or_backend):
    return get_kernels(kernels_or_backend) if isinstance(kernels_or_backend, str) else kernels_or_backend


def context(sel: codecs.PayloadContent, minor: int) -> codecs.DecodeContext:
    return codecs.DecodeContext(sel.n_ref, sel.n_classes, sel.count, minor, codecs.Limits())


def payload_with(codec, sel: codecs.PayloadContent, body: bytes, kernels) -> bytes:
    """A payload whose section of *codec* holds *body* uncompressed; the other sections
    (the partner, else index delta and labels packed) are the selection's."""
    bodies = {codec.section_type: (codec.id, body)}
    partner = _spec(codec).partner
    if partner is not None:
        bodies[partner[0]] = (partner[1], codecs.get(*partner).encode(sel, kernels))
    for section in (INDEX, LABELS):
        if section not in bodies:
            bodies[section] = (0, codecs.get(section, 0).encode(sel, kernels))
    minor = max(SPEC[(section, cid)].introduced[1] for section, (cid, _) in bodies.items())  # 4, 5.2
    sections = [wire.RawSection(section, cid, 0, data) for section, (cid, data) in sorted(bodies.items())]
    return wire.join(wire.RawPayload(n_classes=sel.n_classes, n_ref=sel.n_ref, count=sel.count, minor=minor,
                                     sections=sections))


class WorkExceeded(BaseException):
    """A decode made more calls than its input size allows (a loop not bounded by the input)."""


# Calls a decode may make per unit of input (a byte, an entry, a name): a context-model pair
# takes at most 68 coding steps (15.10), a few calls each on the numpy backend.
WORK_PER_UNIT, WORK_BASE = 4 * 68, 20_000


def bounded(call, units: int):
    """call() with at most WORK_PER_UNIT * units + WORK_BASE function calls (Python and C,
    counted by sys.setprofile): a hang fails by count, not by a clock."""
    budget = WORK_PER_UNIT * units + WORK_BASE
    made = [0]

    def count(frame, event, arg):
        if event in ("call", "c_call"):
            made[0] += 1
            if made[0] > budget:
                raise WorkExceeded(f"more than {budget} calls for an input of {units} units")

    previous = sys.getprofile()
    sys.setprofile(count)
    try:
        return call()
    finally:
        sys.setprofile(previous)


def _outcome(call, units: int):
    """The decoded fields, or the error class (9.1) that refused the input: FormatError (or
    one of its kinds) or LimitExceeded; any other exception propagates."""
    try:
        return bounded(call, units)
    except BODY_ERRORS as exc:
        return type(exc)


def _decode_payload(data: bytes, backend: str):
    payload = plada_codec.decode(data, backend=backend)
    return {"indices": payload.indices, "labels": payload.labels, "class_names": payload.class_names,
            "task_name": payload.task_name, "metadata": payload.metadata}


def _plain(fields: dict) -> dict:
    """Decoded fields in a comparable form (arrays as lists)."""
    return {key: value.tolist() if isinstance(value, np.ndarray) else value for key, value in fields.items()}


def same_json(got, want) -> bool:
    """Equal as JSON values, type for type: 1 is not 1.0 or True, and -0.0 is not 0.0."""
    if type(got) is not type(want):
        return False
    if isinstance(want, dict):
        return got.keys() == want.keys() and all(same_json(got[key], want[key]) for key in want)
    if isinstance(want, list):
        return len(got) == len(want) and all(same_json(a, b) for a, b in zip(got, want))
    if isinstance(want, float):
        return got == want and math.copysign(1, got) == math.copysign(1, want)
    return got == want


def assert_field(field: str, got, want) -> None:
    """One decoded field equals the expected value (arrays: integer dtype, same values)."""
    if field in ("indices", "labels"):
        got = np.asarray(got)
        assert got.dtype.kind in "iu", (field, got.dtype)
        assert got.tolist() == [int(v) for v in want], field
    elif field == "class_names":
        assert isinstance(got, (tuple, list)) and list(got) == list(want), field
    elif field == "metadata":
        assert same_json(got, want), (got, want)
    else:
        assert got == want, (field, got, want)


def _json_ok(value, depth: int) -> bool:
    """5.7 rules 3, 5, 6, 7 on a decoded value at nesting *depth*."""
    if isinstance(value, (dict, list)):
        if depth > METADATA_MAX_DEPTH:
            return False
        items = list(value.items()) if isinstance(value, dict) else [(None, v) for v in value]
        return all((key is None or _text_ok(key)) and _json_ok(item, depth + 1) for key, item in items)
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return abs(value) <= MAX_SAFE_INTEGER
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str) and _text_ok(value)


def _text_ok(text) -> bool:
    """A str of Unicode scalar values (5.6: UTF-8, no surrogates)."""
    try:
        text.encode("utf-8")
    except (AttributeError, UnicodeEncodeError):
        return False
    return isinstance(text, str)


def check_invariants(codec, fields: dict, sel: codecs.PayloadContent) -> None:
    """Decoded *fields* obey the rules of their sections (6, 7, 5.6, 5.7) for the header of *sel*."""
    n_ref, n_classes, k = sel.n_ref, sel.n_classes, sel.count
    if fields.get("indices") is not None:
        indices = np.asarray(fields["indices"]).astype(object)
        assert indices.size == k and all(0 <= i < n_ref for i in indices)
        assert all(a < b for a, b in zip(indices[:-1], indices[1:])), "indices not strictly increasing"
    if fields.get("labels") is not None:
        labels = np.asarray(fields["labels"]).astype(object)
        assert labels.size == k and all(0 <= label < n_classes for label in labels)
    if fields.get("class_names") is not None:
        names = fields["class_names"]
        assert len(names) == n_classes and all(_text_ok(name) for name in names)
        if _key(codec) == (CLASS_NAMES, 1):
            assert not any("\n" in name for name in names)  # 5.6 codec 1 rule 1
    if fields.get("task_name") is not None:
        assert _text_ok(fields["task_name"])
    if fields.get("metadata") is not None:
        assert isinstance(fields["metadata"], dict) and _json_ok(fields["metadata"], 1)


def _units(sel: codecs.PayloadContent, size: int) -> int:
    """What a decode may cost in proportion to: the bytes, the entries, the names."""
    return size + sel.count + (sel.n_classes if sel.class_names is not None else 0)


def _cm_too_dense(codec, sel: codecs.PayloadContent, kernels) -> bool:
    """15.1: a context-model body under max(1, ceil(k / 8)) bytes MUST NOT be written."""
    if _key(codec) not in ((INDEX, 2), (LABELS, 2)):
        return False
    body = codecs.get(INDEX, 2).encode(sel, kernels)
    return len(body) < max(1, _ceil(sel.count, 8))


# -- the checks -----------------------------------------------------------------------------------


def check_registry_entry(codec) -> None:
    """The codec's id, name, version, fields and partner are those of 5.2 / 15.1, and lookups find it."""
    key, spec = _key(codec), _spec(codec)
    assert (SECTION[codec.section_type], codec.name, codec.introduced) == (spec.section, spec.name, spec.introduced)
    assert codec.fields == spec.fields and codec.partner == spec.partner
    assert codec.allows_compression == spec.compressible
    assert codecs.get(*key) is codec and codecs.by_name(spec.section, spec.name) is codec
    assert codecs.find(*key, version=spec.introduced) is codec
    if spec.introduced > (1, 0):  # unknown to a reader of the version before (5.2)
        before = (1, spec.introduced[1] - 1)
        assert codecs.find(*key, version=before) is None and spec.name not in codecs.names(spec.section, before)
    assert f"id {key[1]}" in repr(codec) and f"{spec.introduced[0]}.{spec.introduced[1]}" in repr(codec)


def check_decoder_bounds(codec) -> None:
    """The raw-length bounds the decoder enforces are those of 5.5 over a grid of headers (N, C, k)."""
    spec = _spec(codec)
    for n_ref in (1, 7, 8, 9, 1000, 2**32 + 3, 2**48):
        for n_classes in (1, 2, 3, 256, 257, 65536, 65537, 2**24):
            for count in {0, 1, 8, 9, 127, 128, 129, min(n_ref, 10**6), min(n_ref, 2**24)}:
                if count <= n_ref:
                    shape = _Shape(n_ref, n_classes, count)
                    assert tuple(codec.raw_length_bounds(shape)) == spec.bounds(n_ref, n_classes, count), shape


@dataclass(frozen=True)
class _Shape:
    n_ref: int
    n_classes: int
    count: int


def check_round_trip(codec, kernels, case: Case) -> None:
    """Encode then decode (the codec alone and in a payload) gives the input back; encoding is deterministic."""
    kernels, sel, spec = _kernels(kernels), case.sel, _spec(codec)
    body = codec.encode(sel, kernels)
    assert isinstance(body, bytes) and codec.encode(sel, kernels) == body
    fields = codec.decode(body, context(sel, spec.introduced[1]), kernels, "battery")
    assert set(fields) == set(spec.fields)
    for field in spec.fields:
        assert_field(field, fields[field], getattr(sel, field))
    data = payload_with(codec, sel, body, kernels)
    if _cm_too_dense(codec, sel, kernels):  # 15.1: refused, not written
        with pytest.raises(plada_codec.PayloadFormatError, match="raw_length"):
            plada_codec.decode(data, backend=kernels.name)
        with pytest.raises(plada_codec.EncodeError, match="15.1"):
            plada_codec.encode(sel.indices, sel.labels, n_ref=sel.n_ref, n_classes=sel.n_classes,
                               index_codec="context-model", compression="none", backend=kernels.name)
        return
    decoded = _decode_payload(data, kernels.name)
    for field in ("indices", "labels", *spec.fields):
        assert_field(field, decoded[field], getattr(sel, field))


def check_backends_agree(codec, backend: str, case: Case) -> None:
    """Other backends write the same bytes and meet the same outcomes on them and damaged copies (alone: none)."""
    sel = case.sel
    mine = get_kernels(backend)
    body = codec.encode(sel, mine)
    variants = [body, *[damaged for _, damaged in corruptions(body, positions=8)], body[: len(body) // 2]]
    ctx = context(sel, _spec(codec).introduced[1])

    def outcomes(kernels):
        return [_plain(result) if isinstance(result, dict) else result
                for result in (_outcome(lambda v=v: codec.decode(v, ctx, kernels, "battery"), _units(sel, len(v)))
                               for v in variants)]

    expected = outcomes(mine)
    assert not isinstance(expected[0], type), f"{backend} refuses its own body: {expected[0]}"
    for other in BACKENDS:
        if other != backend:
            assert codec.encode(sel, get_kernels(other)) == body, f"{other} writes other bytes than {backend}"
            assert outcomes(get_kernels(other)) == expected, f"{other} decodes otherwise than {backend}"


def check_size_bound(codec, kernels, case: Case) -> None:
    """The body length lies within 5.5's bound and equals the length the spec fixes for an encoder, if any."""
    kernels, sel, spec = _kernels(kernels), case.sel, _spec(codec)
    body = codec.encode(sel, kernels)
    low, high = spec.bounds(sel.n_ref, sel.n_classes, sel.count)
    assert len(body) <= high, (len(body), high)
    if not _cm_too_dense(codec, sel, kernels):  # the lower bound of 15.1 is a rule for the encoder's choice
        assert low <= len(body), (len(body), low)
    exact = spec_encoded_length(codec, sel)
    if exact is not None:
        assert len(body) == exact


def corruptions(body: bytes, positions: int = 16) -> list[tuple[str, bytes]]:
    """Single-byte changes at up to *positions* offsets spread over *body* (first and last included)."""
    if not body:
        return []
    offsets = sorted(set(np.linspace(0, len(body) - 1, min(len(body), positions)).astype(int).tolist()))
    out = []
    for at in offsets:
        for value in sorted({body[at] ^ 0x01, body[at] ^ 0x80, 0x00, 0xFF} - {body[at]}):
            out.append((f"byte {at} = {value:#04x}", body[:at] + bytes([value]) + body[at + 1 :]))
    return out


def hostile_bodies(body: bytes, positions: int = 16) -> list[tuple[str, bytes]]:
    """Every truncation of *body*, two one-byte extensions, and bounded single-byte corruptions."""
    cut = [(f"first {n} bytes", body[:n]) for n in range(len(body))]
    longer = [("one 0x00 more", body + b"\x00"), ("one 0xff more", body + b"\xff")]
    return cut + longer + corruptions(body, positions)


HOSTILE_MAX_BODY = 1024


def check_hostile_bodies(codec, backend: str, case: Case, positions: int = 16) -> None:
    """Truncated, extended, corrupted bodies decode within their rules or meet a 9.1 refusal, in bounded work."""
    sel, kernels, spec = case.sel, get_kernels(backend), _spec(codec)
    body = codec.encode(sel, kernels)
    assert len(body) <= HOSTILE_MAX_BODY, "pass small cases: every truncation is decoded"
    low, high = spec.bounds(sel.n_ref, sel.n_classes, sel.count)
    ctx = context(sel, spec.introduced[1])
    for what, damaged in hostile_bodies(body, positions):
        data = payload_with(codec, sel, damaged, kernels)
        result = _outcome(lambda d=data: _decode_payload(d, backend), _units(sel, len(data)))
        if not low <= len(damaged) <= high:  # 9 step 8b: the bounds are checked before the body is read
            assert result is plada_codec.PayloadFormatError, (what, result)
            continue
        if isinstance(result, dict):
            check_invariants(codec, result, sel)
        # The codec alone, as the decoder calls it: on a body within the bounds.
        result = _outcome(lambda d=damaged: codec.decode(d, ctx, kernels, "battery"), _units(sel, len(damaged)))
        if isinstance(result, dict):
            assert set(result) == set(spec.fields), what
            check_invariants(codec, result, sel)


VECTORS = sorted(p for p in (REPO / "spec" / "vectors").glob("v1.*") if p.is_dir())


def _meta(path):
    return json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))


def _raw_body(section: wire.RawSection) -> bytes:
    """The raw body (5.4), decompressed here with zstandard itself."""
    if section.compression == 0:
        return section.body
    return zstandard.ZstdDecompressor().decompressobj().decompress(section.body)


def check_spec_vectors(codec, backend: str) -> None:
    """Valid vectors using the codec decode to their .json values; must-reject ones meet their named class."""
    key, spec, kernels = _key(codec), _spec(codec), get_kernels(backend)
    valid = [p for folder in VECTORS for p in sorted(folder.glob("*.bin"))
             if any((s.type, s.codec) == key for s in wire.split(p.read_bytes()).sections)]
    assert valid, "FORMAT.md 12: every codec has a valid vector that uses it"
    for path in valid:
        meta, data = _meta(path), path.read_bytes()
        (section,) = [s for s in wire.split(data).sections if (s.type, s.codec) == key]
        ctx = codecs.DecodeContext(meta["n_ref"], meta["n_classes"], meta["count"],
                                   int(meta["format_version"].split(".")[1]), codecs.Limits())
        fields = codec.decode(_raw_body(section), ctx, kernels, path.name)
        assert set(fields) == set(spec.fields), path.name
        for field in spec.fields:
            assert_field(field, fields[field], meta[field])
        decoded = _decode_payload(data, backend)
        for field in ("indices", "labels", *spec.fields):
            assert_field(field, decoded[field], meta[field])
    name = f"{spec.section}/{spec.name}"
    invalid = [p for folder in VECTORS for p in sorted((folder / "invalid").glob("*.bin"))
               if _meta(p).get("codec") == name]
    assert invalid, "FORMAT.md 12: every codec has a must-reject vector that names it"
    for path in invalid:
        meta = _meta(path)
        expected = SPEC_ERRORS[meta["error"]]
        with pytest.raises(plada_codec.PayloadError) as refused:
            plada_codec.decode(path.read_bytes(), backend=backend, **meta.get("limits", {}))
        assert type(refused.value) is expected, (path.name, refused.value)


# -- Hypothesis ------------------------------------------------------------------------------------

_texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_json_scalars = (st.none() | st.booleans() | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
                 | st.floats(allow_nan=False, allow_infinity=False) | _texts)
_json_values = st.recursive(_json_scalars, lambda inner: st.lists(inner, max_size=4)
                            | st.dictionaries(_texts, inner, max_size=4), max_leaves=16)


def selection_strategy(codec):
    """Hypothesis inputs for the codec's family (tests/strategies.py where it fits)."""
    section = codec.section_type
    if section in (INDEX, LABELS):
        base = selections(max_count=200)
        if _key(codec) == (INDEX, 1):  # a bitmap is ceil(N / 8) bytes
            base = base.filter(lambda s: s[2] <= 2**20)
        return base.map(lambda s: selection(*s))
    if section == CLASS_NAMES:
        lists = st.integers(1, 30).flatmap(lambda c: class_name_lists(c, with_lf=codec.id == 0))
        return lists.map(lambda names: selection([], [], 1, len(names), class_names=names))
    if section == TASK_NAME:
        return st.text(st.characters(blacklist_categories=("Cs",)), max_size=200).map(
            lambda text: selection([], [], 1, 1, task_name=text))
    return st.dictionaries(_texts, _json_values, max_size=6).map(lambda obj: selection([], [], 1, 1, metadata=obj))


def check_round_trip_property(codec, kernels) -> None:
    """Hypothesis: round trip and size bound hold for drawn inputs (the profile sets how many)."""
    kernels = _kernels(kernels)

    @given(selection_strategy(codec))
    def round_trip(sel):
        case = Case("drawn", sel)
        check_round_trip(codec, kernels, case)
        check_size_bound(codec, kernels, case)

    round_trip()


class Battery:
    """Every check above as a test class: a codec's test file holds ``class TestBattery(Battery)``
    setting ``codec`` (its registry entry) and ``cases`` (its standard inputs), and gets one test
    a check and a case, on every backend (``conftest.py`` parametrises ``case`` from ``cases`` and
    ``hostile_case`` from :func:`small_cases`)."""

    codec: Any
    cases: list

    def test_registry_entry(self):
        check_registry_entry(self.codec)

    def test_decoder_bounds(self):
        check_decoder_bounds(self.codec)

    def test_round_trip(self, kernels, case):
        check_round_trip(self.codec, kernels, case)

    def test_backends_agree(self, backend, case):
        check_backends_agree(self.codec, backend, case)

    def test_size_bound(self, kernels, case):
        check_size_bound(self.codec, kernels, case)

    def test_spec_vectors(self, backend):
        check_spec_vectors(self.codec, backend)

    def test_hostile_bodies(self, backend, hostile_case):
        check_hostile_bodies(self.codec, backend, hostile_case)

    def test_round_trip_property(self, kernels):
        check_round_trip_property(self.codec, kernels)

