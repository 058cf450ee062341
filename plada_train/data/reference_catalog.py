"""Reference kind ``catalog``: a local copy of any layout (folder tree, tar
shards in any order, parquet, ``.npz``) seen through a catalog
(``plada catalog build``, spec/REFERENCE.md section 8). Item positions are
catalog positions, so a payload made against the catalog means the same
images on every copy; items the copy lacks are reported, never guessed."""

from __future__ import annotations

import numpy as np

import plada_codec
from plada_codec import Catalog, ReferenceSet

from ..preprocess import Preprocess
from .checks import DataError, _channels_and_size, _decode
from .reference import ReferenceImages

__all__ = ["CatalogImages", "open_catalog", "open_catalog_reference"]


class CatalogImages(ReferenceImages):
    """A local copy resolved against a catalog.

    With ``present_only`` (the server's view) item i is the i-th catalog item
    the copy holds (``positions[i]`` is its catalog position); otherwise (the
    client's view) item i is catalog position i and reading one the copy
    lacks is a DataError naming it.
    """

    kind = "catalog"

    def __init__(self, catalog: Catalog, local: str, *, id_rule: str = "stem", kind: str = "auto",
                 present_only: bool = False, preprocess: Preprocess | None = None) -> None:
        super().__init__(str(local))
        self.catalog = catalog
        try:
            self.resolution = catalog.resolve(local, kind=kind, id=id_rule, content=False)
        except plada_codec.ReferenceSetError as exc:
            raise DataError(f"{exc}") from None
        held = self.resolution.present_positions()
        if not len(held):
            raise DataError(f"{local}: holds none of the catalog's {len(catalog)} items under the {id_rule!r} id rule "
                            f"(first catalog id {catalog.ids[0]!r}); check the copy, or the --id rule the catalog "
                            "was built with")
        self.positions: np.ndarray | None = held if present_only else None
        image = self._load(int(held[0]))
        self._first = (*_channels_and_size(image), hasattr(image, "mode"))
        self._set_initial(preprocess)

    def __len__(self) -> int:
        return len(self.positions) if self.positions is not None else len(self.catalog)

    def catalog_position(self, index: int) -> int:
        return int(self.positions[index]) if self.positions is not None else int(index)

    def item_id(self, index: int) -> str:
        return self.catalog.ids[self.catalog_position(index)]

    def _load(self, position: int):
        resolution = self.resolution
        if not resolution.holds(position):
            raise DataError(f"catalog item {self.catalog.ids[position]!r} is missing from {self.source}")
        listing = resolution.listing
        try:
            if listing.kind.name == "npz":  # array items, not image files
                item = np.asarray(listing.kind._item(listing, int(resolution.local_of[position])))
                return item[None] if item.ndim == 2 else item
            return _decode(resolution.read(position), resolution.where(position))
        except plada_codec.ReferenceSetError as exc:
            raise DataError(f"{exc}") from None

    def raw(self, index: int):
        return self._load(self.catalog_position(index))

    def _fingerprint(self, manifest, rehash, progress=False) -> ReferenceSet:
        return self.catalog.reference

    def describe(self) -> dict:
        out = super().describe()
        out.update(catalog=self.catalog.hex, present=self.resolution.present, missing=self.resolution.missing,
                   extra=self.resolution.extra)
        return out


def open_catalog(catalog: str | Catalog) -> Catalog:
    """The catalog at *catalog* (a path), or *catalog* itself when it is one already."""
    if isinstance(catalog, Catalog):
        return catalog
    try:
        return Catalog.open(catalog)
    except plada_codec.ReferenceSetError as exc:
        raise DataError(f"{exc}") from None


def open_catalog_reference(catalog: str | Catalog, local: str, *, id_rule: str = "stem", kind: str = "auto",
                           present_only: bool = False) -> CatalogImages:
    return CatalogImages(open_catalog(catalog), local, id_rule=id_rule, kind=kind, present_only=present_only)
