"""The metadata section's JSON rules (spec/FORMAT.md 5.7), one set for both sides.

The decoder refuses exactly what the encoder refuses: a value outside the
rules below is an EncodeError when writing and a PayloadFormatError when
reading, and the local limits (bytes, item count) are checked on the raw text
before it is parsed.

Rules: UTF-8 without a byte-order mark; a JSON object at the top; no
duplicate keys after unescaping; strings without lone surrogates; integers
(no fraction, no exponent) in -(2**53 - 1) .. 2**53 - 1 (I-JSON, RFC 7493);
other numbers finite as an IEEE 754 double; arrays and objects nested at most
64 deep.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from ._constants import METADATA_MAX_DEPTH
from ._errors import EncodeError, LimitExceededError, PayloadFormatError

__all__ = ["canonical_json", "encode_metadata", "decode_metadata", "item_count", "MAX_SAFE_INTEGER"]

MAX_SAFE_INTEGER = 2**53 - 1
_MAX_INTEGER_DIGITS = 16  # 2**53 - 1 has 16 digits: longer tokens are refused before int()
_SURROGATE = re.compile("[\ud800-\udfff]")


def item_count(body: bytes) -> int:
    """The bytes ``[``, ``{``, ``,`` and ``:`` in a metadata body (strings
    included): an upper bound on its JSON values, counted in linear time
    before anything is parsed (spec 5.7)."""
    return sum(body.count(ch) for ch in (b"[", b"{", b",", b":"))


def canonical_json(metadata: Mapping[str, Any]) -> bytes:
    """The metadata section's body as this implementation writes it: keys
    sorted, no whitespace, UTF-8 (no ``\\u`` escapes), numbers as Python's
    shortest round-trip repr."""
    return json.dumps(
        metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _path(keys: list) -> str:
    """'metadata[...][...]' for an error message, at most 80 characters."""
    return _shorten("metadata" + "".join(f"[{key!r}]" for key in keys))


def _check_scalar(item: Any, keys: list) -> None:
    if isinstance(item, str):
        if _SURROGATE.search(item):
            raise EncodeError(f"{_path(keys)} holds a lone surrogate, which UTF-8 cannot write")
    elif isinstance(item, bool) or item is None:
        pass
    elif isinstance(item, int):
        if abs(item) > MAX_SAFE_INTEGER:
            shown = item if item.bit_length() <= 64 else f"an integer of {item.bit_length()} bits"
            raise EncodeError(f"{_path(keys)} = {shown} is outside +-(2**53 - 1); write it as a string")
    elif isinstance(item, float):
        if not math.isfinite(item):
            raise EncodeError(f"{_path(keys)} = {item} is not a finite number (JSON has no NaN or Infinity)")
    else:
        raise EncodeError(f"{_path(keys)} is {type(item).__name__}, which is not JSON-serialisable")


def _check_value(value: Any) -> None:
    """Walk *value* depth first without recursion; EncodeError for anything
    the format refuses.

    The walk holds one iterator per open container (at most 64) and builds a
    path string only for an error: a list of 65,536 values costs no memory
    beyond the value itself (a path and a stack entry per element cost ~150
    bytes each, 60x the element's JSON text; fuzz finding metadata-62k-zeros)."""
    keys: list = []  # keys[i]: where the container of frames[i + 1] sits in frames[i]
    frames: list = []  # one (is_dict, iterator over (key, child)) per open container

    def enter(item: Any) -> bool:
        """Check *item*; open a frame and return True if it is a container."""
        if not isinstance(item, (dict, list, tuple)):
            _check_scalar(item, keys)
            return False
        if len(frames) + 1 > METADATA_MAX_DEPTH:
            raise EncodeError(f"metadata is nested deeper than {METADATA_MAX_DEPTH} (at {_path(keys)})")
        if isinstance(item, dict):
            frames.append((True, iter(item.items())))
        else:
            frames.append((False, enumerate(item)))
        return True

    enter(value)
    while frames:
        is_dict, children = frames[-1]
        for key, child in children:
            if is_dict:
                if not isinstance(key, str):
                    raise EncodeError(f"{_path(keys)}: key {_shorten(repr(key))} is {type(key).__name__}; "
                                      "JSON keys are str")
                if _SURROGATE.search(key):
                    raise EncodeError(f"{_path(keys)}: key {_shorten(ascii(key))} holds a lone surrogate, "
                                      "which UTF-8 cannot write")
            keys.append(key)
            if enter(child):
                break  # descend; this frame's iterator resumes after the child's frame closes
            keys.pop()
        else:
            frames.pop()
            if keys:
                keys.pop()


def _shorten(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def encode_metadata(metadata: Mapping[str, Any], max_bytes: int, max_items: int) -> bytes:
    """The metadata body, or EncodeError for what a decoder would refuse,
    including the default decoder's limits."""
    if not isinstance(metadata, Mapping):
        raise EncodeError(f"metadata must be a mapping, got {type(metadata).__name__}")
    metadata = dict(metadata)
    _check_value(metadata)
    body = canonical_json(metadata)
    if len(body) > max_bytes:
        raise EncodeError(f"metadata is {len(body)} bytes as JSON, above the decoders' default {max_bytes}")
    items = item_count(body)
    if items > max_items:
        raise EncodeError(f"metadata holds {items} JSON items, above the decoders' default {max_items}")
    return body


def decode_metadata(raw, where: str, max_items: int) -> dict[str, Any]:
    """Parse a metadata body under the rules of 5.7 (its byte length was
    checked against the local limit before decompression)."""
    raw = bytes(raw)
    items = item_count(raw)
    if items > max_items:
        raise LimitExceededError(f"{where}: {items} JSON items, above max_metadata_items = {max_items}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadFormatError(f"{where}: not UTF-8 ({exc.reason})") from None
    if text.startswith("\ufeff"):
        raise PayloadFormatError(f"{where}: starts with a byte-order mark")

    def no_duplicates(pairs):
        value = dict(pairs)  # a repeated key collapses, so the sizes differ
        if len(value) != len(pairs):
            raise PayloadFormatError(f"{where}: duplicate key in a JSON object")
        return value

    def no_constants(name):
        raise PayloadFormatError(f"{where}: {name} is not JSON (RFC 8259)")

    def integer(token: str) -> int:
        if len(token.lstrip("-")) > _MAX_INTEGER_DIGITS or abs(int(token)) > MAX_SAFE_INTEGER:
            raise PayloadFormatError(f"{where}: integer {token[:24]}... is outside +-(2**53 - 1)")
        return int(token)

    def number(token: str) -> float:
        value = float(token)
        if not math.isfinite(value):
            raise PayloadFormatError(f"{where}: number {token[:24]} is outside the range of a double")
        return value

    try:
        value = json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constants,
                           parse_int=integer, parse_float=number)
    except RecursionError:
        raise PayloadFormatError(f"{where}: JSON nested deeper than {METADATA_MAX_DEPTH}") from None
    except json.JSONDecodeError as exc:
        raise PayloadFormatError(f"{where}: invalid JSON ({exc.msg} at char {exc.pos})") from None
    if not isinstance(value, dict):
        raise PayloadFormatError(f"{where}: top-level JSON value must be an object")
    try:
        _check_value(value)
    except EncodeError as exc:  # the same rules, seen from the reading side
        raise PayloadFormatError(f"{where}: {exc}") from None
    return value
