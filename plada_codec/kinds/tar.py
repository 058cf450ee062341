"""WebDataset-style tar shards: the one home of the tar rules and the one tar lister.

The rules are spec/REFERENCE.md section 3.4: shards in the order given (a
folder: its ``*.tar`` files sorted by name); within a shard, regular members in
archive order; a *sample* is the run of adjacent members sharing a *key* (the
member name up to the first ``.`` of its base name) and holds exactly one image
member. Manifests (``<shard name>/<key>`` ids), catalogs (the key alone, so
shuffled shards of the same images give the same names) and training all list
shards through :func:`list_shards`.

Listing walks the 512-byte headers directly, in C where the core is built
(``csrc/plada_tar.c``, about 50x cheaper than :mod:`tarfile`, which builds a
``TarInfo`` object a member) and in Python otherwise (a memory map, a slice and
an ``int(..., 8)`` a member, about 7x cheaper). Anything a walk does not know
for sure (a damaged or cut header, pax ``size`` or sparse records, old GNU
sparse members, an unknown extension header, a broken sample rule) sends that
shard to the :mod:`tarfile` walk, whose result and errors are the reference:
the fast walks are exact on what they accept and never guess. Shards are listed
in worker processes once a set is large (:func:`list_shards`).
"""

from __future__ import annotations

import mmap
import multiprocessing
import os
import re
import sys
import tarfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .._errors import ReferenceSetError
from .._ids import check_id, check_ids, path_argument, shown
from ._base import Kind, Listing, PackedStrings, PathLike, file_signature, holds_only, read_exactly
from ._shard import ShardListing
from ._tar_c import list_shard_c
from .images import _ASCII_LOWER, IMAGE_EXTENSIONS

__all__ = ["TarKind", "TarImage", "ShardListing", "tar_shards", "tar_images", "list_shard", "list_shards",
           "listing_workers", "image_extension"]

_BLOCK = 512
_ZERO_BLOCK = bytes(_BLOCK)
# Listing shards in other processes pays off once a set is large: a forked worker
# starts in milliseconds, a 64 MiB shard of small images takes ~0.2 s to walk.
PARALLEL_LISTING_BYTES = 64 << 20


class TarImage(NamedTuple):
    """One image of a tar reference set: ``open(shard).seek(offset); read(size)``
    gives its bytes without scanning the tar."""

    shard: str
    """Path of the shard file, as given."""
    key: str
    """Sample key: the member path up to the first "." of its base name."""
    member: str
    """Name of the image member inside the shard."""
    offset: int
    """Byte offset of the member's data in the shard file."""
    size: int
    """Bytes of image data."""

    @property
    def item_id(self) -> str:
        """The manifest id: ``<shard file name>/<key>``."""
        return f"{os.path.basename(self.shard)}/{self.key}"


# -- shards ---------------------------------------------------------------------


def tar_shards(source: PathLike | Sequence[PathLike], *, manifest: bool = True) -> list[str]:
    """The shard files of a tar reference set, in canonical order.

    *source* is a list of shard paths (kept in the given order), one ``.tar``
    file, or a folder, meaning its visible regular ``*.tar`` files sorted by the
    UTF-8 bytes of their names (not recursive). With *manifest* the shard names
    obey section 3.4 rule 2 (they are part of manifest ids: id rules, no two
    alike); a catalog's ids hold no shard name, so ``manifest=False`` checks none.
    """
    if isinstance(source, (bytes, str, os.PathLike)) or not isinstance(source, Iterable):
        source = path_argument(source, "tar shards")
    else:
        source = [path_argument(s, "tar shard") for s in source]
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            try:
                names = sorted(
                    entry.name for entry in os.scandir(path)
                    if entry.name.endswith(".tar") and not entry.name.startswith(".")
                    and entry.is_file(follow_symlinks=False)
                )
            except OSError as exc:
                raise ReferenceSetError(f"{path}: cannot list ({exc.strerror or exc})") from exc
            for name in names if manifest else ():
                check_id(name, str(path))
            if not names:
                raise ReferenceSetError(f"{path}: holds no .tar shards")
            return [os.path.join(path, name) for name in names]
        shards = [os.fspath(source)]
    else:
        shards = [os.fspath(s) for s in source]
    if not shards:
        raise ReferenceSetError("a tar reference set needs at least one shard")
    seen: dict[str, str] = {}
    for shard in shards:
        name = os.path.basename(shard)
        if manifest:
            check_id(name, shard)
        if manifest and name in seen:
            raise ReferenceSetError(
                f"shards {seen[name]} and {shard} have the same file name {name!r}: "
                "item ids (<shard name>/<key>) would collide"
            )
        seen[name] = shard
        if not os.path.isfile(shard):
            raise ReferenceSetError(f"{shard}: no such tar shard")
    return shards


# -- members: the fast header walk and the tarfile walk ----------------------------


class _Unsure(Exception):
    """The fast walk met something it does not decide itself: ask tarfile."""


# A member as the walks report it: (name, data offset, size, sparse).
_Member = tuple[str, int, int, bool]
_PAX_RECORD = re.compile(rb"(\d+) ([^=]+)=")
# Header types the walk knows (tarfile's SUPPORTED_TYPES less sparse and Solaris pax).
_REGULAR = frozenset(b"07\0")
_NO_DATA = frozenset(b"123456")  # links, devices, folders, FIFOs: tarfile skips no data for them
_GNU_NAMES = frozenset(b"LK")


def _nts(field: bytes) -> str:
    """A NUL-terminated header string, as tarfile decodes it (UTF-8, surrogateescape)."""
    end = field.find(b"\0")
    return (field if end < 0 else field[:end]).decode("utf-8", "surrogateescape")


def _number(field: bytes) -> int:
    """A numeric header field: octal text, or base-256 when its first byte is 0x80 or 0xff."""
    if field[0] in (0o200, 0o377):
        value = int.from_bytes(field[1:], "big")
        return value - (256 ** (len(field) - 1)) if field[0] == 0o377 else value
    end = field.find(b"\0")
    text = (field if end < 0 else field[:end]).strip()
    try:
        return int(text or b"0", 8)
    except ValueError:
        raise _Unsure from None


def _fast_members(shard: str) -> list[_Member]:
    """The regular members of *shard* by a direct header walk; _Unsure where tarfile must decide."""
    with open(shard, "rb") as fh:
        length = os.fstat(fh.fileno()).st_size
        if length < _BLOCK:
            raise _Unsure
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _walk(data, length)


def _walk(data: mmap.mmap, length: int) -> list[_Member]:
    """The members of a shard. Headers are checked a few thousand at a time
    (:func:`_check_checksums`): a sum of 512 bytes in a Python loop would cost more
    than the rest of the walk."""
    members: list[_Member] = []
    headers: list[bytes] = []
    offset = 0
    long_name: str | None = None
    pax_path: str | None = None
    global_path: str | None = None
    while True:
        if offset + _BLOCK > length:
            raise _Unsure  # cut or missing end marker: tarfile's walk words the error
        header = data[offset:offset + _BLOCK]
        if header == _ZERO_BLOCK:
            _check_checksums(headers)
            return members
        headers.append(header)
        if len(headers) == _CHECK_BATCH:
            _check_checksums(headers)
            headers = []
        kind = header[156]
        size = _number(header[124:136])
        start = offset + _BLOCK
        end = start + ((size + _BLOCK - 1) & -_BLOCK)
        if size < 0 or end > length:
            raise _Unsure
        if kind == 0 and header[:100].split(b"\0", 1)[0].endswith(b"/"):
            # An old-style regular member whose own name field ends in "/" is a folder to
            # tarfile, which then skips no data: leave that reading to it.
            raise _Unsure
        if kind in _REGULAR:
            if pax_path is not None:
                name = pax_path
            elif long_name is not None:
                name = long_name
            else:
                name = _nts(header[0:100])
                if header[345]:  # a ustar prefix (tarfile joins it for every non-GNU type)
                    prefix = _nts(header[345:500])
                    name = prefix + "/" + name
            members.append((name, start, size, False))
            offset = end
        elif kind in _NO_DATA:
            offset = start
        elif kind in _GNU_NAMES:
            if kind == 76:  # "L": the next member's name
                long_name = _nts(data[start:start + size])
            offset = end
            continue
        elif kind == 120 or kind == 103:  # "x", "g": pax records
            path = _pax_path(data[start:start + size])
            if kind == 103:
                global_path = path if path is not None else global_path
            else:
                # tarfile applies global records only through a following local header.
                pax_path = path if path is not None else global_path
            offset = end
            continue
        else:
            raise _Unsure  # old GNU sparse, Solaris pax, vendor types
        long_name = pax_path = None


_CHECK_BATCH = 4096


def _check_checksums(headers: list[bytes]) -> None:
    """_Unsure unless every header's stored checksum is plain octal (spaces, digits,
    spaces, up to a NUL) equal to tarfile's unsigned or signed sum of the header."""
    if not headers:
        return
    rows = np.frombuffer(b"".join(headers), np.uint8).reshape(len(headers), _BLOCK)
    field = rows[:, 148:156].astype(np.int64)
    unsigned = 256 + rows.sum(axis=1, dtype=np.int64) - field.sum(axis=1)
    signed = unsigned - 256 * ((rows > 127).sum(axis=1, dtype=np.int64) - (field > 127).sum(axis=1))
    before_nul = np.cumsum(field == 0, axis=1) == 0
    digit = before_nul & (field >= 48) & (field <= 55)
    space = before_nul & (field == 32)
    digits_before = np.cumsum(digit, axis=1) - digit
    digits_after = np.cumsum(digit[:, ::-1], axis=1)[:, ::-1] - digit
    if np.any(before_nul & ~digit & ~space) or np.any(space & (digits_before > 0) & (digits_after > 0)):
        raise _Unsure
    stored = np.zeros(len(rows), np.int64)
    for column in range(8):
        stored = np.where(digit[:, column], stored * 8 + field[:, column] - 48, stored)
    if np.any((stored != unsigned) & (stored != signed)):
        raise _Unsure


def _pax_path(records: bytes) -> str | None:
    """The ``path`` of a pax header block; _Unsure for records that change sizes or
    offsets (``size``, sparse maps), a character set other than UTF-8, or malformed ones."""
    path = None
    position = 0
    while position < len(records):
        match = _PAX_RECORD.match(records, position)
        if match is None:
            if not records[position:].strip(b"\0"):
                break  # padding
            raise _Unsure
        record_length = int(match.group(1))
        keyword = match.group(2)
        value = records[match.end():position + record_length - 1]
        if record_length < 1 or records[position + record_length - 1:position + record_length] != b"\n":
            raise _Unsure
        if keyword == b"path":
            path = value.decode("utf-8", "surrogateescape")
        elif keyword in (b"size", b"hdrcharset") or keyword.startswith(b"GNU.sparse"):
            raise _Unsure
        position += record_length
    return path


def _tarfile_members(shard: str) -> list[_Member]:
    """The regular members of *shard* by :mod:`tarfile`, checking where it stopped."""
    where = shown(shard)
    members: list[_Member] = []
    try:
        with tarfile.open(shard, mode="r:") as archive:
            for info in archive:
                if info.isreg():
                    members.append((info.name, info.offset_data, info.size, info.sparse is not None))
            _check_archive_end(archive, where)
    except tarfile.ReadError as exc:
        raise ReferenceSetError(f"{where}: not a readable uncompressed tar file ({exc})") from exc
    except (tarfile.TarError, EOFError, ValueError, OverflowError) as exc:  # a size past any offset: ValueError
        raise ReferenceSetError(f"{where}: damaged tar file ({exc})") from exc
    except OSError as exc:
        raise ReferenceSetError(f"{where}: cannot read ({exc.strerror or exc})") from exc
    return members


def _check_archive_end(archive: tarfile.TarFile, where: str) -> None:
    """Iteration stopped where the next header would start: it must be the
    end-of-archive marker, a 512-byte block of zeros. tarfile also stops, silently,
    at a header cut short, a damaged header or the end of the file, which would
    read a truncated shard as a shorter one."""
    offset = archive.offset
    fileobj = archive.fileobj
    assert fileobj is not None
    fileobj.seek(offset)
    block = fileobj.read(tarfile.BLOCKSIZE)
    if len(block) == tarfile.BLOCKSIZE and not any(block):
        return
    if not block:
        problem = "ends without the end-of-archive marker (two blocks of zeros): cut after a member?"
    elif len(block) < tarfile.BLOCKSIZE:
        problem = f"is cut inside a member header ({len(block)} of its {tarfile.BLOCKSIZE} bytes)"
    else:
        problem = "holds a damaged member header"
    members = len(getattr(archive, "members", ()))  # headers read: every member before the stop
    raise ReferenceSetError(f"{where}: truncated or damaged tar shard: at byte {offset}, after {members} "
                            f"member{'s' if members != 1 else ''}, it {problem}")


# -- samples ----------------------------------------------------------------------


def image_extension(base: str) -> int:
    """How a member's base name names an image (rule 6): 2 when its whole extension
    (after the first ``.``) is an image extension, 1 when only its last part
    (after the last ``.``) is, 0 otherwise. ASCII case is ignored."""
    return _extension_strength(base.partition(".")[2])


def _extension_strength(extension: str) -> int:
    extension = extension.translate(_ASCII_LOWER)
    if extension in IMAGE_EXTENSIONS:
        return 2
    return 1 if extension.rpartition(".")[2] in IMAGE_EXTENSIONS else 0


def _samples(members: list[_Member], shard: str) -> ShardListing:
    """Group members into samples by the rules of section 3.4."""
    where = shown(shard)
    keys: list[str] = []
    names: list[str] = []
    offsets: list[int] = []
    sizes: list[int] = []
    seen: set[str] = set()
    strengths: dict[str, int] = {}  # a shard repeats a handful of extensions
    key: str | None = None
    found: list[tuple[int, _Member]] = []  # this sample's image candidates: (strength, member)

    def finish() -> None:
        if len(found) == 1:
            chosen = [found[0][1]]
        else:
            best = max((strength for strength, _ in found), default=0)
            chosen = [m for strength, m in found if strength == best]
        if not chosen:
            raise ReferenceSetError(f"{where}: sample {key!r} has no image member "
                                    f"(one of .{', .'.join(sorted(IMAGE_EXTENSIONS))})")
        if len(chosen) > 1:
            raise ReferenceSetError(f"{where}: sample {key!r} has two image members "
                                    f"({chosen[0][0]!r}, {chosen[1][0]!r})")
        name, offset, size, sparse = chosen[0]
        if sparse:
            raise ReferenceSetError(f"{where}: image member {name!r} is a sparse file")
        keys.append(key)  # type: ignore[arg-type]
        names.append(name)
        offsets.append(offset)
        sizes.append(size)

    for member in members:
        name = member[0]
        slash = name.rfind("/") + 1
        dot = name.find(".", slash)
        if dot == slash or slash == len(name):
            continue  # a hidden member, or a folder entry written as a file
        if dot < 0:
            member_key, extension = name, ""
        else:
            member_key, extension = name[:dot], name[dot + 1:]
        if member_key != key:
            if key is not None:
                finish()
            if member_key in seen:
                raise ReferenceSetError(f"{where}: sample key {member_key!r} appears again after other "
                                        "samples; a sample's members must be adjacent")
            seen.add(member_key)
            key, found = member_key, []
        strength = strengths.get(extension)
        if strength is None:
            strength = strengths[extension] = _extension_strength(extension)
        if strength:
            found.append((strength, member))
    if key is not None:
        finish()
    # Keys are not checked here: a manifest checks its ids (<shard name>/<key>), a catalog the
    # ids its rule derives from keys, each where they are made.
    return ShardListing(PackedStrings.pack(keys), PackedStrings.pack(names),
                        np.array(offsets, np.int64), np.array(sizes, np.int64))


def list_shard(shard: str) -> ShardListing:
    """The samples of one shard, in archive order (an empty shard gives empty arrays).
    Raises ReferenceSetError naming the shard for one that breaks section 3.4."""
    listed = list_shard_c(shard)  # the C walk, where built; None: this module decides
    if listed is not None:
        return listed
    try:
        members = _fast_members(shard)
    except (_Unsure, ValueError, OverflowError):
        members = _tarfile_members(shard)
    except OSError as exc:
        raise ReferenceSetError(f"{shown(shard)}: cannot read ({exc.strerror or exc})") from exc
    return _samples(members, shard)


def listing_workers() -> int:
    """Processes for listing: up to 8, the usable CPUs shared by torchrun's local ranks."""
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
    return multiprocessing.current_process().daemon


def _without_members(shard: str) -> ShardListing:
    listed = list_shard(shard)  # (not _replace: __len__ counts samples, which _make would check)
    return ShardListing(listed.keys, None, listed.offset, listed.size)


def list_shards(shards: Sequence[str], workers: int | None = None,
                progress: Callable[[int], None] | None = None, members: bool = True) -> list[ShardListing]:
    """:func:`list_shard` of every shard, in shard order, on *workers* processes
    (None: :func:`listing_workers` once the shards hold more than
    PARALLEL_LISTING_BYTES together, else this process; 1: this process). A
    daemonic process (a DataLoader worker) always lists itself. *progress* is
    called with the number of shards listed so far. If the pool cannot run, a
    RuntimeWarning says so and this process lists the shards. Without *members*
    the image members' names are dropped shard by shard (a listing at 14M items
    then never holds them all)."""
    func = list_shard if members else _without_members
    shards = list(shards)
    if workers is None:
        large = sum(os.path.getsize(s) for s in shards) > PARALLEL_LISTING_BYTES
        workers = listing_workers() if large else 1
    workers = min(int(workers), len(shards))
    if workers > 1 and not _in_daemon():
        listed = _list_in_processes(func, shards, workers, progress)
        if listed is not None:
            return listed
    out = []
    for shard in shards:
        out.append(func(shard))
        if progress is not None:
            progress(len(out))
    return out


def _list_in_processes(func: Callable[[str], ShardListing], shards: list[str], workers: int,
                       progress: Callable[[int], None] | None) -> list[ShardListing] | None:
    # Linux forks, as torch's DataLoader does: a worker costs milliseconds and re-imports
    # nothing; elsewhere the platform's default (spawn) re-imports the main script.
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    listed: list[ShardListing] = []
    try:
        for item in pool.map(func, shards, chunksize=1):
            listed.append(item)
            if progress is not None:
                progress(len(listed))
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
                      RuntimeWarning, stacklevel=3)
        return None
    except BaseException:  # a bad shard stops the listing: the shards not yet started are dropped
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return listed


def tar_images(shards: PathLike | Sequence[PathLike]) -> list[TarImage]:
    """The canonical item order of a WebDataset-style tar reference set.

    Shards in the order given (a folder: its ``*.tar`` files sorted by name);
    within a shard, samples in archive order. A sample is the run of adjacent
    regular members sharing a key (member path up to the first "." of its base
    name) and holds exactly one image member (section 3.4 rule 6); other
    members are ignored. Raises :class:`~plada_codec.ReferenceSetError` for a
    set that breaks the rules.
    """
    images: list[TarImage] = []
    files = tar_shards(shards)
    for shard, listed in zip(files, list_shards(files)):
        name = os.path.basename(shard)
        check_ids([f"{name}/{key}" for key in listed.keys], shown(shard))  # the manifest's ids
        assert listed.members is not None  # list_shards keeps them by default
        images.extend(TarImage(shard, key, member, offset, size) for key, member, offset, size in
                      zip(listed.keys, listed.members, listed.offset.tolist(), listed.size.tolist()))
    if not images:
        raise ReferenceSetError("the tar shards hold no images")
    return images


def _unchanged(previous: Listing, shards: list[str],
               signature: list[tuple[str, int, int]]) -> dict[str, ShardListing]:
    """The shards of *previous* that are unchanged now (same path, size and mtime), as listed then."""
    if previous.kind is not TarKind or len(previous.signature) != len(previous.sources):
        return {}
    now = dict(zip(shards, map(tuple, signature)))
    bounds = np.searchsorted(previous.source, np.arange(len(previous.sources) + 1), side="left")
    if np.any(np.diff(previous.source) < 0):
        return {}  # not one run a shard: not a listing this module wrote
    kept = {}
    for number, (shard, row) in enumerate(zip(previous.sources, previous.signature)):
        if now.get(shard) == tuple(row):
            a, b = int(bounds[number]), int(bounds[number + 1])
            kept[shard] = ShardListing(previous.names.take(a, b), None,
                                       np.asarray(previous.offset[a:b]), np.asarray(previous.size[a:b]))
    return kept


# -- the kind ------------------------------------------------------------------------


class TarKind(Kind):
    name = "tar"
    parts = "shards"
    id_rules = ("stem", "key")

    @classmethod
    def detect(cls, path: Path) -> bool:
        if path.is_file():
            if path.name.endswith((".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar.zst")):
                raise ReferenceSetError(
                    f"{path}: compressed tar shards cannot be read by offset; store them uncompressed (.tar)"
                )
            return path.name.endswith(".tar")
        return holds_only(path, ".tar")

    @classmethod
    def scan(cls, path: str | Sequence[str], workers: int | None = None,
             progress: Callable[[int], None] | None = None, previous: Listing | None = None) -> Listing:
        """The samples of every shard; names are the keys (no shard name; the image members'
        names are not kept: the key names a sample in messages, and a listing of 14M items
        is then about 45 bytes an item). *path*: a shard, a folder of shards or a list of shards.
        *previous*: an earlier listing of the same set (a stale cache, say): a shard it holds
        under the same path, size and mtime is taken from it, so a touched shard costs only
        its own headers."""
        shards = tar_shards(path, manifest=False)
        signature = file_signature(shards)
        kept = _unchanged(previous, shards, signature) if previous is not None else {}
        fresh = [shard for shard in shards if shard not in kept]
        done = len(kept)
        listed_fresh = iter(list_shards(fresh, workers, None if progress is None else
                                        (lambda n: progress(done + n)), members=False) if fresh else [])
        listed = [kept[shard] if shard in kept else next(listed_fresh) for shard in shards]
        names = PackedStrings.concatenate([s.keys for s in listed])
        if not len(names):
            raise ReferenceSetError(f"{path}: the tar shards hold no image samples")
        source = np.concatenate([np.full(len(s), number, np.int32) for number, s in enumerate(listed)])
        root = path if isinstance(path, str) else os.path.dirname(shards[0])
        return Listing(cls, root, shards, names, source, np.concatenate([s.offset for s in listed]),
                       np.concatenate([s.size for s in listed]), signature)

    @classmethod
    def signature(cls, path: str) -> list[tuple[str, int, int]]:
        return file_signature(tar_shards(path, manifest=False))

    @classmethod
    def read(cls, listing: Listing, i: int) -> bytes:
        return read_exactly(cls._descriptor(listing, int(listing.source[i])), int(listing.offset[i]),
                            int(listing.size[i]), cls.where(listing, i))

    @classmethod
    def extent(cls, listing: Listing, i: int) -> tuple[str, int, int]:
        return listing.sources[listing.source[i]], int(listing.offset[i]), int(listing.size[i])

    @classmethod
    def where(cls, listing: Listing, i: int) -> str:
        return f"{listing.sources[listing.source[i]]}:{listing.names[i]}"
