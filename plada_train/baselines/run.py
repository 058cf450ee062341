"""What every family's run shares: the options, the target's images, the
student trainer, the teacher, and the one store the points go to."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data import ArrayLabelled
from ..recipes import StudentRecipe, TeacherRecipe
from .store import Store

__all__ = ["Run", "images_of"]


def images_of(split) -> np.ndarray:
    """Every image of a labelled split as uint8 (N, C, H, W)."""
    if isinstance(split, ArrayLabelled):
        return np.asarray(split.images)
    arrays = []
    for i in range(len(split)):
        array = np.asarray(split.raw(i))
        arrays.append(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))
    return np.stack(arrays)


@dataclass
class Run:
    """One ``plada-train baselines`` run, as the families see it."""

    target: str
    reference: str
    out: Path
    keeps: Sequence[float]
    per_class: Sequence[int]
    sparsities: Sequence[float]
    seeds: Sequence[int]
    mode: str
    quick: bool
    methods: Sequence[str]
    student_recipe: StudentRecipe
    teacher_recipe: TeacherRecipe
    device: str
    progress: bool
    image_size: int | None
    catalog: str | None
    store: Store
    context: object  # distributed.Context
    test: object  # the target's test split, preprocessed
    channels: int
    n_classes: int
    preprocess: object  # the student's Preprocess
    train_images: np.ndarray
    train_labels: np.ndarray
    log: Callable[[str], None] = print
    _teacher: nn.Module | None = field(default=None, repr=False)

    @property
    def server(self) -> Path:
        """Where produce writes the teacher, the scores and the payloads."""
        return self.out / "plada"

    @property
    def shared(self) -> dict:
        """The options produce and consume take as the baselines run was given them."""
        return {"image_size": self.image_size, "catalog": self.catalog}

    def produce(self, keeps: Sequence[float], mode: str | None = None, **extra):
        """``produce`` into :attr:`server` (one teacher and one scoring pass for every family),
        selecting by *mode* (default: the run's)."""
        from .. import server

        return server.produce(self.target, self.reference, str(self.server), keep=tuple(keeps),
                              mode=mode or self.mode, teacher_recipe=self.teacher_recipe, device=self.device,
                              progress=self.progress, **self.shared, **extra)

    def payload_student(self, path: str | Path) -> Callable[[int], float]:
        """``seed -> accuracy``: the test accuracy of the student ``consume`` trains from the
        payload at *path* on the client's reference copy."""
        from .. import client

        def student(seed: int) -> float:
            consumed = client.consume(str(path), self.reference, test=self.target,
                                      student_recipe=self.student_recipe.with_(seed=seed), device=self.device,
                                      progress=self.progress, **self.shared)
            return float(consumed.accuracy)

        return student

    def teacher(self) -> nn.Module:
        """The teacher PLADA's produce trained (trained here when the PLADA family did not run)."""
        if self._teacher is None:
            if not (self.server / "teacher.pt").exists():
                self.produce((1.0,))
            self._teacher = self.load_teacher()
        return self._teacher

    def load_teacher(self) -> nn.Module:
        """A fresh copy of the saved teacher."""
        from ..models import create_model

        model = create_model("smallcnn", self.n_classes, self.channels)
        model.load_state_dict(torch.load(self.server / "teacher.pt", map_location="cpu", weights_only=True))
        return model.eval()

    def train_student(self, images: np.ndarray, labels: np.ndarray, seed: int) -> float:
        """The student trained on *images* (the client's decoded copy), its test accuracy."""
        from .. import train
        from ..models import create_model

        subset = ArrayLabelled(images, labels, "baseline")
        subset.set_preprocess(self.preprocess, train=True)
        train.seed_everything(seed)
        model = create_model("smallcnn", self.n_classes, self.channels)
        model = train.train_classifier(model, subset, self.student_recipe.with_(seed=seed, checkpoint_every=0),
                                       self.context)
        return train.evaluate(model, self.test, self.context)
