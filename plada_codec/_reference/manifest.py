"""The manifest (spec/REFERENCE.md sections 2-3): its text, how a path is taken
as a set (the one layout registry, ``plada_codec.kinds``), the folder walk a
manifest lists, parsing a manifest back and naming its first difference."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, TypeVar, Union

from .._atomic import write_atomically
from .._errors import ReferenceSetError
from .._ids import FORBIDDEN_ID_CHARS, check_id, path_argument
from ..kinds import KINDS, detect_kind
from ..kinds._walk import FolderWalk, walk_folder
from ..kinds.tar import tar_shards
from .hashing import _BYTES_PER_TASK, _FILES_PER_TASK, _listing_bar

PathLike = Union[str, "os.PathLike[str]"]
T = TypeVar("T")


MANIFEST_HEADER = b"plada-reference-manifest 1\n"


def _to_manifest(target: BinaryIO | PathLike | None, hash_to: Callable[[BinaryIO | None], T]) -> T:
    """Run *hash_to* with the manifest's destination: a file object, a path
    (written atomically, so a failed hash leaves no half manifest) or None."""
    if isinstance(target, (str, os.PathLike)):
        return write_atomically(target, hash_to)
    return hash_to(target)


def _detect_kind(path: Path, kind: str) -> str:
    """The layout of *path* by the one registry (plada_codec.kinds), or ``manifest`` for a
    file of no layout (a manifest written by ``plada ref-hash --manifest-out``)."""
    if kind == "manifest":
        return kind
    if kind == "auto" and path.is_file():
        for candidate in KINDS.values():
            if candidate.detect(path):
                return candidate.name
        return "manifest"
    return detect_kind(path, kind).name


def _no_manifest(path: str, kind: str) -> ReferenceSetError:
    return ReferenceSetError(
        f"{path}: a {kind} copy has no manifest of its own (spec/REFERENCE.md section 3 defines folders, tar "
        f"shards and arrays); build a catalog of it once (plada catalog build {path} -o ref.plcat) and use "
        "the catalog"
    )


def _resolve(path: PathLike | Sequence[PathLike], kind: str) -> tuple[list[str], str]:
    if isinstance(path, (bytes, str, os.PathLike)) or not isinstance(path, Sequence):
        path = path_argument(path)
    if not isinstance(path, (str, os.PathLike)):
        if kind not in ("auto", "tar"):
            raise ReferenceSetError(f"a list of paths is a tar set, not kind {kind!r}")
        return tar_shards(path), "tar"
    kind = _detect_kind(Path(path), kind)
    if kind == "tar":
        return tar_shards(path), "tar"
    if kind not in ("folder", "manifest", "npz"):
        raise _no_manifest(os.fspath(path), kind)
    if kind == "folder" and not Path(path).is_dir():
        raise ReferenceSetError(f"{path}: not a folder")
    return [os.fspath(path)], kind


def _manifest_items(fh: BinaryIO, path: PathLike) -> Iterator[tuple[str, str | None]]:
    if fh.readline() != MANIFEST_HEADER:
        raise ReferenceSetError(
            f"{path}: not a plada reference manifest (first line must be "
            f"{MANIFEST_HEADER.decode().strip()!r})"
        )
    for lineno, line in enumerate(fh, start=2):
        if not line.endswith(b"\n"):
            raise ReferenceSetError(f"{path}:{lineno}: line does not end in LF")
        fields = line[:-1].split(b"\t")
        if len(fields) > 2:
            raise ReferenceSetError(f"{path}:{lineno}: more than one TAB")
        try:
            item_id = fields[0].decode("utf-8")
        except UnicodeDecodeError:
            raise ReferenceSetError(f"{path}:{lineno}: id is not UTF-8") from None
        try:
            digest = fields[1].decode("ascii") if len(fields) == 2 else None
        except UnicodeDecodeError:
            raise ReferenceSetError(f"{path}:{lineno}: digest is not 64 lowercase hex digits") from None
        check_id(item_id, f"{path}:{lineno}")
        yield item_id, digest


def _manifest_has_digests(manifest: Path) -> bool:
    with open(manifest, "rb") as fh:
        fh.readline()
        return b"\t" in fh.readline()


def _first_difference(expected: Path, actual: Path) -> str:
    """Where manifest *actual* (just hashed) first departs from *expected*, in words."""

    def item(line: bytes) -> str:
        return line.decode("utf-8", "replace").rstrip("\n").split("\t")[0]

    with open(expected, "rb") as a, open(actual, "rb") as b:
        lineno = 0
        while True:
            lineno += 1
            line_a, line_b = a.readline(), b.readline()
            if line_a == line_b:
                if not line_a:
                    return "they differ"
                continue
            if not line_b:
                return f"the set ends before manifest item {item(line_a)!r} (line {lineno})"
            if not line_a:
                return f"the set has items past the manifest's end, from {item(line_b)!r}"
            if item(line_a) == item(line_b):
                return f"item {item(line_a)!r} (manifest line {lineno}) has different content"
            return f"manifest line {lineno} is {item(line_a)!r} but the set has {item(line_b)!r} there"


def _scan_folder(root: Path, progress: Callable[[int], None] | bool | None = None) -> FolderWalk:
    """Every visible regular file below *root* in canonical order (spec/REFERENCE.md,
    "Folders"): names starting with "." are skipped (files and folders), symbolic
    links and special files are skipped, names a manifest cannot hold are refused."""
    bar = None
    if isinstance(progress, bool):
        bar, progress = _listing_bar(progress, root)
    try:
        walk = walk_folder(root, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    if not len(walk.names):
        raise ReferenceSetError(
            f"{root}: no visible regular files (names starting with '.' and symbolic links do not count); "
            "a reference set holds at least one item"
        )
    names = walk.names
    for start in range(0, len(names), _CHECK_CHUNK):  # one chunk of ids as Python strings at a time
        chunk = names.blob[names.offsets[start]:names.offsets[min(len(names), start + _CHECK_CHUNK)]]
        try:
            text = str(chunk, "utf-8")
        except UnicodeDecodeError:
            text = ""
        if not text or FORBIDDEN_ID_CHARS.search(text):
            for i in range(start, min(len(names), start + _CHECK_CHUNK)):
                check_id(names[i], str(root))
    return walk


_CHECK_CHUNK = 1 << 13  # rows as Python objects at a time: about 2 MB


def _walk_paths(root: Path, walk: FolderWalk) -> Iterator[list[str]]:
    """The walk's files as hashing tasks: runs of paths of at most _FILES_PER_TASK
    files / _BYTES_PER_TASK bytes."""
    base = os.fsencode(root) + b"/"
    blob, offsets, sizes = walk.names.blob, walk.names.offsets, walk.size
    task: list[str] = []
    nbytes = 0
    for i in range(len(walk.names)):
        if task and (len(task) >= _FILES_PER_TASK or nbytes >= _BYTES_PER_TASK):
            yield task
            task, nbytes = [], 0
        task.append(os.fsdecode(base + bytes(blob[offsets[i]:offsets[i + 1]])))
        nbytes += int(sizes[i])
    if task:
        yield task
