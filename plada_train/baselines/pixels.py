"""Pixels: the target's own training images, ``m`` per class, sent as the
paper does (every image JPEG-30, then Zstd-19 over one stream; the labels are
in the count) and trained on as the client decodes them (lossy). Two subsets:
class-balanced random, and per class the greedy K-Center coreset (Sener &
Savarese 2017) of the teacher's penultimate features."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .run import Run
from .wire import jpeg_zstd_bytes

__all__ = ["NAME", "run", "kcenter_greedy", "penultimate_features"]

NAME = "pixels"


def kcenter_greedy(features: np.ndarray, m: int) -> np.ndarray:
    """Greedy K-Center (Sener & Savarese 2017): start at the point nearest
    the mean, then repeatedly add the point farthest from the chosen ones
    (Euclidean; ties to the lowest index). Returns *m* indices in pick order."""
    features = np.asarray(features, np.float64)
    m = min(m, len(features))
    if m <= 0:
        return np.zeros(0, np.int64)
    first = int(np.argmin(((features - features.mean(0)) ** 2).sum(1)))
    chosen = [first]
    distance = ((features - features[first]) ** 2).sum(1)
    for _ in range(m - 1):
        pick = int(np.argmax(distance))
        chosen.append(pick)
        distance = np.minimum(distance, ((features - features[pick]) ** 2).sum(1))
    return np.asarray(chosen, np.int64)


def penultimate_features(model: nn.Module, images: np.ndarray, preprocess, batch: int = 512) -> np.ndarray:
    """Penultimate features: the input of the model's last linear layer."""
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    captured: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda mod, inp, out: captured.append(inp[0].detach().float().cpu()))
    transform = preprocess.transform(False)
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(images), batch):
                x = torch.stack([transform(image) for image in images[start:start + batch]])
                model(x)
    finally:
        hook.remove()
    return torch.cat(captured).numpy()


def _class_balanced(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    picked = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(picked))


def run(ctx: Run) -> None:
    images, labels = ctx.train_images, ctx.train_labels
    rng = np.random.default_rng(0)
    found = None
    for m in ctx.per_class:
        chosen = _class_balanced(labels, m, rng)
        wire, decoded = jpeg_zstd_bytes(images[chosen], labels[chosen], ctx.n_classes)
        ctx.store.record("pixels-random", f"{m}/class", lambda s, d=decoded, y=labels[chosen]:
                         ctx.train_student(d, y, s), ctx.seeds, len(wire), images=len(chosen))
        if found is None:
            found = penultimate_features(ctx.teacher(), images, ctx.preprocess)
        picks = np.sort(np.concatenate([np.flatnonzero(labels == c)[kcenter_greedy(found[labels == c], m)]
                                        for c in np.unique(labels)]))
        wire, decoded = jpeg_zstd_bytes(images[picks], labels[picks], ctx.n_classes)
        ctx.store.record("pixels-kcenter", f"{m}/class", lambda s, d=decoded, y=labels[picks]:
                         ctx.train_student(d, y, s), ctx.seeds, len(wire), images=len(picks))
