"""Reference-set hashing throughput: files/s and MB/s, 1 worker against N.

    python benchmarks/bench_hashing.py [--small 20000] [--large 4] [--large-mb 64] [--workers 1,2,4,8]

Builds, in a temporary folder, a reference folder of SMALL files of 2-8 KiB
(about a thumbnail each) plus LARGE files of LARGE_MB MiB, and the same
small images as tar shards of 5,000 samples; then times a full content
fingerprint (ReferenceSet.from_folder / from_tar_shards, cold and warm page
cache can't be told apart here: the files were just written, so this measures
hashing and file-system calls, not the disk) and the cached check
(ReferenceSet.open with a manifest: one stat per file). Prints a markdown
table; ratios are to the 1-worker run of the same set in the same process.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from plada_codec import ReferenceSet


def build(root: Path, n_small: int, n_large: int, large_mb: int) -> tuple[Path, Path, Path, int]:
    rng = random.Random(0)
    small = root / "small"
    for i in range(n_small):
        folder = small / f"n{i // 1000:05d}"
        if i % 1000 == 0:
            folder.mkdir(parents=True)
        (folder / f"{i:08d}.jpg").write_bytes(rng.randbytes(rng.randint(2048, 8192)))
    large = root / "large"
    large.mkdir()
    for i in range(n_large):
        (large / f"big{i}.bin").write_bytes(os.urandom(large_mb << 20))
    shards = root / "shards"
    shards.mkdir()
    files = sorted(small.rglob("*.jpg"))
    for start in range(0, len(files), 5000):
        with tarfile.open(shards / f"{start // 5000:06d}.tar", "w") as archive:
            for path in files[start : start + 5000]:
                archive.add(path, arcname=f"{path.parent.name}_{path.stem}.jpg")
    total = sum(p.stat().st_size for p in files)
    return small, large, shards, total


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--large", type=int, default=4)
    parser.add_argument("--large-mb", type=int, default=64)
    parser.add_argument("--workers", default="1,2,4,8")
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="plada-bench-hash-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        small, large, shards, small_bytes = build(root, args.small, args.large, args.large_mb)
        print(f"built {args.small} small files ({small_bytes / 1e6:.1f} MB), {args.large} x {args.large_mb} MiB, "
              f"{len(list(shards.iterdir()))} shards in {time.perf_counter() - t0:.1f} s; "
              f"{os.cpu_count()} CPUs\n", file=sys.stderr)
        large_bytes = args.large * (args.large_mb << 20)
        cases = [
            ("folder, small files", lambda w: ReferenceSet.from_folder(small, workers=w), args.small, small_bytes),
            ("tar shards, small images", lambda w: ReferenceSet.from_tar_shards(shards, workers=w), args.small,
             small_bytes),
            ("folder, large files", lambda w: ReferenceSet.from_folder(large, workers=w), args.large, large_bytes),
        ]
        print("| set | workers | seconds | files/s | MB/s | speed-up vs 1 worker |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, run, count, nbytes in cases:
            run(1)  # warm the page cache and imports once
            base = None
            for w in workers:
                seconds = min(timed(lambda run=run, w=w: run(w)) for _ in range(2))
                base = base or seconds
                print(f"| {name} | {w} | {seconds:.3f} | {count / seconds:,.0f} | {nbytes / 1e6 / seconds:,.0f} | "
                      f"{base / seconds:.2f} |", flush=True)
        manifest = root / "small.manifest"
        full = timed(lambda: ReferenceSet.record(small, manifest, workers=max(workers)))
        cached = min(timed(lambda: ReferenceSet.open(small, manifest=manifest)) for _ in range(3))
        print(f"\ncached check of the small folder (ReferenceSet.open with its manifest, {args.small} stats): "
              f"{cached:.3f} s = {args.small / cached:,.0f} files/s, {full / cached:.1f}x faster than hashing "
              f"it with {max(workers)} workers ({full:.3f} s)")


if __name__ == "__main__":
    main()
