"""One registry of reference kinds: which Dataset reads a reference spec.

What a path *is* (tar shards, parquet, an ``.npz``, a folder) is decided by
``plada_codec.kinds.detect_kind``, the codec's normative listing rules; this
module only maps each kind to its Dataset (one file each), as timm's
``reader_factory`` maps a prefix to a reader.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import plada_codec
from plada_codec.kinds import detect_kind

from .checks import DataError
from .reference import ReferenceImages

__all__ = ["open_reference", "REFERENCE_KINDS", "BUILTIN_REFERENCES"]

BUILTIN_REFERENCES = ("builtin:pool", "builtin:pool-far")


def _open_builtin(spec: str, manifest, shared_index=None, progress=False) -> ReferenceImages:
    from .builtin import load_miniature
    from .reference_array import ArrayImages

    pool = load_miniature(include_in_domain=spec == "builtin:pool").pool
    return ArrayImages(pool.images, spec)


def _open_tar(spec, manifest, shared_index=None, progress=False) -> ReferenceImages:
    from .reference_tar import TarImages

    shards = [os.fspath(s) for s in spec] if isinstance(spec, (list, tuple)) else plada_codec.tar_shards(spec)
    cache = os.fspath(manifest) + ".index.npz" if manifest is not None else shared_index
    return TarImages(shards, spec, index_cache=cache, progress=progress)


def _open_npz(spec, manifest, shared_index=None, progress=False) -> ReferenceImages:
    from .npz import _npz_array
    from .reference_array import ArrayImages

    return ArrayImages(_npz_array(Path(spec), "x", "reference"), str(spec))


def _open_folder(spec, manifest, shared_index=None, progress=False) -> ReferenceImages:
    from .reference_folder import FolderImages

    return FolderImages(spec, shared_index=shared_index, progress=progress)


# kind (plada_codec.kinds) -> opener(spec, manifest, shared_index, progress=). A layout with no
# manifest of its own (parquet, a datasets copy, any kind added later) is read through a catalog.
REFERENCE_KINDS: dict[str, Callable[..., ReferenceImages]] = {
    "tar": _open_tar,
    "npz": _open_npz,
    "folder": _open_folder,
}


def _catalog_only(spec, kind: str) -> DataError:
    return DataError(f"{spec}: a {kind} reference has no manifest of its own; build a catalog of it once "
                     f"(plada catalog build {spec} -o ref.plcat) and pass --catalog ref.plcat")


def open_reference(spec: str | os.PathLike | Sequence, *, manifest=None, rehash: bool = False,
                   catalog: str | os.PathLike | plada_codec.Catalog | None = None, id_rule: str = "stem",
                   kind: str = "auto",
                   present_only: bool = False, shared_index: str | os.PathLike | None = None,
                   progress: bool = False, preprocess=None) -> ReferenceImages:
    """A reference set by spec: ``builtin:pool``, ``builtin:pool-far``, an
    ``.npz`` with an ``x`` array, a folder of images, ``.tar`` shards (a file,
    a folder of shards, or a list), or, with *catalog*, a local copy of any
    layout resolved against that catalog (see :class:`CatalogImages`).

    *manifest* / *rehash* go to ``ReferenceSet.open`` when ``reference_set()``
    is asked for. For a tar set, *manifest* also names the member-offset index
    kept beside it (``<manifest>.index.npz``), so a later open reads no tar
    headers.

    *shared_index* names a file through which the processes of one machine
    share a folder's or tar set's listing: the first to open the set writes
    it there, the others memory-map it (``plada-train`` passes it under
    torchrun). *progress*: a bar while a folder or tar set is listed.
    *preprocess* (a :class:`~plada_train.preprocess.Preprocess`) is the
    items' recipe, checked against the first image before this returns.
    """
    if catalog is not None:
        from .reference_catalog import open_catalog_reference

        if isinstance(spec, (list, tuple)) or str(spec).startswith("builtin:"):
            raise DataError("with --catalog, --reference names the local copy: a folder, tar shards, parquet "
                            "files or an .npz")
        if not Path(spec).exists():
            raise DataError(f"reference {str(spec)!r} not found: give the local copy of the catalog's images")
        dataset = open_catalog_reference(catalog if isinstance(catalog, plada_codec.Catalog) else os.fspath(catalog),
                                         os.fspath(spec), id_rule=id_rule, kind=kind, present_only=present_only)
        return dataset.set_preprocess(preprocess) if preprocess is not None else dataset
    if isinstance(spec, (list, tuple)):
        dataset = _open_tar(spec, manifest, shared_index)
    elif str(spec) in BUILTIN_REFERENCES:
        dataset = _open_builtin(str(spec), manifest)
    else:
        if str(spec).startswith("builtin:"):
            raise DataError(f"unknown built-in reference {spec!r}; use builtin:pool or builtin:pool-far")
        path = Path(spec)
        if not path.exists():
            raise DataError(f"reference {str(spec)!r} not found: give builtin:pool, builtin:pool-far, a folder of "
                            f"images, .tar shards or a .npz file")
        try:
            found = detect_kind(path, kind).name
        except plada_codec.ReferenceSetError as exc:
            raise DataError(f"{exc}; use a folder of images, .tar shards, a .npz with an 'x' array, or "
                            "builtin:pool (parquet files and datasets copies with --catalog)") from None
        if found not in REFERENCE_KINDS:
            raise _catalog_only(spec, found)
        dataset = REFERENCE_KINDS[found](spec, manifest, shared_index, progress=progress)
    dataset._manifest, dataset._rehash = manifest, rehash
    return dataset.set_preprocess(preprocess) if preprocess is not None else dataset
