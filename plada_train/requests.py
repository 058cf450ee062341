"""What ``produce`` and ``consume`` take: one request dataclass each, the one home
of every option.

A field's CLI option is declared on the field itself (:func:`option`: flag,
help, argparse type, group), so the Python API, the CLI and the API's keyword
names cannot drift: :func:`add_options` builds the argparse options of a
request, :func:`from_args` reads them back, and :func:`from_options` takes
keywords under either the field's name or the CLI's (``score_batch_size``,
``quiet``, ``teacher_steps``). The training recipes' options come from
:data:`~.recipes.TEACHER_OPTIONS` / :data:`~.recipes.STUDENT_OPTIONS` and their
help from :data:`~.recipes.RECIPE_HELP`.

:func:`validate_produce` / :func:`validate_consume` check everything given,
every path included, before any data is read or torch is imported (a timm model
name is checked last: that needs timm). numpy and the standard library only.
"""

from __future__ import annotations

import argparse
import math
import os
import typing
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from plada_codec import __version__ as _package_version

from .errors import DataError
from .recipes import (
    RECIPE_HELP,
    STUDENT_OPTIONS,
    TEACHER_OPTIONS,
    StudentRecipe,
    TeacherRecipe,
    TrainRecipe,
    check_types,
    recipe_with_options,
)
from .selection import MODES, ORDERS, SPREAD_MODES
from .uncertainty import SCORE_NAMES, SCORES

__all__ = ["ProduceRequest", "ConsumeRequest", "option", "add_options", "from_args", "from_options",
           "validate_produce", "validate_consume", "normalise_keep", "package_version", "DEFAULT_MAX_MISSING"]

DEFAULT_MAX_MISSING = 0.05


def package_version() -> str:
    return _package_version  # the project's one version (plada_codec and plada_train ship together)


def option(default: Any = MISSING, help: str | None = None, *, flag: str | None = None, group: str = "run",
           factory: Callable | None = None, invert: bool = False, from_cli: Callable | None = None,
           recipe: dict[str, str] | None = None, **argparse_kwargs) -> Field:
    """A request field with its CLI option: ``--name-with-dashes`` unless *flag*
    (``flag=""``: no CLI option; a positional when it has no dashes). *invert*:
    a ``store_true`` flag that sets the field to False (``--quiet`` for
    ``progress``). *from_cli*: turns the parsed value into the field's (a file of
    class names into the names). *recipe*: a training recipe whose options (CLI
    name -> recipe field) the CLI offers beside the field."""
    cli = {"flag": flag, "help": help, "group": group, "invert": invert, "from_cli": from_cli, "recipe": recipe,
           "argparse": argparse_kwargs}
    if factory is not None:
        return field(default_factory=factory, metadata={"cli": cli})
    return field(default=default, metadata={"cli": cli})


def _read_class_names(path: str | None) -> tuple[str, ...] | None:
    if path is None:
        return None
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"class names file {path} not found: give a text file, one name a line") from None
    except UnicodeDecodeError:
        raise DataError(f"class names file {path} is not UTF-8 text: save it as UTF-8") from None
    return tuple(line for line in lines if line.strip())


_CATALOG_HELP = ("catalog (plada catalog build) the payload's indices refer to; --reference then names the local "
                 "copy in any layout (folder, tar shards, parquet)")
_MODEL_HELP = "smallcnn, smallcnn_w32 or a timm model name"


# The reference options both requests take: declared once, a fresh field for each class.
def _manifest_option() -> Any:
    return option(None, "manifest from `plada ref-hash --manifest-out`: verify the reference cheaply",
                  group="data")


def _rehash_option() -> Any:
    return option(False, "re-read every reference file to fingerprint it", group="data", action="store_true")


def _catalog_option() -> Any:
    return option(None, _CATALOG_HELP, group="data")


def _id_rule_option() -> Any:
    return option("stem", "id rule the catalog was built with: stem (default), key or column:NAME",
                  flag="--id", group="data")


@dataclass(frozen=True)
class ProduceRequest:
    """Everything ``produce`` takes; the CLI's defaults are these."""

    target: str = option("builtin:mnist", group="data")
    reference: str = option("builtin:pool", group="data")
    out: str = option("server", "folder for teacher.pt, scores.npz and the payloads", group="data",
                      required=True)
    keep: tuple[float, ...] = option((0.05,), "keep rates, fractions in (0, 1]", group="selection", type=float,
                                     nargs="+")
    mode: str = option("low", "the order images are kept in: " + "; ".join(
        f"{name}: {mode.summary}" for name, mode in ORDERS.items()), group="selection", choices=MODES)
    score: str = option("energy", "what ranks the images, lower = more confident: " + "; ".join(
        f"{name}: {score.summary}" for name, score in SCORES.items()), group="selection", choices=SCORE_NAMES)
    temperature: float = option(1.0, group="selection", type=float)
    safety_share: float = option(0.0, "Safety-Net share s (0 = off)", group="selection", type=float)
    alpha: float = option(-0.2, "Safety-Net exponent α", group="selection", type=float)
    # >= 1: keep B images spread over the best spread * B (selection rule 2)
    spread: float = option(1.0, "keep the budget spread evenly over the best SPREAD x budget images instead of "
                                "the most typical ones (1 = the paper's rule)", group="selection", type=float)
    seed: int = option(0, "training seed (and random selection's)", group="run", type=int)
    n_classes: int | None = option(None, "default: largest target label + 1", group="data", type=int)
    class_names: tuple[str, ...] | None = option(None, "text file, one name a line, in label order", group="data",
                                                 from_cli=_read_class_names)
    task_name: str | None = option(None, group="data")
    teacher: str = option("smallcnn", _MODEL_HELP, group="teacher")
    teacher_checkpoint: str | None = option(None, "local state-dict file (e.g. pretrained timm weights) to "
                                                  "start from", group="teacher")
    teacher_recipe: TeacherRecipe = option(factory=TeacherRecipe, flag="", group="teacher", recipe=TEACHER_OPTIONS)
    image_size: int | None = option(None, "input side in pixels (default: the model's data config; a built-in "
                                          "CNN takes the target's size and resizes other sizes to it)",
                                    group="data", type=int)
    channels: int | None = option(None, "1 = grayscale, 3 = RGB (default: the target's)", group="data", type=int,
                                  choices=[1, 3])
    scores: str | None = option(None, "scores file to reuse or write (default OUT/scores.npz)", group="scoring")
    rescore: bool = option(False, "score again, replacing saved scores", group="scoring", action="store_true")
    batch_size: int = option(256, flag="--score-batch-size", group="scoring", type=int)  # scoring batch
    shard_size: int = option(8192, "items per scoring shard (the resume unit)", group="scoring", type=int)
    workers: int = option(0, "DataLoader worker processes", group="run", type=int)
    manifest: str | None = _manifest_option()
    rehash: bool = _rehash_option()
    catalog: str | None = _catalog_option()
    id_rule: str = _id_rule_option()
    device: str = option("auto", "auto (this rank's GPU when present), cpu or cuda", group="run")
    progress: bool = option(False, "no progress bars or lines", flag="--quiet", invert=True, group="run")


@dataclass(frozen=True)
class ConsumeRequest:
    """Everything ``consume`` takes; the CLI's defaults are these."""

    payload: str = option("", flag="payload", group="data")
    reference: str = option("builtin:pool", group="data")
    test: str | None = option(None, "target spec with a test split, e.g. builtin:mnist", group="data")
    student: str = option("smallcnn", _MODEL_HELP + " (paper: resnet18)", group="student")
    student_recipe: StudentRecipe = option(factory=StudentRecipe, flag="", group="student", recipe=STUDENT_OPTIONS)
    image_size: int | None = option(None, "input side in pixels (default: the teacher's, from the payload)",
                                    group="data", type=int)
    channels: int | None = option(None, "1 = grayscale, 3 = RGB (default: the teacher's)", group="data", type=int,
                                  choices=[1, 3])
    save: str | None = option(None, "write the student's state dict here", group="student")
    checkpoint_dir: str | None = option(None, "write training state here and resume from it", group="student")
    workers: int = option(0, "DataLoader worker processes", group="run", type=int)
    manifest: str | None = _manifest_option()
    rehash: bool = _rehash_option()
    catalog: str | None = _catalog_option()
    id_rule: str = _id_rule_option()
    # Train on without the selected items the local copy lacks, up to this fraction of them.
    max_missing: float = option(DEFAULT_MAX_MISSING, "with --catalog: train without the selected images the local "
                                "copy lacks, up to this fraction of them (default %(default)s); above it, stop "
                                "with exit 2", group="data", type=float, metavar="FRACTION")
    device: str = option("auto", "auto (this rank's GPU when present), cpu or cuda", group="run")
    progress: bool = option(False, "no progress bars or lines", flag="--quiet", invert=True, group="run")


# -- the CLI, built from the fields ---------------------------------------------------------------


def _cli(f: Field) -> dict:
    return f.metadata.get("cli", {})


def _flag(f: Field) -> str | None:
    flag = _cli(f).get("flag")
    return "--" + f.name.replace("_", "-") if flag is None else (flag or None)


def _keyword(f: Field) -> str:
    """The field's CLI name as a Python keyword (``--score-batch-size`` -> ``score_batch_size``)."""
    flag = _flag(f)
    return f.name if flag is None else flag.lstrip("-").replace("-", "_")


def _default_of(f: Field) -> Any:
    return f.default_factory() if f.default is MISSING else f.default


_GROUPS = {"data": "data", "selection": "selection", "teacher": "teacher", "student": "student",
           "scoring": "scoring", "run": "run"}


def add_options(parser: argparse.ArgumentParser, request_cls: type) -> None:
    """The argparse options of *request_cls*, one a field (and a recipe's options), in
    argument groups as timm's ``train.py`` has them. Defaults are the fields'."""
    groups: dict[str, Any] = {}
    taken: set[str] = set()
    used = {_cli(f).get("group", "run") for f in fields(request_cls)}
    for name in _GROUPS:  # in this order in --help
        if name in used:
            groups[name] = parser.add_argument_group(_GROUPS[name])

    def group(name: str):
        if name not in groups:
            groups[name] = parser.add_argument_group(_GROUPS.get(name, name))
        return groups[name]

    for f in fields(request_cls):
        cli = _cli(f)
        flag = _flag(f)
        if flag is not None:
            kwargs = dict(cli.get("argparse", {}))
            if cli.get("help"):
                kwargs["help"] = cli["help"]
            if cli.get("invert"):
                kwargs["action"] = "store_true"
            elif flag.startswith("-") and not kwargs.get("required"):
                default = _default_of(f)
                kwargs.setdefault("default", list(default) if isinstance(default, tuple) else default)
            if flag.startswith("-"):
                kwargs["dest"] = _keyword(f) if cli.get("invert") or cli.get("from_cli") else f.name
            group(cli.get("group", "run")).add_argument(flag, **kwargs)
            taken.add(_keyword(f))
    for f in fields(request_cls):  # then the recipe's, where no field has the name
        cli = _cli(f)
        mapping = cli.get("recipe")
        if mapping:
            recipe = _default_of(f)
            hints = typing.get_type_hints(type(recipe))
            for name, recipe_field in mapping.items():
                if name in taken:
                    continue  # --seed, --workers: the request's option sets the recipe's too
                kind = float if "float" in str(hints[recipe_field]) else int
                help_text = RECIPE_HELP.get(recipe_field, "")
                current = getattr(recipe, recipe_field)
                if current is not None:
                    help_text = f"{help_text} (default {current})" if help_text else f"default {current}"
                group(cli.get("group", "run")).add_argument("--" + name.replace("_", "-"), type=kind,
                                                            help=help_text)
                taken.add(name)


def from_args(request_cls: type, args: argparse.Namespace):
    """The request the parsed *args* describe (the inverse of :func:`add_options`)."""
    options = vars(args)
    values = {}
    for f in fields(request_cls):
        cli = _cli(f)
        if cli.get("recipe"):
            values[f.name] = recipe_with_options(_default_of(f), cli["recipe"], options)
            continue
        if _flag(f) is None:
            continue
        value = options[_keyword(f) if cli.get("invert") or cli.get("from_cli") else f.name]
        if cli.get("invert"):
            value = not value
        elif cli.get("from_cli"):
            value = cli["from_cli"](value)
        elif isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    return request_cls(**values)


def from_options(base, options: dict, what: str):
    """*base* (a request) changed by keyword *options*: its field names, or the
    CLI's option names (``score_batch_size=64``, ``quiet=True``, ``teacher_steps=5``,
    ``steps=5``), which change the request as the CLI option does. Anything else
    is a DataError listing the valid names."""
    by_keyword = {_keyword(f): f for f in fields(base) if _keyword(f) != f.name}
    names = {f.name for f in fields(base)}
    recipe_field = next(f for f in fields(base) if _cli(f).get("recipe"))
    recipe_options = _cli(recipe_field)["recipe"]
    if "quiet" in options and "progress" in options:
        raise DataError(f"{what}() got quiet and progress: give one (quiet=True is progress=False)")
    unknown = sorted(k for k in options if k not in names and k not in by_keyword and k not in recipe_options)
    if unknown:
        valid = sorted(names | set(by_keyword) | set(recipe_options))
        raise DataError(f"{what}() got unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                        f"valid: {', '.join(valid)}")
    changes = {}
    for key, value in options.items():
        if key in names:
            changes[key] = value
        elif key in by_keyword:
            f = by_keyword[key]
            if _cli(f).get("invert"):
                if not isinstance(value, bool):
                    raise DataError(f"{key} must be True or False, got {type(value).__name__} {value!r}")
                value = not value
            changes[f.name] = value
    recipe = changes.get(recipe_field.name, getattr(base, recipe_field.name))
    if isinstance(recipe, TrainRecipe):
        recipe = recipe_with_options(recipe, recipe_options, options)
    changes[recipe_field.name] = recipe
    return replace(base, **changes)


def normalise_keep(keep) -> tuple:
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


def check(ok: bool, message: str) -> None:
    if not ok:
        raise DataError(message)


def _validate_common(image_size, channels, workers) -> None:
    check(image_size is None or 8 <= image_size <= 4096, f"image size must be 8..4096 pixels, got {image_size}")
    check(channels in (None, 1, 3), f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    check(workers >= 0, f"workers must be >= 0, got {workers}")


TARGET_HINT = "builtin:mnist, a .npz file (x_train, y_train, x_test, y_test) or a folder of class folders"
REFERENCE_HINT = "builtin:pool, builtin:pool-far, a folder of images, .tar shards or a .npz file"
_COPY_HINT = "the folder, .tar shards or parquet files of the copy"


def check_exists(spec, what: str, hint: str, builtins: tuple[str, ...]) -> None:
    """A data spec that names a path must name something (the data layer says more once torch is imported)."""
    if not isinstance(spec, (str, os.PathLike)):
        return  # a list of shards, or something the data layer will refuse
    text = os.fspath(spec)
    if text in builtins:
        return
    check(text.startswith("builtin:") or Path(text).exists(), f"{what} {text!r} not found: give {hint}")


def check_reference(reference, catalog) -> None:
    if catalog is None:
        check_exists(reference, "reference", REFERENCE_HINT, ("builtin:pool", "builtin:pool-far"))
    else:  # the local copy, resolved against the catalog: any layout, but it must be there
        check_exists(reference, "reference (the local copy of the catalog's set)", _COPY_HINT, ())


def check_catalog(catalog: str | None, manifest: str | None) -> None:
    check(catalog is None or Path(catalog).is_file(), f"catalog {catalog} not found: build one with "
          "plada catalog build COPY -o CATALOG")
    check(catalog is None or manifest is None, "give --catalog or --manifest, not both: with a catalog, "
          "--reference names the local copy, resolved against the catalog")


def check_output_folder(out) -> None:
    path = Path(out)
    check(not path.exists() or path.is_dir(), f"--out {out} exists and is not a folder: give a folder "
          "(created if missing) for teacher.pt, scores.npz and the payloads")
    for parent in path.parents:  # mkdir -p fails on a file in the way
        if parent.exists():
            check(parent.is_dir(), f"--out {out}: {parent} is not a folder")
            break


def _check_folder_for(path, option_name: str) -> None:
    """A folder a run creates (mkdir -p) must not have a file in its way."""
    if path is None:
        return
    path = Path(path)
    check(not path.exists() or path.is_dir(), f"{option_name} {path} exists and is not a folder: give a folder")
    for parent in path.parents:
        if parent.exists():
            check(parent.is_dir(), f"{option_name} {path}: {parent} is not a folder")
            break


def _check_scores_target(scores, out) -> None:
    """``--scores`` is read if it exists and written once scoring ends: its folder must exist
    (or be --out, which produce creates)."""
    if scores is None:
        return
    path = Path(scores)
    check(not path.is_dir(), f"--scores {scores} is a folder: give a file path, e.g. {path / 'scores.npz'}")
    check(path.parent.is_dir() or path.parent == Path(out), f"--scores {scores}: folder {path.parent} does not "
          "exist: create it or give another path")


def _check_save_target(save) -> None:
    """``--save`` is written once the student has trained: check now that it can be."""
    if save is None:
        return
    path = Path(save)
    check(path.parent.is_dir(), f"--save {save}: folder {path.parent} does not exist: create it or give another path")
    check(not path.is_dir(), f"--save {save} is a folder: give a file path, e.g. {path / 'student.pt'}")
    check(not path.is_symlink() and (not path.exists() or path.is_file()),
          f"--save {save} exists and is not a regular file (a link, a FIFO or a device): give a file path")
    check(os.access(path.parent, os.W_OK), f"--save {save}: folder {path.parent} is not writable")


def validate_produce(req: ProduceRequest) -> None:
    """Cheap checks of everything given, before any data is read or torch is imported
    (a timm model name is checked last: that needs timm)."""
    check_types(req, skip=("reference", "class_names", "keep"))
    normalise_keep(req.keep)
    check(len(req.keep) > 0, "give at least one keep rate, e.g. --keep 0.05")
    for keep in req.keep:
        check(isinstance(keep, (int, float)) and 0 < keep <= 1,
              f"keep rate {keep} outside (0, 1]: give fractions, e.g. --keep 0.01 0.05 (not percentages)")
    check(len(set(req.keep)) == len(req.keep), f"keep rates repeat ({', '.join(f'{k:g}' for k in req.keep)}): "
          "each rate makes one payload, give it once")
    check(req.mode in MODES, f"mode must be one of {', '.join(MODES)}, got {req.mode!r}")
    check(req.score in SCORE_NAMES, f"score must be one of {', '.join(SCORE_NAMES)}, got {req.score!r}")
    check(req.temperature > 0 and math.isfinite(req.temperature),
          f"temperature must be positive, got {req.temperature}")
    check(0 <= req.safety_share <= 1, f"safety share must be in [0, 1], got {req.safety_share}")
    check(math.isfinite(req.alpha), f"alpha must be finite, got {req.alpha}")
    check(math.isfinite(req.spread) and req.spread >= 1, f"spread must be a finite number >= 1, got {req.spread}")
    check(req.spread == 1 or ORDERS[req.mode].spreads, f"--spread thins the {' and '.join(SPREAD_MODES)} orders; "
          f"use it without --mode {req.mode}")
    check(req.n_classes is None or 1 <= req.n_classes <= 2**31, f"n_classes must be >= 1, got {req.n_classes}")
    check(req.batch_size >= 1 and req.shard_size >= 1, "batch size and shard size must be >= 1")
    _validate_common(req.image_size, req.channels, req.workers)
    check(isinstance(req.teacher_recipe, TeacherRecipe),
          f"teacher recipe must be a TeacherRecipe, got {type(req.teacher_recipe).__name__}")
    no_training = req.teacher_recipe.total_steps(1) == 0
    if req.teacher_checkpoint is not None:
        check(Path(req.teacher_checkpoint).is_file(),
              f"teacher checkpoint {req.teacher_checkpoint} not found: give a local state-dict file")
    check(not no_training or req.teacher_checkpoint is not None,
          "a teacher with no training needs --teacher-checkpoint (pretrained weights)")
    check(req.manifest is None or Path(req.manifest).is_file(), f"manifest {req.manifest} not found")
    check_catalog(req.catalog, req.manifest)
    check_output_folder(req.out)
    _check_scores_target(req.scores, req.out)
    check_exists(req.target, "target", TARGET_HINT, ("builtin:mnist",))
    check_reference(req.reference, req.catalog)
    from .models import check_model_name  # imports torch (and timm for a timm name)

    check_model_name(req.teacher)


def validate_consume(req: ConsumeRequest) -> None:
    """Cheap checks of everything given, before any data is read or torch is imported."""
    check_types(req, skip=("reference",))
    check(Path(req.payload).is_file(), f"payload {req.payload} not found")
    _validate_common(req.image_size, req.channels, req.workers)
    check(isinstance(req.student_recipe, StudentRecipe),
          f"student recipe must be a StudentRecipe, got {type(req.student_recipe).__name__}")
    check(req.manifest is None or Path(req.manifest).is_file(), f"manifest {req.manifest} not found")
    check_catalog(req.catalog, req.manifest)
    check(isinstance(req.max_missing, (int, float)) and 0 <= req.max_missing <= 1,
          f"max missing must be a fraction in [0, 1], got {req.max_missing!r}")
    _check_save_target(req.save)
    check_exists(req.test, "test target", TARGET_HINT, ("builtin:mnist",))
    check_reference(req.reference, req.catalog)
    _check_folder_for(req.checkpoint_dir, "--checkpoint-dir")
    from .models import check_model_name  # imports torch (and timm for a timm name)

    check_model_name(req.student)
