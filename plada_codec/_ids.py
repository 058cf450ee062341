"""The id rules every reference layout shares (spec/REFERENCE.md section 2):
what an item id may hold, how a name is shown in a message, and how a path
argument is taken. The ground floor of the reference layer: ``kinds/``,
``_reference`` and ``_catalog`` all import it, it imports none of them."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ._errors import ReferenceSetError

__all__ = ["FORBIDDEN_ID_CHARS", "check_id", "check_ids", "shown", "is_utf8", "path_argument", "is_within"]

FORBIDDEN_ID_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def shown(name: str) -> str:
    """A name as a user can read it, even when it holds undecodable bytes."""
    return ascii(name) if FORBIDDEN_ID_CHARS.search(name) or not is_utf8(name) else name


def is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_id(item_id: str, where: str = "") -> bytes:
    """The id's UTF-8 bytes, or ReferenceSetError when a manifest line cannot hold it."""
    prefix = f"{where}: " if where else ""
    if not isinstance(item_id, str) or not item_id:
        raise ReferenceSetError(f"{prefix}reference item id must be a non-empty str, got {item_id!r}")
    if FORBIDDEN_ID_CHARS.search(item_id):
        raise ReferenceSetError(
            f"{prefix}reference item id {item_id!r} contains a control character (U+0000-U+001F, "
            "U+007F); rename the file"
        )
    try:
        return item_id.encode("utf-8")
    except UnicodeEncodeError:
        raw = os.fsencode(item_id) if os.name != "nt" else item_id.encode("utf-8", "surrogatepass")
        raise ReferenceSetError(
            f"{prefix}reference item id {raw!r} is not valid UTF-8; rename the file to a UTF-8 name"
        ) from None


def check_ids(ids: list[str], where: str) -> None:
    """check_id over many ids: one scan of their concatenation, per id only on failure."""
    joined = "".join(ids)
    if FORBIDDEN_ID_CHARS.search(joined) or not is_utf8(joined) or not all(ids):
        for item_id in ids:
            check_id(item_id, where)


def path_argument(path: Any, what: str = "path") -> str:
    """*path* as a str, or ReferenceSetError: an int would be taken as a file
    descriptor (and closed), bytes iterated as a list, "" read as the current folder."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise ReferenceSetError(f"{what} must be a path (str or os.PathLike), not {type(path).__name__}")
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text or "\0" in text:
        raise ReferenceSetError(f"{what} {text!r} names no file")
    return text


def is_within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True
