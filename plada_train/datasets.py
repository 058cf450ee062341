"""Reference and target data as torch Datasets read lazily from disk.

Reference sets (``open_reference``), item i -> (float tensor, i), in the order
the reference fingerprint is computed over:

- ``builtin:pool`` / ``builtin:pool-far``: the offline miniature (in memory);
- ``X.npz`` with an ``x`` array (N, H, W) or (N, C, H, W); an uncompressed
  uint8 member is memory-mapped, not loaded;
- a folder of images: every visible regular file below it (names starting
  with "." and symbolic links are not part of it), in the canonical order of
  ``plada_codec.ReferenceSet.folder_files`` (spec/REFERENCE.md). A folder
  reference is those files, all of them: one that is not an image
  (``README.txt``) is an error, not skipped, because it is part of the
  fingerprint and would shift every index after it. Extensions (the part after
  the last ".", any case, the tar rule's list) are checked up front from the
  listing and the first image is decoded; a later file that fails to decode
  names itself when read;
- WebDataset-style tar shards (a ``.tar`` file, a folder of ``*.tar`` files, or
  a list of shard paths) in the order of ``plada_codec.tar_images``: item i is
  read by seeking to its member's data offset, so a client reads only the
  images it needs and scoring reads each shard front to back.

Why not the ``webdataset`` package: its ``WebDataset`` is an IterableDataset
that streams whole shards (no item i, no read of k chosen items), and indexed
access lives in the separate ``wids`` package, which re-scans every shard's
headers itself and groups members by its own rule. The offsets that
``tar_images`` already computes for the fingerprint make a reader of a few
lines over plain file reads exact and sufficient.

Target sets (``open_target``), item -> (float tensor, label): ``builtin:mnist``,
``X.npz`` (x_train, y_train, optional x_test, y_test), or an ImageFolder-style
folder (torchvision's ``ImageFolder``: one sub-folder per class, files with
torchvision's image extensions, others ignored as ImageFolder does; the test
split in ``ROOT/test`` or ``ROOT/val``, the training split in ``ROOT/train`` if
present, otherwise the class folders of ROOT itself).

Per-item storage is compact (ids in one bytes blob + offsets, numbers in numpy
arrays), so memory stays flat as N grows and forked DataLoader workers share it.
Everyday mistakes raise :class:`DataError`: one line with a fix hint.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

import plada_codec
from plada_codec import ReferenceSet

from ._tar_index import _Strings
from .preprocess import ImageSizeError, Preprocess

__all__ = [
    "DataError", "IMAGE_EXTENSIONS", "ReferenceImages", "ArrayImages", "FolderImages", "TarImages",
    "LabelledImages", "TargetData", "LabelledSubset", "open_reference", "open_target", "check_inputs",
]

# The image extensions of the tar rule (spec/REFERENCE.md), used for folders too.
IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "ppm", "pgm", "pbm", "bmp", "gif", "tif", "tiff", "webp"})
_SPLIT_NAMES = ("test", "val")


try:  # one except clause catches both: plada_train's package-wide DataError, when present, is the base
    from .errors import DataError as _PackageDataError
except ImportError:
    _PackageDataError = ValueError


class DataError(_PackageDataError):
    """An everyday data mistake (a ValueError): one line saying what is wrong and how to fix it.

    Raised in a DataLoader worker, torch re-raises it in the main process with
    the worker's traceback as the message; the constructor keeps the one line.
    """

    def __init__(self, message: str = "") -> None:
        if isinstance(message, str) and "\nOriginal Traceback" in message:
            last = message.rstrip().rsplit("\n", 1)[-1]
            message = last.split("DataError: ", 1)[-1] + " (in a DataLoader worker)"
        super().__init__(message)


def _extension(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[-1].lower() if "." in base else ""


def _decode(data: bytes, where: str):
    """Bytes of an image file -> a loaded PIL image, or DataError naming *where*."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{where}: not a readable image ({exc}); remove the file or replace it") from None
    return image


# -- reference sets ------------------------------------------------------------


class ReferenceImages(Dataset):
    """An ordered reference set; item i -> (input tensor, i).

    ``raw(i)`` gives the undecoded-by-model image (a PIL image for files, a uint8
    array (C, H, W) for arrays); ``set_preprocess`` picks the model's recipe
    (default: the SmallCNN's, at native size and channels).
    """

    kind = "reference"

    def __init__(self, source: str) -> None:
        self.source = source
        self._transform = None

    def __len__(self) -> int:
        raise NotImplementedError

    def raw(self, index: int):
        raise NotImplementedError

    def item_id(self, index: int) -> str:
        raise NotImplementedError

    def _fingerprint(self, manifest, rehash: bool) -> ReferenceSet:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if self._transform is None:
            self.set_preprocess(default_preprocess(self))
        return _apply(self._transform, self.raw(index), self, index), index

    def set_preprocess(self, preprocess: Preprocess, train: bool = False) -> ReferenceImages:
        """Use *preprocess* for items (checked against the first image first)."""
        self._transform = _checked_transform(preprocess, train, self)
        return self

    def reference_set(self) -> ReferenceSet:
        """The fingerprint of this set (the same as ``plada ref-hash``)."""
        return self._fingerprint(getattr(self, "_manifest", None), getattr(self, "_rehash", False))

    def describe(self) -> dict[str, Any]:
        """n, channels and image size (of the first item; ``uniform`` says whether
        all items are known to share it)."""
        first = _first_info(self)
        return {"source": self.source, "kind": self.kind, "n": len(self), "channels": first[0],
                "image_size": list(first[1]), "uniform": self._uniform_size()}

    def _uniform_size(self) -> bool | None:
        return None  # unknown without reading every file

    def index_nbytes(self) -> int:
        """Bytes held per set for locating items (ids, offsets): what grows with N."""
        return sum(v.nbytes() if isinstance(v, _Strings) else v.nbytes for v in vars(self).values()
                   if isinstance(v, (_Strings, np.ndarray)) and not isinstance(v, np.memmap))


def _channels_and_size(image) -> tuple[int, tuple[int, int]]:
    """(channels, (height, width)) of a PIL image or a (C, H, W) array."""
    if hasattr(image, "mode"):
        return (1 if image.mode in ("1", "L", "I", "F", "I;16") else 3), (image.height, image.width)
    return int(image.shape[0]), (int(image.shape[1]), int(image.shape[2]))


def _first_info(data) -> tuple[int, tuple[int, int], bool]:
    """(channels, (height, width), is a file image) of a data set's first item, read once."""
    info = getattr(data, "_first", None)
    if info is None:
        image = data.raw(0)
        info = (*_channels_and_size(image), hasattr(image, "mode"))
        data._first = info
    return info


def default_preprocess(data) -> Preprocess:
    """The SmallCNN's recipe at the data's own channels (RGB for any other count)."""
    channels = _first_info(data)[0]
    channels = channels if channels in (1, 3) else 3
    return Preprocess("smallcnn", "smallcnn", channels, mean=(0.5,) * channels, std=(0.5,) * channels)


class ArrayImages(ReferenceImages):
    """An in-memory or memory-mapped uint8 array (N, C, H, W); ids ``"0".."N-1"``,
    fingerprinted as ``ReferenceSet.from_array`` (spec 8.2)."""

    kind = "array"

    def __init__(self, images: np.ndarray, source: str = "array") -> None:
        super().__init__(source)
        if images.ndim == 3:
            images = images[:, None]
        if images.ndim != 4 or images.dtype != np.uint8:
            raise DataError(f"{source}: expected uint8 images (N, H, W) or (N, C, H, W), got "
                            f"{images.dtype} {images.shape}; convert the array to uint8")
        if len(images) == 0:
            raise DataError(f"{source}: no images; the reference set needs at least one")
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getstate__(self):
        # A memory-mapped array travels to spawned workers as its file position, not its bytes.
        state = self.__dict__.copy()
        if isinstance(self.images, np.memmap) and self.images.filename:
            state["images"] = ("memmap", self.images.filename, self.images.offset, self.images.shape,
                               self.images.dtype.str)
        return state

    def __setstate__(self, state):
        images = state["images"]
        if isinstance(images, tuple):
            _, filename, offset, shape, dtype = images
            state["images"] = np.memmap(filename, dtype=np.dtype(dtype), mode="r", offset=offset, shape=shape)
        self.__dict__.update(state)

    def raw(self, index: int) -> np.ndarray:
        return np.asarray(self.images[index])

    def item_id(self, index: int) -> str:
        return str(index)

    def _fingerprint(self, manifest, rehash) -> ReferenceSet:
        return ReferenceSet.from_array(self.images)

    def _uniform_size(self) -> bool:
        return True


class FolderImages(ReferenceImages):
    """Every regular file below *root*, in canonical order; each must be an image."""

    kind = "folder"

    def __init__(self, root: str | os.PathLike) -> None:
        root = Path(root)
        super().__init__(str(root))
        self.root = str(root)
        try:
            ids = ReferenceSet.folder_files(root)
        except plada_codec.ReferenceSetError as exc:
            if "no visible regular files" in str(exc):
                ids = []
            else:
                raise DataError(f"{exc}; rename or move the offending entry") from None
        if not ids:
            raise DataError(f"{root}: the folder holds no files; point the reference at a folder of images")
        for item_id in ids:
            if _extension(item_id) not in IMAGE_EXTENSIONS:
                raise DataError(f"{root}: {item_id!r} is not an image file (extensions: "
                                f"{' '.join(sorted(IMAGE_EXTENSIONS))}); a folder reference is every file "
                                f"below it: move that file out")
        self._ids = _Strings(ids)
        del ids
        _first_info(self)  # decode the first image now: a wrong folder fails before any work

    def __len__(self) -> int:
        return len(self._ids)

    def item_id(self, index: int) -> str:
        return self._ids[index]

    def read_bytes(self, index: int) -> bytes:
        path = os.path.join(self.root, self._ids[index])
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise DataError(f"{path}: cannot be read ({exc.strerror}); the folder changed since it was "
                            f"listed") from None

    def raw(self, index: int):
        return _decode(self.read_bytes(index), os.path.join(self.root, self._ids[index]))

    def _fingerprint(self, manifest, rehash) -> ReferenceSet:
        return ReferenceSet.open(self.root, manifest=manifest, rehash=rehash, kind="folder")


def _stat(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def _tar_shards(spec: str | os.PathLike | Sequence) -> list[str] | None:
    """The shard list a spec names, or None if it names no tar set: a list of
    paths, a ``.tar`` file, or a folder whose visible entries are all ``.tar``
    files (sorted by UTF-8 bytes of the name), as ``plada_codec`` reads them."""
    if isinstance(spec, (list, tuple)):
        return [os.fspath(s) for s in spec]
    path = Path(spec)
    if path.is_file() and path.name.endswith(".tar"):
        return [str(path)]
    if path.is_dir():
        visible = [e for e in os.scandir(path) if not e.name.startswith(".")]
        shards = [e.name for e in visible if e.name.endswith(".tar") and e.is_file(follow_symlinks=False)]
        if shards and len(shards) == len(visible):
            return [os.path.join(path, name) for name in sorted(shards)]
    return None


def _listing_workers() -> int:
    """Processes for listing tar headers: up to 8, the usable CPUs shared by
    torchrun's local ranks (each rank builds its own index)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    try:
        local_ranks = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:  # not set by torchrun: ignore it
        local_ranks = 1
    return max(1, min(8, cpus // local_ranks))


def _in_daemon() -> bool:
    """True in a DataLoader worker or any daemonic process: it may not start children."""
    import multiprocessing

    return multiprocessing.current_process().daemon


def _list_in_processes(func, shards: list[str], workers: int) -> list | None:
    """``[func(shard) for shard in shards]`` on *workers* processes, in shard
    order; None, with a RuntimeWarning, if the pool cannot run here (the caller
    then lists in-process).

    Linux forks, as torch's DataLoader does, so a worker costs milliseconds and
    re-imports nothing; elsewhere the platform's default (spawn) is used, which
    re-imports the main script. A shard's ReferenceSetError propagates."""
    import multiprocessing
    import sys
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
    workers = min(workers, len(shards))
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        listed = list(pool.map(func, shards))
    except (BrokenProcessPool, OSError) as exc:  # a worker could not start or was killed
        # If a later fork failed, the pool never started its manager thread, so the
        # workers already forked would wait for work forever and block interpreter exit.
        started = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=True, cancel_futures=True)
        for process in started:
            if process.is_alive():
                process.terminate()
                process.join(5)
        warnings.warn(f"listing tar shards in {workers} processes failed ({exc!r}); listing them here",
                      RuntimeWarning, stacklevel=4)  # -> _build_index -> TarImages() -> its caller
        return None
    except BaseException:  # a bad shard stops the listing: the shards not yet started are dropped
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return listed


class TarImages(ReferenceImages):
    """WebDataset-style tar shards; item i is read by offset from its shard."""

    kind = "tar"

    # Listing shards in other processes pays off once the set is large: a forked
    # worker starts in milliseconds, a 64 MiB shard of small images takes ~2 s to list.
    PARALLEL_INDEX_BYTES = 64 << 20

    def __init__(self, shards: Sequence[str], source: str | os.PathLike | Sequence | None = None,
                 index_cache: str | os.PathLike | None = None, index_workers: int | None = None) -> None:
        """*index_workers*: processes that list the shards' tar headers when
        there is no valid index cache (None: up to 8, one per usable CPU
        divided among torchrun's local ranks, once the shards hold more than
        PARALLEL_INDEX_BYTES together; 1: this process). A DataLoader worker
        or other daemonic process always lists in-process."""
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
            self._build_index(int(index_workers))
            if self.index_cache:
                self._save_index(stats)
        if not len(self._shard):
            raise DataError(f"{self.source}: the shards hold no image samples; write images as "
                            f"KEY.jpg/KEY.png members")
        self._files: dict[int, Any] = {}
        self._pid = os.getpid()
        _first_info(self)

    def _build_index(self, workers: int) -> None:
        # Each shard comes back as flat arrays, so the transient per-member objects
        # stay bounded by a shard (per worker); results arrive in shard order.
        from ._tar_index import shard_index

        shard_ids, offsets, sizes, ids, members = [], [], [], [], []
        try:
            listed = None
            if workers > 1 and len(self.shards) > 1 and not _in_daemon():
                listed = _list_in_processes(shard_index, self.shards, workers)
            if listed is None:
                listed = map(shard_index, self.shards)
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
        self._ids = _Strings.concatenate(ids)
        self._members = _Strings.concatenate(members)

    # The index cache: the member offsets of every shard, valid while each shard
    # keeps its name, size and mtime. It spares a client the scan of every tar
    # header (about 70 us per member), so opening costs one stat per shard.
    _INDEX_VERSION = 1

    def _load_index(self, stats: list[tuple[str, int, int]]) -> bool:
        try:
            with np.load(self.index_cache, allow_pickle=False) as data:
                if int(data["version"]) != self._INDEX_VERSION or data["stats"].tolist() != [
                        f"{name}\t{size}\t{mtime}" for name, size, mtime in stats]:
                    return False
                self._shard, self._offset, self._size = data["shard"], data["offset"], data["size"]
                self._ids = _Strings.from_arrays(data["ids_blob"], data["ids_offsets"])
                self._members = _Strings.from_arrays(data["members_blob"], data["members_offsets"])
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            return False
        return True

    def _save_index(self, stats: list[tuple[str, int, int]]) -> None:
        tmp = self.index_cache.with_name(f".{self.index_cache.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                np.savez(fh, version=self._INDEX_VERSION,
                         stats=np.array([f"{name}\t{size}\t{mtime}" for name, size, mtime in stats]),
                         shard=self._shard, offset=self._offset, size=self._size,
                         ids_blob=np.frombuffer(self._ids._blob, np.uint8), ids_offsets=self._ids._offsets,
                         members_blob=np.frombuffer(self._members._blob, np.uint8),
                         members_offsets=self._members._offsets)
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

    def _fingerprint(self, manifest, rehash) -> ReferenceSet:
        return ReferenceSet.open(self._spec, manifest=manifest, rehash=rehash)


def open_reference(spec: str | os.PathLike | Sequence, *, manifest=None, rehash: bool = False) -> ReferenceImages:
    """A reference set by spec (see the module docstring).

    *manifest* / *rehash* go to ``ReferenceSet.open`` when ``reference_set()``
    is asked for (a cached, verified fingerprint for folders and tar sets). For
    a tar set, *manifest* also names the member-offset index kept beside it
    (``<manifest>.index.npz``), so a later open reads no tar headers.
    """
    if isinstance(spec, (str, os.PathLike)) and str(spec) in ("builtin:pool", "builtin:pool-far"):
        from .data import load_miniature

        pool = load_miniature(include_in_domain=str(spec) == "builtin:pool").pool
        dataset: ReferenceImages = ArrayImages(pool.images, str(spec))
    elif (shards := _tar_shards(spec)) is not None:
        cache = os.fspath(manifest) + ".index.npz" if manifest is not None else None
        dataset = TarImages(shards, spec, index_cache=cache)
    else:
        path = Path(spec)
        if str(spec).startswith("builtin:"):
            raise DataError(f"unknown built-in reference {spec!r}; use builtin:pool or builtin:pool-far")
        if not path.exists():
            raise DataError(f"reference {str(spec)!r} not found: give builtin:pool, builtin:pool-far, a folder of "
                            f"images, .tar shards or a .npz file")
        if path.is_dir():
            dataset = FolderImages(path)
        elif path.suffix == ".npz":
            dataset = ArrayImages(_npz_array(path, "x", "reference"), str(path))
        else:
            raise DataError(f"{path}: not a reference set; use a folder of images, .tar shards, a .npz "
                            f"with an 'x' array, or builtin:pool")
    dataset._manifest, dataset._rehash = manifest, rehash
    return dataset


def _npz_array(path: Path, key: str, role: str, required: bool = True) -> np.ndarray | None:
    """One array of a .npz: memory-mapped if stored uncompressed as uint8, else
    loaded (and converted to uint8 by the ImageSet rules for images)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
            if key not in names:
                if not required:
                    return None
                raise DataError(f"{path}: no {key!r} array (found: {', '.join(names) or 'none'}); a {role} "
                                f".npz needs {key!r}")
            info = zf.getinfo(key + ".npy")
            mapped = _memmap_member(path, zf, info) if info.compress_type == zipfile.ZIP_STORED else None
    except zipfile.BadZipFile:
        raise DataError(f"{path}: not a .npz file (not a zip archive); save it with numpy.savez") from None
    if mapped is not None and (key.startswith("y") or mapped.dtype == np.uint8):
        return mapped
    with np.load(path, allow_pickle=False) as data:
        array = data[key]
    if key.startswith("y"):
        return array
    from .data import ImageSet

    return ImageSet(array, name=str(path)).images  # the existing float [0, 1] -> uint8 rule


def _memmap_member(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray | None:
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)
        # local file header: 26..28 name length, 28..30 extra length (little-endian)
        name_length, extra_length = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
        start = info.header_offset + 30 + name_length + extra_length
        fh.seek(start)
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            return None
        if fortran or dtype.hasobject:
            return None
        return np.memmap(path, dtype=dtype, mode="r", offset=fh.tell(), shape=shape)


# -- target sets ---------------------------------------------------------------


class LabelledImages(Dataset):
    """A labelled split; item -> (input tensor, label)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._transform = None

    def raw(self, index: int):
        raise NotImplementedError

    def label(self, index: int) -> int:
        raise NotImplementedError

    @property
    def labels(self) -> np.ndarray:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if self._transform is None:
            self.set_preprocess(default_preprocess(self))
        return _apply(self._transform, self.raw(index), self, index), self.label(index)

    def content_digest(self) -> str:
        """SHA-256 over the labels and every image's bytes, in order: identifies
        what a saved teacher was trained on (a path names a file, not its content)."""
        h = hashlib.sha256(b"plada-labelled-v1\0")
        h.update(np.ascontiguousarray(self.labels, dtype="<i8").tobytes())
        self._hash_images(h)
        return h.hexdigest()

    def _hash_images(self, h) -> None:
        raise NotImplementedError

    def set_preprocess(self, preprocess: Preprocess, train: bool = False) -> LabelledImages:
        self._transform = _checked_transform(preprocess, train, self)
        return self


class ArrayLabelled(LabelledImages):
    def __init__(self, images: np.ndarray, labels: np.ndarray, name: str) -> None:
        super().__init__(name)
        if images.ndim == 3:
            images = images[:, None]
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(images):
            raise DataError(f"{name}: {len(labels)} labels for {len(images)} images; give one label per image")
        if len(images) == 0:
            raise DataError(f"{name}: no images")
        if labels.dtype.kind not in "iu" or labels.min() < 0:
            raise DataError(f"{name}: labels must be integers >= 0 (class indices), got {labels.dtype}")
        self.images, self._labels = images, labels.astype(np.int64)

    def __len__(self) -> int:
        return len(self.images)

    def raw(self, index: int) -> np.ndarray:
        return np.asarray(self.images[index])

    def label(self, index: int) -> int:
        return int(self._labels[index])

    def _hash_images(self, h) -> None:
        h.update(f"{self.images.dtype.str}{tuple(self.images.shape)}".encode())
        step = max(1, (64 << 20) // max(1, self.images[:1].nbytes))  # ~64 MiB at a time (memory-mapped .npz)
        for start in range(0, len(self.images), step):
            h.update(np.ascontiguousarray(self.images[start:start + step]).tobytes())

    @property
    def labels(self) -> np.ndarray:
        return self._labels


class FolderLabelled(LabelledImages):
    """torchvision's ImageFolder (PIL loader, class sub-folders); classes fixed by the training split."""

    def __init__(self, root: Path, classes: list[str] | None = None) -> None:
        super().__init__(str(root))
        from ._compat import import_timm

        import_timm()  # makes torchvision importable on a CPU-only torch
        from torchvision.datasets import ImageFolder

        class _Folder(ImageFolder):
            def find_classes(self, directory):
                if classes is not None:
                    return classes, {c: i for i, c in enumerate(classes)}
                names = sorted(e.name for e in os.scandir(directory) if e.is_dir() and e.name not in
                               (*_SPLIT_NAMES, "train") and not e.name.startswith("."))
                if not names:
                    raise DataError(f"{directory}: no class folders; put each class's images in "
                                    f"{directory}/CLASS_NAME/")
                return names, {c: i for i, c in enumerate(names)}

        try:
            folder = _Folder(str(root), loader=_load_image, allow_empty=classes is not None)
        except FileNotFoundError as exc:
            raise DataError(f"{root}: {exc}; every class folder needs at least one image") from None
        self.classes = folder.classes
        self.loader = folder.loader
        self._paths = _Strings(p for p, _ in folder.samples)
        self._labels = np.fromiter((c for _, c in folder.samples), np.int64, len(folder.samples))
        if not len(self._labels):
            raise DataError(f"{root}: no images in the class folders")

    def __len__(self) -> int:
        return len(self._labels)

    def raw(self, index: int):
        return self.loader(self._paths[index])

    def _hash_images(self, h) -> None:
        for path in self._paths:
            relative = os.path.relpath(path, self.name).encode("utf-8", "surrogateescape")
            with open(path, "rb") as fh:
                data = fh.read()
            h.update(len(relative).to_bytes(4, "little") + relative + len(data).to_bytes(8, "little"))
            h.update(data)

    def label(self, index: int) -> int:
        return int(self._labels[index])

    @property
    def labels(self) -> np.ndarray:
        return self._labels


def _load_image(path: str):
    """ImageFolder's loader: a loaded PIL image in its own mode (channels are the Preprocess's job)."""
    with open(path, "rb") as fh:
        return _decode(fh.read(), path)


class TargetData:
    """A labelled target task: ``train`` and ``test`` (or None) splits."""

    def __init__(self, train: LabelledImages, test: LabelledImages | None, n_classes: int,
                 class_names: list[str] | None, source: str) -> None:
        self.train, self.test, self.source = train, test, source
        self.n_classes, self.class_names = n_classes, class_names
        self.channels, self.image_size, _ = _first_info(train)

    def set_preprocess(self, preprocess: Preprocess, augment: bool = False) -> TargetData:
        """*preprocess* for both splits; *augment* adds training augmentation to ``train``."""
        self.train.set_preprocess(preprocess, train=augment)
        if self.test is not None:
            self.test.set_preprocess(preprocess)
        return self

    def require_test(self) -> LabelledImages:
        if self.test is None:
            raise DataError(f"{self.source}: no test split; add x_test/y_test to the .npz or a test/ "
                            f"(or val/) folder of class folders")
        return self.test


def open_target(spec: str | os.PathLike) -> TargetData:
    """A labelled target by spec: builtin:mnist, a .npz, or an ImageFolder-style folder."""
    spec_s = str(spec)
    if spec_s == "builtin:mnist":
        from .data import load_miniature

        mini = load_miniature()
        train = ArrayLabelled(mini.target_train.images, mini.target_train.labels, "mnist-train")
        test = ArrayLabelled(mini.target_test.images, mini.target_test.labels, "mnist-test")
        return TargetData(train, test, 10, list(mini.class_names), spec_s)
    if spec_s.startswith("builtin:"):
        raise DataError(f"unknown built-in target {spec_s!r}; use builtin:mnist")
    path = Path(spec)
    if not path.exists():
        raise DataError(f"target {spec_s!r} not found: give builtin:mnist, a .npz file (x_train, y_train, "
                        f"x_test, y_test) or a folder of class folders")
    if path.is_dir():
        train_root = path / "train" if (path / "train").is_dir() else path
        train = FolderLabelled(train_root)
        test = None
        for name in _SPLIT_NAMES:
            if (path / name).is_dir():
                test = FolderLabelled(path / name, train.classes)
                break
        return TargetData(train, test, len(train.classes), list(train.classes), str(path))
    if path.suffix != ".npz":
        raise DataError(f"{path}: not a target; use a .npz (x_train, y_train, x_test, y_test), "
                        f"a folder of class folders, or builtin:mnist")
    x_train, y_train = _npz_array(path, "x_train", "target"), _npz_array(path, "y_train", "target")
    x_test, y_test = _npz_array(path, "x_test", "target", False), _npz_array(path, "y_test", "target", False)
    if (x_test is None) != (y_test is None):
        raise DataError(f"{path}: has {'x_test' if y_test is None else 'y_test'} without its partner; "
                        f"save both x_test and y_test")
    train = ArrayLabelled(x_train, y_train, f"{path}:train")
    test = ArrayLabelled(x_test, y_test, f"{path}:test") if x_test is not None else None
    n_classes = int(max(train.labels.max(), test.labels.max() if test is not None else 0)) + 1
    return TargetData(train, test, n_classes, None, str(path))


# -- the client's view ---------------------------------------------------------


class LabelledSubset(Dataset):
    """The k selected reference items with the payload's labels; reads only those
    k items. Item j -> (input tensor of reference item ``indices[j]``, ``labels[j]``)."""

    def __init__(self, reference: ReferenceImages, indices, labels) -> None:
        self.reference = reference
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        self.labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(self.indices) != len(self.labels):
            raise DataError(f"{len(self.indices)} indices but {len(self.labels)} labels")
        if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= len(reference)):
            raise DataError(f"an index is outside the reference set of {len(reference)} items; "
                            f"the payload was made for another reference")
        self._transform = reference._transform
        self._first = _first_info(reference)  # checks use the reference's first item: no extra read

    def __len__(self) -> int:
        return len(self.indices)

    def set_preprocess(self, preprocess: Preprocess, train: bool = False) -> LabelledSubset:
        self._transform = _checked_transform(preprocess, train, self) if len(self) else preprocess.transform(train)
        return self

    def raw(self, j: int):
        return self.reference.raw(int(self.indices[j]))

    def __getitem__(self, j: int) -> tuple[torch.Tensor, int]:
        if self._transform is None:
            self.set_preprocess(default_preprocess(self))
        index = int(self.indices[j])
        return _apply(self._transform, self.reference.raw(index), self.reference, index), int(self.labels[j])


# -- checks --------------------------------------------------------------------


def _name_of(data) -> str:
    return getattr(data, "source", None) or getattr(data, "name", None) or type(data).__name__


def _item_name(data, index: int) -> str:
    item_id = getattr(data, "item_id", None)
    if item_id is not None:
        return f"{_name_of(data)}: {item_id(index)}"
    paths = getattr(data, "_paths", None)
    return paths[index] if paths is not None else f"{_name_of(data)}: item {index}"


def _apply(transform, image, data, index: int) -> torch.Tensor:
    try:
        return transform(image)
    except ImageSizeError as exc:
        raise DataError(f"{_item_name(data, index)}: {exc}; pass --image-size to resize every image") from None


def _checked_transform(preprocess: Preprocess, train: bool, data):
    check_inputs(preprocess, data)
    return preprocess.transform(train, expect_size=_first_info(data)[1])


def check_inputs(preprocess: Preprocess, *datasets) -> None:
    """Cheap up-front checks of *datasets* against *preprocess* (decodes one item
    of each): channel counts convertible, and the same image size everywhere when
    the recipe does not resize. A later item of another size fails when read."""
    sizes = {}
    for data in datasets:
        name = _name_of(data)
        channels, size, is_file = _first_info(data)
        if not is_file and channels != preprocess.channels and channels not in (1, 3):
            raise DataError(f"{name}: images have {channels} channels, the model takes {preprocess.channels}; "
                            f"use grayscale (1) or RGB (3) images")
        sizes[name] = size
    if not preprocess.resize:
        wanted = preprocess.input_size
        distinct = set(sizes.values()) | ({tuple(wanted)} if wanted else set())
        if len(distinct) > 1:
            listing = ", ".join([f"{n}: {h}x{w}" for n, (h, w) in sizes.items()] +
                                ([f"the model's input: {wanted[0]}x{wanted[1]}"] if wanted else []))
            raise DataError(f"image sizes differ ({listing}) and {preprocess.model} does not resize; "
                            f"pass --image-size to resize every image to one size")
