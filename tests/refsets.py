"""One generated image set stored the ways clients hold ImageNet: a folder tree
(``train/<synset>/<synset>_<n>.png``), shuffled WebDataset shards with ``.cls``
siblings, Hugging Face-style parquet (an ``image`` struct of bytes and path), a
copy missing some files, and a re-encoded copy (same ids, other bytes)."""

from __future__ import annotations

import io
import os
import random
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Item:
    synset: str
    item_id: str
    png: bytes


@dataclass
class StoredSet:
    items: list[Item]
    folder: Path
    shards: Path
    parquet: Path | None
    partial: Path
    reencoded: Path
    removed: list[str] = field(default_factory=list)


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def make_items(n: int, n_synsets: int = 20, size: int = 8, seed: int = 0) -> list[Item]:
    """*n* distinct small RGB images in *n_synsets* synsets (``n0000000k``)."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        synset = f"n{i % n_synsets:08d}"
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        pixels[0, 0] = [i & 255, (i >> 8) & 255, (i >> 16) & 255]  # distinct bytes for every item
        items.append(Item(synset, f"{synset}_{i}", _png(pixels)))
    return items


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def write_folder(items: list[Item], root: Path, *, extension: str = "png", encode=None) -> Path:
    for item in items:
        folder = root / "train" / item.synset
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{item.item_id}.{extension}").write_bytes(encode(item.png) if encode else item.png)
    return root


def write_shards(items: list[Item], root: Path, n_shards: int = 4, seed: int = 1) -> Path:
    """Samples shuffled across shards, each with a ``.cls`` sibling before its image."""
    root.mkdir(parents=True, exist_ok=True)
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    synsets = sorted({i.synset for i in items})
    for shard in range(n_shards):
        with tarfile.open(root / f"imagenet-train-{shard:04d}.tar", "w", format=tarfile.USTAR_FORMAT) as archive:
            for j in order[shard::n_shards]:
                item = items[j]
                _add(archive, f"{item.item_id}.cls", str(synsets.index(item.synset)).encode())
                _add(archive, f"{item.item_id}.png", item.png)
    return root


def write_parquet(items: list[Item], root: Path, n_files: int = 2, row_group: int = 500) -> Path | None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    root.mkdir(parents=True, exist_ok=True)
    synsets = sorted({i.synset for i in items})
    for number in range(n_files):
        part = items[number::n_files]
        table = pa.table({
            "image": pa.array([{"bytes": i.png, "path": f"{i.item_id}.png"} for i in part]),
            "label": [synsets.index(i.synset) for i in part],
        })
        pq.write_table(table, root / f"train-{number:05d}-of-{n_files:05d}.parquet", row_group_size=row_group)
    return root


def reencode_bmp(png: bytes) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.open(io.BytesIO(png)).save(out, format="BMP")
    return out.getvalue()


def store(items: list[Item], base: Path, *, missing: float = 0.02, seed: int = 2) -> StoredSet:
    """*items* stored five ways under *base*."""
    folder = write_folder(items, base / "folder")
    shards = write_shards(items, base / "shards")
    parquet = write_parquet(items, base / "parquet")
    partial = write_folder(items, base / "partial")
    rng = random.Random(seed)
    removed = sorted(rng.sample([i.item_id for i in items], max(1, int(len(items) * missing))))
    by_id = {i.item_id: i for i in items}
    for item_id in removed:
        os.remove(partial / "train" / by_id[item_id].synset / f"{item_id}.png")
    reencoded = write_folder(items, base / "reencoded", extension="bmp", encode=reencode_bmp)
    return StoredSet(items, folder, shards, parquet, partial, reencoded, removed)


def write_tar(path, members, fmt=tarfile.PAX_FORMAT, pax_headers=None, encoding="utf-8"):
    """*members*: (name, bytes) for a file, (name, None) a folder, (name, "->t") a symlink,
    (name, "=>t") a hard link, (name, (bytes, {pax records})) a file with records of its own."""
    with tarfile.open(path, "w", format=fmt, pax_headers=pax_headers, encoding=encoding,
                      errors="surrogateescape") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            elif isinstance(data, str):
                info.type = tarfile.SYMTYPE if data.startswith("->") else tarfile.LNKTYPE
                info.linkname = data[2:]
                archive.addfile(info)
            else:
                if isinstance(data, tuple):
                    data, info.pax_headers = data
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return path
