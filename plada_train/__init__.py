"""plada_train: the PLADA pipeline on torch + timm (server and client).

``produce(...)`` and ``consume(...)`` do what ``plada-train produce`` and
``plada-train consume`` do, with the same defaults (ProduceRequest,
ConsumeRequest, TeacherRecipe, StudentRecipe).

Names are imported on first use (PEP 562), so the numpy-only parts
(``plada_train.selection``) work where torch is not installed.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "_compat": ["import_timm"],
    "client": ["Consumed", "consume"],
    "data": ["ImageSet", "Miniature", "load_folder", "load_miniature", "load_npz"],
    "distributed": ["Context", "pick_device"],
    "errors": ["DataError"],
    "models": ["SmallCNN", "create_model"],
    "recipes": ["StudentRecipe", "TeacherRecipe", "TrainRecipe"],
    "requests": ["ConsumeRequest", "ProduceRequest"],
    "scoring": ["Scores", "score_reference"],
    "selection": ["Selection", "select"],
    "server": ["ProduceResult", "Produced", "make_payload", "produce"],
    "train": ["evaluate", "seed_everything", "train_classifier", "train_student", "train_teacher"],
    "virtual": ["VirtualDataset", "virtual_dataset"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [name for names in _EXPORTS.values() for name in names]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'plada_train' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
