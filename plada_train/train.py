"""Training and evaluation over torch Datasets: DataLoader with workers,
DistributedSampler (one process or torchrun/DDP), timm's AdamW and cosine
schedule, bf16 autocast on GPU, atomic resumable checkpoints."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from plada_codec import NotARegularFileError, write_atomically

from .distributed import Context, fail_point
from .errors import DataError
from .progress import progress_bar
from .recipes import StudentRecipe, TeacherRecipe, TrainRecipe

CHECKPOINT_NAME = "train-state.pt"


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's generators with *seed*."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False


def autocast(device: torch.device):
    # bf16 autocast on GPU (no loss scaling needed); full precision on CPU.
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def augment(x: torch.Tensor, recipe: TrainRecipe, generator: torch.Generator) -> torch.Tensor:
    """Random affine per image (translation, rotation, scale), border fill.

    Runs on the batch's device; the random numbers come from a CPU generator
    seeded per step, so a resumed run draws the same ones."""
    if not (recipe.translate or recipe.rotate or recipe.scale):
        return x
    n = x.shape[0]
    u = torch.rand(n, 4, generator=generator) * 2 - 1  # uniform in [-1, 1]
    angle = u[:, 0] * math.radians(recipe.rotate)
    factor = 1 + u[:, 1] * recipe.scale
    # affine_grid maps output to input coordinates in [-1, 1]: a shift of t (fraction of the side) is 2t
    tx, ty = u[:, 2] * 2 * recipe.translate, u[:, 3] * 2 * recipe.translate
    cos, sin = torch.cos(angle) / factor, torch.sin(angle) / factor
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    # One generator per (seed, rank, step): augmentation and outlier draws repeat after a resume.
    return torch.Generator().manual_seed((seed * 1_000_003 + rank * 7919 + step) % (2**63))


def _loader(dataset: Dataset, batch_size: int, indices, workers: int, device: torch.device, batch_sampler=None):
    """Batches ``(inputs on *device*, second field)``: a plada data set's items
    travel from the workers as uint8 (pinned on CUDA) and are normalised on
    *device* (``data.uint8_view``; the float items' numbers, bit for bit on CPU)."""
    from .data import uint8_view

    data, normalise = uint8_view(dataset)
    if batch_sampler is not None:
        loader = DataLoader(data, batch_sampler=batch_sampler, num_workers=workers,
                            pin_memory=device.type == "cuda", persistent_workers=False)
    else:
        loader = DataLoader(data, batch_size=batch_size, sampler=indices, num_workers=workers,
                            pin_memory=device.type == "cuda", drop_last=False)
    for x, y in loader:
        x = x.to(device, non_blocking=True)
        yield (normalise(x) if normalise is not None else x), y


class _OutlierBatches:
    """Per step, ``batch_size`` reference indices drawn with replacement (seeded per step)."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int, start: int, stop: int) -> None:
        self.n, self.batch_size, self.seed, self.rank, self.start, self.stop = n, batch_size, seed, rank, start, stop

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.stop):
            g = _step_generator(self.seed + 1, self.rank, step)
            yield torch.randint(0, self.n, (self.batch_size,), generator=g).tolist()

    def __len__(self) -> int:
        return self.stop - self.start


def _save_atomic(obj, path: Path) -> None:
    """One atomic write (the project's helper) into the file object, so a full
    disk is an OSError naming *path* (torch.save to a path makes it a RuntimeError)."""
    try:
        write_atomically(path, lambda fh: torch.save(obj, fh))
    except OSError as exc:
        if exc.filename is not None or isinstance(exc, NotARegularFileError):
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None


def _load_state(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # struct.error, UnpicklingError, RuntimeError, EOFError, ...: a damaged file
        raise DataError(f"{path} is unreadable ({type(exc).__name__}): delete it to start this training again, "
                        "or use another --checkpoint-dir") from None
    if not isinstance(state, dict) or not {"model", "optimizer", "step"} <= set(state):
        raise DataError(f"{path} is not a plada-train training state: delete it or use another --checkpoint-dir")
    return state


def train_classifier(model: nn.Module, data: Dataset, recipe: TrainRecipe, context: Context, *,
                     outliers: Dataset | None = None, checkpoint_dir: str | Path | None = None,
                     progress: bool = False, desc: str = "train") -> nn.Module:
    """Train *model* with cross-entropy on *data* (items ``(tensor, label)``),
    plus the outlier-exposure term on *outliers* (items ``(tensor, index)``)
    when ``recipe.outlier_weight > 0``. Returns the trained (unwrapped) model
    in eval mode, identical on every rank.

    With *checkpoint_dir*, the state (weights, optimiser, step) is written
    atomically every ``recipe.checkpoint_every`` steps and at the end; a run
    started again with the same directory resumes from it and ends with the
    same weights as an uninterrupted run."""
    from ._compat import import_timm

    import_timm()
    from timm.optim import create_optimizer_v2
    from timm.scheduler import CosineLRScheduler

    if len(data) == 0:
        raise DataError("cannot train on an empty data set: keep more images (a larger --keep)")
    device, world, rank = context.device, context.world_size, context.rank
    per_rank = max(1, recipe.batch_size // world)
    sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=recipe.seed)
    batches_per_epoch = math.ceil(len(sampler) / per_rank)
    total = recipe.total_steps(batches_per_epoch)
    seed_everything(recipe.seed)
    model.to(device).train()
    optimizer = create_optimizer_v2(model, "adamw", lr=recipe.lr, weight_decay=recipe.weight_decay)
    schedule = CosineLRScheduler(optimizer, t_initial=max(1, total), warmup_t=recipe.warmup_steps,
                                 warmup_lr_init=recipe.lr / 100, t_in_epochs=False)
    step = 0
    state_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir else None
    if state_path is not None and state_path.exists():
        state = _load_state(state_path)
        if state.get("recipe") != recipe.to_metadata() or state.get("world_size") != world:
            raise DataError(f"{state_path} was written by another recipe or world size: "
                            "delete it or use another --checkpoint-dir")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = int(state["step"])
        if context.is_main:
            print(f"resuming {desc} at step {step} of {total} from {state_path}", flush=True)
    trained = model
    if context.distributed:
        device_ids = [device.index] if device.type == "cuda" else None
        trained = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    use_outliers = outliers is not None and len(outliers) > 0 and recipe.outlier_weight > 0
    outlier_iter = iter(_loader(outliers, per_rank, None, recipe.workers, device,
                                batch_sampler=_OutlierBatches(len(outliers), per_rank, recipe.seed, rank, step, total))
                        ) if use_outliers else None

    def save() -> None:
        if state_path is not None and context.is_main:
            state_path.parent.mkdir(parents=True, exist_ok=True)
            _save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                          "recipe": recipe.to_metadata(), "world_size": world}, state_path)

    bar = progress_bar(total, f"training the {desc}" if desc in ("teacher", "student") else desc, unit="steps",
                       initial=step, enabled=progress and context.is_main)
    while step < total:
        epoch, skip = divmod(step, batches_per_epoch)
        sampler.set_epoch(epoch)
        order = list(sampler)[skip * per_rank:]  # resume mid-epoch without reading skipped items
        for x, y in _loader(data, per_rank, order, recipe.workers, device):
            g = _step_generator(recipe.seed, rank, step)
            x = augment(x, recipe, g)
            y = y.to(device, non_blocking=True)
            if outlier_iter is not None:
                xo, _ = next(outlier_iter)
                x = torch.cat([x, augment(xo, recipe, g)])  # one batch for BatchNorm
            with autocast(device):
                logits = trained(x)
                loss = F.cross_entropy(logits[: len(y)], y)
                if outlier_iter is not None:
                    # cross-entropy to the uniform distribution over classes
                    loss = loss - recipe.outlier_weight * torch.log_softmax(logits[len(y):].float(), 1).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            schedule.step_update(step)
            bar.update(1)
            if recipe.checkpoint_every and step % recipe.checkpoint_every == 0 and step < total:
                save()
                context.barrier()
                fail_point("steps", step)
            if step >= total:
                break
    bar.close()
    save()
    return model.eval()


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, context: Context, *, batch_size: int = 512, workers: int = 0,
             progress: bool = False, desc: str = "evaluate") -> float:
    """Top-1 accuracy on a labelled Dataset (split over ranks under torchrun);
    with *progress*, a bar in images on rank 0."""
    if len(data) == 0:
        raise DataError("the test split is empty")
    model.to(context.device).eval()
    indices = list(range(context.rank, len(data), context.world_size))
    correct = 0
    bar = progress_bar(len(indices), desc, enabled=progress and context.is_main)
    for x, y in _loader(data, batch_size, indices, workers, context.device):
        with autocast(context.device):
            logits = model(x)
        correct += int((logits.float().argmax(1).cpu() == y).sum())
        bar.update(len(y))
    bar.close()
    total_correct, = context.all_reduce_sum([float(correct)])
    return total_correct / len(data)


def train_teacher(model: nn.Module, target_train, context: Context, *, recipe: TrainRecipe | None = None,
                  outliers=None, checkpoint_dir=None, progress: bool = False) -> nn.Module:
    """Server step 1: fit *model* on the target's training set (paper Eq. 1),
    with outlier exposure on *outliers* (the reference set) per the recipe."""
    recipe = recipe or TeacherRecipe()
    return train_classifier(model, target_train, recipe, context, outliers=outliers,
                            checkpoint_dir=checkpoint_dir, progress=progress, desc="teacher")


def train_student(model: nn.Module, virtual, context: Context, *, recipe: TrainRecipe | None = None,
                  checkpoint_dir=None, progress: bool = False) -> nn.Module:
    """Client step 2: train the student on the virtual data set (paper Eq. 4)."""
    return train_classifier(model, virtual, recipe or StudentRecipe(), context, checkpoint_dir=checkpoint_dir,
                            progress=progress, desc="student")


__all__ = ["train_teacher", "train_student", "seed_everything", "autocast", "augment", "train_classifier", "evaluate",
           "CHECKPOINT_NAME"]
