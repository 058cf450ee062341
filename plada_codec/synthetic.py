"""Synthetic PLADA selections for tests, vectors and bandwidth benchmarks.

Real selections over ImageNet-21K are far from uniform: the reference set is
stored grouped by synset, kept images cluster in the synsets related to the
task, and neighbours tend to share a label. :func:`clustered_selection` makes
selections with that structure; :func:`uniform_selection` makes the
structureless case that the information limit is computed for.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["uniform_selection", "clustered_selection", "synset_bounds", "safety_net_selection", "periodic_selection",
           "class_names", "information_limit_bytes"]


def uniform_selection(n_ref: int, count: int, n_classes: int, seed: int = 0):
    """*count* indices uniformly at random, labels independent and uniform."""
    rng = np.random.default_rng(seed)
    if count > n_ref:
        raise ValueError("count exceeds n_ref")
    indices = np.sort(rng.choice(n_ref, count, replace=False))
    labels = rng.integers(0, n_classes, count)
    return indices.astype(np.int64), labels.astype(np.int64)


def synset_bounds(n_ref: int, synset_size: int = 650) -> np.ndarray:
    """Where :func:`clustered_selection` cuts [0, n_ref) into synsets: synset s
    is ``bounds[s] <= index < bounds[s + 1]``."""
    return np.linspace(0, n_ref, max(1, n_ref // synset_size) + 1).astype(np.int64)


def clustered_selection(
    n_ref: int,
    count: int,
    n_classes: int,
    seed: int = 0,
    *,
    synset_size: int = 650,
    related_per_class: int = 3,
    related_share: float = 0.7,
    label_purity: float = 0.85,
):
    """A selection shaped like low-energy PLADA picks from a synset-ordered set.

    The reference set is cut into synsets of about *synset_size* items. Each
    class has *related_per_class* related synsets; *related_share* of the kept
    items come from those (densely; from about 4% keep of a 14M set on, every
    related synset is taken whole), the rest are scattered uniformly over the
    lower part of the set (the smallest of twice as many uniform draws: about
    its lower half; kept so because the test vectors and every published
    figure were made with it). Every synset has a class (a related one its
    class's, any other a random one); a kept item takes its synset's class
    with probability *label_purity*, else a uniformly random class.
    """
    rng = np.random.default_rng(seed)
    bounds = synset_bounds(n_ref, synset_size)
    n_synsets = bounds.size - 1
    synset_class = rng.integers(0, n_classes, n_synsets)
    n_related = min(n_synsets, n_classes * related_per_class)
    related = rng.choice(n_synsets, n_related, replace=False)
    synset_class[related] = np.arange(n_related) % n_classes
    related_items = np.concatenate([np.arange(bounds[s], bounds[s + 1]) for s in related])
    want_related = min(int(round(count * related_share)), related_items.size)
    # Denser picks in a few synsets: weight each related synset by a Zipf-like factor.
    weights = np.repeat(1.0 / rng.uniform(0.2, 3.0, n_related) ** 2, np.diff(bounds)[related])
    picked = rng.choice(related_items, want_related, replace=False, p=weights / weights.sum())
    mask = np.zeros(n_ref, dtype=bool)
    mask[picked] = True
    rest = count - int(mask.sum())
    while rest > 0:
        extra = rng.integers(0, n_ref, rest * 2)
        extra = np.unique(extra[~mask[extra]])[:rest]
        mask[extra] = True
        rest = count - int(mask.sum())
    indices = np.flatnonzero(mask).astype(np.int64)
    synset_of = np.searchsorted(bounds, indices, side="right") - 1
    labels = synset_class[synset_of]
    noisy = rng.random(count) > label_purity
    labels[noisy] = rng.integers(0, n_classes, int(noisy.sum()))
    return indices, labels.astype(np.int64)


def information_limit_bytes(n_ref: int, count: int, n_classes: int) -> float:
    """log2 C(n_ref, count) + count*log2(n_classes) bits, in bytes: the size no
    code can beat on a uniformly random selection with uniform labels."""
    log2_choose = (math.lgamma(n_ref + 1) - math.lgamma(count + 1) - math.lgamma(n_ref - count + 1)) / math.log(2)
    return (log2_choose + count * math.log2(n_classes)) / 8


def safety_net_selection(
    n_ref: int,
    count: int,
    n_classes: int,
    seed: int = 0,
    *,
    share: float = 0.5,
    label_noise: float = 0.0,
):
    """A clustered selection whose *share* of the budget is a Safety-Net: every
    class gets an equal quota of items scattered over the whole set, labelled
    with that class (the pick of a per-class best-energy stage); then
    *label_noise* of all labels are replaced by uniform ones."""
    rng = np.random.default_rng(seed)
    reserve = int(share * count)
    core_indices, core_labels = clustered_selection(n_ref, count - reserve, n_classes, seed)
    free = np.ones(n_ref, dtype=bool)
    free[core_indices] = False
    picks = np.flatnonzero(free)[rng.choice(n_ref - core_indices.size, reserve, replace=False)]
    indices = np.concatenate([core_indices, picks])
    labels = np.concatenate([core_labels, np.arange(reserve) % n_classes])
    order = np.argsort(indices)
    indices, labels = indices[order], labels[order]
    noisy = rng.random(count) < label_noise
    labels[noisy] = rng.integers(0, n_classes, int(noisy.sum()))
    return indices.astype(np.int64), labels.astype(np.int64)


def periodic_selection(n_ref: int, count: int, n_classes: int, seed: int = 0):
    """One contiguous run of *count* items whose labels cycle through the
    classes (0, 1, ..., C - 1, 0, ...): the shape where Zstandard over a 1.0
    layout beats the context model."""
    rng = np.random.default_rng(seed)
    start = int(rng.integers(0, n_ref - count + 1))
    return np.arange(start, start + count, dtype=np.int64), np.arange(count, dtype=np.int64) % n_classes


def class_names(n_classes: int, seed: int = 0) -> list[str]:
    """ImageNet-like class names: a WordNet id and one to three made-up words
    (``"n01440764 tench, kolari"``), about 20-30 bytes each."""
    rng = np.random.default_rng(seed)
    syllables = ["ba", "ko", "ri", "ten", "ch", "ma", "lo", "sa", "ur", "quel", "ne", "ta", "fi", "gor",
                 "hu", "zi", "pa", "del", "mon", "ve", "ar", "is", "tro", "cle"]
    wnids = np.sort(rng.choice(15_000_000, n_classes, replace=False)) + 1_000_000
    names = []
    for wnid in wnids:
        words = ["".join(syllables[s] for s in rng.integers(0, len(syllables), rng.integers(2, 5)))
                 for _ in range(int(rng.integers(1, 4)))]
        names.append(f"n{wnid:08d} " + ", ".join(words))
    return names
