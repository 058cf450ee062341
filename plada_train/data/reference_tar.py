"""Reference kind ``tar``: WebDataset-style shards in the order of
``plada_codec.tar_images``; item i is read by seeking to its member's data."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import plada_codec
from plada_codec import PackedStrings, ReferenceSet, map_npz

from ..preprocess import Preprocess
from ._pool import _in_daemon, _list_in_processes, _listing_workers
from .checks import DataError, _decode, _first_info
from .reference import ReferenceImages

__all__ = ["TarImages"]


def _stat(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


class TarImages(ReferenceImages):
    """WebDataset-style tar shards; item i is read by offset from its shard."""

    kind = "tar"

    # Listing shards in other processes pays off once the set is large: a forked
    # worker starts in milliseconds, a 64 MiB shard of small images takes ~2 s to list.
    PARALLEL_INDEX_BYTES = 64 << 20

    def __init__(self, shards: Sequence[str], source: str | os.PathLike | Sequence | None = None,
                 index_cache: str | os.PathLike | None = None, index_workers: int | None = None,
                 progress: bool = False, *, preprocess: Preprocess | None = None) -> None:
        """*index_workers*: processes that list the shards' tar headers when
        there is no valid index cache (None: up to 8, one per usable CPU
        divided among torchrun's local ranks, once the shards hold more than
        PARALLEL_INDEX_BYTES together; 1: this process). A DataLoader worker
        or other daemonic process always lists in-process. *progress*: a bar
        of the shards listed (standard error, a terminal only)."""
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
        self.shards = list(shards)
        self.index_cache = Path(index_cache) if index_cache else None
        stats = [(os.path.basename(s), *_stat(s)) for s in self.shards]
        if not (self.index_cache and self._load_index(stats)):
            if index_workers is None:
                large = sum(size for _, size, _ in stats) > self.PARALLEL_INDEX_BYTES
                index_workers = _listing_workers() if large else 1
            self._build_index(int(index_workers), progress)
            if self.index_cache:
                self._save_index(stats)
        if not len(self._shard):
            raise DataError(f"{self.source}: the shards hold no image samples; write images as "
                            f"KEY.jpg/KEY.png members")
        self._files: dict[int, Any] = {}
        self._pid = os.getpid()
        _first_info(self)
        self._set_initial(preprocess)

    def _build_index(self, workers: int, progress: bool = False) -> None:
        # Each shard comes back as flat arrays, so the transient per-member objects
        # stay bounded by a shard (per worker); results arrive in shard order.
        from .._tar_index import shard_index

        shard_ids, offsets, sizes, ids, members = [], [], [], [], []
        try:
            listed = None
            if workers > 1 and len(self.shards) > 1 and not _in_daemon():
                listed = _list_in_processes(shard_index, self.shards, workers)
            if listed is None:
                listed = map(shard_index, self.shards)
            from tqdm.auto import tqdm

            listed = tqdm(listed, total=len(self.shards), desc=f"listing {len(self.shards)} tar shards",
                          unit=" shards", disable=None if progress else True, leave=False)
            for number, (offset, size, shard_ids_, shard_members) in enumerate(listed):
                shard_ids.append(np.full(len(offset), number, np.int32))
                offsets.append(offset)
                sizes.append(size)
                ids.append(shard_ids_)
                members.append(shard_members)
        except plada_codec.ReferenceSetError as exc:
            raise DataError(f"{exc}; fix the shard or leave it out") from None
        self._shard = np.concatenate(shard_ids)
        self._offset = np.concatenate(offsets)
        self._size = np.concatenate(sizes)
        self._ids = PackedStrings.concatenate(ids)
        self._members = PackedStrings.concatenate(members)

    # The index cache: the member offsets of every shard, valid while each shard
    # keeps its name, size and mtime. It spares a client the scan of every tar
    # header (about 70 us per member), so opening costs one stat per shard.
    _INDEX_VERSION = 1

    def _load_index(self, stats: list[tuple[str, int, int]]) -> bool:
        # Memory-mapped: ranks that open the same cache share its pages.
        try:
            data = map_npz(self.index_cache)
            if int(data["version"]) != self._INDEX_VERSION or data["stats"].tolist() != [
                    f"{name}\t{size}\t{mtime}" for name, size, mtime in stats]:
                return False
            n = len(data["shard"])
            if not (len(data["offset"]) == len(data["size"]) == n == len(data["ids_offsets"]) - 1
                    == len(data["members_offsets"]) - 1):
                return False
            self._shard, self._offset, self._size = data["shard"], data["offset"], data["size"]
            self._ids = PackedStrings(data["ids_blob"], data["ids_offsets"])
            self._members = PackedStrings(data["members_blob"], data["members_offsets"])
        except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile):
            return False
        return True

    def _save_index(self, stats: list[tuple[str, int, int]]) -> None:
        tmp = self.index_cache.with_name(f".{self.index_cache.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                np.savez(fh, version=self._INDEX_VERSION,
                         stats=np.array([f"{name}\t{size}\t{mtime}" for name, size, mtime in stats]),
                         shard=self._shard, offset=self._offset, size=self._size,
                         ids_blob=np.frombuffer(self._ids.blob, np.uint8), ids_offsets=self._ids.offsets,
                         members_blob=np.frombuffer(self._members.blob, np.uint8),
                         members_offsets=self._members.offsets)
            os.replace(tmp, self.index_cache)
        except OSError:
            tmp.unlink(missing_ok=True)  # a cache that cannot be written costs time, not correctness

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_files"] = {}
        return state

    def __len__(self) -> int:
        return len(self._ids)

    def item_id(self, index: int) -> str:
        return self._ids[index]

    def read_bytes(self, index: int) -> bytes:
        if self._pid != os.getpid():  # a forked DataLoader worker: its own file handles
            self._files, self._pid = {}, os.getpid()
        shard = int(self._shard[index])
        fh = self._files.get(shard)
        if fh is None:
            fh = self._files[shard] = open(self.shards[shard], "rb")
        fh.seek(int(self._offset[index]))
        data = fh.read(int(self._size[index]))
        if len(data) != self._size[index]:
            raise DataError(f"{self.shards[shard]}: truncated at member {self._members[index]!r}; "
                            f"the shard changed since it was indexed")
        return data

    def raw(self, index: int):
        return _decode(self.read_bytes(index), f"{self.shards[int(self._shard[index])]}:{self._members[index]}")

    def close(self) -> None:
        for fh in self._files.values():
            fh.close()
        self._files = {}

    def _fingerprint(self, manifest, rehash, progress=False) -> ReferenceSet:
        return ReferenceSet.open(self._spec, manifest=manifest, rehash=rehash, progress=progress)
