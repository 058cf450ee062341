"""What the baselines' tests share: a quick task (120 images a split of the built-in miniature)."""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def quick_task(tmp_path_factory):
    """(target .npz, reference .npz): MNIST 120 train / 100 test, the pool's first 120 a part."""
    from plada_train.data import load_miniature

    base = tmp_path_factory.mktemp("task")
    mini = load_miniature(limit=120)
    target, pool = base / "target.npz", base / "pool.npz"
    np.savez(target, x_train=mini.target_train.images, y_train=mini.target_train.labels,
             x_test=mini.target_test.images[:100], y_test=mini.target_test.labels[:100])
    np.savez(pool, x=mini.pool.images)
    return str(target), str(pool)
