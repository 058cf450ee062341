"""Teacher and student models: a built-in small CNN for 28x28 inputs, or any
timm model by name (optionally from a local checkpoint; nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ._compat import import_timm

BUILTIN = ("smallcnn",)


class SmallCNN(nn.Module):
    """Two conv blocks and a linear head: ~99% on MNIST in a couple of CPU epochs."""

    def __init__(self, num_classes: int = 10, in_chans: int = 1, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.BatchNorm2d(4 * width), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))


def create_model(name: str, num_classes: int, in_chans: int = 1, checkpoint: str | Path | None = None) -> nn.Module:
    """``smallcnn`` or a timm model name. *checkpoint* is a local state-dict file
    (timm's ``pretrained_cfg_overlay=dict(file=...)``: the classifier is adapted
    to *num_classes* when its shape differs)."""
    if name == "smallcnn":
        model = SmallCNN(num_classes, in_chans)
        if checkpoint:
            model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
        return model
    timm = import_timm()
    if not timm.is_model(name):
        raise ValueError(f"unknown model {name!r}: not 'smallcnn' and not a timm model name")
    if checkpoint:
        return timm.create_model(name, pretrained=True, num_classes=num_classes, in_chans=in_chans,
                                 pretrained_cfg_overlay=dict(file=str(checkpoint)))
    return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_chans)
