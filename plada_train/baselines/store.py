"""The one store of every family's points: ``OUT/baselines.json``, rewritten
atomically after each point, so a run started again skips the points already
there. Its table and its plot (accuracy against bytes) come from here too."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import DataError
from ..reporting import figure, markdown_table

__all__ = ["RESULTS", "Point", "BaselineReport", "Store", "load_report", "plot"]

RESULTS = "baselines.json"


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


_POINT_TYPES = {"method": str, "variant": str, "bytes": int, "accuracy": (int, float), "accuracy_std": (int, float),
                "accuracies": list, "seeds": list, "seconds": (int, float), "details": dict}


@dataclass
class BaselineReport:
    points: list[Point]
    path: Path

    def table(self) -> str:
        rows = []
        for p in sorted(self.points, key=lambda p: (p.method, p.bytes)):
            # No seeds: a point with no student (the INT8 teacher runs as sent), so no spread.
            spread = (f" ± {p.accuracy_std:.4f}" if len(p.accuracies) > 1
                      else " (1 seed)" if p.seeds else " (no student)")
            extra = f" (format 1.0: {p.details['format_1_0_bytes']:,})" if "format_1_0_bytes" in p.details else ""
            rows.append([p.method, p.variant, f"{p.bytes:,}{extra}", f"{p.accuracy:.4f}{spread}", f"{p.seconds:.0f}"])
        return markdown_table(["method", "variant", "bytes:", "accuracy (mean ± std over seeds):", "seconds:"], rows)


def read_points(path: Path) -> tuple[dict, list[Point]]:
    """(config, points) of a baselines.json, or one line naming the file for anything else."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path}: unreadable ({exc}); remove it to start the curves again") from None
    wrong = f"{path} is not a baselines file ({{}}); remove it or use another --out"
    if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict) or \
            not isinstance(saved.get("points", []), list):
        raise DataError(wrong.format("expected an object with config and points"))
    points = []
    for i, raw in enumerate(saved.get("points", [])):
        if not isinstance(raw, dict) or set(raw) != set(_POINT_TYPES):
            raise DataError(wrong.format(f"point {i} is not an object with the fields {', '.join(_POINT_TYPES)}"))
        for name, kind in _POINT_TYPES.items():
            if not isinstance(raw[name], kind) or isinstance(raw[name], bool):
                raise DataError(wrong.format(f"point {i}: {name} is {type(raw[name]).__name__} {raw[name]!r}"))
        points.append(Point(**raw))
    return saved["config"], points


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1))


class Store:
    """OUT/baselines.json for one config; a folder made with another config is refused."""

    def __init__(self, out: Path, config: dict, log: Callable[[str], None] = print) -> None:
        self.path = out / RESULTS
        self.points: dict[str, Point] = {}
        self.log = log
        if self.path.exists():
            saved, points = read_points(self.path)
            if saved != config:
                raise DataError(f"{self.path} was made with other settings; use another --out or remove it")
            self.points = {p.key: p for p in points}
        self.config = config

    def done(self, key: str) -> bool:
        return key in self.points

    def record(self, method: str, variant: str, run: Callable, seeds: Sequence[int] | None,
               nbytes: int | None = None, **details) -> None:
        """Measure one point unless it is stored: ``run(seed)`` for each of *seeds*
        (once with None when *seeds* is None: a point with no student, no spread)
        gives the accuracy, or (accuracy, bytes) when *nbytes* is only known after a run."""
        point_key = f"{method}:{variant}"
        if self.done(point_key):
            return
        start = time.perf_counter()
        accuracies = []
        for seed in seeds if seeds is not None else [None]:
            result = run(seed)
            if isinstance(result, tuple):
                result, nbytes = result
            accuracies.append(float(result))
        mean, std = _mean_std(accuracies)
        point = Point(method, variant, int(nbytes), mean, std if seeds is not None else 0.0, accuracies,
                      list(seeds) if seeds is not None else [], time.perf_counter() - start, details)
        self.add(point)
        self.log(f"{method} {variant}: {int(nbytes):,} B, accuracy {mean:.4f} ± {point.accuracy_std:.4f}")

    def add(self, point: Point) -> None:
        from plada_codec import write_atomically

        self.points[point.key] = point
        text = json.dumps({"config": self.config, "points": [asdict(p) for p in self.points.values()]}, indent=1)
        write_atomically(self.path, lambda fh: fh.write(text.encode()))

    def report(self) -> BaselineReport:
        return BaselineReport(list(self.points.values()), self.path)


def load_report(out: str | Path) -> BaselineReport:
    """The points of a finished (or partial) run in *out*."""
    path = Path(out) / RESULTS
    return BaselineReport(read_points(path)[1], path)


def plot(report: BaselineReport, path: Path, title: str = "") -> None:
    """Accuracy against bytes on the wire (log x), one series per method, seed spread as error bars."""
    methods: dict[str, list[Point]] = {}
    for point in report.points:  # PLADA: one series per selection (keep rates along it)
        series = f"plada {point.variant.rsplit(' ', 1)[0]}" if point.method == "plada" else point.method
        methods.setdefault(series, []).append(point)
    with figure(path) as ax:
        for method, points in sorted(methods.items()):
            points.sort(key=lambda p: p.bytes)
            ax.errorbar([p.bytes for p in points], [p.accuracy for p in points],
                        yerr=[p.accuracy_std for p in points], marker="o", capsize=3, label=method)
        ax.set_xscale("log")
        ax.set_xlabel("bytes on the wire")
        ax.set_ylabel("student accuracy")
        ax.set_title(title, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
