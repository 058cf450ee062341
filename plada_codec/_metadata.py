"""The metadata section's JSON rules (spec/FORMAT.md 5.6), one set for both sides."""

from __future__ import annotations

import json
from typing import Any, Mapping

from ._constants import METADATA_MAX_DEPTH
from ._errors import EncodeError, PayloadFormatError

__all__ = ["canonical_json", "encode_metadata", "decode_metadata"]


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


def encode_metadata(metadata: Mapping[str, Any]) -> bytes:
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


def decode_metadata(raw, where: str) -> dict[str, Any]:
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadFormatError(f"{where}: not UTF-8 ({exc.reason})") from None

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
