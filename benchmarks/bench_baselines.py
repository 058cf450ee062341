"""The bandwidth-accuracy curves of the README: PLADA against the pixel and
weight baselines (``plada_train.baselines``) on two tasks from the offline data.

    python benchmarks/bench_baselines.py                 # both tasks, 3 student seeds
    python benchmarks/bench_baselines.py --task mnist    # one
    python benchmarks/bench_baselines.py --steps 100 --seeds 0   # a quick look

- ``mnist``: target MNIST (train 50k, test 10k), reference the built-in pool
  (MNIST valid 10k + Fashion-MNIST 70k + Animal-MNIST 10k): in domain,
  low-energy selection.
- ``fashion``: target Fashion-MNIST (train 60k, test 10k), reference MNIST
  (train + valid, 60k) + Animal-MNIST 10k: far out of domain, high-energy
  selection (the paper's regime for such tasks).

Results (resumable) go to ``benchmarks/results/baselines-<task>/``; the table
is printed and the plot written there.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def _fashion_task(folder: Path) -> tuple[str, str]:
    from plada_train.data import load_animal_mnist, load_fashion_mnist, load_mnist

    target, pool = folder / "fashion-target.npz", folder / "fashion-far-pool.npz"
    if not target.exists():
        fashion = load_fashion_mnist()
        np.savez(target, x_train=fashion["train"].images, y_train=fashion["train"].labels,
                 x_test=fashion["test"].images, y_test=fashion["test"].labels)
    if not pool.exists():
        mnist = load_mnist()
        np.savez(pool, x=np.concatenate([mnist["train"].images, mnist["valid"].images, load_animal_mnist().images]))
    return str(target), str(pool)


def main() -> None:
    from plada_train.baselines import run_baselines
    from plada_train.recipes import StudentRecipe, TeacherRecipe

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=["mnist", "fashion", "both"], default="both")
    parser.add_argument("--steps", type=int, default=300, help="student steps (default 300)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tasks = ["mnist", "fashion"] if args.task == "both" else [args.task]
    for task in tasks:
        if task == "mnist":
            target, reference, mode = "builtin:mnist", "builtin:pool", "low"
        else:
            target, reference = _fashion_task(args.out)
            mode = "high"
        start = time.perf_counter()
        report = run_baselines(target, reference, args.out / f"baselines-{task}", keeps=(0.01, 0.05),
                               per_class=(1, 10, 50), sparsities=(0.5, 0.9), seeds=tuple(args.seeds), mode=mode,
                               student_recipe=StudentRecipe().with_(steps=args.steps),
                               teacher_recipe=TeacherRecipe(), device="cpu")
        print(f"\n## {task}: target {target}, reference {reference}, {mode}-energy PLADA, "
              f"{args.steps} student steps, seeds {args.seeds} ({time.perf_counter() - start:.0f} s)\n")
        print(report.table(), flush=True)


if __name__ == "__main__":
    main()
