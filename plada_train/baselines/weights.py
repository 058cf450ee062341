"""Weights: what a client runs without any image sent.

- **probe** — a linear head on a frozen backbone the client must already hold
  (the built-in CNN's feature layers, initialised from a fixed seed: the client
  holds the seed and the model code); INT8 weights (per-tensor scale, float32),
  float32 bias and the features' float32 mean and std (the standardisation the
  head was trained on), Zstd-19.
- **model** — the teacher itself, globally L1-pruned to a sparsity
  (torch.nn.utils.prune) and retrained with the pruned weights held at zero
  (Deep Compression; ``FINETUNE_STEPS`` steps of the teacher recipe), then every
  float tensor INT8-quantized (per-tensor scale), Zstd-19; the client runs it as
  it is (no student, so its accuracy has no seed spread).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ..data import ArrayLabelled
from .pixels import penultimate_features
from .run import Run, images_of
from .wire import int8_state_bytes

__all__ = ["run_probe", "run_model", "pruned", "PROBE_BACKBONE_SEED", "FINETUNE_STEPS"]

PROBE_BACKBONE_SEED = 12345
FINETUNE_STEPS = 300  # student-sized retraining of a pruned teacher
PROBE_VARIANT = "smallcnn features (seeded)"


def run_probe(ctx: Run) -> None:
    from ..models import create_model

    if ctx.store.done(f"probe-int8:{PROBE_VARIANT}"):
        return
    torch.manual_seed(PROBE_BACKBONE_SEED)  # the backbone both sides rebuild from this seed
    backbone = create_model("smallcnn", ctx.n_classes, ctx.channels).eval()
    train_x = torch.from_numpy(penultimate_features(backbone, ctx.train_images, ctx.preprocess))
    test_x = torch.from_numpy(penultimate_features(backbone, images_of(ctx.test), ctx.preprocess))
    test_y = torch.as_tensor(np.asarray(ctx.test.labels))
    y = torch.as_tensor(ctx.train_labels)

    def probe(seed: int) -> tuple[float, int]:
        torch.manual_seed(seed)
        head = nn.Linear(train_x.shape[1], ctx.n_classes)
        optimiser = torch.optim.Adam(head.parameters(), lr=1e-2)
        mean, std = train_x.mean(0), train_x.std(0) + 1e-6
        for _ in range(300):
            optimiser.zero_grad()
            nn.functional.cross_entropy(head((train_x - mean) / std), y).backward()
            optimiser.step()
        # The standardisation travels as float32 beside the INT8 weights: folded into the weights,
        # a near-constant feature (a dead ReLU) gets a huge weight and the per-tensor INT8 scale
        # then rounds every other weight to zero.
        wire, restored = int8_state_bytes({"weight": head.weight, "bias": head.bias, "mean": mean, "std": std},
                                          keep_float=("bias", "mean", "std"))
        logits = ((test_x - restored["mean"]) / restored["std"]) @ restored["weight"].T + restored["bias"]
        return float((logits.argmax(1) == test_y).float().mean()), len(wire)

    ctx.store.record("probe-int8", PROBE_VARIANT, probe, ctx.seeds,
                     backbone=f"SmallCNN feature layers, torch.manual_seed({PROBE_BACKBONE_SEED})")


def pruned(model: nn.Module, sparsity: float, finetune=None) -> nn.Module:
    """A copy of *model* with the smallest-magnitude fraction *sparsity* of its
    conv and linear weights set to zero (global L1, torch.nn.utils.prune),
    then ``finetune(model)`` with the masks in place, when given."""
    from torch.nn.utils import prune

    model = copy.deepcopy(model)
    layers = [(m, "weight") for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if sparsity > 0:
        prune.global_unstructured(layers, pruning_method=prune.L1Unstructured, amount=sparsity)
        if finetune is not None:
            model = finetune(model)
        for module, name in layers:
            prune.remove(module, name)
    return model


def run_model(ctx: Run) -> None:
    from .. import train

    def finetune(model: nn.Module) -> nn.Module:
        """Deep Compression's retraining: the pruned weights stay zero (torch's masks) while the rest adapt."""
        tuning = ArrayLabelled(ctx.train_images, ctx.train_labels, "finetune")
        tuning.set_preprocess(ctx.preprocess, train=True)
        recipe = ctx.teacher_recipe.with_(epochs=None, steps=FINETUNE_STEPS, outlier_weight=0.0, checkpoint_every=0)
        return train.train_classifier(model, tuning, recipe, ctx.context)

    for sparsity in (0.0, *ctx.sparsities):
        if ctx.store.done(f"model-int8:sparsity {sparsity:g}"):
            continue
        smaller = pruned(ctx.teacher(), sparsity, finetune if sparsity > 0 else None)
        wire, restored = int8_state_bytes(smaller.state_dict())
        model = ctx.load_teacher()
        model.load_state_dict(restored)
        ctx.store.record("model-int8", f"sparsity {sparsity:g}", lambda seed, model=model:
                         train.evaluate(model, ctx.test, ctx.context), None, len(wire),
                         parameters=sum(p.numel() for p in smaller.parameters()))
