"""The server: a labelled target task in, payloads out (``produce``).

Teacher (trained, or reused when ``OUT/teacher.json`` answers the same request),
one scoring pass over the reference set (reused when its :class:`~.workdir.Provenance`
matches), one payload per keep rate. Runs in one process or under ``torchrun``;
every input is checked (:func:`~.requests.validate_produce`) before torch is imported.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import plada_codec

from .errors import DataError
from .inputs import open_run_reference
from .recipes import TrainRecipe
from .requests import ProduceRequest, check, from_options, normalise_keep, package_version, validate_produce
from .selection import ORDERS, Selection, budget_for, select
from .uncertainty import SCORES
from .workdir import (
    TEACHER_FILE,
    TEACHER_FIX,
    TEACHER_INFO,
    Provenance,
    corrupt,
    load_scores,
    lock_out,
    payload_name,
    remove_stale_temporaries,
    saved_teacher_request,
    short_number,
    stage,
    unlock,
    without_target_spec,
    write,
    write_bytes,
)

if TYPE_CHECKING:
    from torch import nn

    from .distributed import Context
    from .scoring import Scores

__all__ = ["Produced", "ProduceResult", "produce", "make_payload", "near_chance"]

# Recipe fields that do not change the result (how fast, how often saved).
_NOT_RESULT = ("workers", "checkpoint_every")


@dataclass(repr=False)
class Produced:
    """One payload: the selection, its bytes and where they were written (if anywhere)."""

    selection: Selection
    payload: bytes
    path: Path | None = None
    keep: float | None = None

    def __repr__(self) -> str:
        where = f"path={str(self.path)!r}, " if self.path is not None else ""
        return (f"Produced({where}keep={self.keep!r}, images={len(self.selection.indices)}, "
                f"bytes={len(self.payload)})")


@dataclass(repr=False)
class ProduceResult:
    """What ``produce`` made: its payloads, the scores and teacher files, the teacher's accuracy
    and whether earlier scores were reused."""

    payloads: list[Produced]
    scores_path: Path
    teacher_path: Path
    teacher_accuracy: float | None
    reused_scores: bool

    def __repr__(self) -> str:
        return (f"ProduceResult(payloads={self.payloads!r}, teacher_accuracy={self.teacher_accuracy!r}, "
                f"reused_scores={self.reused_scores!r}, scores_path={str(self.scores_path)!r})")


def _class_names(req: ProduceRequest, target, n_classes: int) -> list[str] | None:
    names = list(req.class_names) if req.class_names is not None else target.class_names
    if names is not None and len(names) != n_classes:
        raise DataError(f"{len(names)} class names for {n_classes} classes: give one name per class, in label order")
    return None if names is None else [str(n) for n in names]


def make_payload(scores: Scores, *, n_classes: int, reference: plada_codec.ReferenceSet, keep: float | None = None,
                 budget: int | None = None, mode: str = "low", score: str = "energy", safety_share: float = 0.0,
                 alpha: float = -0.2, seed: int = 0, spread: float = 1.0, class_names=None,
                 task_name: str | None = None,
                 extra_metadata: dict | None = None, zstd_level: int | None = None,
                 positions: np.ndarray | None = None) -> Produced:
    """Server steps 3-4: select from saved scores and encode the payload, bound
    to *reference* and carrying how the selection was made.

    *positions* (a catalog reference): the reference position of each scored
    item, when the server holds only part of the set. The keep rate is then a
    fraction of the whole set (capped at what is held), and only held items can
    be selected."""
    if positions is None:
        if len(scores.labels) != reference.n_ref:
            raise DataError(f"{len(scores.labels)} scores for a reference set of {reference.n_ref}: "
                            "score this reference set")
    else:
        asked = None
        positions = np.asarray(positions, np.int64)
        if len(positions) != len(scores.labels):
            raise DataError(f"{len(scores.labels)} scores for {len(positions)} held items: score this copy again")
        if keep is not None:
            asked, keep, budget = keep, None, min(budget_for(reference.n_ref, keep=keep), len(positions))
    selection = select(scores.get(score), scores.labels, n_classes=n_classes, keep=keep, budget=budget, mode=mode,
                       safety_share=safety_share, alpha=alpha, seed=seed, spread=spread)
    labels = scores.labels[selection.indices]
    if positions is not None:
        selection = replace(selection, indices=positions[selection.indices])
    metadata = {"method": "plada", "score": score, "temperature": scores.temperature, **selection.params,
                **(extra_metadata or {})}
    if positions is not None and asked is not None:
        metadata["keep_fraction"] = asked  # of the whole catalog set, as given (the budget is capped at what is held)
    metadata["mode"] = ORDERS[mode].wire  # what payload metadata calls the order
    if ORDERS[mode].seeded:
        metadata["seed"] = seed
    payload = plada_codec.encode(selection.indices, labels, n_classes=n_classes,
                                 reference=reference, class_names=class_names, task_name=task_name,
                                 metadata=metadata, zstd_level=zstd_level)
    return Produced(selection, payload, keep=keep if positions is None else asked)


def _refuse_empty_budgets(keeps, n_ref: int, held: int | None) -> None:
    """A keep rate that selects no image makes a payload every client fails on: refuse it before any work."""
    for keep in keeps:
        budget = budget_for(n_ref, keep=keep)
        if held is not None:
            budget = min(budget, held)
        if budget == 0:
            smallest = 1 / n_ref if n_ref else 1
            raise DataError(f"keep rate {keep:g} of {n_ref:,} reference images selects no image: give at least "
                            f"{short_number(smallest)} (one image)"
                            + (" and a copy holding some of the catalog's items" if held == 0 else ""))


def near_chance(accuracy: float, n_classes: int) -> str | None:
    """A warning when the teacher is little better than guessing, whose labels are then mostly noise:
    below chance plus a tenth of the way from chance to perfect."""
    chance = 1 / max(1, n_classes)
    if n_classes < 2 or accuracy >= chance + 0.1 * (1 - chance):
        return None
    return (f"the teacher's test accuracy {accuracy:.3f} is near chance ({chance:.3f} for {n_classes} classes): "
            "the payloads' labels will be mostly noise; train it longer (--teacher-epochs, --teacher-steps) or "
            "check the target's labels")


def _teacher_preprocess(req: ProduceRequest, channels: int, target, refs, say: bool):
    """The teacher's input recipe. A built-in CNN takes the target's own image size; when the
    reference's images are another size or not known to share one (a folder, shards: real sets
    have mixed sizes), every image is resized to that size by default, as timm's transforms do
    for a timm model, and one line says so."""
    from .data import ArrayLabelled
    from .models import BUILTIN
    from .preprocess import preprocess_for

    native = target.image_size
    recipe = preprocess_for(None, req.teacher, channels, req.image_size, native_size=native)
    if req.image_size is not None or req.teacher not in BUILTIN or native is None:
        return recipe
    described = refs.describe()
    theirs = tuple(described["image_size"])
    if described.get("uniform") is True and theirs == tuple(native) and isinstance(target.train, ArrayLabelled):
        return recipe
    if say:
        sizes = f"{theirs[0]}x{theirs[1]}"
        if described.get("uniform") is not True:
            sizes += " (the first; sizes may differ)"
        print(f"note: reference images are {sizes}, the model's input is {native[0]}x{native[1]} (the target's): "
              "every image is resized to it; pass --image-size to choose another size", flush=True)
    return replace(recipe, resize=True)


def _result_recipe(recipe: TrainRecipe) -> dict:
    return {k: v for k, v in recipe.to_metadata().items() if k not in _NOT_RESULT}


def _target_digests(target, progress: bool = False) -> dict:
    """What a saved teacher was trained and evaluated on: content, not paths.
    One read of the target (a fraction of one training epoch)."""
    return {"train_sha256": target.train.content_digest(progress),
            "test_sha256": None if target.test is None else target.test.content_digest(progress)}


def _read_teacher(req: ProduceRequest, weights: Path, n_classes: int, channels: int):
    import torch

    from .models import create_model

    model = create_model(req.teacher, n_classes, channels)
    try:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except Exception as exc:  # torch.load raises struct.error, UnpicklingError, RuntimeError, EOFError, ...
        raise corrupt(weights, exc, TEACHER_FIX) from None
    return model


def _teacher(req: ProduceRequest, context: Context, out: Path, n_classes: int, channels: int, target, reference,
             teacher_request: dict, target_spec: str) -> tuple[nn.Module, float | None]:
    """Reuse OUT/teacher.pt when it answers the same request, else train
    (or take the checkpoint as it is) and save it, weights + a JSON sidecar."""
    import torch

    from .models import checkpoint_classes, create_model, weights_digest
    from .scoring import remove_parts
    from .train import evaluate, seed_everything, train_teacher

    weights, info = out / TEACHER_FILE, out / TEACHER_INFO
    found = saved_teacher_request(info) if weights.exists() else None
    if found is not None:
        saved, request = found
        if without_target_spec(request) == teacher_request:
            model = _read_teacher(req, weights, n_classes, channels)
            if context.is_main:
                remove_parts(out / "teacher-train")  # left by a run stopped after saving the teacher
                print(f"reusing teacher {weights}")
            return model.eval(), saved.get("accuracy")
    seed_everything(req.teacher_recipe.seed)  # before the model exists, so its initial weights repeat too
    model = create_model(req.teacher, n_classes, channels, req.teacher_checkpoint)
    if req.teacher_recipe.total_steps(1) == 0:
        stored = checkpoint_classes(req.teacher, req.teacher_checkpoint)
        if stored != n_classes:
            raise DataError(f"{req.teacher_checkpoint} has a {stored}-class head and the target has {n_classes} "
                            "classes: train the head with --teacher-epochs 1 (or more)")
        model.eval()
    else:
        stage("training the teacher")
        if context.is_main:
            print(f"training the teacher ({req.teacher}) on {len(target.train)} images", flush=True)
        model = train_teacher(model, target.train, context, recipe=req.teacher_recipe, outliers=reference,
                              checkpoint_dir=out / "teacher-train", progress=req.progress)
    stage("evaluating the teacher")
    accuracy = (evaluate(model, target.test, context, workers=req.workers, progress=req.progress,
                         desc="evaluating the teacher") if target.test is not None else None)
    if context.is_main:
        stage("saving the teacher")
        state = model.state_dict()
        write(weights, lambda fh: torch.save(state, fh))
        write_bytes(info, json.dumps({"request": teacher_request, "target_spec": target_spec, "accuracy": accuracy,
                                       "weights_sha256": weights_digest(model)}, indent=2).encode())
        remove_parts(out / "teacher-train")
    context.barrier()
    return model, accuracy


def produce(target: str | None = None, reference: str | None = None, out: str | None = None, *,
            request: ProduceRequest | None = None, **options) -> ProduceResult | None:
    """Server: teacher, one scoring pass, one payload per keep rate.

    Options are the fields of ProduceRequest (the CLI's defaults) or the CLI's
    option names: ``teacher_epochs``, ``teacher_steps``, ``teacher_lr``,
    ``teacher_batch_size``, ``teacher_weight_decay``, ``outlier_weight`` change
    the teacher recipe, ``score_batch_size`` is ``batch_size``, and ``seed`` /
    ``workers`` set the request's and the recipe's, as ``--seed`` / ``--workers``
    do. Another name is a DataError listing the valid ones. Files in *out*:
    ``teacher.pt`` (+ ``teacher.json``), ``scores.npz`` (with what made it),
    ``payload-<mode>[-<score>][-safety][-spread<s>]-<keep>.plada``
    (:func:`.workdir.payload_name`), and ``.lock``, locked while a run uses
    the folder (a second run on it stops at once, saying which process holds
    it). Running it again reuses the teacher and the scores when they answer
    the same request and refuses scores that do not. Under torchrun, every
    rank must call it; rank 0 returns the result, the others None."""
    given = {k: v for k, v in (("target", target), ("reference", reference), ("out", out)) if v is not None}
    req = from_options(request or ProduceRequest(), {**given, **options}, "produce")
    req = replace(req, keep=normalise_keep(req.keep))
    stage("checking the inputs")
    validate_produce(req)
    from . import distributed

    with distributed.session(req.device) as context:
        return _produce(req, context)


def _produce(req: ProduceRequest, context: Context) -> ProduceResult | None:
    out = Path(req.out)
    if context.is_main:
        out.mkdir(parents=True, exist_ok=True)
    lock = [None]

    def take() -> str | None:
        lock[0], refused = lock_out(out)
        if refused is None:
            remove_stale_temporaries(out)
        return refused

    refused = context.from_main(take)  # rank 0 alone holds the lock; every rank stops if it is taken
    if refused is not None:
        raise DataError(refused)
    try:
        return _produce_locked(req, context, out)
    finally:
        unlock(lock[0])


def _produce_locked(req: ProduceRequest, context: Context, out: Path) -> ProduceResult | None:
    from .data import open_target
    from .models import file_digest, weights_digest
    from .scoring import Scores

    stage("reading the target")
    target = open_target(req.target)
    n_classes = req.n_classes or target.n_classes
    check(n_classes >= target.n_classes,
          f"the target has labels up to {target.n_classes - 1} but --n-classes is {n_classes}: raise it or drop it")
    class_names = _class_names(req, target, n_classes)
    stage("opening the reference set")
    refs = open_run_reference(req.reference, req.manifest, req.rehash, req.catalog, req.id_rule, present_only=True,
                              context=context, progress=req.progress and context.local_rank == 0)
    channels = req.channels or target.channels
    # Hashed or checked once per machine.
    reference_set = context.per_node(lambda: refs.reference_set(progress=req.progress))
    positions = getattr(refs, "positions", None)  # a catalog copy: the held catalog positions
    check(positions is not None or reference_set.n_ref == len(refs),
          "the reference fingerprint does not describe these images")
    held = None
    if positions is not None:
        held = {"catalog": reference_set.hex, "held": len(positions),
                "held_sha256": hashlib.sha256(np.ascontiguousarray(positions, "<i8").tobytes()).hexdigest()}
        if context.is_main and len(positions) < reference_set.n_ref:
            print(f"the local copy holds {len(positions)} of the catalog's {reference_set.n_ref} items; "
                  "scoring and selecting among those")
    _refuse_empty_budgets(req.keep, reference_set.n_ref, None if positions is None else len(positions))
    preprocess = _teacher_preprocess(req, channels, target, refs, say=context.is_main)
    target.set_preprocess(preprocess)
    refs.set_preprocess(preprocess)
    stage("hashing the target")
    teacher_request = {  # what a saved teacher must answer; the target by content (its path is not compared)
        "model": req.teacher,
        "checkpoint_sha256": file_digest(req.teacher_checkpoint) if req.teacher_checkpoint else None,
        "recipe": _result_recipe(req.teacher_recipe),
        "target": {"n_train": len(target.train), "n_classes": n_classes,
                   **context.from_main(lambda: _target_digests(target, req.progress))},
        "reference": reference_set.hex if held is None else held,  # outlier exposure reads it
        "preprocess": preprocess.to_metadata(),
    }
    target_spec = os.fspath(req.target)
    provenance = Provenance(
        teacher=teacher_request, temperature=req.temperature, outlier_weight=req.teacher_recipe.outlier_weight,
        reference={"fingerprint": reference_set.hex, "n": reference_set.n_ref, **({"held": held} if held else {})},
        preprocess=preprocess.to_metadata(), plada_version=package_version())
    scores_path = Path(req.scores) if req.scores else out / "scores.npz"
    saved = None
    if scores_path.exists() and not req.rescore:
        saved = load_scores(Scores, scores_path)
        provenance.refuse_other(Provenance.from_record(saved.provenance), scores_path, weights=False)  # the teacher
        if SCORES[req.score].array not in saved.arrays:
            raise DataError(f"{scores_path} holds no {req.score} scores (an older plada wrote it): pass --rescore "
                            "to score again, or --scores NEW.npz")
    teacher, accuracy = _teacher(req, context, out, n_classes, channels, target, refs, teacher_request, target_spec)
    provenance = replace(provenance, weights_sha256=weights_digest(teacher))
    if context.is_main and accuracy is not None:
        print(f"teacher accuracy: {accuracy:.4f}")
        warning = near_chance(accuracy, n_classes)
        if warning:
            print(f"warning: {warning}", file=sys.stderr, flush=True)
    if saved is not None:
        provenance.refuse_other(Provenance.from_record(saved.provenance), scores_path)
        scores = saved
        if context.is_main:
            print(f"reusing scores from {scores_path}")
    else:
        scores = _score(req, context, teacher, refs, provenance, scores_path, target_spec)
    if not context.is_main:
        return None
    extra = {
        "teacher": {"model": req.teacher, "weights_sha256": provenance.weights_sha256[:16],
                    "epochs": req.teacher_recipe.epochs, "steps": req.teacher_recipe.steps,
                    "outlier_weight": req.teacher_recipe.outlier_weight, "seed": req.teacher_recipe.seed,
                    "pretrained": req.teacher_checkpoint is not None},
        "teacher_accuracy": None if accuracy is None else round(accuracy, 4),
        "preprocess": preprocess.to_metadata(),
        "plada_version": package_version(),
    }
    if req.catalog is not None:  # a client then knows to pass --catalog, not to hash its copy
        extra["catalog"] = {"fingerprint": reference_set.hex, "n": reference_set.n_ref, "id_rule": req.id_rule,
                            "file": Path(req.catalog).name}
    stage("writing the payloads")
    results = [_write_payload(req, out, scores, keep, n_classes, reference_set, class_names, extra, positions)
               for keep in req.keep]
    return ProduceResult(results, scores_path, out / TEACHER_FILE, accuracy, saved is not None)


def _score(req: ProduceRequest, context: Context, teacher, refs, provenance: Provenance, scores_path: Path,
           target_spec: str):
    """One scoring pass over the reference set (resumable, shard by shard), saved on rank 0."""
    from .scoring import remove_parts, score_reference

    parts = scores_path.with_name(scores_path.name + ".parts")
    if req.rescore and context.is_main:
        remove_parts(parts)
    context.barrier()
    stage("scoring the reference set")
    scores = score_reference(teacher, refs, context, temperature=req.temperature, batch_size=req.batch_size,
                             shard_size=req.shard_size, workers=req.workers, parts_dir=parts,
                             provenance=provenance.to_record(), progress=req.progress)
    if context.is_main:
        stage("saving the scores")
        # the target's path, for the reader only (not a matched key, never compared)
        scores.provenance = {**scores.provenance, "target_spec": target_spec}
        scores.save(scores_path)
        remove_parts(parts)
    return scores


def _write_payload(req: ProduceRequest, out: Path, scores, keep: float, n_classes: int, reference_set,
                   class_names, extra: dict, positions) -> Produced:
    produced = make_payload(scores, n_classes=n_classes, reference=reference_set, keep=keep, mode=req.mode,
                            score=req.score, safety_share=req.safety_share, alpha=req.alpha, seed=req.seed,
                            spread=req.spread, class_names=class_names, task_name=req.task_name,
                            extra_metadata=extra, positions=positions)
    produced.path = out / payload_name(req.mode, req.safety_share, keep, produced.selection.params.get("spread", 1.0),
                                       req.score if ORDERS[req.mode].by_score else "energy")
    write_bytes(produced.path, produced.payload)
    print(f"{produced.path}: {len(produced.selection.indices)} images, {len(produced.payload)} bytes")
    return produced


