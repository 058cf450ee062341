"""Selection rules (plada_train.selection docstring), property-tested."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from plada_train.selection import apportion, select


@st.composite
def scored(draw):
    n = draw(st.integers(1, 300))
    n_classes = draw(st.integers(1, 12))
    scores = np.array(draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n)), dtype=np.float64)
    labels = np.array(draw(st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n)))
    return scores, labels, n_classes


@given(scored(), st.floats(0.001, 1.0), st.sampled_from(["low", "high", "random"]),
       st.floats(0.0, 1.0), st.sampled_from([-0.2, 0.0, 0.5, 1.0]))
def test_safety_net_invariants(case, keep, mode, share, alpha):
    scores, labels, n_classes = case
    result = select(scores, labels, n_classes=n_classes, keep=keep, mode=mode, safety_share=share, alpha=alpha)
    budget = int(np.floor(keep * scores.size + 1e-9))
    assert result.indices.size == budget  # budget met exactly
    assert np.all(np.diff(result.indices) > 0)  # sorted, no duplicates
    counts = np.bincount(labels, minlength=n_classes)
    reserve = int(np.floor(share * budget + 1e-9))
    assert result.quotas.sum() == min(reserve, scores.size)
    assert np.all(result.quotas <= counts)  # capped at what a class has
    assert np.all(result.quotas[counts == 0] == 0)
    kept = np.bincount(labels[result.indices], minlength=n_classes)
    assert np.all(kept >= result.quotas)  # every class keeps min(quota, available)
    again = select(scores, labels, n_classes=n_classes, keep=keep, mode=mode, safety_share=share, alpha=alpha)
    np.testing.assert_array_equal(again.indices, result.indices)  # deterministic


@given(scored(), st.floats(0.01, 1.0))
def test_plain_low_energy_keeps_the_lowest(case, keep):
    scores, labels, n_classes = case
    result = select(scores, labels, n_classes=n_classes, keep=keep, mode="low")
    if 0 < result.indices.size < scores.size:
        rest = np.setdiff1d(np.arange(scores.size), result.indices)
        assert scores[result.indices].max() <= scores[rest].min()
        high = select(scores, labels, n_classes=n_classes, keep=keep, mode="high")
        rest = np.setdiff1d(np.arange(scores.size), high.indices)
        assert scores[high.indices].min() >= scores[rest].max()


def _expected_order(scores: np.ndarray, mode: str) -> np.ndarray:
    """Best first, ties by lower index: the module docstring's rule 2, computed here independently."""
    key = scores if mode == "low" else -scores
    return np.array(sorted(range(scores.size), key=lambda i: (key[i], i)), dtype=np.int64)


@given(scored(), st.floats(0.001, 1.0), st.sampled_from(["low", "high"]), st.floats(0.0, 1.0),
       st.sampled_from([-0.2, 0.0, 1.0]))
def test_safety_net_keeps_the_best_within_each_class(case, keep, mode, share, alpha):
    """Within every class the kept images are that class's best ones (a prefix of
    its images in the mode's order) and number at least the class's quota: stage 1
    takes each class's K_c best, stage 2 the globally best of the rest."""
    scores, labels, n_classes = case
    result = select(scores, labels, n_classes=n_classes, keep=keep, mode=mode, safety_share=share, alpha=alpha)
    kept = np.zeros(scores.size, dtype=bool)
    kept[result.indices] = True
    order = _expected_order(scores, mode)
    for c in range(n_classes):
        in_class = order[labels[order] == c]  # class c, best first
        n_kept = int(kept[in_class].sum())
        assert n_kept >= result.quotas[c]
        assert kept[in_class[:n_kept]].all(), f"class {c} kept a worse image over a better one"


def test_stage_one_takes_the_best_of_a_class_not_the_worst():
    # class 1 holds scores 10, 11, 12; its quota of 2 must take 10 and 11.
    scores = np.array([0.0, 1.0, 2.0, 3.0, 12.0, 10.0, 11.0])
    labels = np.array([0, 0, 0, 0, 1, 1, 1])
    net = select(scores, labels, n_classes=2, budget=4, safety_share=1.0, alpha=0.0)
    assert net.quotas.tolist() == [2, 2]
    assert net.indices.tolist() == [0, 1, 5, 6]


def test_quota_examples():
    # alpha = 0: uniform; alpha = 1: proportional; alpha < 0 favours the tail.
    counts = np.array([100, 10, 1])
    assert apportion(9, counts ** 0.0, np.array([100, 10, 5])).tolist() == [3, 3, 3]
    assert apportion(9, counts ** 0.0, counts).tolist() == [4, 4, 1]  # class 2 capped at 1
    assert apportion(9, np.where(counts > 0, counts ** 1.0, 0), counts).tolist() == [8, 1, 0]
    # alpha = -0.2: weights .40 : .63 : 1; classes 2 and then 1 hit their caps and
    # pass their excess on: first round 6/9/15 -> caps 1, then 11/18 -> cap 10.
    assert apportion(30, counts.astype(float) ** -0.2, counts).tolist() == [19, 10, 1]
    assert apportion(12, counts.astype(float) ** -0.2, np.array([100, 100, 100])).tolist() == [2, 4, 6]


def test_stage_two_fills_with_global_best():
    scores = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    labels = np.array([0, 0, 0, 0, 0, 1])
    plain = select(scores, labels, n_classes=2, budget=2)
    assert plain.indices.tolist() == [0, 1]  # class 1 collapses without a net
    net = select(scores, labels, n_classes=2, budget=2, safety_share=1.0, alpha=0.0)
    assert net.indices.tolist() == [0, 5] and net.quotas.tolist() == [1, 1]


def test_bad_arguments():
    with pytest.raises(ValueError, match="exactly one"):
        select(np.zeros(3), np.zeros(3, int), n_classes=1)
    with pytest.raises(ValueError, match="keep must be"):
        select(np.zeros(3), np.zeros(3, int), n_classes=1, keep=1.5)
    with pytest.raises(ValueError, match="mode"):
        select(np.zeros(3), np.zeros(3, int), n_classes=1, keep=0.5, mode="median")
    with pytest.raises(ValueError, match="labels must lie"):
        select(np.zeros(3), np.array([0, 1, 2]), n_classes=2, keep=0.5)


def test_spread_keeps_evenly_spaced_ranks_of_the_order():
    # Hand-computed: scores are their own ranks, so rank r is index r.
    scores = np.arange(10, dtype=np.float64)
    labels = np.zeros(10, dtype=np.int64)
    assert select(scores, labels, n_classes=1, budget=3, spread=2.0).indices.tolist() == [0, 2, 4]
    # floor(i * 1.5) for i = 0..3 is 0, 1, 3, 4
    assert select(scores, labels, n_classes=1, budget=4, spread=1.5).indices.tolist() == [0, 1, 3, 4]
    # 6 of 10 at spread 3: 3 * 6 > 10, so s' = 10 / 6 and the ranks are floor(i * 10 / 6), i < 6
    capped = select(scores, labels, n_classes=1, budget=6, spread=3.0)
    assert capped.indices.tolist() == [0, 1, 3, 5, 6, 8] and capped.params["spread"] == 10 / 6
    assert select(scores, labels, n_classes=1, budget=6, spread=100.0).indices.tolist() == [0, 1, 3, 5, 6, 8]
    # 8 of 8 at any spread: everything, and nothing was thinned
    everything = select(scores[:8], labels[:8], n_classes=1, budget=8, spread=2.0)
    assert everything.indices.tolist() == list(range(8)) and "spread" not in everything.params
    assert "spread" not in select(scores, labels, n_classes=1, budget=0, spread=2.0).params
    # 22 of 30 at spread 2, capped at 30 / 22: the exact grid floor(i * 30 / 22) has 15 at
    # i = 11 (330 / 22 = 15), where a float grid 11 * (30 / 22) can floor to 14.
    many = np.arange(30, dtype=np.float64)
    capped = select(many, np.zeros(30, int), n_classes=1, budget=22, spread=2.0)
    assert capped.indices.tolist() == [0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 15, 16, 17, 19, 20, 21, 23, 24, 25,
                                       27, 28]
    # "high" thins its own order: ranks 0, 2, 4 of 9, 8, 7, ... are 9, 7, 5
    assert select(scores, labels, n_classes=1, budget=3, mode="high", spread=2.0).indices.tolist() == [5, 7, 9]
    assert select(scores, labels, n_classes=1, budget=3, spread=2.0).params["spread"] == 2.0
    assert "spread" not in select(scores, labels, n_classes=1, budget=3).params


def test_spread_with_safety_net_takes_each_class_first_images_in_the_thinned_order():
    # Class 0 holds indices 0-7 (scores 0-7), class 1 indices 8-9 (scores 8, 9).
    # Thinned order: 0, 2, 4, 6, 8 (ranks 0, 2, ...), then 1, 3, 5, 7, 9.
    scores = np.arange(10, dtype=np.float64)
    labels = np.array([0] * 8 + [1] * 2)
    net = select(scores, labels, n_classes=2, budget=4, spread=2.0, safety_share=1.0, alpha=0.0)
    assert net.quotas.tolist() == [2, 2]
    assert net.indices.tolist() == [0, 2, 8, 9]  # class 0's first two in the thinned order


@given(scored(), st.floats(0.001, 1.0), st.sampled_from(["low", "high"]), st.floats(0.0, 1.0),
       st.floats(1.0, 4.0))
def test_spread_keeps_the_budget_and_the_safety_net_invariants(case, keep, mode, share, spread):
    scores, labels, n_classes = case
    result = select(scores, labels, n_classes=n_classes, keep=keep, mode=mode, safety_share=share, spread=spread)
    budget = int(np.floor(keep * scores.size + 1e-9))
    assert result.indices.size == budget and np.all(np.diff(result.indices) > 0)
    kept = np.bincount(labels[result.indices], minlength=n_classes)
    assert np.all(kept >= result.quotas)
    if share == 0.0:
        # Without a net the kept set is ranks floor(i * spread), then the best remaining ranks.
        from fractions import Fraction

        n = scores.size
        order = _expected_order(scores, mode)
        if budget and Fraction(spread) >= Fraction(n, budget):  # capped at n / B: floor(i * n / B), exactly
            ranks = [i * n // budget for i in range(budget)]
        else:
            ranks = [r for r in (int(np.floor(i * spread)) for i in range(n + 1)) if r < n][:budget]
        assert sorted(order[ranks].tolist()) == result.indices.tolist()


def test_spread_below_one_or_with_a_random_order_is_refused():
    for bad in (0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="spread must be"):
            select(np.zeros(3), np.zeros(3, int), n_classes=1, keep=0.5, spread=bad)
    with pytest.raises(ValueError, match="random order"):
        select(np.zeros(3), np.zeros(3, int), n_classes=1, keep=0.5, mode="random", spread=2.0)


def test_spread_grid_does_not_lose_its_last_rank_to_rounding():
    # n / spread is 5.0000000000000004, which rounds to 5.0, so ceil() gives 5 grid points where
    # floor(i * s) for i = 0..5 has 6 below n = 8: 0, 1, 3, 4, 6, 7.
    scores = np.arange(8, dtype=np.float64)
    spread = 1.5999999999999999
    result = select(scores, np.zeros(8, int), n_classes=1, budget=5, spread=spread)
    assert result.indices.tolist() == [0, 1, 3, 4, 6]
    from plada_train.selection import spread_order

    assert spread_order(np.arange(8), spread, 5).tolist()[:6] == [0, 1, 3, 4, 6, 7]
