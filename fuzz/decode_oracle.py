"""What the decoder fuzzers assert about one input (no atheris needed).

:func:`check` runs ``plada_codec.inspect``, ``decode`` and ``verify`` on one
input with one or more kernel backends and raises

- the decoder's own exception, unchanged, when it is not a
  :class:`plada_codec.PayloadError` (every bad input must raise one);
- :class:`Finding` when a call succeeds with output that breaks the format
  (spec/FORMAT.md): indices not strictly increasing or outside ``[0, N)``,
  labels outside ``[0, C)``, ``len != count``, class names not C strings,
  metadata that the encoder could not write back (non-finite numbers, lone
  surrogates); when the calls or the backends disagree; when the optional
  spec oracle (spec/educational_decoder.py, written from the spec alone)
  reaches another outcome; when ``plada_codec.read_payload`` (where it
  exists) changes the bytes or rejects what decode does not, or with
  another class; or when a decode costs far more time or memory than the
  payload declares.
"""

from __future__ import annotations

import io
import json
import math
import struct
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import plada_codec
from plada_codec._errors import SPEC_ERRORS as _SPEC_ERRORS

REPO = Path(__file__).resolve().parent.parent

# Small enough for a shared 2-core machine, large enough for every vector:
# at most 12 MiB of output and 16 MiB per section.
DEFAULT_LIMITS = {"max_count": 1 << 20, "max_section_bytes": 1 << 24}

# spec/FORMAT.md 9.1: error class names in the spec's terms -> plada_codec classes (the one table).
SPEC_ERRORS = _SPEC_ERRORS


SECTION_NAMES = {0x0001: "index", 0x0002: "labels", 0x8001: "class-names", 0x8002: "task-name",
                 0x8003: "metadata"}


class Finding(AssertionError):
    """The decoder broke a rule; ``kind`` names the rule for deduplication."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


@dataclass(frozen=True)
class Header:
    n_classes: int
    n_ref: int
    count: int
    total_length: int
    minor: int
    section_count: int
    raw_lengths: int  # sum of the sections' declared raw lengths that fit the input
    largest: str  # name of the section declaring the most raw bytes ("" if none)
    metadata_raw: int = 0  # declared raw lengths of metadata sections


def read_header(data: bytes) -> Header:
    n_classes, n_ref, count = struct.unpack_from("<IQQ", data, 12)
    (total,) = struct.unpack_from("<Q", data, 64)
    (n_sections,) = struct.unpack_from("<H", data, 72)
    raw, offset, largest, metadata_raw = 0, 80, (0, ""), 0
    for _ in range(n_sections):
        if offset + 24 > len(data):
            break
        (stype,) = struct.unpack_from("<H", data, offset)
        codec = data[offset + 2]
        raw_length, stored = struct.unpack_from("<QQ", data, offset + 8)
        raw += raw_length
        if SECTION_NAMES.get(stype) == "metadata":
            metadata_raw += raw_length
        largest = max(largest, (raw_length, f"{SECTION_NAMES.get(stype, 'unknown')}{codec}"))
        offset += 28 + stored
    return Header(n_classes, n_ref, count, total, data[9], n_sections, raw, largest[1], metadata_raw)


def _outcome(call):
    """("ok", value) or ("error", exception); non-PayloadErrors propagate."""
    try:
        return "ok", call()
    except plada_codec.PayloadError as exc:
        return "error", exc


def _utf8_clean(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Finding("text-not-utf8", f"{where} holds a lone surrogate: {text!r:.80}") from None


def _walk_metadata(value: Any, where: str) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                _utf8_clean(key, f"{where} key")
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            _utf8_clean(item, where)
        elif isinstance(item, float) and not math.isfinite(item):
            raise Finding("metadata-non-finite", f"{where} holds {item!r}, which JSON cannot write")
        elif not (item is None or isinstance(item, (bool, int, float))):
            raise Finding("metadata-type", f"{where} holds a {type(item).__name__}")


def check_payload(payload: plada_codec.Payload, header: Header) -> None:
    """The format's invariants on a successful decode (spec sections 4-7)."""
    k, n, c = header.count, header.n_ref, header.n_classes
    if (payload.n_ref, payload.n_classes) != (n, c):
        raise Finding("header-mismatch", f"decoded N={payload.n_ref} C={payload.n_classes}, header {n} {c}")
    if payload.version != (1, header.minor):
        raise Finding("version-mismatch", f"decoded version {payload.version}, header 1.{header.minor}")
    for name, array in (("indices", payload.indices), ("labels", payload.labels)):
        if not isinstance(array, np.ndarray) or array.ndim != 1 or array.dtype.kind not in "iu":
            raise Finding("output-type", f"{name} is not a 1-d integer array: {type(array)}")
        if array.size != k:
            raise Finding("count-mismatch", f"{array.size} {name} decoded, header count is {k}")
    indices = payload.indices.astype(np.int64)
    if k:
        if indices[0] < 0 or indices[-1] >= n:
            raise Finding("index-range", f"indices span {indices[0]}..{indices[-1]}, N = {n}")
        steps = np.diff(indices)
        if steps.size and steps.min() <= 0:
            at = int(np.argmax(steps <= 0))
            raise Finding("index-order", f"indices not strictly increasing at {at + 1}")
        labels = payload.labels.astype(np.int64)
        if labels.min() < 0 or labels.max() >= c:
            raise Finding("label-range", f"labels span {labels.min()}..{labels.max()}, C = {c}")
    if payload.class_names is not None:
        if len(payload.class_names) != c or not all(isinstance(x, str) for x in payload.class_names):
            raise Finding("class-names", f"{len(payload.class_names)} class names for C = {c}")
        for name in payload.class_names:
            _utf8_clean(name, "a class name")
    if payload.task_name is not None:
        if not isinstance(payload.task_name, str):
            raise Finding("task-name", f"task name is a {type(payload.task_name).__name__}")
        _utf8_clean(payload.task_name, "the task name")
    if payload.metadata is not None:
        if not isinstance(payload.metadata, dict):
            raise Finding("metadata-type", f"metadata is a {type(payload.metadata).__name__}")
        _walk_metadata(payload.metadata, "metadata")
        try:  # what plada_codec's encoder would write for it (spec 5.6)
            json.dumps(payload.metadata, allow_nan=False, ensure_ascii=False).encode("utf-8")
        except (ValueError, TypeError) as exc:
            raise Finding("metadata-unwritable", f"the encoder could not write it back ({exc})") from None


def _same(a, b) -> bool:
    kind_a, value_a = a
    kind_b, value_b = b
    if kind_a != kind_b:
        return False
    if kind_a == "error":
        return type(value_a) is type(value_b)
    return value_a == value_b


def _describe(outcome) -> str:
    kind, value = outcome
    return f"{type(value).__name__}: {value}"[:300] if kind == "error" else "success"


def _spec_outcome(data: bytes, limits: dict) -> tuple[str, Any]:
    if str(REPO / "spec") not in sys.path:
        sys.path.insert(0, str(REPO / "spec"))
    import educational_decoder as spec

    try:
        return "ok", spec.decode(data, **limits)
    except spec.DecodeError as exc:
        return "error", exc


def _critical_codecs(data: bytes) -> set[int]:
    """Codec ids of the index and label sections, as framed in *data*."""
    codecs, offset = set(), 80
    for _ in range(struct.unpack_from("<H", data, 72)[0] if len(data) >= 80 else 0):
        if offset + 24 > len(data):
            break
        (stype,) = struct.unpack_from("<H", data, offset)
        if stype in (0x0001, 0x0002):
            codecs.add(data[offset + 2])
        offset += 28 + struct.unpack_from("<Q", data, offset + 16)[0]
    return codecs


def _check_against_spec(data: bytes, outcome, limits: dict) -> None:
    spec_kind, spec_value = _spec_outcome(data, limits)
    kind, value = outcome
    if (spec_kind == "error" and spec_value.kind == "UnsupportedFeature"
            and max(_critical_codecs(data), default=0) >= 2):
        return  # a codec of a later minor version than the spec decoder reads (1.0: ids 0, 1)
    if kind == "error" and spec_kind == "error":
        if type(value) is not SPEC_ERRORS.get(spec_value.kind):
            raise Finding("spec-disagrees",
                          f"plada raised {type(value).__name__}, the spec decoder {spec_value}")
    elif kind == "ok" and spec_kind == "ok":
        mine = value.to_dict()
        theirs = {key: spec_value.get(key) for key in mine}
        if mine != theirs:
            keys = [key for key in mine if mine[key] != theirs[key]]
            raise Finding("spec-disagrees", f"decoded content differs from the spec decoder's in {keys}")
    else:
        raise Finding("spec-disagrees",
                      f"plada: {_describe(outcome)}; spec decoder: "
                      f"{'success' if spec_kind == 'ok' else spec_value}")


def _bounded_decode(data: bytes, backend: str, limits: dict, header: Header, budget: dict):
    """decode() under the time and, for large declared sections, memory
    budget: time within ``budget['seconds']`` plus 100 ns per declared byte
    or entry; traced peak memory within ``budget['memory_ratio']`` times the
    declared raw bytes plus the output arrays (12 bytes per entry), plus 4 MiB,
    plus 8 more bytes per declared metadata byte: the body, its decoded text
    and the parsed strings are alive together, Python holds text with one
    character outside Latin-1 at 4 bytes a character, and json's string
    builder copies a string with an escape once more (measured 11.25x the body;
    spec/FORMAT.md 13, "Ancillary blowups").
    Only decodes declaring 1..4 MiB are traced, and those are not timed
    (tracing slows every allocation many times over). Time is this process's
    CPU time, so a campaign sharing a loaded machine does not report slowness
    that is only waiting for a core."""
    declared = min(header.raw_lengths, limits["max_section_bytes"] * max(header.section_count, 1))
    output = 12 * min(header.count, limits["max_count"])
    trace = budget.get("memory_ratio") and (
        budget.get("trace_above", 1 << 20) <= declared + output <= budget.get("trace_below", 1 << 22)
    )
    if trace:
        tracemalloc.start()
    start = time.process_time()
    try:
        outcome = _outcome(lambda: plada_codec.decode(data, backend=backend, **limits))
    finally:
        elapsed = time.process_time() - start
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
        if trace:
            tracemalloc.stop()
    allowed = budget.get("seconds", 2.0) + 1e-7 * (declared + output)
    if elapsed > allowed and not trace:  # tracemalloc slows every allocation: no timing then
        raise Finding(f"slow-{backend}-{header.largest}",
                      f"{backend} decode took {elapsed:.2f} s CPU (allowed {allowed:.2f} s) "
                      f"for {len(data)} bytes declaring {declared} raw bytes, k = {header.count}; "
                      f"outcome {_describe(outcome)}")
    if trace:
        bound = int(budget["memory_ratio"] * (declared + output)) + (4 << 20) + 8 * min(header.metadata_raw, declared)
        if peak > bound:
            raise Finding(f"memory-{backend}-{header.largest}", f"{backend} decode peaked at {peak >> 20} MiB (allowed "
                          f"{bound >> 20} MiB) for {len(data)} bytes declaring {declared} raw "
                          f"bytes, k = {header.count}; outcome {_describe(outcome)}")
    return outcome


def check(
    data: bytes,
    backends: tuple[str, ...] = ("auto",),
    *,
    spec: bool = False,
    limits: dict | None = None,
    budget: dict | None = None,
) -> str:
    """Run every assertion on *data*; returns "ok" or the error class name
    of the (agreeing) rejection."""
    limits = dict(DEFAULT_LIMITS if limits is None else limits)
    budget = {} if budget is None else budget
    shown = _outcome(lambda: plada_codec.inspect(data))
    header = read_header(data) if len(data) >= 80 else None
    first = None
    for backend in backends:
        if header is not None:
            outcome = _bounded_decode(data, backend, limits, header, budget)
        else:
            outcome = _outcome(lambda b=backend: plada_codec.decode(data, backend=b, **limits))
        verified = _outcome(lambda b=backend: plada_codec.verify(data, backend=b, **limits))
        if (outcome[0], type(outcome[1])) != (verified[0], type(verified[1])) and not (
            outcome[0] == verified[0] == "ok"
        ):
            raise Finding("verify-disagrees", f"{backend}: decode {_describe(outcome)}; "
                          f"verify {_describe(verified)}")
        if outcome[0] == "ok":
            check_payload(outcome[1], header)
            if shown[0] != "ok":
                raise Finding("inspect-disagrees", f"decode succeeded, inspect {_describe(shown)}")
            info = verified[1]
            if (info.count, info.n_ref, info.n_classes, info.total_length) != (
                header.count, header.n_ref, header.n_classes, len(data)
            ) or len(info.sections) != header.section_count:
                raise Finding("info-mismatch", f"verify's PayloadInfo disagrees with the header: {info}")
        if first is None:
            first = (backend, outcome)
        elif not _same(first[1], outcome):
            raise Finding("backends-disagree", f"{first[0]}: {_describe(first[1])}; "
                          f"{backend}: {_describe(outcome)}")
    reader = getattr(plada_codec, "read_payload", None)
    if reader is not None:  # the bounded stream reader the CLIs use (spec 9 steps 1-4)
        read = _outcome(lambda: reader(io.BytesIO(data)))
        if read[0] == "ok" and read[1] != data:
            raise Finding("read-payload", f"read_payload returned {len(read[1])} of {len(data)} bytes")
        if read[0] == "error" and (first[1][0] == "ok" or type(read[1]) is not type(first[1][1])):
            raise Finding("read-payload", f"read_payload: {_describe(read)}; decode: {_describe(first[1])}")
    # The spec decoder is pure Python and slow: only on inputs declaring at most 1 MiB.
    if spec and (header is None or header.raw_lengths + 12 * header.count <= 1 << 20):
        _check_against_spec(data, first[1], limits)
    return "ok" if first[1][0] == "ok" else type(first[1][1]).__name__
