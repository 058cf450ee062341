"""Reference-set *kinds*: how a copy of a reference set is stored on disk.

A kind is one module here that says, for its layout, how to list the items
(:class:`Listing`: one name and one location per item, as arrays), how to
read one item's bytes, and how to detect a path of its layout. Catalogs
(:mod:`plada_codec._catalog`, spec/REFERENCE.md section 8) derive layout-free
item ids from the listed names; the training wing reads items through the same
listings, so every layout rule lives in exactly one place.

Kinds, in detection order: ``tar`` (a ``.tar`` shard or a folder holding only
shards), ``parquet`` (a ``.parquet`` file or a folder holding only such files;
needs ``pyarrow``, the ``parquet`` extra), ``npz`` (an ``.npz`` file with an
``x`` array), ``arrow`` (a Hugging Face ``datasets`` folder written by
``Dataset.save_to_disk``; needs ``pyarrow``) and ``folder`` (any other folder:
every visible regular file). This registry is the only detector: fingerprints
(``plada ref-hash``), catalogs and the training wing all ask it. Adding a kind
is one module with a :class:`Kind` subclass and one line in :data:`KINDS`.
"""

from __future__ import annotations

import os
from pathlib import Path

from .._errors import ReferenceSetError
from ._base import Kind, Listing, PackedStrings, PathLike, stem_of
from ._walk import FolderWalk, walk_folder
from .arrow import ArrowKind
from .folder import FolderKind
from .images import IMAGE_EXTENSIONS, is_image_name
from .npz import NpzKind
from .parquet import ParquetKind
from .tar import TarKind

__all__ = ["Kind", "Listing", "PackedStrings", "FolderWalk", "walk_folder",
           "KINDS", "IMAGE_EXTENSIONS", "is_image_name", "kind_named", "detect_kind",
           "list_items", "stem_of"]

# Detection order matters: a folder of shards is a tar set, not a folder of files.
KINDS: dict[str, type[Kind]] = {
    "tar": TarKind,
    "parquet": ParquetKind,
    "npz": NpzKind,
    "arrow": ArrowKind,
    "folder": FolderKind,
}


def kind_named(name: str) -> type[Kind]:
    """The kind called *name* (``auto`` is not a kind: see :func:`detect_kind`)."""
    try:
        return KINDS[name]
    except KeyError:
        raise ReferenceSetError(
            f"unknown reference kind {name!r}; use auto or one of {', '.join(KINDS)}"
        ) from None


def detect_kind(path: PathLike, kind: str = "auto") -> type[Kind]:
    """The kind of *path*: *kind* itself unless it is ``auto``."""
    if kind != "auto":
        return kind_named(kind)
    p = Path(path)
    if not p.exists():
        raise ReferenceSetError(f"{p}: no such file or folder")
    for candidate in KINDS.values():
        if candidate.detect(p):
            return candidate
    raise ReferenceSetError(
        f"{p}: not a reference set of a known layout (a folder of images, .tar shards, .parquet files, "
        "a datasets save_to_disk folder or an .npz)"
    )


def list_items(path: PathLike, kind: str = "auto") -> Listing:
    """Every item of the copy at *path*, listed by its kind."""
    return detect_kind(os.fspath(path), kind).scan(os.fspath(path))
