"""Scoring throughput on CPU: reference images/s with DataLoader workers 0, 1, 2.

    python benchmarks/bench_scoring.py [--reference builtin:pool] [--limit 20000] [--model smallcnn]

Scores the first --limit items of the reference with a freshly initialised
model (the weights do not change the cost) through plada_train's scoring path
(fixed-size shards, DataLoader over the reference Dataset), once per worker
count, and prints a table; ratios are to the 0-worker run of the same call.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from torch.utils.data import Subset

from plada_train.data import open_reference
from plada_train.distributed import Context
from plada_train.models import create_model
from plada_train.preprocess import preprocess_for
from plada_train.scoring import score_reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", default="builtin:pool")
    parser.add_argument("--limit", type=int, default=20000)
    parser.add_argument("--model", default="smallcnn")
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--repeat", type=int, default=2, help="best of this many runs per setting")
    args = parser.parse_args()

    refs = open_reference(args.reference)
    model = create_model(args.model, 10, args.channels).eval()
    refs.set_preprocess(preprocess_for(model, args.model, args.channels, args.image_size))
    data = Subset(refs, range(min(args.limit, len(refs))))
    print(f"reference {args.reference}: {len(data)} of {len(refs)} items; model {args.model}; "
          f"torch threads {torch.get_num_threads()}; CPUs {os.cpu_count()}; batch {args.batch_size}")
    rows = []
    for workers in args.workers:
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            score_reference(model, data, Context(), batch_size=args.batch_size, workers=workers)
            best = min(best, time.perf_counter() - start)
        rows.append((workers, best))
    base = rows[0][1]
    print("\n| DataLoader workers | seconds | images/s | vs first row |")
    print("|---:|---:|---:|---:|")
    for workers, seconds in rows:
        print(f"| {workers} | {seconds:.2f} | {len(data) / seconds:,.0f} | {base / seconds:.2f}x |")


if __name__ == "__main__":
    main()
