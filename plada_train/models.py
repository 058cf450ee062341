"""Teacher and student models: a built-in small CNN for small grayscale or RGB
inputs, or any timm model by name, optionally from a local checkpoint (the
paper's setting: a pretrained teacher; nothing is downloaded)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from ._compat import import_timm
from .errors import DataError

# The built-in CNNs by name, and the channel width of their first block (the
# next two double it): smallcnn for quick runs, smallcnn_w32 (4x the compute)
# where accuracy matters more than time.
BUILTIN = {"smallcnn": 16, "smallcnn_w32": 32}


class SmallCNN(nn.Module):
    """Three conv blocks and a linear head: ~99% on MNIST in a couple of CPU epochs."""

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


def check_model_name(name: str) -> None:
    """Raise DataError unless *name* is a built-in CNN (``smallcnn``, ``smallcnn_w32``) or a timm model name."""
    if name in BUILTIN:
        return
    if not import_timm().is_model(name):
        raise DataError(f"unknown model {name!r}: use {' or '.join(BUILTIN)} or a timm model name "
                        "(python -c \"import timm; print(timm.list_models('resnet*'))\")")


def _read_state_dict(path: Path) -> dict:
    import_timm()
    from timm.models import load_state_dict

    try:
        return load_state_dict(str(path), device="cpu")
    except Exception as exc:  # torch raises several types for a file that is not a checkpoint
        raise DataError(f"{path}: not a readable model checkpoint ({type(exc).__name__}): "
                        "give a state-dict file saved with torch.save or safetensors") from None


def _head_key(name: str) -> str:
    if name in BUILTIN:
        return "head"
    timm = import_timm()
    config = timm.models.get_pretrained_cfg(name.split(".")[0])
    head = getattr(config, "classifier", None) or "fc"
    return head[0] if isinstance(head, (tuple, list)) else head


def checkpoint_classes(name: str, checkpoint: str | Path) -> int | None:
    """Number of classes of the classifier stored in *checkpoint* (None when it has none)."""
    import_timm()
    path = Path(checkpoint)
    if not path.is_file():
        raise DataError(f"teacher checkpoint {path} not found: give a local state-dict file")
    state = _read_state_dict(path)
    weight = state.get(f"{_head_key(name)}.weight")
    return None if weight is None else int(weight.shape[0])


def create_model(name: str, num_classes: int, in_chans: int = 1, checkpoint: str | Path | None = None) -> nn.Module:
    """A built-in CNN (``smallcnn``, ``smallcnn_w32``) or a timm model name. *checkpoint* is a local state-dict
    file, loaded through timm's pretrained path (``pretrained_cfg_overlay``):
    its first convolution is adapted to *in_chans*, and its classifier is kept
    when it has *num_classes* outputs, re-initialised otherwise."""
    check_model_name(name)
    if name in BUILTIN:
        model = SmallCNN(num_classes, in_chans, BUILTIN[name])
        if checkpoint:
            state = _read_state_dict(Path(checkpoint))
            if state.get("head.weight") is not None and state["head.weight"].shape[0] != num_classes:
                state = {k: v for k, v in state.items() if not k.startswith("head.")}
            try:
                missing, unexpected = model.load_state_dict(state, strict=False)
            except RuntimeError as exc:
                raise DataError(f"{checkpoint} does not fit {name} with {in_chans} channel(s): "
                                f"{str(exc).splitlines()[-1].strip()}") from None
            if unexpected or any(not k.startswith("head.") for k in missing):
                raise DataError(f"{checkpoint} is not a {name} checkpoint: pass its model with --teacher")
        return model
    timm = import_timm()
    if checkpoint:
        stored = checkpoint_classes(name, checkpoint)
        overlay = dict(file=str(checkpoint), num_classes=stored if stored is not None else num_classes)
        return timm.create_model(name, pretrained=True, num_classes=num_classes, in_chans=in_chans,
                                 pretrained_cfg_overlay=overlay)
    return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_chans)


def weights_digest(model: nn.Module) -> str:
    """SHA-256 over the state dict (names, dtypes, shapes, bytes): identifies a teacher."""
    h = hashlib.sha256()
    for key, value in model.state_dict().items():
        t = value.detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


__all__ = ["SmallCNN", "create_model", "check_model_name", "checkpoint_classes", "weights_digest", "file_digest"]
