"""Where the Datasets and preprocessing come from: plada_train.datasets and
plada_train.preprocess (lazy, timm data config) when present."""

from __future__ import annotations

try:
    from .datasets import LabelledSubset, open_reference, open_target
    from .preprocess import Preprocess, preprocess_for
except ImportError:  # until t1-data's modules land
    from ._interim import LabelledSubset, Preprocess, open_reference, open_target, preprocess_for

__all__ = ["LabelledSubset", "open_reference", "open_target", "Preprocess", "preprocess_for"]
