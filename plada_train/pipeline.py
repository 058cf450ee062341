"""The PLADA pipeline: the server turns a labelled task into a payload, the
client turns a payload back into a trained student. Uses plada_codec's public
API only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

import plada_codec

from .data import ImageSet
from .engine import Scores, TrainConfig, evaluate, score_reference, seed_everything, train_classifier
from .models import create_model
from .selection import Selection, select


def train_teacher(target_train: ImageSet, n_classes: int, device: torch.device, *, model_name: str = "smallcnn",
                  checkpoint=None, config: TrainConfig | None = None, outliers: ImageSet | None = None,
                  progress: bool = False):
    """Server step 1: fit a teacher on the target task's training set (paper Eq. 1).

    With *outliers* (the unlabelled reference pool) and ``config.outlier_weight > 0``
    the teacher also learns to be unsure on reference images unlike the task,
    which is what makes low energy mean "in-domain" for a teacher that was not
    pre-trained on the reference set."""
    if target_train.labels is None:
        raise ValueError("the target training set needs labels")
    config = config or TrainConfig()
    seed_everything(config.seed)  # before the model exists, so its initial weights repeat too
    model = create_model(model_name, n_classes, target_train.images.shape[1], checkpoint)
    return train_classifier(model, target_train, target_train.labels, config, device, progress, outliers)


@dataclass
class Produced:
    selection: Selection
    payload: bytes


def produce_payload(scores: Scores, *, n_classes: int, reference: plada_codec.ReferenceSet, keep: float | None = None,
                    budget: int | None = None, mode: str = "low", score: str = "energy",
                    safety_share: float = 0.0, alpha: float = 0.0, seed: int = 0,
                    class_names=None, task_name: str | None = None, extra_metadata: dict | None = None,
                    zstd_level: int = plada_codec.DEFAULT_ZSTD_LEVEL) -> Produced:
    """Server steps 3-4: select from saved scores and encode the payload, bound
    to *reference* and carrying how the selection was made."""
    if len(scores.labels) != reference.n_ref:
        raise ValueError(f"{len(scores.labels)} scores for a reference set of {reference.n_ref}")
    selection = select(scores.get(score), scores.labels, n_classes=n_classes, keep=keep, budget=budget,
                       mode=mode, safety_share=safety_share, alpha=alpha, seed=seed)
    metadata = {"method": "plada", "score": score, "temperature": scores.temperature,
                **selection.params, **(extra_metadata or {})}
    metadata["mode"] = {"low": "low-energy", "high": "high-energy", "random": "random"}[mode]
    payload = plada_codec.encode(selection.indices, scores.labels[selection.indices], n_classes=n_classes,
                                 reference=reference, class_names=class_names, task_name=task_name,
                                 metadata=metadata, zstd_level=zstd_level)
    return Produced(selection, payload)


def consume_payload(data: bytes, reference_images: ImageSet,
                    reference: plada_codec.ReferenceSet | None = None) -> tuple[ImageSet, plada_codec.Payload]:
    """Client step 1: decode against the local reference set and build the
    virtual data set. A payload made for another reference set raises
    ReferenceMismatchError: never a silent wrong training."""
    reference = reference or reference_images.reference_set()
    if reference.n_ref != len(reference_images):
        raise ValueError("the reference fingerprint does not describe these images")
    payload = plada_codec.decode(data, reference=reference)
    virtual = ImageSet(reference_images.images[payload.indices], payload.labels.astype(np.int64),
                       name="virtual")
    return virtual, payload


def train_student(virtual: ImageSet, n_classes: int, device: torch.device, *, model_name: str = "smallcnn",
                  config: TrainConfig | None = None, progress: bool = False):
    """Client step 2: train the student on the virtual data set (paper Eq. 4)."""
    config = config or TrainConfig()
    seed_everything(config.seed)  # before the model exists, so its initial weights repeat too
    model = create_model(model_name, n_classes, virtual.images.shape[1])
    return train_classifier(model, virtual, virtual.labels, config, device, progress)


__all__ = ["train_teacher", "score_reference", "produce_payload", "consume_payload", "train_student",
           "evaluate", "Produced"]
