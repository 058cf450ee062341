"""The scoring data path against a plain PIL decode loop, on realistic JPEGs (issue 15).

    python benchmarks/bench_datapath.py [--n 1200] [--repeat 3] [--workers 0 1 2] [--model resnet18] [--legacy]

Writes --n JPEGs (PIL, random 300-500 px sides, quality 90; smooth gradients
plus noise, so decoding costs what a photograph does) once into a folder and
into tar shards, then measures in one run:

- ``plain``: a PIL loop (open, decode, convert, resize the short side to
  ``input_size / crop_pct``, centre crop, to a uint8 array): the decode limit,
  in 1 process, and in W processes side by side for W workers;
- ``plada``: the reference Dataset + DataLoader exactly as
  ``plada_train.scoring.score_reference`` drives it (shards of --shard-size,
  batches of --batch-size, inputs made ready on the device), without the
  model: the batches are only touched;
- ``legacy`` (with --legacy, or when this plada has no ``scoring.iter_inputs``):
  the path before issue 15 (float tensors normalised per image in the worker,
  one DataLoader, so one fork of the workers, per shard).

Every setting runs once per round, --repeat rounds, best of them (a shared
machine's load then falls on every setting alike). Prints images/s (wall
clock) and images per CPU second (this process and its reaped children: the
DataLoader workers or the loop's processes; the per-worker-process cost,
steady on a loaded machine), and the ratios of each plada row to the plain
loop with as many processes (workers=0 is compared with the 1-process loop).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def make_jpegs(root: Path, n: int, seed: int = 0, per_shard: int = 400) -> tuple[Path, Path]:
    """*n* JPEGs under root/folder and in tar shards under root/tar (same images)."""
    from PIL import Image

    folder, tars = root / "folder", root / "tar"
    folder.mkdir(parents=True)
    tars.mkdir()
    rng = np.random.default_rng(seed)
    blobs = []
    for i in range(n):
        h, w = (int(v) for v in rng.integers(300, 501, 2))
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        a = rng.uniform(0, 2 * np.pi, 3)
        f = rng.uniform(0.005, 0.05, 3)
        image = np.stack([127 + 100 * np.sin(f[c] * (xx * np.cos(a[c]) + yy * np.sin(a[c]))) for c in range(3)], -1)
        image += rng.normal(0, 12, image.shape)
        path = folder / f"{i:06d}.jpg"
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path, quality=90)
        blobs.append(path)
    for s in range(0, n, per_shard):
        with tarfile.open(tars / f"shard-{s // per_shard:05d}.tar", "w") as tar:
            for path in blobs[s:s + per_shard]:
                tar.add(path, arcname=path.name)
    return folder, tars


def _plain(args) -> int:
    """The decode limit: PIL open, decode, resize (short side), centre crop, uint8."""
    from PIL import Image

    paths, short, size, resample = args
    for path in paths:
        with Image.open(path) as image:
            image = image.convert("RGB")
            w, h = image.size
            scale = short / min(w, h)
            image = image.resize((max(short, round(w * scale)), max(short, round(h * scale))), resample)
            w, h = image.size
            left, top = (w - size) // 2, (h - size) // 2
            array = np.asarray(image.crop((left, top, left + size, top + size)))
            assert array.dtype == np.uint8
    return len(paths)


def _cpu() -> float:
    """CPU seconds of this process and of its reaped children (DataLoader workers, pool processes)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def plain_loop(paths: list[Path], processes: int, short: int, size: int, resample) -> tuple[float, float]:
    """(images/s, images per CPU second)."""
    start, cpu = time.perf_counter(), _cpu()
    if processes <= 1:
        _plain((paths, short, size, resample))
    else:
        chunks = [(paths[i::processes], short, size, resample) for i in range(processes)]
        pool = multiprocessing.get_context("fork").Pool(processes)
        pool.map(_plain, chunks)
        pool.close()
        pool.join()  # reaped: their CPU time is counted
    return len(paths) / (time.perf_counter() - start), len(paths) / (_cpu() - cpu)


def _touch(x: torch.Tensor) -> None:
    float(x.reshape(len(x), -1)[:, 0].sum())


def plada_path(refs, shard_size: int, batch_size: int, workers: int, legacy: bool) -> tuple[float, float]:
    """(images/s, images per CPU second, main process and workers together)."""
    from torch.utils.data import DataLoader

    from plada_train import scoring

    n = len(refs)
    shards = [(s, min(n, s + shard_size)) for s in range(0, n, shard_size)]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    start, cpu = time.perf_counter(), _cpu()
    if legacy or not hasattr(scoring, "iter_inputs"):
        # the path before issue 15, as _score_shard ran it: one DataLoader per shard
        for lo, hi in shards:
            loader = DataLoader(refs, batch_size=batch_size, sampler=range(lo, hi), num_workers=workers,
                                pin_memory=device.type == "cuda")
            for x, _ in loader:
                _touch(x.to(device, non_blocking=True))
    else:
        for _, x, _ in scoring.iter_inputs(refs, shards, batch_size=batch_size, workers=workers, device=device):
            _touch(x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start), n / (_cpu() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1200, help="JPEGs to make and read (default 1200)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--model", default="resnet18", help="a timm model whose eval transform is used")
    parser.add_argument("--shard-size", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--legacy", action="store_true", help="also measure the path before issue 15")
    parser.add_argument("--repeat", type=int, default=3, help="rounds over every setting; best of them (default 3)")
    parser.add_argument("--root", help="folder to write the JPEGs in (default: a temporary one)")
    args = parser.parse_args()

    from plada_train.data import open_reference
    from plada_train.preprocess import _pil_filter, preprocess_for

    torch.set_num_threads(1)
    pre = preprocess_for(None, args.model, 3)
    size = pre.input_size[0]
    short = int(size / pre.crop_pct)  # timm's eval Resize: math.floor(size / crop_pct)
    resample = _pil_filter(pre.interpolation)
    if args.root is not None:
        Path(args.root).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.root) as tmp:
        t0 = time.perf_counter()
        folder, tars = make_jpegs(Path(tmp), args.n)
        paths = sorted(folder.iterdir())
        mean_bytes = sum(p.stat().st_size for p in paths) / len(paths)
        print(f"{args.n} JPEGs (300-500 px, q90, {mean_bytes / 1024:.0f} KiB on average) made in "
              f"{time.perf_counter() - t0:.0f} s; {args.model}: resize {short} {pre.interpolation}, crop {size}; "
              f"CPUs {os.cpu_count()}, load {os.getloadavg()[0]:.1f}; shard {args.shard_size}, "
              f"batch {args.batch_size}; device {'cuda' if torch.cuda.is_available() else 'cpu'}")
        from plada_train import scoring

        refs = {}
        for kind, spec in (("folder", folder), ("tar", tars)):
            refs[kind] = open_reference(str(spec))
            refs[kind].set_preprocess(pre)
        which = ["plada"] + (["legacy"] if args.legacy and hasattr(scoring, "iter_inputs") else [])
        plain: dict[int, tuple[float, float]] = {}
        best: dict[tuple, tuple[float, float]] = {}
        # Rounds over every setting, best of --repeat each: a shared machine's load moves between
        # settings, and interleaving spreads it over all of them alike.
        for _ in range(args.repeat):
            for processes in sorted({max(1, w) for w in args.workers}):
                plain[processes] = _best(plain.get(processes), plain_loop(paths, processes, short, size, resample))
            for kind in refs:
                for path in which:
                    for workers in args.workers:
                        rates = plada_path(refs[kind], args.shard_size, args.batch_size, workers,
                                           legacy=path == "legacy")
                        best[path, kind, workers] = _best(best.get((path, kind, workers)), rates)
    rows = [("plain", "files", f"{p} process{'es' if p > 1 else ''}", *rates, 1.0, 1.0)
            for p, rates in plain.items()]
    rows += [(path, kind, f"{workers} workers", wall, cpu, wall / plain[max(1, workers)][0],
              cpu / plain[max(1, workers)][1]) for (path, kind, workers), (wall, cpu) in best.items()]
    print("\n| path | storage | processes | images/s | images per CPU s | vs plain loop, images/s | "
          "vs plain loop, per CPU s |")
    print("|---|---|---|---:|---:|---:|---:|")
    for which_, kind, procs, wall, cpu, ratio, cpu_ratio in rows:
        print(f"| {which_} | {kind} | {procs} | {wall:,.1f} | {cpu:,.1f} | {ratio:.2f}x | {cpu_ratio:.2f}x |")


def _best(a: tuple[float, float] | None, b: tuple[float, float]) -> tuple[float, float]:
    return b if a is None else (max(a[0], b[0]), max(a[1], b[1]))


if __name__ == "__main__":
    main()
