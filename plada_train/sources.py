"""Where the Datasets and preprocessing come from (plada_train.data and
plada_train.preprocess), in one place for the pipeline's imports."""

from __future__ import annotations

from .data import LabelledSubset, open_reference, open_target
from .preprocess import Preprocess, preprocess_for

__all__ = ["LabelledSubset", "open_reference", "open_target", "Preprocess", "preprocess_for"]
