"""Reference-set fingerprints (spec section "Reference-set fingerprint").

A reference set is an ordered list of items. Its *manifest* is UTF-8 text:

    plada-reference-manifest 1 LF
    then one line per item, in the set's order:  ID LF   or   ID TAB SHA256HEX LF

and the fingerprint is SHA-256 over the manifest's bytes. The same items in the
same order give the same fingerprint on any machine; any change of order,
membership or (when digests are included) content changes it.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ._errors import PayloadFormatError

__all__ = ["ReferenceSet", "MANIFEST_HEADER", "array_item_digest"]

MANIFEST_HEADER = b"plada-reference-manifest 1\n"
_FORBIDDEN_ID_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_HEX64 = re.compile(rb"[0-9a-f]{64}")
# numpy dtype -> the spec's type code for array items (little-endian implied).
_ARRAY_TYPE_CODES = {
    "b1": "b1", "u1": "u1", "u2": "u2", "u4": "u4", "u8": "u8",
    "i1": "i1", "i2": "i2", "i4": "i4", "i8": "i8", "f2": "f2", "f4": "f4", "f8": "f8",
}


def _check_id(item_id: str) -> bytes:
    if not isinstance(item_id, str) or not item_id:
        raise ValueError(f"reference item id must be a non-empty str, got {item_id!r}")
    if _FORBIDDEN_ID_CHARS.search(item_id):
        raise ValueError(f"reference item id {item_id!r} contains a control character")
    try:
        return item_id.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"reference item id {item_id!r} is not valid Unicode text") from exc


def array_item_digest(item: np.ndarray) -> str:
    """SHA-256 hex digest of one array item: ``"CODE:SHAPE\\n"`` + little-endian C-order bytes.

    CODE is the element type (``u1``, ``f4``, ...), SHAPE the item's dimensions
    joined by ``x`` (empty for a scalar), e.g. ``b"u1:28x28\\n"`` then 784 bytes.
    """
    item = np.asarray(item)
    code = item.dtype.kind + str(item.dtype.itemsize)
    if item.dtype.kind == "b":
        code = "b1"
    if code not in _ARRAY_TYPE_CODES:
        raise ValueError(f"array items of dtype {item.dtype} cannot be fingerprinted")
    data = np.ascontiguousarray(item, dtype=item.dtype.newbyteorder("<"))
    head = f"{code}:{'x'.join(str(d) for d in item.shape)}\n".encode("ascii")
    digest = hashlib.sha256(head)
    digest.update(data.tobytes())
    return digest.hexdigest()


class ReferenceSet:
    """The identity of an ordered reference set: its size and fingerprint.

    Build one with :meth:`from_ids`, :meth:`from_folder`, :meth:`from_array`
    or :meth:`from_manifest`; pass it as ``reference=`` to
    :func:`plada_codec.encode` (binds the payload) and :func:`plada_codec.decode`
    (checks the binding).
    """

    __slots__ = ("n_ref", "fingerprint", "source")

    def __init__(self, n_ref: int, fingerprint: bytes, source: str = "") -> None:
        if len(fingerprint) != 32:
            raise ValueError("a reference fingerprint is 32 bytes (SHA-256)")
        if n_ref < 1:
            raise ValueError("a reference set holds at least one item")
        self.n_ref = int(n_ref)
        self.fingerprint = bytes(fingerprint)
        self.source = source

    def __len__(self) -> int:
        return self.n_ref

    def __repr__(self) -> str:
        return f"ReferenceSet(n_ref={self.n_ref}, fingerprint={self.hex[:16]}..., source={self.source!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReferenceSet):
            return NotImplemented
        return (self.n_ref, self.fingerprint) == (other.n_ref, other.fingerprint)

    def __hash__(self) -> int:
        return hash((self.n_ref, self.fingerprint))

    @property
    def hex(self) -> str:
        """The fingerprint as 64 lowercase hex digits."""
        return self.fingerprint.hex()

    # -- constructors --------------------------------------------------------

    @classmethod
    def from_items(
        cls,
        items: Iterable[tuple[str, str | None]],
        *,
        manifest_out: BinaryIO | None = None,
        source: str = "items",
    ) -> ReferenceSet:
        """Fingerprint ``(id, sha256_hex_or_None)`` pairs, in order.

        If *manifest_out* is given the canonical manifest is written to it too.
        """
        hasher = hashlib.sha256(MANIFEST_HEADER)
        if manifest_out is not None:
            manifest_out.write(MANIFEST_HEADER)
        count = 0
        for item_id, digest in items:
            line = _check_id(item_id)
            if digest is not None:
                digest_bytes = digest.encode("ascii") if isinstance(digest, str) else bytes(digest)
                if not _HEX64.fullmatch(digest_bytes):
                    raise ValueError(f"digest of {item_id!r} is not 64 lowercase hex digits")
                line += b"\t" + digest_bytes
            line += b"\n"
            hasher.update(line)
            if manifest_out is not None:
                manifest_out.write(line)
            count += 1
        if count == 0:
            raise ValueError("a reference set holds at least one item")
        return cls(count, hasher.digest(), source)

    @classmethod
    def from_ids(cls, ids: Iterable[str], digests: Iterable[str] | None = None) -> ReferenceSet:
        """Fingerprint a list of item ids (and optionally their content digests)."""
        if digests is None:
            return cls.from_items(((i, None) for i in ids), source="ids")
        ids, digests = list(ids), list(digests)
        if len(ids) != len(digests):
            raise ValueError(f"{len(ids)} ids but {len(digests)} digests")
        return cls.from_items(zip(ids, digests), source="ids")

    @classmethod
    def from_array(cls, array: np.ndarray, *, content: bool = True) -> ReferenceSet:
        """Fingerprint an in-memory data set: item i is ``array[i]``, id ``str(i)``."""
        array = np.asarray(array)
        if array.ndim < 1 or len(array) == 0:
            raise ValueError("an array reference set needs at least one item along axis 0")
        if content:
            items = ((str(i), array_item_digest(array[i])) for i in range(len(array)))
        else:
            items = ((str(i), None) for i in range(len(array)))
        return cls.from_items(items, source=f"array{tuple(array.shape)}")

    @staticmethod
    def folder_files(folder: str | os.PathLike) -> list[str]:
        """The canonical item ids of *folder*: relative POSIX paths of all regular
        files below it (symbolic links are not followed), sorted by UTF-8 bytes."""
        root = Path(folder)
        if not root.is_dir():
            raise NotADirectoryError(f"{root} is not a folder")
        ids = []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()
            for name in filenames:
                full = Path(dirpath, name)
                if full.is_file() and not full.is_symlink():
                    ids.append(full.relative_to(root).as_posix())
        try:
            ids.sort(key=lambda s: s.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise ValueError(f"a file name below {root} is not valid UTF-8") from exc
        return ids

    @classmethod
    def from_folder(
        cls,
        folder: str | os.PathLike,
        *,
        content: bool = True,
        manifest_out: BinaryIO | None = None,
    ) -> ReferenceSet:
        """Fingerprint a folder of files in canonical (sorted-path) order.

        With *content* each file's SHA-256 is part of the manifest, so any edit
        of a file changes the fingerprint; without it only the names count.
        """
        root = Path(folder)
        ids = cls.folder_files(root)

        def items() -> Iterator[tuple[str, str | None]]:
            for item_id in ids:
                if content:
                    with open(root / item_id, "rb") as fh:
                        yield item_id, hashlib.file_digest(fh, "sha256").hexdigest()
                else:
                    yield item_id, None

        return cls.from_items(items(), manifest_out=manifest_out, source=f"folder {root}")

    @classmethod
    def from_manifest(cls, path: str | os.PathLike) -> ReferenceSet:
        """Fingerprint a manifest file, checking that it is canonical."""
        with open(path, "rb") as fh:
            header = fh.readline()
            if header != MANIFEST_HEADER:
                raise PayloadFormatError(
                    f"{path}: not a plada reference manifest (first line must be "
                    f"{MANIFEST_HEADER.decode().strip()!r})"
                )

            def items() -> Iterator[tuple[str, str | None]]:
                for lineno, line in enumerate(fh, start=2):
                    if not line.endswith(b"\n"):
                        raise PayloadFormatError(f"{path}:{lineno}: line does not end in LF")
                    fields = line[:-1].split(b"\t")
                    if len(fields) > 2:
                        raise PayloadFormatError(f"{path}:{lineno}: more than one TAB")
                    try:
                        item_id = fields[0].decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise PayloadFormatError(f"{path}:{lineno}: id is not UTF-8") from exc
                    yield item_id, (fields[1].decode("ascii", "replace") if len(fields) == 2 else None)

            try:
                return cls.from_items(items(), source=f"manifest {path}")
            except ValueError as exc:
                if isinstance(exc, PayloadFormatError):
                    raise
                raise PayloadFormatError(f"{path}: {exc}") from exc

    @classmethod
    def from_path(cls, path: str | os.PathLike, *, content: bool = True) -> ReferenceSet:
        """A folder is hashed with :meth:`from_folder`, a file read as a manifest."""
        return cls.from_folder(path, content=content) if Path(path).is_dir() else cls.from_manifest(path)
