"""The client: a payload in, a trained student out (``consume``).

Decode the payload against the local reference set (a ReferenceMismatchError
before any image is read), take the selected items of the copy and the
``--max-missing`` policy from the payload's virtual set
(``plada_codec.export.virtual_set``, as ``virtual_dataset`` and ``plada export``),
rebuild the teacher's preprocessing from the payload's metadata, train the
student on the k selected images, evaluate it, and leave the result beside the
payload (``payload-x.result.json``, read by ``plada-train report``). Every input
is checked (:func:`~.requests.validate_consume`) before torch is imported.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import plada_codec

from .errors import DataError
from .inputs import open_run_reference
from .requests import ConsumeRequest, from_options, package_version, validate_consume
from .workdir import stage, write, write_bytes

if TYPE_CHECKING:
    from torch import nn

    from .distributed import Context
    from .preprocess import Preprocess

__all__ = ["Consumed", "consume", "payload_notes", "result_path_for"]


@dataclass(repr=False)
class Consumed:
    """What ``consume`` did: *count* images trained on (of *selected* in the payload), the
    student's *accuracy* on *test_count* test images, beside the teacher's (from the payload)."""

    count: int
    n_classes: int
    accuracy: float | None
    notes: list[str]
    model: nn.Module | None = None
    test_count: int | None = None
    teacher_accuracy: float | None = None
    selected: int | None = None
    student_name: str | None = None
    result_path: Path | None = None

    def summary(self) -> dict:
        # accuracy stays last: scripts read the line as text too
        return {"count": self.count, "n_classes": self.n_classes, "selected": self.selected,
                "test_count": self.test_count, "teacher_accuracy": self.teacher_accuracy, "accuracy": self.accuracy}

    def __repr__(self) -> str:
        model = type(self.model).__name__ if self.model is not None else None
        return (f"Consumed(count={self.count}, n_classes={self.n_classes}, accuracy={self.accuracy!r}, "
                f"notes={len(self.notes)}, model={model})")


# -- keywords: the request's fields and the CLI's option names --------------------------------

def _read_payload(path: str) -> bytes:
    reader = getattr(plada_codec, "read_payload", None)
    if reader is not None:
        return reader(path)
    size = Path(path).stat().st_size
    if size > plada_codec.DEFAULT_MAX_SECTION_BYTES * 8:
        raise DataError(f"{path} is {size} bytes, far larger than any payload: is it the right file?")
    return Path(path).read_bytes()


def payload_notes(metadata: dict, preprocess: Preprocess) -> list[str]:
    """What differs between what made the payload and this client (one line each)."""
    from .preprocess import Preprocess

    notes = []
    theirs = metadata.get("preprocess")
    if isinstance(theirs, dict):
        try:
            teacher_saw = Preprocess.from_metadata(theirs)
        except ValueError as exc:
            notes.append(f"the payload's preprocess record is unreadable ({exc})")
        else:
            notes += [f"preprocess {d} (teacher vs this student)" for d in teacher_saw.differences(preprocess)]
    else:
        notes.append("the payload does not say how the teacher's inputs were made")
    version = metadata.get("plada_version")
    if version is not None and version != package_version():
        notes.append(f"made by plada {version}, this is plada {package_version()}")
    return notes


def consume(payload: str | None = None, reference: str | None = None, *, request: ConsumeRequest | None = None,
            **options) -> Consumed | None:
    """Client: decode *payload* against the local *reference* set, read only
    the k selected images, train a student, evaluate on ``test`` if given.

    Options are the fields of ConsumeRequest (the CLI's defaults) or the CLI's
    option names for the student recipe (``steps``, ``epochs``, ``lr``,
    ``batch_size``, ``weight_decay``, ``warmup_steps``, ``translate``,
    ``rotate``, ``scale``, ``checkpoint_every``; ``seed``, and ``workers``
    which also sets the request's); another name is a DataError listing the
    valid ones. ``save`` is checked (its folder exists, it is not a folder or
    a device) before anything is read. A payload made for another reference
    set raises ReferenceMismatchError before any image is read. Under torchrun
    every rank must call it (DDP training); rank 0 returns the result, the
    others None."""
    given = {k: v for k, v in (("payload", payload), ("reference", reference)) if v is not None}
    req = from_options(request or ConsumeRequest(), {**given, **options}, "consume")
    stage("checking the inputs")
    validate_consume(req)
    from . import distributed

    with distributed.session(req.device) as context:
        return _consume(req, context)


def _consume(req: ConsumeRequest, context: Context) -> Consumed | None:
    import torch

    from .data import LabelledSubset, open_target
    from .models import create_model
    from .train import evaluate, seed_everything, train_student

    stage("reading the payload and the reference set")
    test_target = None
    if req.test is not None:
        test_target = open_target(req.test)
        test_target.require_test()
    decoded, refs, indices, labels = _selected(req, context)
    meta = decoded.metadata if isinstance(decoded.metadata, dict) else {}
    preprocess = _student_preprocess(req, meta, refs)
    notes = payload_notes(meta, preprocess)
    if context.is_main:
        for note in notes:
            print(f"note: {note}")
    refs.set_preprocess(preprocess)
    virtual = LabelledSubset(refs, indices, labels)
    if context.is_main:
        lacking = len(decoded) - len(indices)
        print(f"decoded {len(decoded)} (index, label) pairs; training {req.student} on "
              + (f"the {len(indices)} this copy holds" if lacking else "them"), flush=True)
    seed_everything(req.student_recipe.seed)
    student = create_model(req.student, decoded.n_classes, preprocess.channels)
    stage("training the student")
    student = train_student(student, virtual, context, recipe=req.student_recipe, checkpoint_dir=req.checkpoint_dir,
                            progress=req.progress)
    accuracy = None
    if test_target is not None:
        stage("evaluating the student")
        test_target.set_preprocess(preprocess)
        accuracy = evaluate(student, test_target.test, context, workers=req.workers, progress=req.progress,
                            desc="evaluating the student")
    if req.save and context.is_main:
        stage("saving the student")
        state = student.state_dict()
        write(req.save, lambda fh: torch.save(state, fh))
    if not context.is_main:
        return None
    teacher_accuracy = meta.get("teacher_accuracy")
    consumed = Consumed(len(indices), decoded.n_classes, accuracy, notes, student,
                        test_count=None if test_target is None else len(test_target.test),
                        teacher_accuracy=teacher_accuracy if isinstance(teacher_accuracy, (int, float))
                        and not isinstance(teacher_accuracy, bool) else None,
                        selected=len(decoded), student_name=req.student)
    if accuracy is not None:
        stage("writing the result")
        consumed.result_path = _write_result(req.payload, consumed)
    return consumed


def _selected(req: ConsumeRequest, context: Context):
    """(the decoded payload, the reference set, the selected indices and labels it holds):
    the payload's binding checked before any image is read. On a folder, tar or catalog
    copy the selection is the payload's virtual set (``plada_codec.export.virtual_set``,
    what ``virtual_dataset`` and ``plada export`` read), so the items trained on and the
    ``--max-missing`` policy are theirs; on a catalog copy a word on bytes that differ
    from the catalog's. builtin: and .npz sets hold arrays: their items are the payload's."""
    data = _read_payload(req.payload)
    catalog = reference = None
    if req.catalog is not None:
        from .data.reference_catalog import open_catalog

        # The payload's binding first: a payload made against another set is a ReferenceMismatchError
        # (as decode and verify say), not a copy that "holds none of the catalog's items".
        catalog = open_catalog(req.catalog)
        decoded = plada_codec.decode(data, reference=catalog.reference)
        refs = open_run_reference(req.reference, req.manifest, req.rehash, catalog, req.id_rule, context=context,
                                  progress=req.progress and context.local_rank == 0)
    else:
        refs = open_run_reference(req.reference, req.manifest, req.rehash, None, req.id_rule, context=context,
                                  progress=req.progress and context.local_rank == 0)
        # ReferenceMismatchError before reading images; hashed or checked once per machine.
        reference = context.per_node(lambda: refs.reference_set(progress=req.progress))
        decoded = _decode_bound(data, reference, req.payload)
    if catalog is None and refs.kind not in ("folder", "tar"):
        return decoded, refs, decoded.indices, decoded.labels.astype(np.int64)
    selection = _virtual_set(req, decoded, refs, catalog, reference)
    indices, labels = selection.positions, selection.labels
    missing = selection.missing_positions
    if len(missing) and context.is_main:
        first = ", ".join(repr(catalog.ids[int(p)]) for p in missing[:5])
        selected = len(indices) + len(missing)
        print(f"note: {len(missing)} of {selected} selected images ({len(missing) / selected:.2%}) are missing from "
              f"{req.reference} (first: {first}); training on the other {len(indices)}")
    if catalog is not None and context.is_main and catalog.has_digests and len(indices):
        differ = refs.resolution.differing_positions(indices, req.workers or None)
        if len(differ):
            first = ", ".join(repr(catalog.ids[int(p)]) for p in differ[:5])
            every = "every one" if len(differ) == len(indices) else f"{len(differ)} of {len(indices)}"
            print(f"note: {every} of the selected images {req.reference} holds differ in content from the "
                  f"catalog's (a re-encoded copy differs everywhere; first: {first}); the student trains on "
                  "this copy's bytes, not the ones the teacher labelled")
    return decoded, refs, indices, labels


def _virtual_set(req: ConsumeRequest, decoded, refs, catalog, reference):
    """The payload's virtual set over the copy, from what consume holds already (the
    catalog and the copy's resolution, or the copy's fingerprint and listing): nothing
    is resolved, listed or hashed again."""
    from plada_codec import export

    try:
        if catalog is not None:
            return export.virtual_set(decoded, req.reference, catalog, max_missing=req.max_missing,
                                      resolution=refs.resolution, arrays=True)
        return export.virtual_set(decoded, req.reference, max_missing=req.max_missing, reference_set=reference,
                                  listing=refs.listing)
    except export.MissingItemsError as exc:
        first = ", ".join(repr(i) for i in exc.first_ids)
        raise DataError(f"{exc.missing} of {exc.selected} selected images ({exc.missing / exc.selected:.2%}) are "
                        f"missing from {req.reference} (first: {first}), above --max-missing {req.max_missing:g}: "
                        "restore them, or pass a larger --max-missing to train without them") from None


def _student_preprocess(req: ConsumeRequest, meta: dict, refs):
    """The teacher's inputs, rebuilt from the payload's record: its size (resized or
    native) and channels unless the client asks otherwise."""
    from .preprocess import preprocess_for

    theirs = meta.get("preprocess") if isinstance(meta.get("preprocess"), dict) else {}
    channels = int(req.channels or theirs.get("channels") or refs.describe().get("channels") or 1)
    their_size = _side(theirs.get("input_size"))
    resized = bool(theirs.get("resize", True))
    return preprocess_for(None, req.student, channels, req.image_size or (their_size if resized else None),
                          native_size=None if req.image_size or resized or their_size is None
                          else tuple(theirs["input_size"]))


def result_path_for(payload) -> Path:
    """Where ``consume`` leaves its result: ``payload-x.plada`` -> ``payload-x.result.json`` beside it
    (``plada-train report`` reads it into its accuracy column)."""
    path = Path(payload)
    return path.with_name(path.stem + ".result.json")


def _write_result(payload: str, consumed: Consumed) -> Path | None:
    """The result beside the payload; a folder that cannot be written costs a note, not the trained student."""
    path = result_path_for(payload)
    record = {"payload": Path(payload).name, **consumed.summary(), "student": consumed.student_name,
              "plada_version": package_version()}
    try:
        write_bytes(path, (json.dumps(record, indent=1) + "\n").encode())
    except OSError as exc:
        print(f"note: could not write {path} ({exc.strerror or exc}); the result is only on standard output",
              file=sys.stderr)
        return None
    return path


def _decode_bound(data: bytes, reference, where: str):
    """``decode`` bound to *reference*; a payload made against a catalog says so in the mismatch."""
    try:
        return plada_codec.decode(data, reference=reference)
    except plada_codec.ReferenceMismatchError as exc:
        try:
            made = plada_codec.decode(data).metadata
        except plada_codec.PayloadError:
            raise exc from None
        catalog = made.get("catalog") if isinstance(made, dict) else None
        if not isinstance(catalog, dict):
            raise
        name = catalog.get("file") if isinstance(catalog.get("file"), str) else "CATALOG"
        rule = catalog.get("id_rule") if isinstance(catalog.get("id_rule"), str) else "stem"
        hint = f" --id {rule}" if rule != "stem" else ""
        raise plada_codec.ReferenceMismatchError(
            f"{exc}; {where} was made against a catalog ({name}): pass --catalog {name}{hint}, and --reference "
            "names your copy in any layout") from None


def _side(input_size) -> int | None:
    if isinstance(input_size, (list, tuple)) and input_size:
        return int(input_size[-1])
    return int(input_size) if isinstance(input_size, int) else None
