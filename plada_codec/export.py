"""A payload's *virtual dataset* (the selected items of a local copy, each with
its pseudo-label) as rows, and written in the forms training code reads.

:func:`virtual_set` decodes a payload against a local copy of its reference set
and returns a :class:`VirtualSet`: per selected item its position (the payload
index), id, label, class name and where the copy holds it (an image file; a tar
shard and the member's data offset; a parquet file and row). :func:`write`
writes one as

- ``csv`` / ``jsonl``: one row an item, to a new file; no image is read;
- ``imagefolder``: ``OUT/<class folder>/<name>.<ext>``, symbolic links to the
  copy's files (``copy=True``: copies); members of tar shards and parquet rows
  are always written as files. torchvision's ``ImageFolder``, timm's folder
  reader and Keras' ``image_dataset_from_directory`` read it as it is;
- ``wds``: WebDataset shards ``OUT/train-NNNNNN.tar`` holding only the selected
  samples, each ``<name>.<ext>`` (the image's bytes), ``<name>.cls`` (the label,
  decimal) and ``<name>.json`` (id, position, label, class name), with timm's
  ``_info.json`` (``create_dataset("wds/", root=OUT, split="train")``). Each
  shard holds a seeded random subset of the samples (a fair mix of classes
  for streaming readers), the copy being read once in its storage order;
- ``parquet``: ``OUT/train-NNNNN-of-MMMMM.parquet`` with an ``image`` struct
  (bytes, path), ``label`` and ``id``, and Hugging Face feature metadata
  (``Image``, ``ClassLabel``), as ``datasets.load_dataset("parquet", ...)`` loads it.

Rules (the same everywhere):

- **Positions.** With a catalog, payload indices are catalog positions and the
  copy is resolved against the catalog (any layout); selected items the copy
  lacks are left out up to ``max_missing`` (a fraction of the selection, 0.05
  by default, as ``plada-train consume``), beyond it nothing is written. Without
  one, indices are positions in the copy's canonical order (a folder: every
  visible regular file, each an image; tar shards: ``plada_codec.tar_images``),
  checked first against the payload's fingerprint (``manifest`` spares the
  hashing, as for ``plada decode``).
- **Class names** are the payload's (``str(label)`` when it has none). A name
  repeating an earlier one becomes ``NAME~LABEL`` in :attr:`VirtualSet.classes`
  (what ``class_to_idx`` and the parquet ``ClassLabel`` need: unique names).
- **Class folders** are ``<label>_<safe class name>``, the label zero-padded to
  the width of the largest, so the folders sort in label order and every tool
  that numbers classes by sorted folder name (ImageFolder, timm, Keras) numbers
  them as the payload does. Every class gets its folder, even one with no
  selected item (torchvision then needs ``ImageFolder(OUT, allow_empty=True)``):
  a missing folder would shift every later label. timm numbers only the
  folders that hold images: ``OUT/class_map.txt`` lists them all in label
  order, for its ``--class-map`` (``class_map=``).
- **Item names** are the item's id (its catalog id; without a catalog, the stem
  of its name, as ``plada catalog build`` makes ids) made safe: every character
  but letters, digits, ``_ - + = , @`` becomes ``_`` (``.`` too: a WebDataset key
  ends at the first dot), the result is cut to 120 UTF-8 bytes and a Windows
  device name (``CON``, ``NUL``, ...) gets a trailing ``_``. A name already taken
  by an earlier item, compared case-insensitively, gets ``~<position>``
  appended; nothing is ever overwritten.
- **Extensions**: a file's own (a parquet row's ``image.path``'s); else, as
  for a tar member, its bytes' signature's (jpg, png, gif, bmp, tif, webp,
  ppm/pgm/pbm). WebDataset extensions are lower case, ``jpeg`` written ``jpg``.
- **Atomic, new outputs.** A file output is written beside its name then
  renamed; a folder output is written to a temporary sibling
  ``.NAME.PID.tmp`` and renamed when complete (the next export of that name
  removes one a killed export left). An output that exists is refused (an
  export never resumes and never overwrites): remove it or name another.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import re
import shutil
import tarfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np

from ._atomic import _stale_temporaries
from ._catalog import Catalog, Resolution
from ._constants import DEFAULT_MAX_COUNT
from ._decode import decode
from ._errors import PayloadError, ReferenceMismatchError, ReferenceSetError
from ._read import read_payload
from ._reference import ReferenceSet
from ._results import Payload
from .kinds import Listing, detect_kind, is_image_name, stem_of

__all__ = ["ExportError", "MissingItemsError", "VirtualSet", "ExportResult", "virtual_set", "write", "FORMATS",
           "DEFAULT_MAX_MISSING", "safe_name", "ROW_FIELDS", "check_new_output"]

PathLike = Union[str, "os.PathLike[str]"]

FORMATS = ("csv", "jsonl", "imagefolder", "wds", "parquet")
DEFAULT_MAX_MISSING = 0.05  # the share of selected items a copy may lack (plada-train consume's default)
ROW_FIELDS = ("position", "id", "label", "class_name", "file", "key", "offset", "size", "row")
EXPORT_INFO = "plada-export.json"
CLASS_MAP = "class_map.txt"  # imagefolder: the class folders in label order, timm's --class-map
DEFAULT_SHARD_SAMPLES = 10_000
DEFAULT_ROW_GROUP_BYTES = 64 << 20
DEFAULT_PARQUET_FILE_BYTES = 512 << 20
_NAME_BYTES = 120
_SHOWN = 5
_UNSAFE = re.compile(r"[^\w\-+=,@]")  # \w: Unicode letters and digits, and _
_WINDOWS_DEVICES = frozenset(["CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                              *(f"LPT{i}" for i in range(1, 10))])


class ExportError(PayloadError, ValueError):
    """An export cannot be written as asked (its output exists, an unknown
    format, a copy of a layout that holds no image files); nothing was written."""


class MissingItemsError(ReferenceSetError):
    """The copy lacks more of the selection than *max_missing* allows. ``missing``
    (how many), ``selected`` (of how many), ``max_missing``, ``first_ids`` (the
    first few missing ids, in payload order) and ``reference`` (the copy) let a
    caller say it in its own words (``plada-train consume`` does)."""

    def __init__(self, message: str, *, missing: int, selected: int, max_missing: float, first_ids: list[str],
                 reference: str) -> None:
        super().__init__(message)
        self.missing, self.selected, self.max_missing = missing, selected, max_missing
        self.first_ids, self.reference = first_ids, reference


# -- names -------------------------------------------------------------------------------


def safe_name(text: str) -> str:
    """*text* as a file name and WebDataset key every common file system
    accepts (see the module's rules); never empty."""
    name = _UNSAFE.sub("_", text) or "_"
    encoded = name.encode("utf-8")
    if len(encoded) > _NAME_BYTES:
        name = encoded[:_NAME_BYTES].decode("utf-8", "ignore")
    return name + "_" if name.upper() in _WINDOWS_DEVICES else name


def unique_class_names(names: Sequence[str]) -> list[str]:
    """*names* with each repeat of an earlier name made ``NAME~LABEL`` (again until unique)."""
    seen: set[str] = set()
    out = []
    for label, name in enumerate(names):
        while name in seen:
            name = f"{name}~{label}"
        seen.add(name)
        out.append(name)
    return out


def _signature_extension(data: bytes) -> str | None:
    """The image format of *data* by its first bytes (the IMAGE_EXTENSIONS formats)."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tif"
    if data[:2] == b"BM":
        return "bmp"
    if data[:1] == b"P" and data[1:2] in (b"1", b"2", b"3", b"4", b"5", b"6") and data[2:3].isspace():
        return {b"1": "pbm", b"4": "pbm", b"2": "pgm", b"5": "pgm"}.get(data[1:2], "ppm")
    return None


# -- the selection ------------------------------------------------------------------------


class _Ids(Sequence):
    """The reference ids of the selected items (catalog ids, or manifest ids without a catalog)."""

    def __init__(self, owner: VirtualSet) -> None:
        self._owner = owner

    def __len__(self) -> int:
        return len(self._owner)

    def __getitem__(self, j):
        if isinstance(j, slice):
            return [self[i] for i in range(*j.indices(len(self)))]
        return self._owner.id(j)


class VirtualSet:
    """The selected items a local copy holds, each with its pseudo-label.

    Arrays, one entry per item in payload order (ascending position):
    ``positions`` (the payload index: a catalog position with a catalog, else a
    position in the copy's canonical order), ``labels`` and ``local`` (the
    item's index in ``listing``, the copy's :class:`~plada_codec.kinds.Listing`).
    ``ids``, ``class_names`` (the payload's, in label order), ``classes`` (the
    same, made unique), ``missing_positions`` / ``missing_ids`` (selected items
    the copy lacks, left out), ``payload`` (the decoded payload) and
    ``metadata`` (its metadata; ``metadata["preprocess"]`` says how the
    teacher's inputs were made). :meth:`read` gives an item's bytes,
    :meth:`row` / :meth:`rows` its row of :data:`ROW_FIELDS`.
    """

    def __init__(self, payload: Payload, listing: Listing, positions: np.ndarray, labels: np.ndarray,
                 local: np.ndarray, missing_positions: np.ndarray, catalog: Catalog | None = None) -> None:
        self.payload, self.listing, self.catalog = payload, listing, catalog
        self.positions = np.asarray(positions, np.int64)
        self.labels = np.asarray(labels, np.int64)
        self.local = np.asarray(local, np.int64)
        self.missing_positions = np.asarray(missing_positions, np.int64)
        n_classes = payload.n_classes
        names = payload.class_names
        self.class_names: tuple[str, ...] = tuple(names) if names else tuple(str(c) for c in range(n_classes))
        self.classes: list[str] = unique_class_names(self.class_names)
        self.metadata: dict[str, Any] = payload.metadata if isinstance(payload.metadata, dict) else {}
        self.ids: Sequence[str] = _Ids(self)

    def __len__(self) -> int:
        return len(self.positions)

    def __repr__(self) -> str:
        return (f"VirtualSet({len(self)} items of {self.listing.kind.name} {self.listing.root!r}, "
                f"{self.payload.n_classes} classes, missing={len(self.missing_positions)})")

    @property
    def n_classes(self) -> int:
        return self.payload.n_classes

    @property
    def kind(self) -> str:
        """The copy's layout: ``folder``, ``tar`` or ``parquet``."""
        return self.listing.kind.name

    def _id_at(self, position: int, local: int) -> str:
        if self.catalog is not None:
            return self.catalog.ids[position]
        name = self.listing.names[local]
        if self.kind == "tar":  # manifest ids of a tar set are <shard file name>/<key>
            return f"{os.path.basename(self.listing.sources[self.listing.source[local]])}/{name}"
        return name

    def id(self, j: int) -> str:
        """Item *j*'s reference id."""
        return self._id_at(int(self.positions[j]), int(self.local[j]))

    @property
    def missing_ids(self) -> list[str]:
        """The ids of the selected items the copy lacks (only a catalog copy can lack any)."""
        assert self.catalog is not None or not len(self.missing_positions)
        return [self.catalog.ids[int(p)] for p in self.missing_positions] if self.catalog is not None else []

    def class_name(self, j: int) -> str:
        return self.class_names[int(self.labels[j])]

    def read(self, j: int) -> bytes:
        """Item *j*'s bytes (an image file's, a tar member's, a parquet row's image bytes)."""
        return self.listing.read(int(self.local[j]))

    def where(self, j: int) -> str:
        return self.listing.where(int(self.local[j]))

    def name_base(self, j: int) -> str:
        """The unsanitised base of item *j*'s exported name (see the module's rules)."""
        if self.catalog is not None:
            return self.id(j)
        return stem_of(self.listing.names[int(self.local[j])])

    def row(self, j: int) -> dict[str, Any]:
        """Item *j* as a dict of :data:`ROW_FIELDS`: ``file`` is the image file, tar
        shard or parquet file; ``key`` the tar sample key or parquet ``image.path``;
        ``offset`` and ``size`` the bytes to read (a file's from 0; a member's data in
        its shard); ``row`` the parquet row. Fields that do not apply are None."""
        listing, local = self.listing, int(self.local[j])
        kind = self.kind
        out = {"position": int(self.positions[j]), "id": self.id(j), "label": int(self.labels[j]),
               "class_name": self.class_name(j), "file": None, "key": None, "offset": None, "size": None,
               "row": None}
        if kind == "folder":
            out.update(file=os.path.abspath(os.path.join(listing.root, listing.names[local])), offset=0,
                       size=int(listing.size[local]))
        elif kind == "parquet":
            out.update(file=os.path.abspath(listing.sources[listing.source[local]]),
                       key=listing.names[local] or None, row=int(listing.offset[local]))
        else:  # tar shards (and any kind whose items are byte ranges of a file)
            size = int(listing.size[local])
            out.update(file=os.path.abspath(listing.sources[listing.source[local]]), key=listing.names[local] or None,
                       offset=int(listing.offset[local]), size=size if size >= 0 else None)
        return out

    def rows(self) -> Iterator[dict[str, Any]]:
        """:meth:`row` of every item, in payload order, one at a time."""
        return (self.row(j) for j in range(len(self)))

    def storage_order(self) -> np.ndarray:
        """The item numbers j sorted by where the copy stores them (file, then offset):
        reading in this order reads each shard or row group once, front to back."""
        return np.lexsort((self.listing.offset[self.local], self.listing.source[self.local]))

    def summary(self) -> dict[str, Any]:
        """Counts and the first missing ids, JSON-ready."""
        return {"count": len(self), "selected": len(self) + len(self.missing_positions),
                "n_classes": self.n_classes, "classes": self.classes, "kind": self.kind,
                "reference": self.listing.root, "missing": len(self.missing_positions),
                "missing_ids": self.missing_ids[:_SHOWN],
                "fingerprint": None if self.payload.fingerprint is None else self.payload.fingerprint.hex()}


def _payload_of(payload: Payload | bytes | PathLike, reference: ReferenceSet, max_count: int | None) -> Payload:
    """The decoded payload, checked to be bound to *reference* (ReferenceMismatchError before any image is read)."""
    if isinstance(payload, Payload):
        if payload.fingerprint is None or (payload.n_ref, payload.fingerprint) != (reference.n_ref,
                                                                                   reference.fingerprint):
            made_for = "no reference set" if payload.fingerprint is None else \
                f"reference set {payload.fingerprint.hex()[:16]}... of {payload.n_ref} items"
            raise ReferenceMismatchError(f"the payload was made for {made_for}; the local one ({reference.source}) "
                                         f"is {reference.hex[:16]}... of {reference.n_ref} items")
        return payload
    if isinstance(payload, (bytes, bytearray, memoryview)):
        data = bytes(payload)
    elif isinstance(payload, (str, os.PathLike)):
        data = read_payload(payload)
    else:
        raise TypeError(f"payload must be a path, bytes or a decoded Payload, not {type(payload).__name__}")
    return decode(data, reference=reference, max_count=DEFAULT_MAX_COUNT if max_count is None else max_count)


def virtual_set(payload: Payload | bytes | PathLike, reference: PathLike, catalog: Catalog | PathLike | None = None,
                *, max_missing: float = DEFAULT_MAX_MISSING, manifest: PathLike | None = None, id_rule: str = "stem",
                kind: str = "auto", index: PathLike | None = None, workers: int | None = None,
                max_count: int | None = None, reference_set: ReferenceSet | None = None,
                listing: Listing | None = None, resolution: Resolution | None = None,
                arrays: bool = False) -> VirtualSet:
    """The virtual dataset of *payload* (a path, its bytes, or a decoded
    :class:`~plada_codec.Payload`) over the local copy *reference*.

    With *catalog* (a :class:`~plada_codec.Catalog` or its file) the copy may
    be of any layout (folder tree, tar shards in any order, parquet) and is
    resolved against it (*id_rule*, *kind*, *index* as for
    :meth:`Catalog.resolve`; the map is cached, so a second export reads no
    listing); selected items the copy lacks are left out when they are at most
    *max_missing* of the selection, else :class:`~plada_codec.ReferenceSetError`
    names the first (a :class:`MissingItemsError`). Without one, *reference* is
    the reference set itself (a folder of images or tar shards) and its
    fingerprint is checked first (*manifest*: verified by its cache instead of
    hashed, as ``plada decode --manifest``). No image is read here.

    What the caller holds already is not computed again: *reference_set* (the
    copy's fingerprint), *listing* (the copy's listing, without a catalog) and
    *resolution* (the copy resolved against *catalog*, which must then be a
    :class:`~plada_codec.Catalog`). *arrays*: accept a catalog copy whose items are
    arrays (an ``.npz``), for a caller that reads them itself (``read`` and
    :func:`write` need image files)."""
    if isinstance(max_missing, bool) or not isinstance(max_missing, (int, float)) or not 0 <= max_missing <= 1:
        raise ExportError(f"max_missing must be a fraction in [0, 1], got {max_missing!r}")
    local_path = os.fspath(reference)
    if not Path(local_path).exists():
        raise ReferenceSetError(f"{local_path}: no such folder, tar shard or parquet file (the local copy)")
    if catalog is not None:
        return _from_catalog(payload, local_path, catalog, max_missing, id_rule, kind, index, workers, max_count,
                             resolution, arrays)
    if manifest is not None and not Path(manifest).is_file() and Path(manifest).exists():
        raise ReferenceSetError(f"{manifest}: not a manifest file")
    kind_class = listing.kind if listing is not None else detect_kind(local_path, kind)
    if kind_class.name not in ("folder", "tar"):
        raise ReferenceSetError(f"{local_path}: a {kind_class.name} copy has no canonical order of its own; build a "
                                f"catalog of the reference once (plada catalog build) and pass it")
    if isinstance(payload, (str, os.PathLike)):
        payload = read_payload(payload)  # a bad payload is told before the copy is hashed
    refset = reference_set or ReferenceSet.open(local_path, manifest=manifest, kind=kind_class.name, workers=workers)
    decoded = _payload_of(payload, refset, max_count)
    if listing is None:
        listing = kind_class.scan(local_path)
    ignored = int(listing.extra.get("ignored", 0))
    if ignored or len(listing) != refset.n_ref:
        raise ReferenceSetError(f"{local_path}: {ignored or abs(refset.n_ref - len(listing))} of its files are not "
                                "images; a folder reference is every file below it, so they shift the positions "
                                "after them: move them out, or use a catalog")
    indices = decoded.indices.astype(np.int64)
    return VirtualSet(decoded, listing, indices, decoded.labels, indices, np.zeros(0, np.int64))


def _from_catalog(payload, local: str, catalog, max_missing: float, id_rule: str, kind: str, index, workers,
                  max_count, resolution: Resolution | None, arrays: bool) -> VirtualSet:
    if resolution is not None and (not isinstance(catalog, Catalog) or resolution.catalog.hex != catalog.hex):
        raise TypeError("resolution must be the copy resolved against catalog, given as a Catalog")
    if not isinstance(catalog, Catalog):
        if not Path(catalog).is_file():
            raise ReferenceSetError(f"{os.fspath(catalog)}: no such catalog file")
        catalog = Catalog.open(catalog)
    decoded = _payload_of(payload, catalog.reference, max_count)  # before the copy is listed
    if resolution is None:
        resolution = catalog.resolve(local, kind=kind, id=id_rule, content=False, index=index, workers=workers)
    if resolution.listing.kind.name == "npz" and not arrays:
        raise ExportError(f"{local}: the items of an .npz are arrays, not image files; export needs a folder, "
                          "tar shards or parquet files")
    indices = decoded.indices.astype(np.int64)
    local_of = np.asarray(resolution.local_of)[indices].astype(np.int64)
    held = local_of >= 0
    missing = indices[~held]
    if len(missing):
        fraction = len(missing) / len(indices)
        if fraction > max_missing:
            first = ", ".join(repr(catalog.ids[int(p)]) for p in missing[:_SHOWN])
            raise MissingItemsError(f"{len(missing)} of {len(indices)} selected items ({fraction:.2%}) are missing "
                                    f"from {local} (first: {first}), above max missing {max_missing:g}: restore "
                                    "them, or allow more (--max-missing) to go on without them",
                                    missing=len(missing), selected=len(indices), max_missing=max_missing,
                                    first_ids=[catalog.ids[int(p)] for p in missing[:_SHOWN]], reference=local)
    return VirtualSet(decoded, resolution.listing, indices[held], decoded.labels[held], local_of[held], missing,
                      catalog)


# -- writing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    """What :func:`write` wrote: the output, its format, the items, and the files made."""

    path: Path
    format: str
    count: int
    files: int
    missing: int
    empty_classes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "format": self.format, "count": self.count, "files": self.files,
                "missing": self.missing, "empty_classes": list(self.empty_classes)}


class _Namer:
    """Item names, unique case-insensitively (the module's rule)."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def name(self, base: str, position: int) -> str:
        name = safe_name(base)
        if name.casefold() in self._taken:
            name = f"{name}~{position}"
        self._taken.add(name.casefold())
        return name


def _names(vset: VirtualSet) -> list[str]:
    """Every item's exported name, assigned in payload order (so the same payload gives the same names)."""
    namer = _Namer()
    return [namer.name(vset.name_base(j), int(vset.positions[j])) for j in range(len(vset))]


def class_folders(vset: VirtualSet) -> list[str]:
    """The imagefolder class folder of each label (the module's rule)."""
    width = len(str(max(vset.n_classes - 1, 0)))
    named = vset.payload.class_names is not None
    return [safe_name(f"{label:0{width}d}" + (f"_{name}" if named else "")) for label, name in enumerate(vset.classes)]


def _extension(vset: VirtualSet, j: int, data: bytes | None) -> str:
    """Item *j*'s image extension: its file's, else its bytes' signature."""
    listed = vset.listing.names[int(vset.local[j])]
    if vset.kind != "tar" and is_image_name(listed):
        return listed.rpartition(".")[2]
    if data is None:
        data = vset.read(j)
    found = _signature_extension(data)
    if found is None:
        raise ExportError(f"{vset.where(j)}: the bytes are no image format plada knows (jpg, png, gif, bmp, tif, "
                          "webp, ppm/pgm/pbm); replace the item")
    return found


def _wds_extension(extension: str) -> str:
    lower = extension.lower()
    return "jpg" if lower == "jpeg" else lower


def check_new_output(out: PathLike) -> None:
    """ExportError unless *out* is free to become a new export (its folder exists, it does not)."""
    out = Path(out)
    if os.path.lexists(out):
        raise ExportError(f"{out}: exists; an export goes to a new file or folder (remove it or give another -o)")
    if not out.parent.is_dir():
        raise ExportError(f"{out}: folder {out.parent} does not exist")


class _NewFolder:
    """A folder written under a temporary sibling name and renamed into place when complete."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")

    def __enter__(self) -> Path:
        if os.path.lexists(self.tmp):
            shutil.rmtree(self.tmp)  # left by an earlier run of this process id
        self.tmp.mkdir()
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            # rename(2) would replace an empty folder made meanwhile: check once more first
            if os.path.lexists(self.out):
                shutil.rmtree(self.tmp, ignore_errors=True)
                raise ExportError(f"{self.out}: appeared while the export was written; nothing replaced")
            os.rename(self.tmp, self.out)
            for stale in _stale_temporaries(self.out):  # left by a killed export of the same name
                shutil.rmtree(stale, ignore_errors=True)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def write(vset: VirtualSet, out: PathLike, format: str, *, copy: bool = False,
          shard_samples: int = DEFAULT_SHARD_SAMPLES, seed: int = 0) -> ExportResult:
    """Write *vset* to the new file or folder *out* as *format* (one of
    :data:`FORMATS`; see the module's rules). *copy*: imagefolder copies the
    copy's files instead of linking them. *shard_samples*: samples per
    WebDataset shard; each shard holds a random subset of the items (*seed*)."""
    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}; use one of {', '.join(FORMATS)}")
    if isinstance(shard_samples, bool) or not isinstance(shard_samples, int) or shard_samples < 1:
        raise ExportError(f"shard_samples must be an integer >= 1, got {shard_samples!r}")
    out = Path(out)
    check_new_output(out)
    if format in ("csv", "jsonl"):
        from ._atomic import write_atomically

        write_atomically(out, lambda fh: _write_rows(vset, fh, format))
        return ExportResult(out, format, len(vset), 1, len(vset.missing_positions))
    writer = _FOLDER_WRITERS[format]
    with _NewFolder(out) as folder:
        files, empty = writer(vset, folder, copy=copy, shard_samples=shard_samples, seed=seed)
        info = {**vset.summary(), "format": format, "reference": os.path.abspath(vset.listing.root),
                "missing_ids": vset.missing_ids, "empty_classes": empty}
        if format == "imagefolder":
            info["class_folders"] = class_folders(vset)
        (folder / EXPORT_INFO).write_text(json.dumps(info, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return ExportResult(out, format, len(vset), files, len(vset.missing_positions), tuple(empty))


def _write_rows(vset: VirtualSet, fh, format: str) -> None:
    text = io.TextIOWrapper(fh, encoding="utf-8", newline="", write_through=False)
    if format == "csv":
        rows = csv.DictWriter(text, ROW_FIELDS, lineterminator="\n")
        rows.writeheader()
        for row in vset.rows():
            rows.writerow({k: "" if v is None else v for k, v in row.items()})
    else:
        for row in vset.rows():
            text.write(json.dumps(row, ensure_ascii=False) + "\n")
    text.flush()
    text.detach()  # the caller flushes and closes fh


def _empty_classes(vset: VirtualSet) -> list[str]:
    counts = np.bincount(vset.labels, minlength=vset.n_classes)
    return [vset.classes[c] for c in np.flatnonzero(counts == 0).tolist()]


def _reads(vset: VirtualSet, order: np.ndarray) -> Iterator[tuple[int, bytes]]:
    """(j, bytes of item j) in *order*; the copy's open file is closed whenever the
    next item lies in another (one descriptor at a time, one decoded row group)."""
    source = vset.listing.source
    current = None
    try:
        for j in order.tolist():
            held_in = int(source[vset.local[j]])
            if held_in != current:
                vset.listing.close()
                current = held_in
            yield j, vset.read(j)
    finally:
        vset.listing.close()


def _write_imagefolder(vset: VirtualSet, folder: Path, *, copy: bool, **_) -> tuple[int, list[str]]:
    folders = class_folders(vset)
    for name in folders:
        (folder / name).mkdir()
    # timm numbers only the folders that hold images; its --class-map file numbers them all
    (folder / CLASS_MAP).write_text("".join(f"{name}\n" for name in folders), encoding="utf-8")
    names = _names(vset)
    link = vset.kind == "folder" and not copy
    if link:
        for j in range(len(vset)):
            row = vset.row(j)
            target = folder / folders[int(vset.labels[j])] / f"{names[j]}.{_extension(vset, j, None)}"
            os.symlink(row["file"], target)
    else:
        for j, data in _reads(vset, vset.storage_order()):
            target = folder / folders[int(vset.labels[j])] / f"{names[j]}.{_extension(vset, j, data)}"
            with open(target, "xb") as fh:
                fh.write(data)
    return len(vset), _empty_classes(vset)


def _tar_member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644  # mtime 0, no owner: the same selection gives the same bytes
    archive.addfile(info, io.BytesIO(data))


def _write_wds(vset: VirtualSet, folder: Path, *, shard_samples: int, seed: int, **_) -> tuple[int, list[str]]:
    k = len(vset)
    n_shards = max(1, math.ceil(k / shard_samples))
    # Each item goes to a shard chosen by a seeded permutation, so every shard is a fair sample of
    # the classes; items are read in storage order, so the copy is read front to back.
    shard_of = np.empty(k, np.int64)
    permutation = list(range(k))
    random.Random(seed).shuffle(permutation)
    shard_of[permutation] = np.arange(k) // shard_samples
    counts = np.bincount(shard_of, minlength=n_shards).tolist()
    files = [f"train-{s:06d}.tar" for s in range(n_shards)]
    names = _names(vset)
    archives = [tarfile.open(folder / f, "w", format=tarfile.PAX_FORMAT, encoding="utf-8") for f in files]
    try:
        for j, data in _reads(vset, vset.storage_order()):
            archive = archives[int(shard_of[j])]
            key, label = names[j], int(vset.labels[j])
            _tar_member(archive, f"{key}.{_wds_extension(_extension(vset, j, data))}", data)
            _tar_member(archive, f"{key}.cls", str(label).encode("ascii"))
            meta = {"id": vset.id(j), "position": int(vset.positions[j]), "label": label,
                    "class_name": vset.class_names[label]}
            _tar_member(archive, f"{key}.json", json.dumps(meta, ensure_ascii=False).encode("utf-8"))
    finally:
        for archive in archives:
            archive.close()
    timm_info = {"name": "plada-export", "splits": {"train": {
        "name": "train", "num_samples": k, "filenames": files, "shard_lengths": counts}}}
    (folder / "_info.json").write_text(json.dumps(timm_info, indent=1) + "\n", encoding="utf-8")
    return n_shards, _empty_classes(vset)


def _write_parquet(vset: VirtualSet, folder: Path, **_) -> tuple[int, list[str]]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ExportError("the parquet format needs pyarrow: pip install 'plada[parquet]' (or pip install pyarrow)") \
            from None
    features = {"image": {"_type": "Image"}, "label": {"names": vset.classes, "_type": "ClassLabel"},
                "id": {"dtype": "string", "_type": "Value"}}
    schema = pa.schema([("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
                        ("label", pa.int64()), ("id", pa.string())],
                       metadata={"huggingface": json.dumps({"info": {"features": features}})})
    names = _names(vset)
    parts: list[Path] = []
    writer: Any = None
    batch: dict[str, list] = {"image": [], "label": [], "id": []}
    batch_bytes = file_bytes = 0

    def flush() -> None:
        nonlocal batch, batch_bytes
        if batch["label"]:
            writer.write_table(pa.table(batch, schema=schema))
        batch, batch_bytes = {"image": [], "label": [], "id": []}, 0

    try:
        for j, data in _reads(vset, vset.storage_order()):
            if writer is None:
                parts.append(folder / f".part-{len(parts):05d}.parquet")
                writer, file_bytes = pq.ParquetWriter(parts[-1], schema), 0
            batch["image"].append({"bytes": data, "path": f"{names[j]}.{_extension(vset, j, data)}"})
            batch["label"].append(int(vset.labels[j]))
            batch["id"].append(vset.id(j))
            batch_bytes += len(data)
            file_bytes += len(data)
            if batch_bytes >= DEFAULT_ROW_GROUP_BYTES:
                flush()
            if file_bytes >= DEFAULT_PARQUET_FILE_BYTES:
                flush()
                writer.close()
                writer = None
        if writer is None and not parts:  # an empty selection still gets its (empty) file
            parts.append(folder / f".part-{0:05d}.parquet")
            writer = pq.ParquetWriter(parts[-1], schema)
        if writer is not None:
            flush()
            writer.close()
            writer = None
    finally:
        if writer is not None:
            writer.close()
    for number, part in enumerate(parts):
        part.rename(folder / f"train-{number:05d}-of-{len(parts):05d}.parquet")
    return len(parts), _empty_classes(vset)


# format -> writer(vset, folder, copy=, shard_samples=, seed=) -> (files written, empty classes)
_FOLDER_WRITERS: dict[str, Callable[..., tuple[int, list[str]]]] = {
    "imagefolder": _write_imagefolder, "wds": _write_wds, "parquet": _write_parquet}
