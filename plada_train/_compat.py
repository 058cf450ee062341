"""The one place that makes torchvision (and so timm) import on a CPU-only torch.

torchvision 0.28's compiled ops expect CUDA libraries; on a CPU-only torch its
import fails with ``operator torchvision::nms does not exist``. Defining the two
op schemas it registers fake kernels for lets it (and timm) import; detection
ops stay unavailable, which PLADA never uses. On a torch with CUDA nothing is done.
"""

from __future__ import annotations

import sys

_SCHEMA = "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"


def import_torchvision():
    """Import and return torchvision, repairing its import on CPU-only torch."""
    import torch

    if "torchvision" not in sys.modules:
        try:
            import torchvision  # noqa: F401
        except RuntimeError as exc:
            if "torchvision::nms" not in str(exc):
                raise
            for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
                del sys.modules[name]
            for op in ("torchvision::nms", "torchvision::qnms"):
                torch.library.define(op, _SCHEMA)
            import torchvision  # noqa: F401
    return sys.modules["torchvision"]


def import_timm():
    """Import and return timm, repairing torchvision's import on CPU-only torch."""
    import_torchvision()
    import timm

    return timm
