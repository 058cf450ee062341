"""Catalogs at scale: build and resolve time and peak RSS at two sizes, the
fit of their growth, and the size of a 14.2M-id catalog on disk.

    python benchmarks/bench_catalog.py                 # tar shards of 250k and 1M items, folder of 50k and 200k
    python benchmarks/bench_catalog.py --quick         # 20k and 80k: a minute
    python benchmarks/bench_catalog.py --size-only     # the 14.2M-id catalog file sizes only

Each build / resolve runs in a fresh process, so its peak RSS (``ru_maxrss``)
is its own. Items are ImageNet-style ids (``n%08d_%d``) with 24-byte
payloads; shards hold their samples in a shuffled order. Growth is reported
as the exponent b of time ~ N^b between the two sizes (1.0 = linear).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

IN21K_N, IN21K_SYNSETS = 14_197_122, 21_841


def _ids(n: int, synsets: int) -> list[str]:
    per = math.ceil(n / synsets)
    return [f"n{1_000_000 + i // per:08d}_{i % per}" for i in range(n)]


def make_shards(root: Path, n: int, n_shards: int = 16) -> None:
    root.mkdir(parents=True)
    ids = _ids(n, max(1, n // 650))
    random.Random(0).shuffle(ids)
    for s in range(n_shards):
        with tarfile.open(root / f"shard-{s:05d}.tar", "w", format=tarfile.USTAR_FORMAT) as archive:
            for item_id in ids[s::n_shards]:
                data = item_id.encode().ljust(24, b".")
                info = tarfile.TarInfo(f"{item_id}.jpg")
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))


def make_folder(root: Path, n: int) -> None:
    for item_id in _ids(n, max(1, n // 650)):
        folder = root / item_id.split("_")[0]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{item_id}.JPEG").write_bytes(item_id.encode().ljust(24, b"."))


def _child(action: str, path: str, catalog: str) -> dict:
    """Run in a fresh process: one build or resolve, its time and peak RSS."""
    from plada_codec import Catalog

    start = time.perf_counter()
    if action == "build":
        built = Catalog.build(path, catalog, content=False)
        n = len(built)
    else:
        resolution = Catalog.open(catalog).resolve(path, content=False, index=catalog + ".bench-index.npz",
                                                   rebuild=action == "resolve")
        n = resolution.present
    seconds = time.perf_counter() - start
    return {"n": n, "seconds": seconds, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure(action: str, path: Path, catalog: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", action, str(path), str(catalog)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def scale_table(kind: str, sizes: list[int], workdir: Path) -> list[str]:
    rows, results = [], {}
    for n in sizes:
        data, catalog = workdir / f"{kind}-{n}", workdir / f"{kind}-{n}.plcat.zst"
        (make_shards if kind == "tar" else make_folder)(data, n)
        results[n] = {a: measure(a, data, catalog) for a in ("build", "resolve", "cached")}
        for action, r in results[n].items():
            rows.append(f"| {kind} | {n:,} | {action} | {r['seconds']:.2f} | {r['seconds'] / n * 1e6:.1f} | "
                        f"{r['rss_mib']:.0f} | {catalog.stat().st_size / n:.1f} |")
    small, large = sizes
    for action in ("build", "resolve", "cached"):
        t0, t1 = results[small][action]["seconds"], results[large][action]["seconds"]
        r0, r1 = results[small][action]["rss_mib"], results[large][action]["rss_mib"]
        exponent = math.log(t1 / t0) / math.log(large / small)
        rows.append(f"| {kind} | growth {small:,} -> {large:,} | {action} | N^{exponent:.2f} "
                    f"| | +{(r1 - r0) * 2**20 / (large - small):.0f} B/item | |")
    return rows


def catalog_sizes() -> list[str]:
    """The 14.2M-id catalog: text bytes, Zstandard-19 bytes; with digests (random: incompressible)."""
    import hashlib

    import zstandard

    ids = sorted(_ids(IN21K_N, IN21K_SYNSETS))
    text = b"plada-catalog 1\nfields id\n" + "".join(i + "\n" for i in ids).encode()
    start = time.perf_counter()
    small = zstandard.ZstdCompressor(level=19, threads=-1).compress(text)
    seconds = time.perf_counter() - start
    rows = [f"| ids only | {IN21K_N:,} | {len(text) / 1e6:.1f} MB | {len(small) / 1e6:.1f} MB | "
            f"{len(small) / IN21K_N:.2f} B | {seconds:.0f} s |"]
    # ImageNet's own ids are numbered with gaps: 650 random numbers below 20,000 per synset.
    rng = random.Random(0)
    per = IN21K_N // IN21K_SYNSETS + 1
    gapped = sorted(f"n{1_000_000 + s:08d}_{n}" for s in range(IN21K_SYNSETS)
                    for n in rng.sample(range(20_000), per))[:IN21K_N]
    text = b"plada-catalog 1\nfields id\n" + "".join(i + "\n" for i in gapped).encode()
    del gapped
    start = time.perf_counter()
    small = zstandard.ZstdCompressor(level=19, threads=-1).compress(text)
    rows.append(f"| ids with gaps | {IN21K_N:,} | {len(text) / 1e6:.1f} MB | {len(small) / 1e6:.1f} MB | "
                f"{len(small) / IN21K_N:.2f} B | {time.perf_counter() - start:.0f} s |")
    digests = (hashlib.sha256(i.encode()).hexdigest() for i in ids)
    body = "".join(f"{i}\t{d}\n" for i, d in zip(ids, digests)).encode()
    text = b"plada-catalog 1\nfields id sha256\n" + body
    del body
    # Digests are incompressible (32 bytes of entropy in 64 hex digits): level 9 reaches what 19
    # would within a fraction of a percent, in minutes instead of an hour on 1.2 GB.
    start = time.perf_counter()
    small = zstandard.ZstdCompressor(level=9, threads=-1).compress(text)
    seconds = time.perf_counter() - start
    rows.append(f"| ids + sha256 (level 9) | {IN21K_N:,} | {len(text) / 1e6:.1f} MB | {len(small) / 1e6:.1f} MB | "
                f"{len(small) / IN21K_N:.2f} B | {seconds:.0f} s |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--size-only", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("ACTION", "PATH", "CATALOG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(*args.child)))
        return
    if not args.size_only:
        tar_sizes, folder_sizes = ([20_000, 80_000], [20_000, 80_000]) if args.quick else \
            ([250_000, 1_000_000], [50_000, 200_000])
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
            print("| layout | N | step | seconds | us/item | peak RSS MiB | catalog B/item (zst) |")
            print("|---|---:|---|---:|---:|---:|---:|")
            for kind, sizes in (("tar", tar_sizes), ("folder", folder_sizes)):
                for row in scale_table(kind, sizes, Path(tmp)):
                    print(row, flush=True)
        print()
    print("| catalog | items | text | .zst (level 19) | per item | compress time |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in catalog_sizes():
        print(row, flush=True)


if __name__ == "__main__":
    main()
