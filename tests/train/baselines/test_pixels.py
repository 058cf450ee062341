"""The pixel baselines (plada_train.baselines.pixels): K-Center against a brute-force search."""

from __future__ import annotations

import numpy as np
import pytest

from plada_train import baselines


def _brute_kcenter(points: np.ndarray, m: int) -> list[int]:
    n = len(points)
    mean = [sum(points[i][d] for i in range(n)) / n for d in range(points.shape[1])]
    def dist(a, b):
        return sum((x - y) ** 2 for x, y in zip(a, b))
    chosen = [min(range(n), key=lambda i: (dist(points[i], mean), i))]
    while len(chosen) < m:
        best = max(range(n), key=lambda i: (min(dist(points[i], points[c]) for c in chosen), -i))
        chosen.append(best)
    return chosen


@pytest.mark.parametrize("seed", range(5))
def test_kcenter_matches_brute_force(seed):
    points = np.random.default_rng(seed).normal(size=(25, 3))
    assert baselines.kcenter_greedy(points, 7).tolist() == _brute_kcenter(points, 7)
