"""Throughput on one device: reference images scored per second, student steps per second,
peak GPU memory. Runs on CUDA (bf16 autocast, as produce and consume do there) or on the CPU
(full precision, as there; or, with --cpu-bf16, under ``torch.autocast("cpu", dtype=torch.bfloat16)``
standing in for CUDA's: the rehearsal of scripts/gpu-check.sh, scripts/gpu-rehearsal.sh).

    python benchmarks/bench_gpu.py [--device auto|cpu|cuda] [--cpu-bf16] [--reference builtin:pool]
                                   [--limit N] [--model smallcnn] [--student-steps N] [--batch-size B]
                                   [--workers W] [--json OUT.json]

Both phases go through plada_train's own code: ``score_reference`` over the first --limit
reference items (fixed-size shards, DataLoader, autocast), and ``train_classifier`` with the
default StudentRecipe's augmentation on the first 4,500 reference items (the demo's 5% budget)
with stand-in labels, as ``consume`` trains. A short warm-up of each phase runs first (CUDA
context, cuDNN autotuning, first DataLoader), outside the timing. Peak GPU memory is
``torch.cuda.max_memory_allocated`` over the timed phase (reset before it); on the CPU the column
says n/a. The last lines are one table; ``--json`` also writes the figures to a file
(``scripts/gpu-check.sh`` reads them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace

import numpy as np
import torch
from torch.utils.data import Subset

from plada_train.data import LabelledSubset, open_reference
from plada_train.distributed import Context, pick_device
from plada_train.models import create_model
from plada_train.preprocess import preprocess_for
from plada_train.recipes import StudentRecipe
from plada_train.scoring import score_reference
from plada_train.train import train_classifier


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(device: torch.device, fn) -> tuple[float, int | None]:
    """(seconds, peak bytes allocated on the GPU or None) of fn()."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return seconds, peak


def force_bf16_autocast() -> None:
    """plada's autocast (engine's, and every plada_train module's copy of it) made bf16 on the CPU
    too, as it is on CUDA."""
    from plada_train import train as engine

    original = engine.autocast

    def bf16(device: torch.device):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    for name, module in list(sys.modules.items()):
        if name.split(".")[0] == "plada_train" and getattr(module, "autocast", None) is original:
            module.autocast = bf16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    parser.add_argument("--cpu-bf16", action="store_true",
                        help="on the CPU, bf16 autocast as on CUDA (plada's own keeps the CPU in float32)")
    parser.add_argument("--reference", default="builtin:pool")
    parser.add_argument("--limit", type=int, default=None, help="score the first N items (default: all)")
    parser.add_argument("--model", default="smallcnn", help="scored by and trained as (built-in or timm name)")
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=256, help="scoring batch")
    parser.add_argument("--student-steps", type=int, default=300)
    parser.add_argument("--student-batch", type=int, default=StudentRecipe().batch_size)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers in both phases")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    device = pick_device(args.device)
    if args.cpu_bf16:
        force_bf16_autocast()
    autocast = "bf16" if device.type == "cuda" or args.cpu_bf16 else "off"
    context = Context(device=device)
    refs = open_reference(args.reference)
    model = create_model(args.model, 10, args.channels)
    refs.set_preprocess(preprocess_for(model, args.model, args.channels, args.image_size))
    n = len(refs) if args.limit is None else min(args.limit, len(refs))
    scored = Subset(refs, range(n))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device {device} ({name}); torch {torch.__version__}; model {args.model}; reference {args.reference} "
          f"({n:,} of {len(refs):,} scored); autocast {autocast}; workers {args.workers}; CPUs {os.cpu_count()}",
          flush=True)

    def score(items) -> None:
        score_reference(model, items, context, batch_size=args.batch_size, workers=args.workers)

    score(Subset(refs, range(min(n, 2 * args.batch_size))))  # warm-up
    score_s, score_peak = _timed(device, lambda: score(scored))

    k = min(4500, len(refs))
    labels = np.random.default_rng(0).integers(0, 10, k)
    virtual = LabelledSubset(refs, np.arange(k), labels)
    recipe = StudentRecipe(steps=args.student_steps, batch_size=args.student_batch, workers=args.workers,
                           checkpoint_every=0)

    def train(steps: int) -> None:
        student = create_model(args.model, 10, args.channels)
        train_classifier(student, virtual, replace(recipe, steps=steps), context)

    train(min(10, args.student_steps))  # warm-up
    train_s, train_peak = _timed(device, lambda: train(args.student_steps))

    if args.json:
        figures = {"device": str(device), "device_name": name, "torch": torch.__version__,
                   "cuda": torch.version.cuda, "model": args.model, "workers": args.workers, "autocast": autocast,
                   "scoring": {"images": n, "batch_size": args.batch_size, "seconds": score_s,
                               "images_per_s": n / score_s, "peak_gpu_bytes": score_peak},
                   "student": {"steps": args.student_steps, "batch_size": args.student_batch, "seconds": train_s,
                               "steps_per_s": args.student_steps / train_s, "peak_gpu_bytes": train_peak}}
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)

    def memory(peak: int | None) -> str:
        return "n/a" if peak is None else f"{peak / 2**20:,.0f} MiB"

    print()
    print("| device | autocast | phase | work | seconds | rate | peak GPU memory |")
    print("|---|---|---|---:|---:|---:|---:|")
    print(f"| {device.type} | {autocast} | scoring (batch {args.batch_size}) | {n:,} images | {score_s:.2f} | "
          f"{n / score_s:,.0f} images/s | {memory(score_peak)} |")
    print(f"| {device.type} | {autocast} | student training (batch {args.student_batch}) | "
          f"{args.student_steps:,} steps | "
          f"{train_s:.2f} | {args.student_steps / train_s:,.1f} steps/s | {memory(train_peak)} |")


if __name__ == "__main__":
    main()
