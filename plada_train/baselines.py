"""Bandwidth against accuracy: PLADA next to the paper's pixel and weight
baselines, on any target task and reference set (``plada-train baselines``).

Every point is (bytes on the wire, student accuracy, seconds), each accuracy
the mean over student seeds with its spread. What travels, per family:

- **PLADA** — the payload file (format 1.1, as written by ``produce``; the
  format 1.0 size of the same selection is reported beside it). The client
  already holds the reference set.
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
"""

from __future__ import annotations

import io
import json
import math
import struct
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import zstandard
from torch import nn

import plada_codec

from .data import ArrayLabelled, open_target
from .errors import DataError
from .recipes import StudentRecipe, TeacherRecipe

__all__ = ["Point", "run_baselines", "load_report", "plot", "jpeg_zstd_bytes", "pack_images", "unpack_images",
           "kcenter_greedy", "int8_state_bytes", "quantize_int8", "BaselineReport"]

JPEG_QUALITY = 30
ZSTD_LEVEL = 19
RESULTS = "baselines.json"
PROBE_BACKBONE_SEED = 12345
FINETUNE_STEPS = 300  # student-sized retraining of a pruned teacher


@dataclass
class Point:
    """One point of the curve."""

    method: str  # plada, pixels-random, pixels-kcenter, probe-int8, model-int8
    variant: str  # e.g. "low", "low+safety", "10/class", "sparsity 0.8"
    bytes: int
    accuracy: float  # mean over seeds
    accuracy_std: float
    accuracies: list[float]
    seeds: list[int]
    seconds: float
    details: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.method}:{self.variant}"


# -- wire encodings (hand-checkable) ------------------------------------------------------


def _label_width(n_classes: int) -> int:
    return 1 if n_classes <= 256 else 2


def pack_images(jpegs: Sequence[bytes], labels: Sequence[int], n_classes: int) -> bytes:
    """The pixel baselines' stream before compression:
    ``u32 count | (u32 length, JPEG bytes) per image | labels`` (little-endian;
    1 byte a label, 2 above 256 classes)."""
    width = _label_width(n_classes)
    parts = [struct.pack("<I", len(jpegs))]
    for data in jpegs:
        parts += [struct.pack("<I", len(data)), data]
    parts.append(np.asarray(labels, dtype="<u1" if width == 1 else "<u2").tobytes())
    return b"".join(parts)


def unpack_images(stream: bytes, n_classes: int) -> tuple[list[bytes], np.ndarray]:
    (count,) = struct.unpack_from("<I", stream, 0)
    offset, jpegs = 4, []
    for _ in range(count):
        (length,) = struct.unpack_from("<I", stream, offset)
        jpegs.append(stream[offset + 4:offset + 4 + length])
        offset += 4 + length
    width = _label_width(n_classes)
    labels = np.frombuffer(stream, dtype="<u1" if width == 1 else "<u2", count=count, offset=offset)
    return jpegs, labels.astype(np.int64)


def jpeg_encode(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """One uint8 image (C, H, W), C = 1 or 3, as a baseline JPEG at *quality*."""
    from PIL import Image

    array = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def jpeg_decode(data: bytes, channels: int) -> np.ndarray:
    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("L" if channels == 1 else "RGB")
    array = np.asarray(image)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def jpeg_zstd_bytes(images: np.ndarray, labels: np.ndarray, n_classes: int) -> tuple[bytes, np.ndarray]:
    """The pixel payload of *images* and what the client decodes from it."""
    jpegs = [jpeg_encode(image) for image in images]
    stream = pack_images(jpegs, labels, n_classes)
    wire = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(stream)
    decoded, _ = unpack_images(zstandard.ZstdDecompressor().decompress(wire), n_classes)
    return wire, np.stack([jpeg_decode(d, images.shape[1]) for d in decoded])


def quantize_int8(tensor: torch.Tensor) -> tuple[np.ndarray, float]:
    """Symmetric per-tensor INT8: ``q = round(t / s)``, ``s = max|t| / 127`` (1 when all zero)."""
    values = tensor.detach().float().cpu().numpy()
    peak = float(np.abs(values).max()) if values.size else 0.0
    scale = peak / 127 if peak > 0 else 1.0
    return np.clip(np.round(values / scale), -127, 127).astype(np.int8), scale


def int8_state_bytes(tensors: dict[str, torch.Tensor], keep_float: Sequence[str] = ()) -> tuple[bytes, dict]:
    """Zstd-19 of each float tensor in order as INT8 bytes + a float32 scale
    (tensors named in *keep_float* go as float32); integer buffers are not
    sent. Returns the bytes and the dequantized tensors the client would use."""
    parts, restored = [], {}
    for name, tensor in tensors.items():
        if not torch.is_floating_point(tensor):
            restored[name] = tensor
            continue
        if name in keep_float:
            data = tensor.detach().float().cpu().numpy().astype("<f4")
            parts.append(data.tobytes())
            restored[name] = torch.from_numpy(data.copy()).reshape(tensor.shape)
            continue
        q, scale = quantize_int8(tensor)
        parts += [q.tobytes(), struct.pack("<f", scale)]
        restored[name] = torch.from_numpy(q.astype(np.float32) * np.float32(scale)).reshape(tensor.shape)
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(b"".join(parts)), restored


def kcenter_greedy(features: np.ndarray, m: int) -> np.ndarray:
    """Greedy K-Center (Sener & Savarese 2017): start at the point nearest
    the mean, then repeatedly add the point farthest from the chosen ones
    (Euclidean; ties to the lowest index). Returns *m* indices in pick order."""
    features = np.asarray(features, np.float64)
    m = min(m, len(features))
    if m <= 0:
        return np.zeros(0, np.int64)
    first = int(np.argmin(((features - features.mean(0)) ** 2).sum(1)))
    chosen = [first]
    distance = ((features - features[first]) ** 2).sum(1)
    for _ in range(m - 1):
        pick = int(np.argmax(distance))
        chosen.append(pick)
        distance = np.minimum(distance, ((features - features[pick]) ** 2).sum(1))
    return np.asarray(chosen, np.int64)


# -- the runs ----------------------------------------------------------------------------------


def _features(model: nn.Module, images: np.ndarray, preprocess, batch: int = 512) -> np.ndarray:
    """Penultimate features: the input of the model's last linear layer."""
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    captured: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda mod, inp, out: captured.append(inp[0].detach().float().cpu()))
    transform = preprocess.transform(False)
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(images), batch):
                x = torch.stack([transform(image) for image in images[start:start + batch]])
                model(x)
    finally:
        hook.remove()
    return torch.cat(captured).numpy()


def _images(split) -> np.ndarray:
    """Every image of a labelled split as uint8 (N, C, H, W)."""
    if isinstance(split, ArrayLabelled):
        return np.asarray(split.images)
    arrays = []
    for i in range(len(split)):
        array = np.asarray(split.raw(i))
        arrays.append(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))
    return np.stack(arrays)


def _class_balanced(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    picked = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(picked))


@dataclass
class BaselineReport:
    points: list[Point]
    path: Path

    def table(self) -> str:
        rows = ["| method | variant | bytes | accuracy (mean ± std over seeds) | seconds |",
                "|---|---|---:|---:|---:|"]
        for p in sorted(self.points, key=lambda p: (p.method, p.bytes)):
            spread = f" ± {p.accuracy_std:.4f}" if len(p.accuracies) > 1 else " (no seed)"
            extra = f" (format 1.0: {p.details['format_1_0_bytes']:,})" if "format_1_0_bytes" in p.details else ""
            rows.append(f"| {p.method} | {p.variant} | {p.bytes:,}{extra} | {p.accuracy:.4f}{spread} | "
                        f"{p.seconds:.0f} |")
        return "\n".join(rows)


class _Store:
    """OUT/baselines.json, rewritten atomically after every point."""

    def __init__(self, out: Path, config: dict) -> None:
        self.path = out / RESULTS
        self.points: dict[str, Point] = {}
        if self.path.exists():
            try:
                saved = json.loads(self.path.read_text())
            except (OSError, ValueError) as exc:
                raise DataError(f"{self.path}: unreadable ({exc}); remove it to start the curves again") from None
            if saved.get("config") != config:
                raise DataError(f"{self.path} was made with other settings; use another --out or remove it")
            self.points = {p["method"] + ":" + p["variant"]: Point(**p) for p in saved.get("points", [])}
        self.config = config

    def done(self, key: str) -> bool:
        return key in self.points

    def add(self, point: Point) -> None:
        from plada_codec import write_atomically

        self.points[point.key] = point
        text = json.dumps({"config": self.config, "points": [asdict(p) for p in self.points.values()]}, indent=1)
        write_atomically(self.path, lambda fh: fh.write(text.encode()))


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1))


def run_baselines(target: str, reference: str, out: str | Path, *, keeps: Sequence[float] = (0.01, 0.05),
                  per_class: Sequence[int] = (1, 5, 20), sparsities: Sequence[float] = (0.5, 0.9),
                  seeds: Sequence[int] = (0, 1, 2), student_recipe: StudentRecipe | None = None,
                  teacher_recipe: TeacherRecipe | None = None, mode: str = "low", device: str = "cpu",
                  progress: bool = False, log=print) -> BaselineReport:
    """Train a student from each payload and write the curve into *out*
    (see the module docstring). PLADA runs ``mode`` (``low`` for in-domain
    tasks, ``high`` for far-out-of-domain ones) with and without the
    Safety-Net (share 0.5, alpha -0.2)."""
    from . import distributed
    from .engine import evaluate, seed_everything, train_classifier
    from .models import create_model
    from .pipeline import consume, produce
    from .preprocess import preprocess_for

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    student_recipe = student_recipe or StudentRecipe()
    teacher_recipe = teacher_recipe or TeacherRecipe()
    if len(seeds) < 1:
        raise DataError("give at least one student seed")
    config = {"target": target, "reference": reference, "keeps": list(keeps), "per_class": list(per_class),
              "sparsities": list(sparsities), "seeds": list(seeds), "mode": mode,
              "student": asdict(student_recipe), "teacher": asdict(teacher_recipe)}
    store = _Store(out, config)
    context = distributed.setup(device)
    data = open_target(target)
    test = data.require_test()
    channels, size = data.channels, data.image_size
    preprocess = preprocess_for(None, "smallcnn", channels, None, native_size=size)
    train_images = _images(data.train)
    train_labels = np.asarray(data.train.labels)
    n_classes = data.n_classes
    test.set_preprocess(preprocess)

    def train_student(images: np.ndarray, labels: np.ndarray, seed: int) -> float:
        subset = ArrayLabelled(images, labels, "baseline")
        subset.set_preprocess(preprocess, train=True)
        seed_everything(seed)
        model = create_model("smallcnn", n_classes, channels)
        model = train_classifier(model, subset, student_recipe.with_(seed=seed, checkpoint_every=0), context)
        return evaluate(model, test, context)

    def record(method: str, variant: str, nbytes: int, run, seeded: bool = True, **details) -> None:
        point_key = f"{method}:{variant}"
        if store.done(point_key):
            return
        start = time.perf_counter()
        accuracies = [run(seed) for seed in (seeds if seeded else [None])]
        mean, std = _mean_std(accuracies)
        point = Point(method, variant, int(nbytes), mean, std if seeded else 0.0, accuracies,
                      list(seeds) if seeded else [], time.perf_counter() - start, details)
        store.add(point)
        log(f"{method} {variant}: {nbytes:,} B, accuracy {mean:.4f} ± {point.accuracy_std:.4f}")

    # PLADA: one teacher, one scoring pass, every keep rate and variant.
    server = out / "plada"
    for variant, extra in ((mode, {}), (f"{mode}+safety", {"safety_share": 0.5, "alpha": -0.2})):
        result = produce(target, reference, str(server), keep=tuple(keeps), mode=mode, teacher_recipe=teacher_recipe,
                         device=device, progress=progress, **extra)
        for produced in result.payloads:
            payload = plada_codec.decode(produced.payload)
            v1 = plada_codec.encode(payload.indices, payload.labels, n_ref=payload.n_ref, n_classes=payload.n_classes,
                                    reference=plada_codec.ReferenceSet(payload.n_ref, payload.fingerprint),
                                    class_names=payload.class_names, metadata=payload.metadata,
                                    format_version="1.0")
            path = str(produced.path)

            def run(seed: int, path: str = path) -> float:
                consumed = consume(path, reference, test=target, student_recipe=student_recipe.with_(seed=seed),
                                   device=device, progress=progress)
                return float(consumed.accuracy)

            record("plada", f"{variant} {produced.keep:g}", len(produced.payload), run, k=len(payload),
                   format_1_0_bytes=len(v1), payload=produced.path.name)
    teacher = _load_teacher(server, n_classes, channels)

    # Pixels: random and K-Center, m images per class.
    rng = np.random.default_rng(0)
    features = None
    for m in per_class:
        chosen = _class_balanced(train_labels, m, rng)
        wire, decoded = jpeg_zstd_bytes(train_images[chosen], train_labels[chosen], n_classes)
        record("pixels-random", f"{m}/class", len(wire), lambda s, d=decoded, y=train_labels[chosen]:
               train_student(d, y, s), images=len(chosen))
        if features is None:
            features = _features(teacher, train_images, preprocess)
        picks = np.sort(np.concatenate([np.flatnonzero(train_labels == c)[kcenter_greedy(
            features[train_labels == c], m)] for c in np.unique(train_labels)]))
        wire, decoded = jpeg_zstd_bytes(train_images[picks], train_labels[picks], n_classes)
        record("pixels-kcenter", f"{m}/class", len(wire), lambda s, d=decoded, y=train_labels[picks]:
               train_student(d, y, s), images=len(picks))

    # Weights: a linear probe on a seeded frozen backbone, and the pruned INT8 teacher.
    probe_bytes = [0]
    torch.manual_seed(PROBE_BACKBONE_SEED)  # the backbone both sides rebuild from this seed
    backbone = create_model("smallcnn", n_classes, channels).eval()
    probe_key = "probe-int8:smallcnn features (seeded)"
    if not store.done(probe_key):
        train_x = torch.from_numpy(_features(backbone, train_images, preprocess))
        test_x = torch.from_numpy(_features(backbone, _images(test), preprocess))
        test_y = torch.as_tensor(np.asarray(test.labels))

    def probe(seed: int) -> float:
        torch.manual_seed(seed)
        head = nn.Linear(train_x.shape[1], n_classes)
        optimiser = torch.optim.Adam(head.parameters(), lr=1e-2)
        y = torch.as_tensor(train_labels)
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
        probe_bytes[0] = len(wire)
        logits = ((test_x - restored["mean"]) / restored["std"]) @ restored["weight"].T + restored["bias"]
        return float((logits.argmax(1) == test_y).float().mean())

    if not store.done(probe_key):
        start = time.perf_counter()
        accuracy_by_seed = [probe(s) for s in seeds]
        mean, std = _mean_std(accuracy_by_seed)
        store.add(Point("probe-int8", "smallcnn features (seeded)", probe_bytes[0], mean, std, accuracy_by_seed,
                        list(seeds), time.perf_counter() - start,
                        {"backbone": f"SmallCNN feature layers, torch.manual_seed({PROBE_BACKBONE_SEED})"}))
        log(f"probe-int8: {probe_bytes[0]:,} B, accuracy {mean:.4f} ± {std:.4f}")
    def finetune(model: nn.Module) -> nn.Module:
        """Deep Compression's retraining: the pruned weights stay zero (torch's masks) while the rest adapt."""
        tuning = ArrayLabelled(train_images, train_labels, "finetune")
        tuning.set_preprocess(preprocess, train=True)
        recipe = teacher_recipe.with_(epochs=None, steps=FINETUNE_STEPS, outlier_weight=0.0, checkpoint_every=0)
        return train_classifier(model, tuning, recipe, context)

    for sparsity in (0.0, *sparsities):
        pruned = _pruned(teacher, sparsity, finetune if sparsity > 0 else None)
        wire, restored = int8_state_bytes(pruned.state_dict())
        model = _load_teacher(server, n_classes, channels)
        model.load_state_dict(restored)

        def whole(seed, model=model) -> float:
            return evaluate(model, test, context)

        record("model-int8", f"sparsity {sparsity:g}", len(wire), whole, seeded=False,
               parameters=sum(p.numel() for p in pruned.parameters()))
    report = BaselineReport(list(store.points.values()), store.path)
    (out / "baselines.md").write_text(report.table() + "\n")
    plot(report, out / "baselines.png", title=f"{target} (reference {reference})")
    return report


def _load_teacher(server: Path, n_classes: int, channels: int) -> nn.Module:
    from .models import create_model

    model = create_model("smallcnn", n_classes, channels)
    model.load_state_dict(torch.load(server / "teacher.pt", map_location="cpu", weights_only=True))
    return model.eval()


def _pruned(model: nn.Module, sparsity: float, finetune=None) -> nn.Module:
    """A copy of *model* with the smallest-magnitude fraction *sparsity* of its
    conv and linear weights set to zero (global L1, torch.nn.utils.prune),
    then ``finetune(model)`` with the masks in place, when given."""
    import copy

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


def load_report(out: str | Path) -> BaselineReport:
    """The points of a finished (or partial) run in *out*."""
    path = Path(out) / RESULTS
    return BaselineReport([Point(**p) for p in json.loads(path.read_text())["points"]], path)


def plot(report: BaselineReport, path: Path, title: str = "") -> None:
    """Accuracy against bytes on the wire (log x), one series per method, seed spread as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    methods: dict[str, list[Point]] = {}
    for point in report.points:  # PLADA: one series per selection (keep rates along it)
        series = f"plada {point.variant.rsplit(' ', 1)[0]}" if point.method == "plada" else point.method
        methods.setdefault(series, []).append(point)
    for method, points in sorted(methods.items()):
        points.sort(key=lambda p: p.bytes)
        ax.errorbar([p.bytes for p in points], [p.accuracy for p in points], yerr=[p.accuracy_std for p in points],
                    marker="o", capsize=3, label=method)
    ax.set_xscale("log")
    ax.set_xlabel("bytes on the wire")
    ax.set_ylabel("student accuracy")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
