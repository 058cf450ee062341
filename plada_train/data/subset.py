"""The client's view: the k selected reference items with the payload's labels."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ..preprocess import Preprocess
from .checks import DataError, _apply, _checked_transform, _first_info, default_preprocess
from .reference import ReferenceImages

__all__ = ["LabelledSubset"]


class LabelledSubset(Dataset):
    """The k selected reference items with the payload's labels; reads only those
    k items. Item j -> (input tensor of reference item ``indices[j]``, ``labels[j]``)."""

    def __init__(self, reference: ReferenceImages, indices, labels) -> None:
        self.reference = reference
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        self.labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(self.indices) != len(self.labels):
            raise DataError(f"{len(self.indices)} indices but {len(self.labels)} labels")
        if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= len(reference)):
            raise DataError(f"an index is outside the reference set of {len(reference)} items; "
                            f"the payload was made for another reference")
        self._transform = reference._transform
        self._first = _first_info(reference)  # checks use the reference's first item: no extra read

    def __len__(self) -> int:
        return len(self.indices)

    def set_preprocess(self, preprocess: Preprocess, train: bool = False) -> LabelledSubset:
        self._transform = _checked_transform(preprocess, train, self) if len(self) else preprocess.transform(train)
        return self

    def raw(self, j: int):
        return self.reference.raw(int(self.indices[j]))

    def __getitem__(self, j: int) -> tuple[torch.Tensor, int]:
        if self._transform is None:
            self.set_preprocess(default_preprocess(self))
        index = int(self.indices[j])
        return _apply(self._transform, self.reference.raw(index), self.reference, index), int(self.labels[j])
