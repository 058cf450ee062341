"""Compatibility module: the data layer lives in :mod:`plada_train.data`.

Everything this module used to define is re-exported from there, so
``from plada_train.datasets import open_reference`` keeps working.
"""

from __future__ import annotations

from .data import (
    IMAGE_EXTENSIONS,
    ArrayImages,
    CatalogImages,
    DataError,
    FolderImages,
    LabelledImages,
    LabelledSubset,
    ReferenceImages,
    TargetData,
    TarImages,
    check_inputs,
    open_reference,
    open_target,
)

__all__ = [
    "DataError", "IMAGE_EXTENSIONS", "ReferenceImages", "ArrayImages", "FolderImages", "TarImages", "CatalogImages",
    "LabelledImages", "TargetData", "LabelledSubset", "open_reference", "open_target", "check_inputs",
]
