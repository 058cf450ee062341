"""The scores a reference image can be ranked by: one entry of :data:`SCORES` a score.

Every score maps a batch of teacher logits ``z`` (at temperature ``T``) to one
number an image, **lower = more confident** (so ``--mode low`` keeps the
images the teacher is surest of, and ``--mode high`` the least sure ones):

- ``energy`` — ``-T * logsumexp(z / T)`` (the paper's score, Liu et al. 2020);
- ``entropy`` — the entropy of ``softmax(z / T)`` in nats (the paper's Table 7
  alternative);
- ``msp`` — minus the largest probability of ``softmax(z / T)`` (the maximum
  softmax probability, Hendrycks & Gimpel 2017);
- ``margin`` — minus the gap between the two largest probabilities of
  ``softmax(z / T)`` (margin sampling, Scheffer et al. 2001): 0 where the
  teacher cannot tell its first two classes apart, -1 at full confidence.

Scoring computes every score in one pass and a scores file keeps each under
its ``array`` name, so a selection can switch scores without scoring again.
This module imports no torch (the CLI reads :data:`SCORE_NAMES` for its
``--score`` choices before torch is loaded); the formulas receive torch tensors.

A new score is one :class:`Score` in :data:`SCORES`: scoring, scores files,
``--score``, the request checks and payload metadata read this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["Score", "SCORES", "SCORE_NAMES", "Logits"]


class Logits:
    """A batch of logits ``(B, C)`` at a temperature, with the views the formulas share
    computed once each (``scaled`` = z / T, ``log_probs``, ``probs``), in float32."""

    def __init__(self, logits: torch.Tensor, temperature: float) -> None:
        self.raw = logits.float()
        self.temperature = float(temperature)

    @cached_property
    def scaled(self) -> torch.Tensor:
        return self.raw / self.temperature

    @cached_property
    def log_probs(self) -> torch.Tensor:
        return self.scaled.log_softmax(dim=1)

    @cached_property
    def probs(self) -> torch.Tensor:
        return self.log_probs.exp()


@dataclass(frozen=True)
class Score:
    """One score: its ``name`` (``--score``, payload metadata), the ``array`` that holds it
    in scores files, and its ``formula`` over a :class:`Logits` batch (one value an image,
    lower = more confident)."""

    name: str
    array: str
    formula: Callable[[Logits], Any]
    summary: str


def _energy(z: Logits):
    return -z.temperature * z.scaled.logsumexp(dim=1)


def _entropy(z: Logits):
    return -(z.probs * z.log_probs).sum(dim=1)


def _neg_max_softmax(z: Logits):
    return -z.probs.max(dim=1).values


def _neg_margin(z: Logits):
    if z.probs.shape[1] < 2:  # one class: nothing to confuse it with, full confidence
        return -z.probs.new_ones(z.probs.shape[0])
    top = z.probs.topk(2, dim=1).values
    return top[:, 1] - top[:, 0]


SCORES: dict[str, Score] = {score.name: score for score in (
    Score("energy", "energy", _energy, "-T logsumexp(z/T)"),
    Score("entropy", "entropy", _entropy, "entropy of softmax(z/T)"),
    # Files have always called this array neg_max_softmax; the name stays so they keep loading.
    Score("msp", "neg_max_softmax", _neg_max_softmax, "-max softmax(z/T)"),
    Score("margin", "margin", _neg_margin, "-(top-1 minus top-2 of softmax(z/T))"),
)}
SCORE_NAMES = tuple(SCORES)
