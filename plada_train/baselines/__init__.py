"""Bandwidth against accuracy: PLADA next to the paper's pixel and weight
baselines, on any target task and reference set (``plada-train baselines``).

Every point is (bytes on the wire, student accuracy, seconds), each accuracy
the mean over student seeds with its spread. What travels, per family:

- **PLADA** — the payload file (format 1.1, as written by ``produce``; the
  format 1.0 size of the same selection is reported beside it). The client
  already holds the reference set.
- **PLADA, random selection** (``plada-random``) — the same teacher labels,
  keep rates and payload format, but the kept reference images drawn at
  random (seed 0) instead of by score: what the ranking buys at equal counts.
- **pixels, random** — a class-balanced random subset of the target's
  training images (``m`` per class); **pixels, K-Center** — per class, the
  greedy K-Center coreset (Sener & Savarese 2017) of the teacher's penultimate
  features. Both are sent as the paper does: every image JPEG-encoded at
  quality 30, then Zstd-19 over one stream ``count (4 B) | per image: length
  (4 B) + JPEG | labels (1 B each, 2 B above 256 classes)``; the student
  trains on the decoded (lossy) images. The labels are in the count.
- **weights, linear probe** — a linear head on a frozen backbone the client
  must already hold (here: the built-in CNN's feature layers, initialised
  from a fixed seed, that is: the client holds the seed and the model code);
  INT8 weights (per-tensor scale, float32), float32 bias and the features'
  float32 mean and std (the standardisation the head was trained on), Zstd-19.
- **weights, whole model** — the teacher itself, globally L1-pruned to a
  sparsity (torch.nn.utils.prune) and retrained with the pruned weights held
  at zero (Deep Compression; ``FINETUNE_STEPS`` steps of the teacher recipe),
  then every float tensor INT8-quantized (per-tensor scale), Zstd-19; the
  client runs it as it is (no student, so its accuracy has no seed spread).

Dataset distillation, the paper's third family, is out of scope: it needs a
separate optimisation per task and the paper quotes it from the literature.

Results go to ``OUT/baselines.json`` point by point (a run started again
skips the points already there), ``OUT/baselines.md`` (the table) and
``OUT/baselines.png`` (accuracy against bytes, log x).

One module a family (:mod:`.plada`, :mod:`.plada_random`, :mod:`.pixels`,
:mod:`.weights`), each a ``run(ctx)`` over the shared :class:`~.run.Run` that
records its points in the one :class:`~.store.Store`. :data:`FAMILIES` is the
table ``--methods`` reads (without importing torch, so a bad name answers at
once), and each entry names the options its family reads, so those alone are
checked. A new family is one module and one line there.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DataError
from ..recipes import StudentRecipe, TeacherRecipe
from ..selection import ORDERS

if TYPE_CHECKING:
    from .store import BaselineReport


@dataclass(frozen=True)
class Family:
    """One baseline family: ``function`` of module ``module`` (under this package) runs it
    over a :class:`~.run.Run`; ``reads`` names the options it uses (``keeps``,
    ``per_class``, ``sparsities``), checked only when it runs; ``by_default``: whether a
    run without ``--methods`` includes it."""

    name: str
    module: str
    function: str = "run"
    reads: tuple[str, ...] = ()
    by_default: bool = True

    def run(self, ctx) -> None:
        getattr(importlib.import_module(f".{self.module}", __name__), self.function)(ctx)


# The families, in the order they run (the PLADA phase trains the teacher the others read).
FAMILIES: dict[str, Family] = {family.name: family for family in (
    Family("plada", "plada", reads=("keeps",)),
    Family("plada-random", "plada_random", reads=("keeps",), by_default=False),  # an ablation: opt in
    Family("pixels", "pixels", reads=("per_class",)),
    Family("probe", "weights", "run_probe"),
    Family("model", "weights", "run_model", reads=("sparsities",)),
)}
DEFAULT_METHODS = tuple(name for name, family in FAMILIES.items() if family.by_default)
# The orders the PLADA family can rank by (random is the plada-random family).
RANKED_MODES = tuple(name for name, mode in ORDERS.items() if mode.by_score)

# Names imported on first use (PEP 562): the table above and the checks need no torch.
_EXPORTS = {
    "pixels": ["kcenter_greedy"],
    "run": ["Run", "images_of"],
    "store": ["RESULTS", "BaselineReport", "Point", "Store", "load_report", "plot"],
    "weights": ["FINETUNE_STEPS", "PROBE_BACKBONE_SEED", "pruned"],
    "wire": ["JPEG_QUALITY", "ZSTD_LEVEL", "int8_state_bytes", "jpeg_decode", "jpeg_encode", "jpeg_zstd_bytes",
             "pack_images", "quantize_int8", "unpack_images"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
_MODULE_OF["_pruned"] = "weights"  # the tests' name for weights.pruned

__all__ = ["Family", "FAMILIES", "DEFAULT_METHODS", "RANKED_MODES", "check_options", "run_baselines", "Point",
           "load_report", "plot", "jpeg_zstd_bytes", "pack_images", "unpack_images", "kcenter_greedy",
           "int8_state_bytes", "quantize_int8", "BaselineReport", "JPEG_QUALITY", "ZSTD_LEVEL", "RESULTS",
           "PROBE_BACKBONE_SEED", "FINETUNE_STEPS", "jpeg_encode", "jpeg_decode"]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name.lstrip("_"))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def check_options(target, reference, out, *, keeps, per_class, sparsities, seeds, mode, families=DEFAULT_METHODS,
                  image_size=None, catalog=None) -> None:
    """Every option, checked before any work (a bad one found after the PLADA phase has trained
    would cost that training, and a stored config the corrected rerun then refuses)."""
    from ..requests import TARGET_HINT, check_exists, check_output_folder, check_reference

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise DataError(message)

    def numbers(values, kind, what: str) -> list:
        need(isinstance(values, (list, tuple)) and len(values) > 0, f"give at least one {what}")
        for value in values:
            need(isinstance(value, kind) and not isinstance(value, bool),
                 f"{what} must be {'an integer' if kind is int else 'a number'}, got {type(value).__name__} {value!r}")
        need(len(set(values)) == len(values), f"{what}s repeat ({', '.join(str(v) for v in values)}): give each once")
        return list(values)

    need(mode in RANKED_MODES, f"mode must be {' or '.join(RANKED_MODES)}, got {mode!r}")
    need(isinstance(families, (list, tuple)) and families and set(families) <= set(FAMILIES),
         f"methods must be among {', '.join(FAMILIES)}, got {families!r}")
    reads = {option for name in families for option in FAMILIES[name].reads}
    if "keeps" in reads:
        for keep in numbers(keeps, (int, float), "keep rate"):
            need(0 < keep <= 1, f"keep rate {keep} outside (0, 1]: give fractions, e.g. --keep 0.01 0.05")
    if "per_class" in reads:
        for m in numbers(per_class, int, "images per class"):
            need(m >= 1, f"--per-class {m}: give at least 1 image per class")
    if "sparsities" in reads and len(sparsities):
        for sparsity in numbers(sparsities, (int, float), "sparsity"):
            need(0 <= sparsity < 1, f"--sparsity {sparsity} outside [0, 1): the pruned fraction of the weights")
    numbers(seeds, int, "student seed")
    need(image_size is None or (isinstance(image_size, int) and 8 <= image_size <= 4096),
         f"image size must be 8..4096 pixels, got {image_size}")
    need(catalog is None or Path(catalog).is_file(), f"catalog {catalog} not found: build one with "
         "plada catalog build COPY -o CATALOG")
    check_output_folder(out)
    check_exists(target, "target", TARGET_HINT, ("builtin:mnist",))
    check_reference(reference, catalog)


def run_baselines(target: str, reference: str, out: str | Path, *, keeps: Sequence[float] = (0.01, 0.05),
                  per_class: Sequence[int] = (1, 5, 20), sparsities: Sequence[float] = (0.5, 0.9),
                  seeds: Sequence[int] = (0, 1, 2), student_recipe: StudentRecipe | None = None,
                  teacher_recipe: TeacherRecipe | None = None, mode: str = "low", device: str = "cpu",
                  progress: bool = False, log=print, methods: Sequence[str] | None = None,
                  image_size: int | None = None, catalog: str | None = None, quick: bool = False) -> BaselineReport:
    """Train a student from each payload and write the curve into *out*
    (see the package docstring). PLADA runs ``mode`` (``low`` for in-domain
    tasks, ``high`` for far-out-of-domain ones) with and without the
    Safety-Net (share 0.5, alpha -0.2).

    *methods*: the families to run (default :data:`DEFAULT_METHODS`: every family
    of :data:`FAMILIES` but the ``plada-random`` ablation).
    *quick*: one point a family: the first keep rate without the Safety-Net
    variant, the first images-per-class, the first sparsity, the first seed.
    *image_size*: resize every image to this side (a reference of mixed sizes
    is resized to the target's size without it). *catalog*: the reference's
    catalog; *reference* then names the local copy in any layout.
    Every option is checked before any work."""
    methods = DEFAULT_METHODS if methods is None else tuple(methods)
    check_options(target, reference, out, keeps=keeps, per_class=per_class, sparsities=sparsities, seeds=seeds,
                  mode=mode, families=methods, image_size=image_size, catalog=catalog)
    if quick:
        keeps, per_class, seeds = tuple(keeps)[:1], tuple(per_class)[:1], tuple(seeds)[:1]
        sparsities = tuple(sparsities)[:1]
    import numpy as np

    from .. import distributed
    from ..data import open_target
    from ..preprocess import preprocess_for
    from .run import Run, images_of
    from .store import Store, plot

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    student_recipe = student_recipe or StudentRecipe()
    teacher_recipe = teacher_recipe or TeacherRecipe()
    config = {"target": target, "reference": reference, "keeps": list(keeps), "per_class": list(per_class),
              "sparsities": list(sparsities), "seeds": list(seeds), "mode": mode,
              "student": asdict(student_recipe), "teacher": asdict(teacher_recipe)}
    # Options added later go in only when set, so a folder written before them still resumes.
    config.update({k: v for k, v in (("methods", list(methods)), ("image_size", image_size), ("catalog", catalog),
                                     ("quick", quick)) if v not in (None, False, list(DEFAULT_METHODS))})
    store = Store(out, config, log)
    with distributed.session(device) as context:
        data = open_target(target)
        test = data.require_test()
        preprocess = preprocess_for(None, "smallcnn", data.channels, image_size, native_size=data.image_size)
        test.set_preprocess(preprocess)
        ctx = Run(target=target, reference=reference, out=out, keeps=tuple(keeps), per_class=tuple(per_class),
                  sparsities=tuple(sparsities), seeds=tuple(seeds), mode=mode, quick=quick, methods=methods,
                  student_recipe=student_recipe, teacher_recipe=teacher_recipe, device=device, progress=progress,
                  image_size=image_size, catalog=catalog, store=store, context=context, test=test,
                  channels=data.channels, n_classes=data.n_classes, preprocess=preprocess,
                  train_images=images_of(data.train), train_labels=np.asarray(data.train.labels), log=log)
        for name, family in FAMILIES.items():
            if name in methods:
                family.run(ctx)
        report = store.report()
        (out / "baselines.md").write_text(report.table() + "\n")
        plot(report, out / "baselines.png", title=f"{target} (reference {reference})")
        return report
