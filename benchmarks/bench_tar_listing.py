"""Listing ImageNet-21K-shaped tar shards: the one tar lister against tarfile and a minimal header walk.

    python benchmarks/bench_tar_listing.py                          # 1,000,000 items, 1 and 2 processes
    python benchmarks/bench_tar_listing.py --items 1000000 4000000 --workers 1 2

Makes shards of 4,000 samples (``nXXXXXXXX_NNNN.JPEG`` + ``.cls``, ids drawn from 21,841 synsets
with sparse file numbers, shuffled across shards; each member one data block: listing reads no
pixels), then measures, in one run and in CPU seconds:

- the minimal header walk: a Python loop that reads each 512-byte header and its size field,
  nothing else (the floor a pure-Python lister can reach);
- ``tarfile``: the lister before this release (``TarInfo`` objects, then the sample rules),
  measured on as many shards as take 2 CPU s;
- the Python header walk (``_fast_members`` then ``_samples``): what ``list_shards`` runs when the
  C core is not built or ``PLADA_BACKEND=python``, likewise on 2 CPU s of shards;
- ``list_shards`` in 1 process (CPU s of this process) and in N processes (wall s, and CPU s of
  this process and its children): the C walk (csrc/plada_tar.c) where the C core is built;
- a cached open (``Listing.load`` with the shards' signature) and a re-list after one shard was
  touched (``TarKind.scan(previous=...)``);
- the listing's memory: peak RSS above the baseline, per item, in a fresh process.

Prints one table of per-item costs and ratios, and the fit for a 14,197,122-item first listing on
an 8-core node (CPU s per item x items / min(8, measured speed-up x 4)).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PER_SHARD = 4000
SYNSETS = 21841
IMAGENET_21K = 14_197_122


def make_shards(folder: Path, n: int, seed: int = 0) -> list[str]:
    """*n* samples in shards of PER_SHARD, ids shuffled across shards (written once, then reused)."""
    shards = [folder / f"shard-{s:05d}.tar" for s in range((n + PER_SHARD - 1) // PER_SHARD)]
    if folder.is_dir() and all(s.exists() for s in shards) and (folder / "done").exists():
        return [str(s) for s in shards]
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    per_synset = n // SYNSETS + 1
    ids = [f"n{s:08d}_{number}" for s in range(SYNSETS) for number in sorted(rng.sample(range(20000), per_synset))]
    ids = ids[:n]
    rng.shuffle(ids)
    block = bytes(tarfile.BLOCKSIZE)
    for number, shard in enumerate(shards):
        with open(shard, "wb") as fh:
            for item_id in ids[number * PER_SHARD:(number + 1) * PER_SHARD]:
                for name, size in ((f"{item_id}.JPEG", 300), (f"{item_id}.cls", 3)):
                    info = tarfile.TarInfo(name)
                    info.size = size
                    fh.write(info.tobuf(tarfile.GNU_FORMAT))
                    fh.write(block)
            fh.write(block * 2)
    (folder / "done").write_text("")
    return [str(s) for s in shards]


def minimal_walk(shard: str) -> int:
    """Headers read and sizes parsed, nothing else."""
    count = 0
    with open(shard, "rb") as fh:
        offset = 0
        while True:
            fh.seek(offset)
            header = fh.read(512)
            if len(header) < 512 or not any(header):
                return count
            size = int(header[124:136].rstrip(b"\0 ") or b"0", 8)
            count += 1
            offset += 512 + ((size + 511) // 512) * 512


def cpu_per_item(func, shards: list[str], items_per_shard: int, budget: float = 2.0) -> float:
    """CPU s an item of *func* over shards, on as many shards as take *budget* CPU s."""
    start = time.process_time()
    done = 0
    for shard in shards:
        func(shard)
        done += 1
        if time.process_time() - start >= budget:
            break
    return (time.process_time() - start) / (done * items_per_shard)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


MEMORY_PROBE = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from plada_codec.kinds import Listing
    from plada_codec.kinds.tar import TarKind
    def status(field):
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith(field)) * 1024
    def rss():
        return status("VmRSS:")
    before = rss()
    if sys.argv[2] == "list":
        listing = TarKind.scan(sys.argv[3], workers=1)
    else:
        listing = Listing.load(sys.argv[3], TarKind)
        sum(len(listing.names[i]) for i in range(0, len(listing), 997))  # touch it
    # VmHWM, not ru_maxrss: a child's ru_maxrss starts from its parent's RSS at fork on Linux.
    peak = status("VmHWM:")
    print(json.dumps({"n": len(listing), "peak_above": peak - before, "rss_above": rss() - before}))
""")


def memory(mode: str, target: str) -> dict:
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(ROOT), mode, target], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--workdir", type=Path, help="where to keep the shards (default: a temporary folder)")
    args = parser.parse_args()
    import plada_codec
    from plada_codec.kinds import Listing
    from plada_codec.kinds.tar import TarKind, _fast_members, _samples, _tarfile_members, list_shards

    work = args.workdir or Path(tempfile.mkdtemp(prefix="plada-bench-tar-"))
    rows = []
    for n in args.items:
        folder = work / f"tars-{n}"
        shards = make_shards(folder, n)
        for shard in shards[:8]:  # warm the page cache for the first measurements alike
            minimal_walk(shard)
        minimal = cpu_per_item(minimal_walk, shards, PER_SHARD)
        before = cpu_per_item(lambda s: _samples(_tarfile_members(s), s), shards, PER_SHARD)
        python_walk = cpu_per_item(lambda s: _samples(_fast_members(s), s), shards, PER_SHARD)
        results = {"items": n, "minimal_us": minimal * 1e6, "tarfile_us": before * 1e6,
                   "python_walk_us": python_walk * 1e6}
        for workers in args.workers:
            cpu0, child0, wall0 = time.process_time(), children_cpu(), time.perf_counter()
            listed = list_shards(shards, workers=workers)
            wall = time.perf_counter() - wall0
            cpu = time.process_time() - cpu0 + children_cpu() - child0
            assert sum(len(s) for s in listed) == n
            results[f"wall_{workers}"] = wall
            results[f"cpu_us_{workers}"] = cpu / n * 1e6
            del listed
        listing = TarKind.scan(str(folder), workers=max(args.workers))
        cache = folder / ".listing.npz"
        listing.save(cache)
        start = time.perf_counter()
        cached = Listing.load(cache, TarKind, TarKind.signature(str(folder)))
        results["cached_s"] = time.perf_counter() - start
        assert cached is not None and len(cached) == n
        os.utime(shards[len(shards) // 2])  # one shard touched
        start = time.process_time()
        again = TarKind.scan(str(folder), workers=1, previous=Listing.load(cache, TarKind))
        results["touched_cpu_s"] = time.process_time() - start
        assert len(again) == n
        results["memory_list"] = memory("list", str(folder))["peak_above"] / n
        results["memory_mapped"] = memory("load", str(cache))["rss_above"] / n
        rows.append(results)
    print(json.dumps(rows))
    print()
    print(f"backend: {plada_codec.backend} (the one lister runs the C walk only on c)\n")
    print("| items | minimal walk, µs/item | tarfile (before), µs/item | Python walk, µs/item "
          "| one lister, 1 process, µs/item | before / now | Python walk / minimal walk "
          "| now / minimal walk | " + " | ".join(f"wall, {w} proc., s" for w in args.workers)
          + " | cached open, s | one shard touched, CPU s | listing peak, B/item | mapped cache, B/item |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(args.workers) + "---:|---:|---:|---:|")
    for r in rows:
        now = r[f"cpu_us_{args.workers[0]}"]
        print(f"| {r['items']:,} | {r['minimal_us']:.2f} | {r['tarfile_us']:.2f} | {r['python_walk_us']:.2f} "
              f"| {now:.2f} | {r['tarfile_us'] / now:.1f}x | {r['python_walk_us'] / r['minimal_us']:.2f}x "
              f"| {now / r['minimal_us']:.2f}x | "
              + " | ".join(f"{r[f'wall_{w}']:.1f}" for w in args.workers)
              + f" | {r['cached_s']:.3f} | {r['touched_cpu_s']:.2f} | {r['memory_list']:.0f} "
              f"| {r['memory_mapped']:.1f} |")
    last = rows[-1]
    speedup = last[f"wall_{args.workers[0]}"] / last[f"wall_{args.workers[-1]}"] if len(args.workers) > 1 else 1.0
    per_process = args.workers[-1] / max(args.workers[0], 1)
    efficiency = speedup / per_process if per_process > 1 else 1.0
    cores = 8 * efficiency
    fit = last[f"cpu_us_{args.workers[0]}"] * 1e-6 * IMAGENET_21K / cores
    print(f"\nfit: {IMAGENET_21K:,} items on 8 cores at the measured {efficiency:.0%} process efficiency "
          f"({args.workers[0]} -> {args.workers[-1]} processes: {speedup:.2f}x): {fit:.0f} CPU-bound s "
          f"({fit / 60:.2f} min; reading the headers from disk is not in it)")


if __name__ == "__main__":
    main()
