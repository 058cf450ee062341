"""The PLADA pipeline: the server turns a labelled task into payloads
(``produce``), the client turns a payload into a trained student
(``consume``). Both run in one process or under ``torchrun``; both validate
every input before any expensive work. Uses plada_codec's public API only
(its one atomic write, ``plada_codec.write_atomically``, included).

This module imports torch only when a run starts (inside ``produce`` and
``consume``), so that the CLI parses and checks its arguments, and answers
``--help`` or a usage error, without the seconds torch takes to import.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import zipfile
import zlib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import plada_codec
from plada_codec import NotARegularFileError, write_atomically
from plada_codec import __version__ as _package_version

from .errors import DataError
from .recipes import (
    STUDENT_OPTIONS,
    TEACHER_OPTIONS,
    StudentRecipe,
    TeacherRecipe,
    TrainRecipe,
    check_types,
    recipe_with_options,
)
from .selection import MODES, Selection, budget_for, select

if TYPE_CHECKING:
    from torch import nn

    from .distributed import Context
    from .scoring import Scores
    from .sources import Preprocess

TEACHER_FILE, TEACHER_INFO = "teacher.pt", "teacher.json"
MODE_NAMES = {"low": "low-energy", "high": "high-energy", "random": "random"}
# Recipe fields that do not change the result (how fast, how often saved).
_NOT_RESULT = ("workers", "checkpoint_every")


def package_version() -> str:
    return _package_version  # the project's one version (plada_codec and plada_train ship together)


# -- requests: the one place the defaults live ------------------------------------------


DEFAULT_MAX_MISSING = 0.05


@dataclass(frozen=True)
class ProduceRequest:
    """Everything ``produce`` takes; the CLI's defaults are these."""

    target: str = "builtin:mnist"
    reference: str = "builtin:pool"
    out: str = "server"
    keep: tuple[float, ...] = (0.05,)
    mode: str = "low"
    score: str = "energy"
    temperature: float = 1.0
    safety_share: float = 0.0
    alpha: float = -0.2
    spread: float = 1.0  # >= 1: keep B images spread over the best spread * B (selection rule 2)
    seed: int = 0  # for random selection
    n_classes: int | None = None
    class_names: tuple[str, ...] | None = None
    task_name: str | None = None
    teacher: str = "smallcnn"
    teacher_checkpoint: str | None = None
    teacher_recipe: TeacherRecipe = field(default_factory=TeacherRecipe)
    image_size: int | None = None
    channels: int | None = None
    scores: str | None = None  # default OUT/scores.npz
    rescore: bool = False
    batch_size: int = 256  # scoring batch
    shard_size: int = 8192  # scoring shard (items)
    workers: int = 0  # DataLoader workers for scoring and training
    manifest: str | None = None
    rehash: bool = False
    catalog: str | None = None  # with a catalog, reference names the local copy (any layout)
    id_rule: str = "stem"
    device: str = "auto"
    progress: bool = False


@dataclass(frozen=True)
class ConsumeRequest:
    """Everything ``consume`` takes; the CLI's defaults are these."""

    payload: str = ""
    reference: str = "builtin:pool"
    test: str | None = None
    student: str = "smallcnn"
    student_recipe: StudentRecipe = field(default_factory=StudentRecipe)
    image_size: int | None = None
    channels: int | None = None
    save: str | None = None
    checkpoint_dir: str | None = None
    workers: int = 0
    manifest: str | None = None
    rehash: bool = False
    catalog: str | None = None
    id_rule: str = "stem"
    # Train on without the selected items the local copy lacks, up to this fraction of them.
    max_missing: float = DEFAULT_MAX_MISSING
    device: str = "auto"
    progress: bool = False


# Reprs are short: a payload's bytes or a model's layers are not what one prints a result for.


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
    payloads: list[Produced]
    scores_path: Path
    teacher_path: Path
    teacher_accuracy: float | None
    reused_scores: bool

    def __repr__(self) -> str:
        return (f"ProduceResult(payloads={self.payloads!r}, teacher_accuracy={self.teacher_accuracy!r}, "
                f"reused_scores={self.reused_scores!r}, scores_path={str(self.scores_path)!r})")


@dataclass(repr=False)
class Consumed:
    count: int
    n_classes: int
    accuracy: float | None
    notes: list[str]
    model: nn.Module | None = None

    def summary(self) -> dict:
        return {"count": self.count, "n_classes": self.n_classes, "accuracy": self.accuracy}

    def __repr__(self) -> str:
        model = type(self.model).__name__ if self.model is not None else None
        return (f"Consumed(count={self.count}, n_classes={self.n_classes}, accuracy={self.accuracy!r}, "
                f"notes={len(self.notes)}, model={model})")


# -- keywords: the request's fields and the CLI's option names --------------------------------

# CLI names that are not request fields, onto the field (--score-batch-size is the scoring batch).
_PRODUCE_ALIASES = {"score_batch_size": "batch_size"}


def _request_from(base, options: dict, aliases: dict[str, str], recipe_field: str, recipe_options: dict[str, str],
                  what: str):
    """*base* (a request) changed by keyword *options*: its field names, or the
    CLI's option names (``teacher_steps=5``, ``steps=5``), which change the
    recipe as the CLI option does. Anything else is a DataError listing the
    valid names."""
    names = {f.name for f in fields(base)}
    unknown = sorted(k for k in options if k not in names and k not in aliases and k not in recipe_options)
    if unknown:
        valid = sorted(names | set(aliases) | set(recipe_options))
        raise DataError(f"{what}() got unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                        f"valid: {', '.join(valid)}")
    changes = {aliases.get(k, k): v for k, v in options.items() if k in names or k in aliases}
    recipe = changes.get(recipe_field, getattr(base, recipe_field))
    if isinstance(recipe, TrainRecipe):
        recipe = recipe_with_options(recipe, recipe_options, options)
    changes[recipe_field] = recipe
    return replace(base, **changes)


def _normalise_keep(keep) -> tuple:
    """One rate or a sequence of rates, as a tuple of numbers; anything else a DataError naming its type."""
    if isinstance(keep, bool) or not isinstance(keep, (int, float, np.integer, np.floating, list, tuple, np.ndarray)):
        raise DataError(f"keep must be a number or a sequence of numbers (fractions in (0, 1]), got "
                        f"{type(keep).__name__} {keep!r}")
    rates = (keep,) if np.ndim(keep) == 0 else tuple(np.asarray(keep, dtype=object).ravel().tolist())
    for rate in rates:
        if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, (int, float, np.integer, np.floating)):
            raise DataError(f"keep rate must be a number (a fraction in (0, 1]), got {type(rate).__name__} {rate!r}")
    return tuple(float(rate) for rate in rates)


# -- validation ------------------------------------------------------------------------------


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise DataError(message)


def _validate_common(image_size, channels, workers) -> None:
    _check(image_size is None or 8 <= image_size <= 4096, f"image size must be 8..4096 pixels, got {image_size}")
    _check(channels in (None, 1, 3), f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    _check(workers >= 0, f"workers must be >= 0, got {workers}")


def _check_exists(spec, what: str, hint: str, builtins: tuple[str, ...]) -> None:
    """A data spec that names a path must name something (the data layer says more once torch is imported)."""
    if not isinstance(spec, (str, os.PathLike)):
        return  # a list of shards, or something the data layer will refuse
    text = os.fspath(spec)
    if text in builtins:
        return
    _check(text.startswith("builtin:") or Path(text).exists(), f"{what} {text!r} not found: give {hint}")


_TARGET_HINT = "builtin:mnist, a .npz file (x_train, y_train, x_test, y_test) or a folder of class folders"
_REFERENCE_HINT = "builtin:pool, builtin:pool-far, a folder of images, .tar shards or a .npz file"


def _check_output_folder(out) -> None:
    path = Path(out)
    _check(not path.exists() or path.is_dir(), f"--out {out} exists and is not a folder: give a folder "
           "(created if missing) for teacher.pt, scores.npz and the payloads")
    for parent in path.parents:  # mkdir -p fails on a file in the way
        if parent.exists():
            _check(parent.is_dir(), f"--out {out}: {parent} is not a folder")
            break


def _check_save_target(save) -> None:
    """``--save`` is written once the student has trained: check now that it can be."""
    if save is None:
        return
    path = Path(save)
    _check(path.parent.is_dir(), f"--save {save}: folder {path.parent} does not exist: create it or give another path")
    _check(not path.is_dir(), f"--save {save} is a folder: give a file path, e.g. {path / 'student.pt'}")
    _check(not path.is_symlink() and (not path.exists() or path.is_file()),
           f"--save {save} exists and is not a regular file (a link, a FIFO or a device): give a file path")
    _check(os.access(path.parent, os.W_OK), f"--save {save}: folder {path.parent} is not writable")


def validate_produce(req: ProduceRequest) -> None:
    """Cheap checks of everything given, before any data is read or torch is imported
    (a timm model name is checked last: that needs timm)."""
    check_types(req, skip=("reference", "class_names", "keep"))
    _normalise_keep(req.keep)
    _check(len(req.keep) > 0, "give at least one keep rate, e.g. --keep 0.05")
    for keep in req.keep:
        _check(isinstance(keep, (int, float)) and 0 < keep <= 1,
               f"keep rate {keep} outside (0, 1]: give fractions, e.g. --keep 0.01 0.05 (not percentages)")
    _check(len(set(req.keep)) == len(req.keep), f"keep rates repeat ({', '.join(f'{k:g}' for k in req.keep)}): "
           "each rate makes one payload, give it once")
    _check(req.mode in MODES, f"mode must be one of {', '.join(MODES)}, got {req.mode!r}")
    _check(req.score in ("energy", "entropy", "msp"), f"score must be energy, entropy or msp, got {req.score!r}")
    _check(req.temperature > 0 and math.isfinite(req.temperature),
           f"temperature must be positive, got {req.temperature}")
    _check(0 <= req.safety_share <= 1, f"safety share must be in [0, 1], got {req.safety_share}")
    _check(math.isfinite(req.alpha), f"alpha must be finite, got {req.alpha}")
    _check(math.isfinite(req.spread) and req.spread >= 1, f"spread must be a finite number >= 1, got {req.spread}")
    _check(req.spread == 1 or req.mode != "random", "--spread thins the low and high orders; use it without "
           "--mode random")
    _check(req.n_classes is None or 1 <= req.n_classes <= 2**31, f"n_classes must be >= 1, got {req.n_classes}")
    _check(req.batch_size >= 1 and req.shard_size >= 1, "batch size and shard size must be >= 1")
    _validate_common(req.image_size, req.channels, req.workers)
    _check(isinstance(req.teacher_recipe, TeacherRecipe),
           f"teacher recipe must be a TeacherRecipe, got {type(req.teacher_recipe).__name__}")
    no_training = req.teacher_recipe.total_steps(1) == 0
    if req.teacher_checkpoint is not None:
        _check(Path(req.teacher_checkpoint).is_file(),
               f"teacher checkpoint {req.teacher_checkpoint} not found: give a local state-dict file")
    _check(not no_training or req.teacher_checkpoint is not None,
           "a teacher with no training needs --teacher-checkpoint (pretrained weights)")
    _check(req.manifest is None or Path(req.manifest).is_file(), f"manifest {req.manifest} not found")
    _validate_catalog(req.catalog, req.manifest)
    _check_output_folder(req.out)
    _check_exists(req.target, "target", _TARGET_HINT, ("builtin:mnist",))
    if req.catalog is None:
        _check_exists(req.reference, "reference", _REFERENCE_HINT, ("builtin:pool", "builtin:pool-far"))
    from .models import check_model_name  # imports torch (and timm for a timm name)

    check_model_name(req.teacher)


def _validate_catalog(catalog: str | None, manifest: str | None) -> None:
    _check(catalog is None or Path(catalog).is_file(), f"catalog {catalog} not found: build one with "
           "plada catalog build COPY -o CATALOG")
    _check(catalog is None or manifest is None, "give --catalog or --manifest, not both: with a catalog, "
           "--reference names the local copy, resolved against the catalog")


def validate_consume(req: ConsumeRequest) -> None:
    """Cheap checks of everything given, before any data is read or torch is imported."""
    check_types(req, skip=("reference",))
    _check(Path(req.payload).is_file(), f"payload {req.payload} not found")
    _validate_common(req.image_size, req.channels, req.workers)
    _check(isinstance(req.student_recipe, StudentRecipe),
           f"student recipe must be a StudentRecipe, got {type(req.student_recipe).__name__}")
    _check(req.manifest is None or Path(req.manifest).is_file(), f"manifest {req.manifest} not found")
    _validate_catalog(req.catalog, req.manifest)
    _check(isinstance(req.max_missing, (int, float)) and 0 <= req.max_missing <= 1,
           f"max missing must be a fraction in [0, 1], got {req.max_missing!r}")
    _check_save_target(req.save)
    _check_exists(req.test, "test target", _TARGET_HINT, ("builtin:mnist",))
    if req.catalog is None:
        _check_exists(req.reference, "reference", _REFERENCE_HINT, ("builtin:pool", "builtin:pool-far"))
    from .models import check_model_name  # imports torch (and timm for a timm name)

    check_model_name(req.student)


def _class_names(req: ProduceRequest, target, n_classes: int) -> list[str] | None:
    names = list(req.class_names) if req.class_names is not None else target.class_names
    if names is not None and len(names) != n_classes:
        raise DataError(f"{len(names)} class names for {n_classes} classes: give one name per class, in label order")
    return None if names is None else [str(n) for n in names]


def _open_reference(spec: str, manifest, rehash: bool, catalog: str | None = None, id_rule: str = "stem",
                    present_only: bool = False, context: Context | None = None, progress: bool = False):
    """The reference data set. Under torchrun with several processes a machine,
    its local rank 0 lists the set and writes the listing to a temporary file
    that the others memory-map, so a machine holds one listing and scans its
    copy once; the file is removed once every process has opened it."""
    from .sources import open_reference

    if catalog is not None:
        def resolved():
            return open_reference(spec, catalog=catalog, id_rule=id_rule, present_only=present_only)

        if context is None or context.local_world_size <= 1 or not context.distributed:
            return resolved()
        # Local rank 0 resolves the copy first and leaves the resolution beside the catalog; the
        # other ranks of the machine then map it instead of listing the copy again.
        refs = resolved() if context.local_rank == 0 else None
        context.barrier()
        return refs if refs is not None else resolved()
    kwargs: dict = {} if manifest is None and not rehash else {"manifest": manifest, "rehash": rehash}
    if progress:
        kwargs["progress"] = True
    if context is None or context.local_world_size <= 1 or not context.distributed:
        return open_reference(spec, **kwargs)
    import secrets
    import tempfile

    name = context.from_main(lambda: f"plada-listing-{os.getpid()}-{secrets.token_hex(8)}")
    shared = Path(tempfile.gettempdir()) / f"{name}-node{context.node}.npz"
    try:
        refs = open_reference(spec, shared_index=shared, **kwargs) if context.local_rank == 0 else None
        context.barrier()
        if refs is None:
            kwargs.pop("progress", None)
            refs = open_reference(spec, shared_index=shared, **kwargs)
        context.barrier()
    finally:
        if context.local_rank == 0:
            shared.unlink(missing_ok=True)
    return refs


# -- server ------------------------------------------------------------------------------------


def train_teacher(model: nn.Module, target_train, context: Context, *, recipe: TrainRecipe | None = None,
                  outliers=None, checkpoint_dir=None, progress: bool = False) -> nn.Module:
    """Server step 1: fit *model* on the target's training set (paper Eq. 1),
    with outlier exposure on *outliers* (the reference set) per the recipe."""
    from .engine import train_classifier

    recipe = recipe or TeacherRecipe()
    return train_classifier(model, target_train, recipe, context, outliers=outliers,
                            checkpoint_dir=checkpoint_dir, progress=progress, desc="teacher")


def train_student(model: nn.Module, virtual, context: Context, *, recipe: TrainRecipe | None = None,
                  checkpoint_dir=None, progress: bool = False) -> nn.Module:
    """Client step 2: train the student on the virtual data set (paper Eq. 4)."""
    from .engine import train_classifier

    return train_classifier(model, virtual, recipe or StudentRecipe(), context, checkpoint_dir=checkpoint_dir,
                            progress=progress, desc="student")


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
        positions = np.asarray(positions, np.int64)
        if len(positions) != len(scores.labels):
            raise DataError(f"{len(scores.labels)} scores for {len(positions)} held items: score this copy again")
        if keep is not None:
            keep, budget = None, min(budget_for(reference.n_ref, keep=keep), len(positions))
    selection = select(scores.get(score), scores.labels, n_classes=n_classes, keep=keep, budget=budget, mode=mode,
                       safety_share=safety_share, alpha=alpha, seed=seed, spread=spread)
    labels = scores.labels[selection.indices]
    if positions is not None:
        selection = replace(selection, indices=positions[selection.indices])
    metadata = {"method": "plada", "score": score, "temperature": scores.temperature, **selection.params,
                **(extra_metadata or {})}
    metadata["mode"] = MODE_NAMES[mode]
    if mode == "random":
        metadata["seed"] = seed
    payload = plada_codec.encode(selection.indices, labels, n_classes=n_classes,
                                 reference=reference, class_names=class_names, task_name=task_name,
                                 metadata=metadata, zstd_level=zstd_level)
    return Produced(selection, payload, keep=keep)


def _result_recipe(recipe: TrainRecipe) -> dict:
    return {k: v for k, v in recipe.to_metadata().items() if k not in _NOT_RESULT}


def _write(path, write) -> None:
    """``write_atomically``, with an OSError raised by *write* (a full disk) naming *path*."""
    try:
        write_atomically(path, write)
    except OSError as exc:
        if exc.filename is not None or isinstance(exc, NotARegularFileError):
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), os.fspath(path)) from None


def _write_bytes(path: Path, data: bytes) -> None:
    _write(path, lambda fh: fh.write(data))


def _target_digests(target, progress: bool = False) -> dict:
    """What a saved teacher was trained and evaluated on: content, not paths.
    One read of the target (a fraction of one training epoch)."""
    return {"train_sha256": target.train.content_digest(progress),
            "test_sha256": None if target.test is None else target.test.content_digest(progress)}


def _without_target_spec(record: dict, *path: str) -> dict:
    """*record* without ``...target.spec`` (under the keys *path*): records written
    before the target's path became information only had it there, and a path
    names a file, not its content, so it is never compared."""
    if not isinstance(record, dict):
        return record
    record = dict(record)
    inner = record
    for key in path:
        if not isinstance(inner.get(key), dict):
            return record
        inner[key] = dict(inner[key])
        inner = inner[key]
    if isinstance(inner.get("target"), dict):
        inner["target"] = {k: v for k, v in inner["target"].items() if k != "spec"}
    return record


# -- what stopped: the stage a run is in (for the CLI's one line on Ctrl-C) -------------------

_STAGE = {"now": None}


def _stage(text: str | None) -> None:
    _STAGE["now"] = text


def current_stage() -> str | None:
    """What the running (or the last) ``produce`` / ``consume`` was doing; None before any.
    Not cleared when a run ends, so the CLI can say where an interrupted one stopped."""
    return _STAGE["now"]


# -- the output folder: one produce at a time ------------------------------------------------

LOCK_NAME = ".lock"


def _lock_out(out: Path) -> tuple[int | None, str | None]:
    """An exclusive ``flock`` on ``OUT/.lock`` (holding this process's id), or why not.

    The kernel releases it when the process ends, however it ends, so a killed
    run leaves nothing to clean up and the same command resumes. The file is
    left in place: removing it would let a third run lock a new file while the
    second still holds the old one."""
    import fcntl

    fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            os.close(fd)
            raise
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        return None, (f"{out} is in use by another plada-train produce (process {holder}): wait for it to end, "
                      "or give another --out")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd, None


# Temporary files of an atomic write: plada_codec's (.NAME.PID.tmp) and, from before it, NAME.tmpPID.
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp$|^(?P<old>teacher\.pt|teacher\.json|payload-.+\.plada)"
                        r"\.tmp(?P<oldpid>\d+)$")


def _remove_stale_temporaries(out: Path) -> None:
    """Remove what a killed writer left in *out* (it holds the lock, so no other produce
    writes there; a file whose process still runs, e.g. a ``consume --save``, is kept)."""
    for path in out.iterdir():
        match = _TEMPORARY.match(path.name)
        if match is None or not path.is_file():
            continue
        pid = int(match["pid"] or match["oldpid"])
        if pid != os.getpid() and not _process_runs(pid):
            path.unlink(missing_ok=True)


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's
    return True


def _unlock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the flock


def _corrupt(path: Path, exc: BaseException, fix: str) -> DataError:
    return DataError(f"{path} is unreadable ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}): {fix}")


_TEACHER_FIX = "delete it (and teacher.json beside it) to train the teacher again"


def _saved_teacher_request(info: Path) -> tuple[dict, dict] | None:
    """The sidecar of a saved teacher (all of it, and the request it answers), or None.

    A teacher.json or teacher.pt that cannot be read is refused in one line
    naming the file (see ``_read_teacher``), never trained over silently:
    training may have taken hours, and a file that produce wrote atomically
    and now fails to load says the disk or another program changed it."""
    if not info.exists():
        return None
    try:
        saved = json.loads(info.read_text(encoding="utf-8"))
        return saved, saved["request"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise _corrupt(info, exc, _TEACHER_FIX) from None


def _read_teacher(req: ProduceRequest, weights: Path, n_classes: int, channels: int):
    import torch

    from .models import create_model

    model = create_model(req.teacher, n_classes, channels)
    try:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except Exception as exc:  # torch.load raises struct.error, UnpicklingError, RuntimeError, EOFError, ...
        raise _corrupt(weights, exc, _TEACHER_FIX) from None
    return model


def _teacher(req: ProduceRequest, context: Context, out: Path, n_classes: int, channels: int, target, reference,
             teacher_request: dict, target_spec: str) -> tuple[nn.Module, float | None]:
    """Reuse OUT/teacher.pt when it answers the same request, else train
    (or take the checkpoint as it is) and save it, weights + a JSON sidecar."""
    import torch

    from .engine import evaluate, seed_everything
    from .models import checkpoint_classes, create_model, weights_digest
    from .scoring import remove_parts

    weights, info = out / TEACHER_FILE, out / TEACHER_INFO
    found = _saved_teacher_request(info) if weights.exists() else None
    if found is not None:
        saved, request = found
        if _without_target_spec(request) == teacher_request:
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
        _stage("training the teacher")
        if context.is_main:
            print(f"training the teacher ({req.teacher}) on {len(target.train)} images", flush=True)
        model = train_teacher(model, target.train, context, recipe=req.teacher_recipe, outliers=reference,
                              checkpoint_dir=out / "teacher-train", progress=req.progress)
    _stage("evaluating the teacher")
    accuracy = (evaluate(model, target.test, context, workers=req.workers, progress=req.progress,
                         desc="evaluating the teacher") if target.test is not None else None)
    if context.is_main:
        _stage("saving the teacher")
        state = model.state_dict()
        _write(weights, lambda fh: torch.save(state, fh))
        _write_bytes(info, json.dumps({"request": teacher_request, "target_spec": target_spec, "accuracy": accuracy,
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
    ``payload-<mode>-<keep>.plada``, and ``.lock``, locked while a run uses
    the folder (a second run on it stops at once, saying which process holds
    it). Running it again reuses the teacher and the scores when they answer
    the same request and refuses scores that do not. Under torchrun, every
    rank must call it; rank 0 returns the result, the others None."""
    given = {k: v for k, v in (("target", target), ("reference", reference), ("out", out)) if v is not None}
    req = _request_from(request or ProduceRequest(), {**given, **options}, _PRODUCE_ALIASES, "teacher_recipe",
                        TEACHER_OPTIONS, "produce")
    req = replace(req, keep=_normalise_keep(req.keep))
    _stage("checking the inputs")
    validate_produce(req)
    from . import distributed

    context = distributed.setup(req.device)
    try:
        return _produce(req, context)
    finally:
        distributed.teardown(context)


def _produce(req: ProduceRequest, context: Context) -> ProduceResult | None:
    out = Path(req.out)
    if context.is_main:
        out.mkdir(parents=True, exist_ok=True)
    lock = [None]

    def take() -> str | None:
        lock[0], refused = _lock_out(out)
        if refused is None:
            _remove_stale_temporaries(out)
        return refused

    refused = context.from_main(take)  # rank 0 alone holds the lock; every rank stops if it is taken
    if refused is not None:
        raise DataError(refused)
    try:
        return _produce_locked(req, context, out)
    finally:
        _unlock(lock[0])


def _produce_locked(req: ProduceRequest, context: Context, out: Path) -> ProduceResult | None:
    from .models import file_digest, weights_digest
    from .scoring import Scores, remove_parts, score_reference
    from .sources import open_target, preprocess_for

    _stage("reading the target")
    target = open_target(req.target)
    n_classes = req.n_classes or target.n_classes
    _check(n_classes >= target.n_classes,
           f"the target has labels up to {target.n_classes - 1} but --n-classes is {n_classes}: raise it or drop it")
    class_names = _class_names(req, target, n_classes)
    _stage("opening the reference set")
    refs = _open_reference(req.reference, req.manifest, req.rehash, req.catalog, req.id_rule, present_only=True,
                           context=context, progress=req.progress and context.local_rank == 0)
    channels = req.channels or target.channels
    # Hashed or checked once per machine.
    reference_set = context.per_node(lambda: refs.reference_set(progress=req.progress))
    positions = getattr(refs, "positions", None)  # a catalog copy: the held catalog positions
    _check(positions is not None or reference_set.n_ref == len(refs),
           "the reference fingerprint does not describe these images")
    held = None
    if positions is not None:
        held = {"catalog": reference_set.hex, "held": len(positions),
                "held_sha256": hashlib.sha256(np.ascontiguousarray(positions, "<i8").tobytes()).hexdigest()}
        if context.is_main and len(positions) < reference_set.n_ref:
            print(f"the local copy holds {len(positions)} of the catalog's {reference_set.n_ref} items; "
                  "scoring and selecting among those")
    preprocess = preprocess_for(None, req.teacher, channels, req.image_size, native_size=target.image_size)
    target.set_preprocess(preprocess)
    refs.set_preprocess(preprocess)
    _stage("hashing the target")
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
    provenance = {
        "teacher": {**teacher_request, "weights_sha256": None},
        "temperature": req.temperature,
        "outlier_weight": req.teacher_recipe.outlier_weight,
        "reference": {"fingerprint": reference_set.hex, "n": reference_set.n_ref, **({"held": held} if held else {})},
        "preprocess": preprocess.to_metadata(),
        "plada_version": package_version(),
    }
    scores_path = Path(req.scores) if req.scores else out / "scores.npz"
    saved = None
    if scores_path.exists() and not req.rescore:
        saved = _load_scores(Scores, scores_path)
        found = dict(saved.provenance)
        found["teacher"] = {**found.get("teacher", {}), "weights_sha256": None}  # checked once the teacher exists
        _refuse_mismatch(scores_path, found, provenance)
    teacher, accuracy = _teacher(req, context, out, n_classes, channels, target, refs, teacher_request, target_spec)
    provenance["teacher"]["weights_sha256"] = weights_digest(teacher)
    if context.is_main and accuracy is not None:
        print(f"teacher accuracy: {accuracy:.4f}")
    if saved is not None:
        _refuse_mismatch(scores_path, saved.provenance, provenance)
        scores = saved
        if context.is_main:
            print(f"reusing scores from {scores_path}")
    else:
        parts = scores_path.with_name(scores_path.name + ".parts")
        if req.rescore and context.is_main:
            remove_parts(parts)
        context.barrier()
        _stage("scoring the reference set")
        scores = score_reference(teacher, refs, context, temperature=req.temperature, batch_size=req.batch_size,
                                 shard_size=req.shard_size, workers=req.workers, parts_dir=parts,
                                 provenance=provenance, progress=req.progress)
        if context.is_main:
            _stage("saving the scores")
            # the target's path, for the reader only (not a MATCHED_KEYS entry, never compared)
            scores.provenance = {**scores.provenance, "target_spec": target_spec}
            scores.save(scores_path)
            remove_parts(parts)
    if not context.is_main:
        return None
    extra = {
        "teacher": {"model": req.teacher, "weights_sha256": provenance["teacher"]["weights_sha256"][:16],
                    "epochs": req.teacher_recipe.epochs, "steps": req.teacher_recipe.steps,
                    "outlier_weight": req.teacher_recipe.outlier_weight, "seed": req.teacher_recipe.seed,
                    "pretrained": req.teacher_checkpoint is not None},
        "teacher_accuracy": None if accuracy is None else round(accuracy, 4),
        "preprocess": preprocess.to_metadata(),
        "plada_version": package_version(),
    }
    results = []
    _stage("writing the payloads")
    for keep in req.keep:
        produced = make_payload(scores, n_classes=n_classes, reference=reference_set, keep=keep, mode=req.mode,
                                score=req.score, safety_share=req.safety_share, alpha=req.alpha, seed=req.seed,
                                spread=req.spread,
                                class_names=class_names, task_name=req.task_name, extra_metadata=extra,
                                positions=positions)
        produced.path = out / payload_name(req.mode, req.safety_share, keep,
                                           produced.selection.params.get("spread", 1.0))
        _write_bytes(produced.path, produced.payload)
        print(f"{produced.path}: {len(produced.selection.indices)} images, {len(produced.payload)} bytes")
        results.append(produced)
    return ProduceResult(results, scores_path, out / TEACHER_FILE, accuracy, saved is not None)


def _load_scores(scores_cls, path: Path):
    """Saved scores, or one line naming the file and the fix for a file that cannot be read."""
    try:
        return scores_cls.load(path)
    except DataError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError, TypeError) as exc:
        raise _corrupt(path, exc, "pass --rescore to score again (or delete it)") from None


def payload_name(mode: str, safety_share: float, keep: float, spread: float = 1.0) -> str:
    """``payload-<mode>[-safety][-spread<s>]-<keep>.plada``, e.g. ``payload-low-0.05.plada``
    or ``payload-low-safety-spread2-0.05.plada`` (*spread*: the effective one, as recorded)."""
    safety = "-safety" if safety_share else ""
    thinned = f"-spread{_short_number(spread)}" if spread != 1 else ""
    return f"payload-{mode}{safety}{thinned}-{_short_number(keep)}.plada"


def _short_number(value: float) -> str:
    """``2`` for 2.0, ``0.05``; the shortest round-trip form when ``:g`` would lose digits."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


def _refuse_mismatch(path: Path, found: dict, wanted: dict) -> None:
    from .scoring import differences

    diff = differences(_without_target_spec(found, "teacher"), _without_target_spec(wanted, "teacher"))
    if diff:
        raise DataError(f"{path} was made for another request ({'; '.join(diff[:3])}"
                        f"{'; ...' if len(diff) > 3 else ''}): pass --rescore to score again, or --scores NEW.npz")


# -- client ------------------------------------------------------------------------------------


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
    from .sources import Preprocess

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
    req = _request_from(request or ConsumeRequest(), {**given, **options}, {}, "student_recipe", STUDENT_OPTIONS,
                        "consume")
    _stage("checking the inputs")
    validate_consume(req)
    from . import distributed

    context = distributed.setup(req.device)
    try:
        return _consume(req, context)
    finally:
        distributed.teardown(context)


def _consume(req: ConsumeRequest, context: Context) -> Consumed | None:
    import torch

    from .engine import evaluate, seed_everything
    from .models import create_model
    from .sources import LabelledSubset, open_target, preprocess_for

    _stage("reading the payload and the reference set")
    test_target = None
    if req.test is not None:
        test_target = open_target(req.test)
        test_target.require_test()
    data = _read_payload(req.payload)
    if req.catalog is not None:
        from .data.reference_catalog import open_catalog

        # The payload's binding first: a payload made against another set is a ReferenceMismatchError
        # (as decode and verify say), not a copy that "holds none of the catalog's items".
        catalog = open_catalog(req.catalog)
        decoded = plada_codec.decode(data, reference=catalog.reference)
        refs = _open_reference(req.reference, req.manifest, req.rehash, catalog, req.id_rule, context=context,
                               progress=req.progress and context.local_rank == 0)
    else:
        refs = _open_reference(req.reference, req.manifest, req.rehash, None, req.id_rule, context=context,
                               progress=req.progress and context.local_rank == 0)
        # ReferenceMismatchError before reading images; hashed or checked once per machine.
        reference = context.per_node(lambda: refs.reference_set(progress=req.progress))
        decoded = plada_codec.decode(data, reference=reference)
    indices, labels = decoded.indices, decoded.labels.astype(np.int64)
    resolution = getattr(refs, "resolution", None)
    if resolution is not None:  # a catalog copy: train on the selected items it holds
        missing = resolution.missing_positions(indices)
        if len(missing):
            fraction = len(missing) / len(indices)
            first = ", ".join(repr(refs.catalog.ids[int(p)]) for p in missing[:5])
            if fraction > req.max_missing:
                raise DataError(f"{len(missing)} of {len(indices)} selected images ({fraction:.2%}) are missing from "
                                f"{req.reference} (first: {first}), above --max-missing {req.max_missing:g}: "
                                "restore them, or pass a larger --max-missing to train without them")
            if context.is_main:
                print(f"note: {len(missing)} of {len(indices)} selected images ({fraction:.2%}) are missing from "
                      f"{req.reference} (first: {first}); training on the other {len(indices) - len(missing)}")
            kept = resolution.local_of[indices] >= 0
            indices, labels = indices[kept], labels[kept]
    meta = decoded.metadata if isinstance(decoded.metadata, dict) else {}
    theirs = meta.get("preprocess") if isinstance(meta.get("preprocess"), dict) else {}
    channels = int(req.channels or theirs.get("channels") or refs.describe().get("channels") or 1)
    # Rebuild the teacher's inputs: its size (resized or native) unless the client asks otherwise.
    their_size = _side(theirs.get("input_size"))
    resized = bool(theirs.get("resize", True))
    preprocess = preprocess_for(None, req.student, channels, req.image_size or (their_size if resized else None),
                                native_size=None if req.image_size or resized or their_size is None
                                else tuple(theirs["input_size"]))
    notes = payload_notes(meta, preprocess)
    if context.is_main:
        for note in notes:
            print(f"note: {note}")
    refs.set_preprocess(preprocess)
    virtual = LabelledSubset(refs, indices, labels)
    if context.is_main:
        print(f"decoded {len(decoded)} (index, label) pairs; training {req.student} on them", flush=True)
    seed_everything(req.student_recipe.seed)
    student = create_model(req.student, decoded.n_classes, int(channels))
    _stage("training the student")
    student = train_student(student, virtual, context, recipe=req.student_recipe, checkpoint_dir=req.checkpoint_dir,
                            progress=req.progress)
    accuracy = None
    if test_target is not None:
        _stage("evaluating the student")
        test_target.set_preprocess(preprocess)
        accuracy = evaluate(student, test_target.test, context, workers=req.workers, progress=req.progress,
                            desc="evaluating the student")
    if req.save and context.is_main:
        _stage("saving the student")
        state = student.state_dict()
        _write(req.save, lambda fh: torch.save(state, fh))
    if not context.is_main:
        return None
    return Consumed(len(indices), decoded.n_classes, accuracy, notes, student)


def _side(input_size) -> int | None:
    if isinstance(input_size, (list, tuple)) and input_size:
        return int(input_size[-1])
    return int(input_size) if isinstance(input_size, int) else None


__all__ = ["ProduceRequest", "ConsumeRequest", "Produced", "ProduceResult", "Consumed", "produce", "consume",
           "make_payload", "train_teacher", "train_student", "validate_produce", "validate_consume",
           "payload_notes", "package_version", "current_stage", "LOCK_NAME"]
