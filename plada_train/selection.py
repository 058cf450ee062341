"""Which reference images to keep: percentile filtering and the Safety-Net.

Pure numpy (no torch), so its rules are property-tested directly. The paper
(section 2.6) leaves the Safety-Net's share, rounding, capping and overlap
unspecified; the rules below are this project's, and tests pin each of them.

Rules
-----
1. Budget: ``B = budget`` if given, else ``floor(keep * n)``; ``0 <= B <= n``.
   Exactly B distinct indices are returned, sorted ascending.
2. Order (the modes of :data:`ORDERS`): ``low`` keeps the lowest scores
   first (low energy = confident, in-domain), ``high`` the highest (far-OOD),
   ``ends`` the lowest and the highest in turn (lowest, highest, 2nd lowest,
   2nd highest, ...; an image already taken is skipped), for a task whose
   regime is unknown (the paper gives no rule to tell), ``random`` a seeded
   permutation. Ties break by lower index, so selection is deterministic.
   NaN scores come last in ``low``, ``high`` and ``ends``, by index; -0.0
   ties with 0.0. Spread ``s >= 1`` (default 1, the paper's rule; ``low``
   and ``high`` only) thins the order for coverage: with ``s' = min(s, n / B)``, the ranks
   ``floor(i * s')`` for i = 0, 1, ... come first, in that order, then every
   other rank in order. The first B images of the thinned order are spread
   evenly over the best ``s' * B <= n`` instead of being the B most typical
   ones. Stages 1 and 2 use the thinned order, so a class's quota takes the
   class's first images in it (not its best ones). ``s' >= n / B`` is decided
   exactly (as rationals), and then the ranks are ``floor(i * n / B)`` in
   integers. ``s'`` is recorded, as 1 (omitted) when nothing is thinned:
   B = 0 or B = n.
3. Safety-Net reserve: ``R = floor(share * B)`` slots are set aside for
   per-class quotas. ``N_c`` is the number of reference images whose pseudo
   label is c. Classes with ``N_c = 0`` have no candidates and get no quota
   (this also keeps negative alpha finite).
4. Quotas: R is apportioned to weights ``N_c ** alpha`` by largest remainders
   (Hamilton's method; equal remainders go to the lower class id). A quota
   above ``N_c`` is capped at ``N_c`` and the excess is re-apportioned over the
   uncapped classes, repeatedly, so ``sum K_c = min(R, n)``.
5. Stage 1: each class takes its K_c best images in the mode's order.
6. Stage 2: the remaining ``B - sum K_c`` slots take the best images in the
   mode's order among those not yet taken (no duplicates by construction).
   Every class with candidates therefore keeps at least ``K_c``.

Cost
----
At the paper's scale (N = 14.2M, C = 21,841) no step holds more than a few
arrays of N small items. For float32 scores (what scoring writes) the order
is one in-place sort of N uint64 keys (the score's order-preserving bits
above the index, so ties break by index without a stable sort), kept as
uint32 indices; without a Safety-Net or spread only the B best are needed,
so a partition replaces the sort. Stages 1 and 2 walk the order in chunks
and stop once their slots are filled; labels stay in their own (small)
integer type. Other score types take one stable argsort; a mode with no
packed key (``ends``) takes its own order: two stable argsorts of the scores
and one of N int64 positions (about 5 arrays of N int64 at its peak).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np


@dataclass(frozen=True)
class Mode:
    """One order of the reference images, best first (rule 2).

    ``order(scores, seed)`` gives every index, best first. ``invert`` says
    how the order follows from the score alone: ``False`` ascending, ``True``
    descending, with ties by index and NaN last; :func:`select` then sorts
    packed 64-bit keys instead of calling ``order`` (the fast path at the
    paper's scale). ``None``: only ``order`` knows it. ``wire`` is the name
    payload metadata records; ``spreads`` whether ``--spread`` thins it;
    ``by_score`` whether the order reads the scores at all; ``seeded`` whether
    it reads the seed (which metadata then records)."""

    name: str
    wire: str
    order: Callable[[np.ndarray, int], np.ndarray]
    summary: str
    invert: bool | None = None
    spreads: bool = False
    by_score: bool = True
    seeded: bool = False


def _ascending(scores: np.ndarray, seed: int = 0) -> np.ndarray:
    return np.argsort(scores, kind="stable")


def _descending(scores: np.ndarray, seed: int = 0) -> np.ndarray:
    return np.lexsort((np.arange(scores.size), -scores.astype(np.float64)))


def _both_ends(scores: np.ndarray, seed: int = 0) -> np.ndarray:
    # Position of each image in the interleaving low[0], high[0], low[1], high[1], ...: its
    # first appearance, min(2 * low rank, 2 * high rank + 1). Evens and odds never collide.
    n = scores.size
    rank_low, rank_high = np.empty(n, np.int64), np.empty(n, np.int64)
    rank_low[_ascending(scores)] = np.arange(n)
    rank_high[_descending(scores)] = np.arange(n)
    return np.argsort(np.minimum(2 * rank_low, 2 * rank_high + 1), kind="stable")


def _permutation(scores: np.ndarray, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(scores.size)


# The modes, by the name --mode takes: a new mode is one entry here.
ORDERS: dict[str, Mode] = {mode.name: mode for mode in (
    Mode("low", "low-energy", _ascending, "the most confident first (in-domain tasks)", invert=False, spreads=True),
    Mode("high", "high-energy", _descending, "the least confident first (far out-of-domain tasks)", invert=True,
         spreads=True),
    Mode("random", "random", _permutation, "a seeded draw, ignoring the scores", by_score=False, seeded=True),
    Mode("ends", "both-ends", _both_ends, "the most and the least confident in turn (regime unknown)"),
)}
MODES = tuple(ORDERS)
SPREAD_MODES = tuple(name for name, mode in ORDERS.items() if mode.spreads)


@dataclass
class Selection:
    """What :func:`select` chose: the reference indices, the Safety-Net quotas and its parameters."""

    indices: np.ndarray  # sorted, distinct int64
    quotas: np.ndarray  # K_c per class (zeros without a Safety-Net)
    params: dict = field(default_factory=dict)  # what went into it, for payload metadata


def budget_for(n: int, keep: float | None = None, budget: int | None = None) -> int:
    if (keep is None) == (budget is None):
        raise ValueError("give exactly one of keep (a fraction) or budget (a count)")
    if budget is not None:
        if not 0 <= budget <= n:
            raise ValueError(f"budget {budget} outside 0..{n}")
        return int(budget)
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    return int(np.floor(keep * n + 1e-9))


def effective_spread(spread: float, n: int, budget: int) -> float:
    """s' of rule 2: min(spread, n / budget), and 1 when nothing is thinned
    (an empty budget or order, or a budget of all n)."""
    if n == 0 or budget == 0 or budget == n:
        return 1.0
    return n / budget if _capped(spread, n, budget) else spread


def _capped(spread: float, n: int, budget: int) -> bool:
    # Exact rational comparison: the float n / budget can round either way.
    return Fraction(spread) >= Fraction(n, budget)


def spread_order(order: np.ndarray, spread: float, budget: int) -> np.ndarray:
    """*order* thinned by *spread* for a *budget* (rule 2): ranks
    floor(i * s') first, s' = min(spread, n / budget)."""
    n = order.size
    if spread == 1.0 or effective_spread(spread, n, budget) == 1.0:
        return order
    if _capped(spread, n, budget):  # s' = n / B exactly, in integers: floor(i * n / B)
        first = np.arange(budget, dtype=np.int64) * n // budget
    else:  # one grid point more than n / spread: ceil() of a float quotient can land one short
        first = np.floor(np.arange(int(np.ceil(n / spread)) + 1) * spread).astype(np.int64)
        first = first[first < n]  # strictly increasing for spread >= 1
    rest = np.ones(order.size, dtype=bool)
    rest[first] = False
    return np.concatenate([order[first], order[rest]])


def order_for(scores: np.ndarray, mode: str, seed: int = 0) -> np.ndarray:
    """Indices from best to worst under *mode* (ties by lower index)."""
    return _mode(mode).order(scores, seed)


def _mode(name: str) -> Mode:
    if name not in ORDERS:
        raise ValueError(f"mode must be one of {MODES}, got {name!r}")
    return ORDERS[name]


def apportion(total: int, weights: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Split *total* over *weights* by largest remainders, capped by *caps*,
    re-apportioning what capped entries cannot take (rule 4)."""
    weights = np.asarray(weights, dtype=np.float64)
    caps = np.asarray(caps, dtype=np.int64)
    quotas = np.zeros(weights.size, dtype=np.int64)
    remaining = min(int(total), int(caps.sum()))
    open_ = (caps > 0) & (weights > 0)
    while remaining > 0 and open_.any():
        w = np.where(open_, weights, 0.0)
        exact = remaining * w / w.sum()
        share = np.floor(exact).astype(np.int64)
        leftover = remaining - int(share.sum())
        remainders = np.where(open_, exact - share, -1.0)
        order = np.lexsort((np.arange(w.size), -remainders))
        share[order[:leftover]] += 1
        share = np.minimum(share, caps - quotas)
        quotas += share
        remaining -= int(share.sum())
        open_ &= quotas < caps
    return quotas


def label_dtype(n_classes: int) -> np.dtype:
    """The smallest integer type holding the labels 0..n_classes-1: uint8,
    uint16, else int32 (a payload has at most 2**24 classes), int64 past that."""
    for dtype in (np.uint8, np.uint16, np.int32):
        if n_classes - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


_CHUNK = 1 << 20  # items per step of the chunked passes: a few MiB of temporaries


def _chunks(n: int):
    for start in range(0, n, _CHUNK):
        yield start, min(n, start + _CHUNK)


def _keys(scores: np.ndarray, mode: str) -> np.ndarray | None:
    """uint64 keys whose ascending order is rule 2's order for *mode*: the
    float32 score's order-preserving bits (inverted for a descending mode;
    every NaN last) in the high word, the index in the low word, so keys are
    distinct and ties break by index in any sort. None when the mode is no
    key of the score, the scores are not float32 or too many for a 32-bit index."""
    n = scores.size
    invert = ORDERS[mode].invert
    if invert is None or scores.dtype != np.float32 or n >= 1 << 32:
        return None
    keys = np.empty(n, dtype=np.uint64)
    for a, b in _chunks(n):
        s = scores[a:b] + np.float32(0.0)  # -0.0 + 0.0 = +0.0: the two zeros tie, as they compare
        bits = s.view(np.uint32)
        # negative floats: all bits flipped; positive: the sign bit set. Then unsigned order = float order.
        u = np.where(bits >> 31 == 1, ~bits, bits | np.uint32(0x80000000))
        if invert:
            u = ~u
        u[np.isnan(s)] = 0xFFFFFFFF  # above every number, in both modes (argsort puts NaN last)
        k = keys[a:b]
        k[:] = u
        k <<= np.uint64(32)
        k |= np.arange(a, b, dtype=np.uint64)
    return keys


def _low_words(keys: np.ndarray) -> np.ndarray:
    """The index (low 32 bits) of each key, as uint32, copied chunk by chunk."""
    out = np.empty(keys.size, dtype=np.uint32)
    for a, b in _chunks(keys.size):
        out[a:b] = keys[a:b] & np.uint64(0xFFFFFFFF)
    return out


def _order(scores: np.ndarray, mode: str, seed: int) -> np.ndarray:
    """order_for(), in the smallest index type at hand (uint32 for float32 scores)."""
    keys = _keys(scores, mode)
    if keys is None:
        return order_for(scores, mode, seed)
    keys.sort()  # in place; keys are distinct, so any sort gives the one order
    return _low_words(keys)


def _best(scores: np.ndarray, mode: str, seed: int, total: int) -> np.ndarray:
    """The first *total* of the mode's order, as a sorted int64 set."""
    n = scores.size
    if total == 0 or total == n:
        return np.arange(total, dtype=np.int64)
    keys = _keys(scores, mode)
    if keys is None:
        return np.sort(order_for(scores, mode, seed)[:total]).astype(np.int64)
    keys.partition(total - 1)  # the total smallest (distinct) keys, in any order, come first
    return np.sort(_low_words(keys[:total])).astype(np.int64)


def _class_counts(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """N_c; bincount in chunks, since it copies its input to intp."""
    counts = np.zeros(n_classes, dtype=np.int64)
    for a, b in _chunks(labels.size):
        counts += np.bincount(labels[a:b], minlength=n_classes)
    return counts


def _take_quotas(order: np.ndarray, labels: np.ndarray, quotas: np.ndarray, taken: np.ndarray) -> None:
    """Stage 1 (rule 5): mark each class's first quotas[c] images of *order*."""
    need = quotas.astype(np.int64)  # what each class still takes
    left = int(need.sum())
    small = label_dtype(quotas.size)
    for a, b in _chunks(order.size):
        if left == 0:
            return
        index = order[a:b]
        lab = labels[index].astype(small, copy=False)  # 8/16-bit labels sort by radix
        by_class = np.argsort(lab, kind="stable")  # the chunk grouped by class, order kept in a class
        grouped = lab[by_class]
        m = grouped.size
        run_start = np.zeros(m, dtype=np.int64)
        changes = np.flatnonzero(grouped[1:] != grouped[:-1]) + 1
        run_start[changes] = changes
        np.maximum.accumulate(run_start, out=run_start)
        hit = (np.arange(m) - run_start) < need[grouped]  # rank within the chunk's class run < need
        chosen = by_class[hit]
        taken[index[chosen]] = True
        np.subtract.at(need, lab[chosen], 1)
        left -= int(chosen.size)


def _take_first_free(order: np.ndarray, taken: np.ndarray, count: int) -> None:
    """Stage 2 (rule 6): mark the first *count* images of *order* not yet taken."""
    for a, b in _chunks(order.size):
        index = order[a:b]
        free = index[~taken[index]]
        if free.size >= count:
            taken[free[:count]] = True
            return
        taken[free] = True
        count -= free.size


def select(
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    n_classes: int,
    keep: float | None = None,
    budget: int | None = None,
    mode: str = "low",
    safety_share: float = 0.0,
    alpha: float = 0.0,
    seed: int = 0,
    spread: float = 1.0,
) -> Selection:
    """Choose the images to keep (rules in the module docstring)."""
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        labels = labels.astype(np.int64)
    n = scores.size
    if labels.shape != (n,):
        raise ValueError(f"{labels.size} labels for {n} scores")
    if n and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}")
    if not 0.0 <= safety_share <= 1.0:
        raise ValueError(f"safety_share must be in [0, 1], got {safety_share}")
    total = budget_for(n, keep, budget)
    spread = float(spread)
    if not (spread >= 1.0 and np.isfinite(spread)):
        raise ValueError(f"spread must be a finite number >= 1, got {spread}")
    if spread != 1.0 and not _mode(mode).spreads:  # (_mode refuses an unknown name either way)
        raise ValueError(f"spread thins the {' and '.join(SPREAD_MODES)} orders; a{'n' if mode[0] in 'aeiou' else ''} "
                         f"{mode} order needs none")
    _mode(mode)
    counts = _class_counts(labels, n_classes)
    reserve = int(np.floor(safety_share * total + 1e-9))
    weights = np.zeros(n_classes)
    present = counts > 0
    weights[present] = counts[present].astype(np.float64) ** alpha
    quotas = apportion(reserve, weights, counts) if reserve else np.zeros(n_classes, np.int64)
    thinned = effective_spread(spread, n, total) != 1.0
    if not reserve and not thinned:
        chosen = _best(scores, mode, seed, total)  # the first B of the order: no order needed among them
    else:
        order = spread_order(_order(scores, mode, seed), spread, total)
        taken = np.zeros(n, dtype=bool)
        if reserve:
            _take_quotas(order, labels, quotas, taken)
        rest = total - int(np.count_nonzero(taken))
        if rest:
            _take_first_free(order, taken, rest)
        del order
        chosen = np.flatnonzero(taken).astype(np.int64)
    spread = effective_spread(spread, n, total)  # past n / B the grid would run out of ranks (rule 2)
    params = {"keep_fraction": keep, "budget": total, "mode": mode,
              "safety_net": {"share": safety_share, "alpha": alpha} if safety_share else None}
    if spread != 1.0:
        params["spread"] = float(spread)
    return Selection(chosen, quotas, params)
