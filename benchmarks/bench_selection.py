"""Selection over the paper's reference size: the old algorithm vs this one, side by side.

    python benchmarks/bench_selection.py [--n 14200000] [--keep 0.01] [--share 0.5] [--alpha -0.2]

Synthetic scores for N reference images (default 14.2M, ImageNet-21K's size):
pseudo-labels drawn from a long-tailed (Zipf 1.1) distribution over C classes,
float32 energies normal around a per-class offset (so the lowest energies
crowd into a few classes, the case the Safety-Net is for). For C = 21,841 and
C = 10, with and without the Safety-Net, each row runs the old algorithm
(``_old_select`` below: plada_train/selection.py before this change,
reimplemented from git history) and the current ``select`` on the same data
in the same process, and prints seconds, peak extra memory (tracemalloc,
which sees numpy's buffers; the inputs are not counted) and their ratios.
Each side gets labels as its scores file stores them: int64 before, the
smallest integer type now. ``same`` checks that both keep the same indices
and quotas. Peak memory includes what tracing itself allocates (small).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from plada_train.selection import (
    apportion,
    budget_for,
    effective_spread,
    label_dtype,
    select,
    spread_order,
)


def _old_order_for(scores: np.ndarray, mode: str, seed: int = 0) -> np.ndarray:
    if mode == "low":
        return np.argsort(scores, kind="stable")
    if mode == "high":
        return np.lexsort((np.arange(scores.size), -scores.astype(np.float64)))
    return np.random.default_rng(seed).permutation(scores.size)


def _old_select(scores, labels, *, n_classes, keep=None, budget=None, mode="low", safety_share=0.0,
                alpha=0.0, seed=0, spread=1.0):
    """select() as of the commit before this benchmark: a full stable argsort for the
    order, then a second stable argsort of the ordered labels for ranks within classes."""
    scores = np.asarray(scores)
    labels = np.asarray(labels, dtype=np.int64)
    n = scores.size
    total = budget_for(n, keep, budget)
    order = spread_order(_old_order_for(scores, mode, seed), spread, total)
    spread = effective_spread(spread, n, total)
    counts = np.bincount(labels, minlength=n_classes)
    reserve = int(np.floor(safety_share * total + 1e-9))
    weights = np.zeros(n_classes)
    present = counts > 0
    weights[present] = counts[present].astype(np.float64) ** alpha
    quotas = apportion(reserve, weights, counts) if reserve else np.zeros(n_classes, np.int64)
    taken = np.zeros(n, dtype=bool)
    if reserve:
        ordered_labels = labels[order]
        by_class = np.argsort(ordered_labels, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.empty(n, dtype=np.int64)
        rank[by_class] = np.arange(n) - np.repeat(starts, counts)
        taken[order[rank < quotas[ordered_labels]]] = True
    rest = total - int(taken.sum())
    if rest:
        candidates = order[~taken[order]]
        taken[candidates[:rest]] = True
    return np.flatnonzero(taken).astype(np.int64), quotas


def synthetic(n: int, n_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(10, n_classes + 10, dtype=np.float64) ** 1.1
    cdf = np.cumsum(weights / weights.sum())
    labels = rng.permutation(n_classes)[np.minimum(np.searchsorted(cdf, rng.random(n)), n_classes - 1)]
    offsets = rng.standard_normal(n_classes).astype(np.float32)
    scores = rng.standard_normal(n, dtype=np.float32)
    scores += offsets[labels]
    return scores, labels.astype(np.int64)


def measure(fn, *args, **kwargs):
    """(result, seconds, peak MB allocated beyond what was live before the call)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    return result, seconds, peak / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=14_200_000)
    parser.add_argument("--classes", type=int, nargs="+", default=[21_841, 10])
    parser.add_argument("--keep", type=float, default=0.01)
    parser.add_argument("--share", type=float, default=0.5)
    parser.add_argument("--alpha", type=float, default=-0.2)
    args = parser.parse_args()

    print(f"N = {args.n:,}, keep {args.keep}, mode low; Safety-Net share {args.share}, alpha {args.alpha}")
    header = ("| C | Safety-Net | old s | new s | speed-up | old MB | new MB | memory ratio | same |\n"
              "|---:|---|---:|---:|---:|---:|---:|---:|---|")
    rows = []
    for n_classes in args.classes:
        scores, labels64 = synthetic(args.n, n_classes)
        small = labels64.astype(label_dtype(n_classes))
        print(f"C = {n_classes:,}: labels stored as int64 {labels64.nbytes / 1e6:.1f} MB before, "
              f"{small.dtype} {small.nbytes / 1e6:.1f} MB now", flush=True)
        for share in (0.0, args.share):
            options = dict(n_classes=n_classes, keep=args.keep, safety_share=share, alpha=args.alpha)
            (old_idx, old_q), old_s, old_mb = measure(_old_select, scores, labels64, **options)
            new, new_s, new_mb = measure(select, scores, small, **options)
            same = np.array_equal(old_idx, new.indices) and np.array_equal(old_q, new.quotas)
            del old_idx, old_q, new
            rows.append(f"| {n_classes:,} | {'s = ' + str(share) if share else 'none'} | {old_s:.2f} | "
                        f"{new_s:.2f} | {old_s / new_s:.1f}x | {old_mb:.0f} | {new_mb:.0f} | "
                        f"{new_mb / old_mb:.2f} | {'yes' if same else 'NO'} |")
            print(rows[-1], flush=True)
    print()
    print(header)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
