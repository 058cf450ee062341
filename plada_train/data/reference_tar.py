"""Reference kind ``tar``: WebDataset-style shards, listed by the codec's one tar
lister (``plada_codec.kinds.tar``) in the order of ``plada_codec.tar_images``;
item i is read by its member's offset."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import plada_codec
from plada_codec import ReferenceSet
from plada_codec.kinds import Listing
from plada_codec.kinds.tar import TarKind

from ..preprocess import Preprocess
from .checks import DataError, _first_info
from .reference import ListingImages

__all__ = ["TarImages"]


class TarImages(ListingImages):
    """WebDataset-style tar shards; item i is read by offset from its shard."""

    kind = "tar"

    def __init__(self, shards: Sequence[str], source: str | os.PathLike | Sequence | None = None,
                 index_cache: str | os.PathLike | None = None, index_workers: int | None = None,
                 progress: bool = False, *, preprocess: Preprocess | None = None) -> None:
        """*index_cache*: a listing saved by an earlier open (``Listing.save``), used while
        every shard keeps its name, size and mtime, else listed again and rewritten.
        *index_workers*: processes that list the shards' headers when there is no valid
        cache (None: the codec's choice, ``plada_codec.kinds.tar.list_shards``: up to 8, one per
        usable CPU divided among torchrun's local ranks, once the shards are large; 1: this
        process). A DataLoader worker or other daemonic process always lists in-process. *progress*:
        a bar of the shards listed (standard error, a terminal only)."""
        self._spec = list(shards) if source is None or isinstance(source, (list, tuple)) else os.fspath(source)
        super().__init__(self._spec if isinstance(self._spec, str) else
                         (shards[0] if len(shards) == 1 else os.path.dirname(shards[0])))
        names: dict[str, str] = {}
        for shard in shards:
            if not os.path.isfile(shard):
                raise DataError(f"{shard}: no such tar shard; check the path")
            if os.path.basename(shard) in names:  # item ids are <shard file name>/<key>
                raise DataError(f"shards {names[os.path.basename(shard)]} and {shard} have the same file name; "
                                f"rename one so item ids stay unique")
            names[os.path.basename(shard)] = shard
        self.shards = [os.fspath(s) for s in shards]
        self.index_cache = Path(index_cache) if index_cache else None
        try:
            signature = TarKind.signature(self.shards)
            cached = Listing.load(self.index_cache, TarKind) if self.index_cache else None
            listing = cached
            if listing is not None and (listing.sources != self.shards or listing.signature != signature):
                listing = None  # a shard touched, added or moved: list what changed
            if listing is None:
                listing = self._list(index_workers, progress, cached)
                if self.index_cache:
                    try:
                        listing.save(self.index_cache)
                    except (OSError, plada_codec.ReferenceSetError):
                        pass  # a cache that cannot be written costs time, not correctness
        except plada_codec.ReferenceSetError as exc:
            raise DataError(f"{exc}; fix the shard or leave it out") from None
        self.listing = listing
        self._shard_names = [os.path.basename(s) for s in self.shards]
        _first_info(self)
        self._set_initial(preprocess)

    def _list(self, workers: int | None, progress: bool, previous: Listing | None) -> Listing:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(self.shards), desc=f"listing {len(self.shards)} tar shards", unit=" shards",
                   disable=None if progress else True, leave=False)
        try:
            return TarKind.scan(self.shards, workers=workers, progress=lambda done: bar.update(done - bar.n),
                                previous=previous)
        except plada_codec.ReferenceSetError as exc:
            if "hold no image samples" in str(exc):
                raise DataError(f"{self.source}: the shards hold no image samples; write images as "
                                f"KEY.jpg/KEY.png members") from None
            raise
        finally:
            bar.close()

    def item_id(self, index: int) -> str:
        """The manifest id: ``<shard file name>/<key>``."""
        return f"{self._shard_names[int(self.listing.source[index])]}/{self.listing.names[index]}"

    def _fingerprint(self, manifest, rehash, progress=False) -> ReferenceSet:
        return ReferenceSet.open(self._spec, manifest=manifest, rehash=rehash, progress=progress)
