"""Memory of scoring an on-disk reference set, and what a client reads.

Writes WebDataset-style tar shards of small PNG images at two sizes (default
50,000 and 100,000), then, each in a fresh process, scores every image with a
SmallCNN through ``DataLoader(num_workers=0/1/2)`` and records the peak RSS of
the main process and of its workers. For comparison, the old path (every image
decoded into one in-memory uint8 array first) is measured at both sizes too.
Last, a client opens the reference and reads a k-item LabelledSubset: the
files it opens and the image bytes it reads are counted (folder and tar).
With ``--index-only``, it times building a tar set's member index (the tar
header scan, no cache) with 1 and more listing processes instead.

    python benchmarks/bench_data_memory.py [--sizes 50000 100000] [--k 500] [--dir DIR]
    python benchmarks/bench_data_memory.py --index-only [--index-workers 1 2]

Prints a table; not a unit test (a run takes minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import builtins
import io
import json
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

SHARD_SIZE = 10_000


def write_tar_set(folder: Path, n: int, side: int = 28, seed: int = 0) -> None:
    """n grayscale PNGs (side x side), SHARD_SIZE per shard, plus a .cls member each."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for first in range(0, n, SHARD_SIZE):
        with tarfile.open(folder / f"shard-{first // SHARD_SIZE:05d}.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
            for i in range(first, min(n, first + SHARD_SIZE)):
                buf = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).save(buf, format="PNG")
                for name, data in ((f"{i:08d}.png", buf.getvalue()), (f"{i:08d}.cls", str(i % 10).encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))


def write_folder_set(folder: Path, n: int, side: int = 28, seed: int = 1) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(n):
        sub = folder / f"{i // 1000:04d}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).save(sub / f"{i:08d}.png")


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child_score(spec: str, workers: int, in_memory: bool) -> dict:
    """Score every item of *spec*; runs in its own process so peaks are its own."""
    import torch
    from torch.utils.data import DataLoader

    from plada_train.data import open_reference
    from plada_train.models import SmallCNN
    from plada_train.preprocess import preprocess_for

    torch.set_num_threads(1)
    model = SmallCNN(10, 1).eval()
    baseline = _rss_mb()
    reference = open_reference(spec)
    reference.set_preprocess(preprocess_for(None, "smallcnn", 1))
    after_open = _rss_mb()
    energy = np.empty(len(reference), np.float32)
    start = time.perf_counter()
    with torch.no_grad():
        if in_memory:  # the old path: decode everything into one array, then batch
            images = np.stack([np.asarray(reference.raw(i)) for i in range(len(reference))])[:, None]
            for s in range(0, len(images), 512):
                x = torch.from_numpy(images[s : s + 512]).float().mul_(2.0 / 255.0).sub_(1.0)
                energy[s : s + len(x)] = (-torch.logsumexp(model(x), 1)).numpy()
        else:
            loader = DataLoader(reference, batch_size=512, num_workers=workers)
            for x, index in loader:
                energy[index.numpy()] = (-torch.logsumexp(model(x), 1)).numpy()
    seconds = time.perf_counter() - start
    return {"n": len(reference), "baseline_mb": baseline, "open_mb": after_open - baseline,
            "index_bytes": reference.index_nbytes(),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "images_per_s": len(reference) / seconds}


class _Counter:
    """Counts files opened through builtins.open and bytes read from them."""

    def __init__(self) -> None:
        self.opens = self.bytes = 0
        self._real_open = builtins.open

    def __enter__(self) -> _Counter:
        counter, real_open = self, self._real_open

        class Counting(io.BufferedReader):
            def read(self, size=-1):
                data = super().read(size)
                counter.bytes += len(data)
                return data

            def readinto(self, buffer):
                n = super().readinto(buffer)
                counter.bytes += n or 0
                return n

        def counting_open(path, mode="r", *args, **kwargs):
            counter.opens += 1
            handle = real_open(path, mode, *args, **kwargs)
            if "b" in mode and "r" in mode and isinstance(handle, io.BufferedReader):
                return Counting(handle.detach())
            return handle

        builtins.open = counting_open
        return self

    def __exit__(self, *exc) -> None:
        builtins.open = self._real_open


def _read_chars() -> int:
    with open("/proc/self/io") as fh:
        return int(next(line for line in fh if line.startswith("rchar:")).split()[1])


def client_reads(spec: str, k: int, manifest: str | None = None, seed: int = 0) -> dict:
    """Open *spec* (with *manifest*: its cached index), then read a k-item
    LabelledSubset; count the opens and bytes of each phase. tarfile reads
    headers through the file object, so the header scan is counted too."""
    from PIL import Image

    from plada_train.data import LabelledSubset, open_reference

    # Load PIL's decoders before counting: reading module files is not reading data.
    warm = io.BytesIO()
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(warm, format="PNG")
    Image.open(io.BytesIO(warm.getvalue())).load()

    rchar = _read_chars()
    start = time.perf_counter()
    with _Counter() as opening:
        reference = open_reference(spec, manifest=manifest)
        if hasattr(reference, "close"):
            reference.close()  # count the shard opens of the reads too
    open_s = time.perf_counter() - start
    open_bytes = _read_chars() - rchar  # read(2) bytes: tarfile opens files past builtins.open
    picks = np.sort(np.random.default_rng(seed).choice(len(reference), k, replace=False))
    subset = LabelledSubset(reference, picks, np.zeros(k, np.int64))
    with _Counter() as reading:
        for j in range(len(subset)):
            subset[j]
    if hasattr(reference, "_size"):
        selected = sum(int(reference._size[i]) for i in picks)
        touched = len({int(s) for s in reference._shard[picks]})
    else:
        selected = sum(os.path.getsize(os.path.join(reference.root, reference.item_id(i))) for i in picks)
        touched = None
    return {"n": len(reference), "k": k, "open_files": opening.opens, "open_bytes": open_bytes,
            "open_s": open_s, "opens": reading.opens, "bytes": reading.bytes,
            "distinct_shards": touched, "selected_image_bytes": selected}


CHILD_ENV = {"OMP_NUM_THREADS": "1"}


def _run_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True,
                         env={**os.environ, **CHILD_ENV})
    return json.loads(out.stdout.strip().splitlines()[-1])


def client_table(base: Path, sizes, k: int) -> None:
    small, large = sizes
    folder = base / f"folder-{small}"
    if not folder.exists():
        t0 = time.perf_counter()
        write_folder_set(folder, small)
        print(f"wrote {small} image files in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    runs = [("folder", folder, None)]
    for n in sizes:
        manifest = base / f"tar-{n}.manifest"
        for suffix in ("", ".index.npz"):
            Path(f"{manifest}{suffix}").unlink(missing_ok=True)
        runs += [("tar", base / f"tar-{n}", None), ("tar, index cached", base / f"tar-{n}", manifest)]
    print("\nClient: open the reference, then read a k-subset (files opened / bytes read, counted per phase)")
    print("| set | N | open: files | open: bytes (read syscalls) | open: s | k | subset: files | subset: bytes "
          "| selected image bytes | shards touched |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind, spec, manifest in runs:
        if manifest is not None:  # first open writes the index beside the manifest
            _run_child("client", str(spec), str(k), str(manifest))
        r = _run_child("client", str(spec), str(k), *([str(manifest)] if manifest else []))
        print(f"| {kind} | {r['n']} | {r['open_files']} | {r['open_bytes']} | {r['open_s']:.2f} | {r['k']} | "
              f"{r['opens']} | {r['bytes']} | {r['selected_image_bytes']} | {r['distinct_shards'] or '-'} |")


def index_table(base: Path, sizes, workers_list) -> None:
    from plada_train.data import TarImages

    print("\nTar member index without a cache (TarImages(index_workers=w)): best of 2 runs")
    print("| N | shards | listing processes | seconds | members/s | speed-up vs 1 |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        shards = sorted(str(p) for p in (base / f"tar-{n}").glob("*.tar"))
        TarImages(shards, index_workers=1)  # page cache and imports
        base_seconds = None
        for workers in workers_list:
            times = []
            for _ in range(2):
                start = time.perf_counter()
                TarImages(shards, index_workers=workers)
                times.append(time.perf_counter() - start)
            seconds = min(times)
            base_seconds = base_seconds or seconds
            print(f"| {n} | {len(shards)} | {workers} | {seconds:.2f} | {n / seconds:,.0f} | "
                  f"{base_seconds / seconds:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=(50_000, 100_000))
    parser.add_argument("--workers", type=int, nargs="+", default=(0, 1, 2))
    parser.add_argument("--k", type=int, default=500)
    parser.add_argument("--dir", type=Path, default=None, help="where to write the sets (default: a temp folder)")
    parser.add_argument("--client-only", action="store_true", help="skip scoring; only the client table")
    parser.add_argument("--skip-client", action="store_true", help="only the scoring table")
    parser.add_argument("--fixed-mmap-threshold", action="store_true",
                        help="run the scoring processes with glibc's MALLOC_MMAP_THRESHOLD_=131072: freed batch "
                             "buffers go back to the system at once, so peaks show data, not allocator retention")
    parser.add_argument("--index-only", action="store_true", help="only time the tar member index build")
    parser.add_argument("--index-workers", type=int, nargs="+", default=(1, 2))
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, spec, *rest = args.child
        if kind == "score":
            result = child_score(spec, int(rest[0]), rest[1] == "1")
        else:
            result = client_reads(spec, int(rest[0]), rest[1] if len(rest) > 1 else None)
        print(json.dumps(result))
        return

    base = args.dir or Path(tempfile.mkdtemp(prefix="plada-bench-data-"))
    if args.fixed_mmap_threshold:
        CHILD_ENV["MALLOC_MMAP_THRESHOLD_"] = "131072"
    if args.index_only or args.client_only:
        for n in args.sizes:
            if not (base / f"tar-{n}").exists():
                write_tar_set(base / f"tar-{n}", n)
        if args.index_only:
            index_table(base, args.sizes, args.index_workers)
        else:
            client_table(base, args.sizes, args.k)
        return
    rows = []
    for n in args.sizes:
        tars = base / f"tar-{n}"
        if not tars.exists():
            t0 = time.perf_counter()
            write_tar_set(tars, n)
            print(f"wrote {n} images in {len(list(tars.iterdir()))} shards in {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr)
        for workers in args.workers:
            rows.append(("tar", n, f"DataLoader w={workers}", _run_child("score", str(tars), str(workers), "0")))
        rows.append(("tar", n, "in-memory array (old)", _run_child("score", str(tars), "0", "1")))
    print(f"\nScoring with SmallCNN (batch 512, 1 torch thread); RSS in MiB; base = RSS after importing torch"
          f"{'; MALLOC_MMAP_THRESHOLD_=131072' if args.fixed_mmap_threshold else ''}")
    print("| set | N | loader | base | +open | index B/item | peak main | peak worker | images/s |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for kind, n, loader, r in rows:
        print(f"| {kind} | {n} | {loader} | {r['baseline_mb']:.0f} | {r['open_mb']:.1f} | "
              f"{r['index_bytes'] / n:.0f} | {r['peak_mb']:.0f} | {r['worker_peak_mb']:.0f} | "
              f"{r['images_per_s']:.0f} |")
    by = {(n, loader): r for _, n, loader, r in rows}
    small, large = args.sizes
    print(f"\npeak main RSS ratio {large}/{small}: " + ", ".join(
        f"{loader}: {by[(large, loader)]['peak_mb'] / by[(small, loader)]['peak_mb']:.3f}"
        for loader in dict.fromkeys(loader for _, _, loader, _ in rows)))

    if not args.skip_client:
        client_table(base, args.sizes, args.k)
    print(f"\nsets kept in {base}", file=sys.stderr)


if __name__ == "__main__":
    main()
