"""produce and consume on the device (bf16 autocast) agree with a float32 CPU run, within stated tolerances.

Marked ``gpu``; ``scripts/gpu-check.sh`` runs them. Two sides, chosen by ``PLADA_GPU_TEST_DEVICE``:

- ``cuda`` (the default; skipped without a CUDA device): the built-in data in full (target
  ``builtin:mnist``, reference ``builtin:pool``, 90,000 images), the default recipes.
- ``cpu``, the rehearsal (``scripts/gpu-rehearsal.sh``, in the test command): the CPU stands in for
  the GPU, with plada's autocast forced to ``torch.autocast("cpu", dtype=torch.bfloat16)``, on a
  miniature of the same data read through the same loaders (MNIST train 10,000 and test 2,000; a
  pool of 8,000: the first 2,000 of each of its four parts) and short recipes (teacher 300 steps,
  student 200). Dtype, device and autocast mistakes show here before a GPU is ever lent.

``PLADA_GPU_TEST_SCALE=full|small`` overrides the scale (full on ``cpu`` takes long: a CPU teacher).
``PLADA_GPU_TEST_WORKERS`` sets DataLoader workers (2); ``PLADA_GPU_TEST_REPORT=FILE`` writes the
measured agreement to a JSON file (``scripts/gpu-check.sh`` puts it in its table).

1. ``produce(..., device=DEVICE)`` trains the teacher (outlier exposure), scores the pool and
   writes the 5% payload, all on the device under bf16 autocast.
2. ``produce(..., device="cpu")`` in a second folder holding a copy of that teacher reuses it
   (the teacher request names no device) and scores the pool again in float32 on the CPU. The
   two score files therefore come from one set of weights: what differs is the device and bf16.
3. Both consume the CPU run's 5% payload with the student (seed 0), on the device and on the CPU.

Tolerances (bf16 keeps 8 significant bits, so each rounding is within 2**-9 = 0.2%). Full scale:
each is about twice as loose as what bf16 autocast on the CPU did to the float32 scores of the
same teacher (0.9812 on MNIST test), shown in brackets:

- teacher accuracy on MNIST test (trained on the device) >= 0.97 (0.9815 on the CPU, README);
- pseudo-labels: identical for >= 90% of the pool [94.7%: out-of-domain images have nearly tied
  logits] and for >= 99.5% of the CPU run's 10% lowest-energy images [99.99%];
- energy: ``|E_dev - E_cpu| <= 0.1 + 0.02 |E_cpu|`` (numpy ``isclose``, rtol 0.02, atol 0.1)
  for >= 99.9% of the pool [100%; energies lie in -8 .. -0.7], median relative difference
  <= 0.01 [0.0039], Spearman rank correlation >= 0.998 [0.99956];
- selections from the two score files (low energy at 5% and 10%, each without and with the
  Safety-Net s = 0.5, alpha = -0.2): overlap ``|A & B| / B >= 0.97`` [0.985-0.995]; the 5%
  payloads decode to index sets with the same overlap;
- student accuracy: device and CPU within 0.02 of each other, both >= 0.92 (0.9467, README).

Small scale (the rehearsal), as measured on 2 CPU cores in brackets: teacher >= 0.90 [0.948];
pseudo-labels identical for >= 95% of the pool [97.8%] and >= 99% of the 10% lowest-energy images
[100%]; energies within the same isclose for >= 99.5% [100%], median relative difference <= 0.005
[0.0014], Spearman >= 0.998 [0.99955]; overlaps >= 0.93 [0.970-0.985]; students within 0.05 of
each other [0.0015], both >= 0.60 [0.69: 400 images, 200 steps].

On both sides: every autocast region of the device run is bf16 on the device and every one of the
CPU run is off; the device run's energies differ from the CPU run's (bf16 was in effect) but
are not bf16 numbers (they are computed in float32 from the logits).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

DEVICE = os.environ.get("PLADA_GPU_TEST_DEVICE", "cuda")
WORKERS = int(os.environ.get("PLADA_GPU_TEST_WORKERS", "2"))
ON_GPU = DEVICE.startswith("cuda")
SCALE = os.environ.get("PLADA_GPU_TEST_SCALE", "full" if ON_GPU else "small")
REPORT = os.environ.get("PLADA_GPU_TEST_REPORT")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(ON_GPU and not torch.cuda.is_available(), reason="needs a CUDA device"),
]

KEEP = 0.05
SMALL_LIMIT = 2000  # load_miniature(limit=...): pool 4 x 2,000, target train 10,000, test 2,000


@dataclass(frozen=True)
class Scale:
    pool: int
    teacher: dict  # produce() options
    student: dict  # consume() options
    teacher_floor: float
    labels_pool: float
    labels_kept: float
    energy_within: float
    energy_median_rel: float
    rank_correlation: float
    overlap: float
    accuracy_gap: float
    student_floor: float
    energy_rtol: float = 0.02
    energy_atol: float = 0.1


SCALES = {
    "full": Scale(90_000, {}, {}, teacher_floor=0.97, labels_pool=0.90, labels_kept=0.995, energy_within=0.999,
                  energy_median_rel=0.01, rank_correlation=0.998, overlap=0.97, accuracy_gap=0.02,
                  student_floor=0.92),
    "small": Scale(4 * SMALL_LIMIT, {"teacher_steps": 300}, {"steps": 200}, teacher_floor=0.90, labels_pool=0.95,
                   labels_kept=0.99, energy_within=0.995, energy_median_rel=0.005, rank_correlation=0.998,
                   overlap=0.93, accuracy_gap=0.05, student_floor=0.60),
}
S = SCALES[SCALE]


# -- autocast: the device's, forced to bf16 on a CPU standing in, and watched on both runs ------------------


@contextmanager
def _watched_autocast(regions: list, *, bf16_on_cpu: bool = False):
    """Every ``plada_train`` module's ``autocast`` (engine's, imported by name elsewhere) replaced by
    one that records (device type, enabled, dtype) of each region it opens. With *bf16_on_cpu* (the
    CPU standing in for the GPU) a region on the CPU is ``torch.autocast("cpu", bf16)``, as plada's
    is ``torch.autocast("cuda", bf16)`` on a GPU; otherwise plada's own autocast decides."""
    from plada_train import train as engine

    original = engine.autocast

    @contextmanager
    def watched(device):
        forced = bf16_on_cpu and device.type == "cpu"
        region = torch.autocast(device_type="cpu", dtype=torch.bfloat16) if forced else original(device)
        with region:
            regions.append((device.type, torch.is_autocast_enabled(device.type),
                            torch.get_autocast_dtype(device.type)))
            yield

    def modules():
        return [m for name, m in list(sys.modules.items()) if name.split(".")[0] == "plada_train"]

    for module in modules():
        if getattr(module, "autocast", None) is original:
            module.autocast = watched
    try:
        yield
    finally:
        # modules first imported inside the block took the watched one too
        for module in modules():
            if getattr(module, "autocast", None) is watched:
                module.autocast = original


# -- the runs -------------------------------------------------------------------------------------------------


@dataclass
class Runs:
    gpu_out: Path
    cpu_out: Path
    gpu: object  # ProduceResult
    cpu: object
    gpu_peak: int | None
    target: str
    reference: str
    regions: dict[str, list] = field(default_factory=dict)


FIGURES: dict = {"device": DEVICE, "scale": SCALE}


@pytest.fixture(scope="module", autouse=True)
def report():
    yield FIGURES
    if REPORT:
        Path(REPORT).write_text(json.dumps(FIGURES, indent=2, default=float))


def _inputs(root: Path) -> tuple[str, str]:
    """(target, reference) specs: the built-in ones in full; at small scale, .npz files of the
    built-in miniature's first items, read through the same loaders."""
    if SCALE == "full":
        return "builtin:mnist", "builtin:pool"
    from plada_train.data import load_miniature

    mini = load_miniature(limit=SMALL_LIMIT)
    target, reference = root / "target.npz", root / "pool.npz"
    np.savez(target, x_train=mini.target_train.images, y_train=mini.target_train.labels,
             x_test=mini.target_test.images, y_test=mini.target_test.labels)
    np.savez(reference, x=mini.pool.images)
    return str(target), str(reference)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    import plada_train

    root = tmp_path_factory.mktemp("gpu-vs-cpu")
    target, reference = _inputs(root)
    gpu_out, cpu_out = root / "gpu", root / "cpu"
    regions: dict[str, list] = {"device": [], "cpu": []}
    if ON_GPU:
        torch.cuda.reset_peak_memory_stats()
    with _watched_autocast(regions["device"], bf16_on_cpu=not ON_GPU):
        gpu = plada_train.produce(target, reference, str(gpu_out), keep=(KEEP,), device=DEVICE, workers=WORKERS,
                                  **S.teacher)
    peak = torch.cuda.max_memory_allocated() if ON_GPU else None
    cpu_out.mkdir()
    for name in ("teacher.pt", "teacher.json"):
        shutil.copy(gpu_out / name, cpu_out / name)
    with _watched_autocast(regions["cpu"]):
        cpu = plada_train.produce(target, reference, str(cpu_out), keep=(KEEP,), device="cpu", workers=WORKERS,
                                  **S.teacher)
    return Runs(gpu_out, cpu_out, gpu, cpu, peak, target, reference, regions)


def _scores(out: Path):
    from plada_train.scoring import Scores

    return Scores.load(out / "scores.npz")


def _ranks(values: np.ndarray) -> np.ndarray:
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[np.argsort(values, kind="stable")] = np.arange(values.size)
    return ranks


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    assert a.size == b.size
    return np.intersect1d(a, b).size / max(1, a.size)


# -- the tests ------------------------------------------------------------------------------------------------


def _forward(layer, device):
    from plada_train import train as engine

    with engine.autocast(device):
        return layer(torch.randn(2, 8, device=device))


def test_autocast_is_bf16_on_the_device():
    device = torch.device(DEVICE)
    layer = torch.nn.Linear(8, 4).to(device)
    regions: list = []
    with _watched_autocast(regions, bf16_on_cpu=not ON_GPU):
        out = _forward(layer, device)
    assert out.dtype == torch.bfloat16
    assert regions == [(device.type, True, torch.bfloat16)]
    # plada's own autocast, restored: full precision on the CPU
    assert _forward(layer.cpu(), torch.device("cpu")).dtype == torch.float32


def test_produce_on_the_device_trains_the_teacher_there(runs):
    FIGURES["teacher_accuracy"] = runs.gpu.teacher_accuracy
    assert runs.gpu.teacher_accuracy >= S.teacher_floor
    assert not runs.gpu.reused_scores and not runs.cpu.reused_scores
    if ON_GPU:
        assert runs.gpu_peak and runs.gpu_peak > 0  # the run put its tensors on the GPU
        FIGURES["produce_peak_gpu_bytes"] = runs.gpu_peak
    gpu, cpu = _scores(runs.gpu_out), _scores(runs.cpu_out)
    # one teacher: the CPU run reused the copy (same weights digest in both score files)
    assert gpu.provenance["teacher"]["weights_sha256"] == cpu.provenance["teacher"]["weights_sha256"]


def test_every_autocast_region_is_bf16_on_the_device_and_off_on_the_cpu(runs):
    device_type = torch.device(DEVICE).type
    device, cpu = set(runs.regions["device"]), set(runs.regions["cpu"])
    # the device run trained (teacher) and scored under autocast; the CPU run only scored
    assert len(runs.regions["device"]) > len(runs.regions["cpu"]) > 0
    assert device == {(device_type, True, torch.bfloat16)}, device
    assert {(kind, enabled) for kind, enabled, _ in cpu} == {("cpu", False)}, cpu


def test_scores_agree_within_bf16_tolerance(runs):
    gpu, cpu = _scores(runs.gpu_out), _scores(runs.cpu_out)
    assert gpu.energy.shape == cpu.energy.shape == (S.pool,)
    assert gpu.energy.dtype == cpu.energy.dtype == np.float32
    assert np.isfinite(gpu.energy).all() and np.isfinite(cpu.energy).all()
    from plada_train.selection import select

    # bf16 was in effect on the device, and the energies were computed from its logits in float32
    assert not np.array_equal(gpu.energy, cpu.energy)
    as_bf16 = torch.from_numpy(gpu.energy).to(torch.bfloat16).float().numpy()
    assert np.mean(as_bf16 == gpu.energy) < 0.5, "the device's energies are bf16 numbers"

    agree = float(np.mean(gpu.labels == cpu.labels))
    FIGURES["labels_pool"] = agree
    assert agree >= S.labels_pool, f"pseudo-labels agree on {agree:.4%} of the pool"
    kept = select(cpu.energy, cpu.labels, n_classes=10, keep=0.10).indices
    agree = float(np.mean(gpu.labels[kept] == cpu.labels[kept]))
    FIGURES["labels_kept"] = agree
    assert agree >= S.labels_kept, f"pseudo-labels agree on {agree:.4%} of the 10% lowest-energy images"
    close = np.isclose(gpu.energy, cpu.energy, rtol=S.energy_rtol, atol=S.energy_atol)
    FIGURES["energy_within"] = float(close.mean())
    assert close.mean() >= S.energy_within, f"{close.mean():.4%} of energies within tolerance"
    relative = np.abs(gpu.energy - cpu.energy) / np.maximum(np.abs(cpu.energy), 1e-6)
    FIGURES["energy_median_rel"] = float(np.median(relative))
    assert np.median(relative) <= S.energy_median_rel, f"median relative difference {np.median(relative):.4f}"
    rho = np.corrcoef(_ranks(gpu.energy), _ranks(cpu.energy))[0, 1]
    FIGURES["spearman"] = float(rho)
    assert rho >= S.rank_correlation, f"Spearman {rho:.5f}"


@pytest.mark.parametrize("keep", [0.05, 0.10])
@pytest.mark.parametrize("share", [0.0, 0.5])
def test_selections_agree(runs, keep, share):
    from plada_train.selection import select

    gpu, cpu = _scores(runs.gpu_out), _scores(runs.cpu_out)
    picked = [select(s.energy, s.labels, n_classes=10, keep=keep, safety_share=share, alpha=-0.2).indices
              for s in (gpu, cpu)]
    overlap = _overlap(*picked)
    FIGURES.setdefault("selection_overlap", {})[f"keep {keep}, share {share}"] = overlap
    assert overlap >= S.overlap, f"keep {keep}, Safety-Net share {share}: overlap {overlap:.4f}"


def test_payloads_agree(runs):
    import plada_codec

    decoded = [plada_codec.decode(p.payloads[0].payload) for p in (runs.gpu, runs.cpu)]
    assert decoded[0].indices.size == decoded[1].indices.size == int(KEEP * S.pool)
    overlap = _overlap(decoded[0].indices, decoded[1].indices)
    FIGURES["payload_overlap"] = overlap
    assert overlap >= S.overlap


def test_consume_on_the_device_matches_the_cpu(runs):
    import plada_train

    payload = str(runs.cpu.payloads[0].path)
    test = "builtin:mnist" if SCALE == "full" else runs.target
    regions: list = []
    if ON_GPU:
        torch.cuda.reset_peak_memory_stats()
    with _watched_autocast(regions, bf16_on_cpu=not ON_GPU):
        on_gpu = plada_train.consume(payload, runs.reference, test=test, device=DEVICE, workers=WORKERS,
                                     **S.student)
    if ON_GPU:
        assert torch.cuda.max_memory_allocated() > 0
        assert next(on_gpu.model.parameters()).device.type == "cuda"
    assert regions and set(regions) == {(torch.device(DEVICE).type, True, torch.bfloat16)}
    on_cpu = plada_train.consume(payload, runs.reference, test=test, device="cpu", workers=WORKERS, **S.student)
    FIGURES["student_accuracy"] = {"device": on_gpu.accuracy, "cpu": on_cpu.accuracy}
    print(f"student accuracy: {DEVICE} {on_gpu.accuracy:.4f}, cpu {on_cpu.accuracy:.4f}")
    assert min(on_gpu.accuracy, on_cpu.accuracy) >= S.student_floor
    assert abs(on_gpu.accuracy - on_cpu.accuracy) <= S.accuracy_gap
