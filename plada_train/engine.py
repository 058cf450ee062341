"""Devices, seeds, batched training and scoring (GPU with AMP when present, CPU otherwise)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import ImageSet


def pick_device(preference: str = "auto") -> torch.device:
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was asked for but torch sees no GPU")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False


def _autocast(device: torch.device):
    # bf16 autocast on GPU (no loss scaling needed); full precision on CPU.
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def _to_input(batch_u8: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float in [-1, 1] on *device*."""
    x = batch_u8.to(device, non_blocking=True).float()
    return x.mul_(2.0 / 255.0).sub_(1.0)


def _shift(x: torch.Tensor, generator: torch.Generator, max_shift: int) -> torch.Tensor:
    """Random translation by up to *max_shift* pixels (one shift per batch, zero fill)."""
    if max_shift <= 0:
        return x
    dx, dy = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,), generator=generator))
    x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    if dy > 0:
        x[:, :, :dy] = -1.0
    elif dy < 0:
        x[:, :, dy:] = -1.0
    if dx > 0:
        x[:, :, :, :dx] = -1.0
    elif dx < 0:
        x[:, :, :, dx:] = -1.0
    return x


@dataclass
class TrainConfig:
    """The paper's student recipe: AdamW, lr 1e-3, cosine schedule."""

    epochs: int = 2
    min_steps: int = 0  # at least this many optimiser steps (small virtual sets)
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    max_shift: int = 2
    seed: int = 0
    # Outlier exposure (Hendrycks et al. 2019; energy-based OOD, Liu et al. 2020):
    # with outlier_weight > 0 and unlabelled outliers given, each step also
    # pushes the model's softmax on an outlier batch toward uniform.
    outlier_weight: float = 0.0


def train_classifier(model: nn.Module, data: ImageSet, labels: np.ndarray, config: TrainConfig,
                     device: torch.device, progress: bool = False, outliers: ImageSet | None = None) -> nn.Module:
    """Train *model* with cross-entropy on (data.images, labels), plus the
    outlier-exposure term on *outliers* when ``config.outlier_weight > 0``."""
    from tqdm.auto import tqdm

    seed_everything(config.seed)
    n = len(data)
    if n == 0:
        raise ValueError("cannot train on an empty data set")
    images = torch.from_numpy(data.images)
    targets = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if device.type == "cuda":
        images, targets = images.pin_memory(), targets.pin_memory()
    steps_per_epoch = max(1, math.ceil(n / config.batch_size))
    epochs = max(config.epochs, math.ceil(config.min_steps / steps_per_epoch))
    total = epochs * steps_per_epoch
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    generator = torch.Generator().manual_seed(config.seed)
    use_outliers = outliers is not None and len(outliers) > 0 and config.outlier_weight > 0
    outlier_images = torch.from_numpy(outliers.images) if use_outliers else None
    bar = tqdm(total=total, desc="train", disable=not progress, leave=False)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=generator)
        for start in range(0, n, config.batch_size):
            idx = perm[start : start + config.batch_size]
            x = _shift(_to_input(images[idx], device), generator, config.max_shift)
            y = targets[idx].to(device, non_blocking=True)
            if use_outliers:
                pick = torch.randint(0, len(outliers), (len(idx),), generator=generator)
                xo = _shift(_to_input(outlier_images[pick], device), generator, config.max_shift)
                x = torch.cat([x, xo])  # one batch, so BatchNorm statistics see both
            with _autocast(device):
                logits = model(x)
                loss = F.cross_entropy(logits[: len(y)], y)
                if use_outliers:
                    # cross-entropy to the uniform distribution over classes
                    loss = loss - config.outlier_weight * torch.log_softmax(logits[len(y) :], 1).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.update(1)
    bar.close()
    return model.eval()


@torch.no_grad()
def predict_logits(model: nn.Module, data: ImageSet, device: torch.device, batch_size: int = 512,
                   progress: bool = False, desc: str = "score"):
    """Yield (start, float32 logits) batch by batch, so callers can stream."""
    from tqdm.auto import tqdm

    model.to(device).eval()
    for start in tqdm(range(0, len(data), batch_size), desc=desc, disable=not progress, leave=False):
        x = _to_input(torch.from_numpy(data.images[start : start + batch_size]), device)
        with _autocast(device):
            logits = model(x)
        yield start, logits.float().cpu()


def evaluate(model: nn.Module, data: ImageSet, device: torch.device, batch_size: int = 512) -> float:
    """Top-1 accuracy on a labelled set."""
    if data.labels is None:
        raise ValueError(f"{data.name}: evaluation needs labels")
    correct = 0
    for start, logits in predict_logits(model, data, device, batch_size):
        correct += int((logits.argmax(1).numpy() == data.labels[start : start + len(logits)]).sum())
    return correct / len(data)


@dataclass
class Scores:
    """Per reference image: hard label (argmax) and three uncertainty scores,
    each lower = more confident: energy -T*logsumexp(z/T), entropy of
    softmax(z/T), and negative max-softmax."""

    labels: np.ndarray
    energy: np.ndarray
    entropy: np.ndarray
    neg_max_softmax: np.ndarray
    temperature: float = 1.0

    def get(self, name: str) -> np.ndarray:
        table = {"energy": self.energy, "entropy": self.entropy, "msp": self.neg_max_softmax}
        if name not in table:
            raise ValueError(f"score must be one of {', '.join(table)}, got {name!r}")
        return table[name]

    def save(self, path: str | Path) -> None:
        np.savez(path, labels=self.labels, energy=self.energy, entropy=self.entropy,
                 neg_max_softmax=self.neg_max_softmax, temperature=self.temperature)

    @classmethod
    def load(cls, path: str | Path) -> Scores:
        with np.load(path) as d:
            return cls(d["labels"], d["energy"], d["entropy"], d["neg_max_softmax"], float(d["temperature"]))


def score_logits(logits: torch.Tensor, temperature: float = 1.0) -> tuple[np.ndarray, ...]:
    z = logits.float() / temperature
    log_probs = torch.log_softmax(z, dim=1)
    probs = log_probs.exp()
    energy = -temperature * torch.logsumexp(z, dim=1)
    entropy = -(probs * log_probs).sum(1)
    return (logits.argmax(1).numpy(), energy.numpy(), entropy.numpy(), (-probs.max(1).values).numpy())


def score_reference(model: nn.Module, reference: ImageSet, device: torch.device, *, temperature: float = 1.0,
                    batch_size: int = 512, progress: bool = False) -> Scores:
    """Score every reference image in streamed batches (no_grad, AMP on GPU)."""
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    n = len(reference)
    labels = np.empty(n, np.int64)
    energy, entropy, msp = (np.empty(n, np.float32) for _ in range(3))
    for start, logits in predict_logits(model, reference, device, batch_size, progress, desc="score reference"):
        end = start + len(logits)
        labels[start:end], energy[start:end], entropy[start:end], msp[start:end] = score_logits(logits, temperature)
    return Scores(labels, energy, entropy, msp, temperature)
