"""Training recipes: one dataclass per role, whose defaults the CLI and the
Python API share (the CLI's option defaults are read from these fields).

``TEACHER_OPTIONS`` / ``STUDENT_OPTIONS`` map the CLI's option names (as
keywords: ``teacher_steps``, ``steps``) onto recipe fields; the CLI and
``produce(...)`` / ``consume(...)`` build recipes through the same maps."""

from __future__ import annotations

import math
import numbers
import os
import types
import typing
from dataclasses import asdict, dataclass, fields, replace

from .errors import DataError


@dataclass(frozen=True)
class TrainRecipe:
    """AdamW (timm's factory: no weight decay on biases and norms) with a cosine
    schedule stepped per optimiser update; batch-level augmentation on the
    device (random affine: translation as a fraction of the image side,
    rotation in degrees, scale factor range), bf16 autocast on GPU.

    ``steps`` counts optimiser updates; when None, ``epochs`` passes over the
    training set decide it. ``batch_size`` is global: under torchrun each of G
    ranks takes ``batch_size // G``."""

    steps: int | None = None
    epochs: float | None = None
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.05
    warmup_steps: int = 0
    translate: float = 0.04
    rotate: float = 0.0
    scale: float = 0.0
    seed: int = 0
    # Outlier exposure (Hendrycks et al. 2019; energy-based OOD, Liu et al. 2020):
    # each step also pushes the softmax on a batch of reference images toward uniform.
    outlier_weight: float = 0.0
    workers: int = 0
    checkpoint_every: int = 200

    def __post_init__(self) -> None:
        check_types(self)
        if self.steps is None and self.epochs is None:
            raise DataError("a recipe needs steps or epochs: give --steps N or --epochs E")
        checks = [
            (self.steps is None or self.steps >= 0, f"steps must be >= 0, got {self.steps}"),
            (self.epochs is None or self.epochs >= 0, f"epochs must be >= 0, got {self.epochs}"),
            (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
            (self.lr > 0 and math.isfinite(self.lr), f"learning rate must be positive, got {self.lr}"),
            (self.weight_decay >= 0, f"weight decay must be >= 0, got {self.weight_decay}"),
            (self.warmup_steps >= 0, f"warmup steps must be >= 0, got {self.warmup_steps}"),
            (0 <= self.translate < 0.5, f"translate must be in [0, 0.5), got {self.translate}"),
            (0 <= self.rotate <= 180, f"rotate must be in [0, 180] degrees, got {self.rotate}"),
            (0 <= self.scale < 1, f"scale must be in [0, 1), got {self.scale}"),
            (self.outlier_weight >= 0, f"outlier weight must be >= 0, got {self.outlier_weight}"),
            (self.workers >= 0, f"workers must be >= 0, got {self.workers}"),
            (self.checkpoint_every >= 0, f"checkpoint interval must be >= 0, got {self.checkpoint_every}"),
        ]
        for ok, message in checks:
            if not ok:
                raise DataError(message)

    def total_steps(self, batches_per_epoch: int) -> int:
        if self.steps is not None:
            return self.steps
        return math.ceil(self.epochs * batches_per_epoch)

    def with_(self, **changes) -> TrainRecipe:
        """A copy with *changes*; None values keep the default (CLI options left unset).
        Giving ``epochs`` alone clears ``steps`` and the other way round; giving
        both is a DataError (one would be ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if "epochs" in changes and "steps" in changes:
            raise DataError(f"give steps or epochs, not both (--steps {changes['steps']}, "
                            f"--epochs {changes['epochs']})")
        if "epochs" in changes and "steps" not in changes:
            changes["steps"] = None
        if "steps" in changes and "epochs" not in changes:
            changes["epochs"] = None
        return replace(self, **changes)

    def to_metadata(self) -> dict:
        return asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass(frozen=True)
class TeacherRecipe(TrainRecipe):
    """The server's teacher: 3 epochs over the target's training set, outlier
    exposure on the reference set on (what makes low energy mean in-domain for
    a teacher not pre-trained on the reference set)."""

    epochs: float | None = 3
    translate: float = 0.04
    outlier_weight: float = 0.5


@dataclass(frozen=True)
class StudentRecipe(TrainRecipe):
    """The client's student, trained on the virtual data set only. The tiny
    CNN learns faster at lr 3e-3 than the paper's 1e-3 (a ResNet-18 recipe)."""

    steps: int | None = 1000
    translate: float = 0.08
    rotate: float = 10.0
    scale: float = 0.1


# CLI option name (its argparse dest, also the API keyword) -> recipe field.
# --seed and --workers set the request's field and the recipe's, as the CLI does.
TEACHER_OPTIONS = {"teacher_epochs": "epochs", "teacher_steps": "steps", "teacher_lr": "lr",
                   "teacher_batch_size": "batch_size", "teacher_weight_decay": "weight_decay",
                   "outlier_weight": "outlier_weight", "seed": "seed", "workers": "workers"}
STUDENT_OPTIONS = {name: name for name in ("epochs", "steps", "lr", "batch_size", "weight_decay", "warmup_steps",
                                           "translate", "rotate", "scale", "seed", "workers", "checkpoint_every")}


# The CLI's help for each recipe option (the default is appended from the recipe).
RECIPE_HELP = {"epochs": "passes over the training set instead of steps; 0 = use a checkpoint as it is",
               "steps": "optimiser steps instead of epochs", "lr": "learning rate",
               "batch_size": "global batch", "weight_decay": "AdamW weight decay",
               "warmup_steps": "learning-rate warmup steps",
               "translate": "augmentation: shift, fraction of the side", "rotate": "augmentation: degrees",
               "scale": "augmentation: scale range ±", "seed": "training seed",
               "outlier_weight": "outlier exposure on the reference set while training the teacher (0 = off)",
               "workers": "DataLoader worker processes", "checkpoint_every": "steps between checkpoints"}


def recipe_with_options(recipe: TrainRecipe, mapping: dict[str, str], options: dict) -> TrainRecipe:
    """*recipe* changed by the *options* named in *mapping* (CLI names); None keeps a field."""
    return recipe.with_(**{mapping[k]: v for k, v in options.items() if k in mapping})


# -- type checks ---------------------------------------------------------------------------


def _kind_ok(value, hint) -> bool:
    if hint is typing.Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_kind_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if hint is str:  # names and paths: a pathlib.Path is a path too
        return isinstance(value, (str, os.PathLike))
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_kind_ok(v, args[0]) for v in value)
        return len(args) == len(value) and all(_kind_ok(v, h) for v, h in zip(value, args))
    return isinstance(value, origin or hint)


def _describe(hint) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        return f"a tuple of {_describe(typing.get_args(hint)[0])}"
    names = {bool: "True or False", int: "an integer", float: "a number", str: "a string or path",
             type(None): "None"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def check_types(obj, skip: tuple[str, ...] = ()) -> None:
    """Raise DataError naming the field, the type wanted and the type given for
    the first field of dataclass *obj* whose value does not fit its annotation
    (a bool is not a number here: ``keep=True`` is not 100%)."""
    hints = typing.get_type_hints(type(obj))
    for f in fields(obj):
        if f.name in skip:
            continue
        value = getattr(obj, f.name)
        if not _kind_ok(value, hints[f.name]):
            raise DataError(f"{f.name.replace('_', ' ')} must be {_describe(hints[f.name])}, "
                            f"got {type(value).__name__} {value!r}")


__all__ = ["TrainRecipe", "TeacherRecipe", "StudentRecipe", "TEACHER_OPTIONS", "STUDENT_OPTIONS",
           "recipe_with_options", "check_types"]
