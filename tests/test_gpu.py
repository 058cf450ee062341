"""produce and consume on CUDA (bf16 autocast) agree with the CPU run, within stated tolerances.

Marked ``gpu`` and skipped without a CUDA device; ``scripts/gpu-check.sh`` runs them. On the
built-in data (target ``builtin:mnist``, reference ``builtin:pool``, 90,000 images):

1. ``produce(..., device="cuda")`` trains the default teacher (3 epochs, outlier exposure), scores
   the pool and writes the 5% payload, all on the GPU under bf16 autocast.
2. ``produce(..., device="cpu")`` in a second folder holding a copy of that teacher reuses it
   (the teacher request names no device) and scores the pool again in float32 on the CPU. The
   two score files therefore come from one set of weights: what differs is the device and bf16.
3. Both consume the CPU run's 5% payload with the default student (1,000 steps, seed 0).

Tolerances (bf16 keeps 8 significant bits, so each rounding is within 2**-9 = 0.2%). Each is
about twice as loose as what bf16 autocast on the CPU (a stand-in for CUDA's, measured with this
teacher recipe: 0.9812 on MNIST test) did to the float32 scores of the same teacher, shown in
brackets:

- teacher accuracy on MNIST test (trained on CUDA) >= 0.97 (0.9815 on the CPU, README);
- pseudo-labels: identical for >= 90% of the pool [94.7%: out-of-domain images have nearly tied
  logits] and for >= 99.5% of the CPU run's 10% lowest-energy images [99.99%];
- energy: ``|E_cuda - E_cpu| <= 0.1 + 0.02 |E_cpu|`` (numpy ``isclose``, rtol 0.02, atol 0.1)
  for >= 99.9% of the pool [100%; energies lie in -8 .. -0.7], median relative difference
  <= 0.01 [0.0039], Spearman rank correlation >= 0.998 [0.99956];
- selections from the two score files (low energy at 5% and 10%, each without and with the
  Safety-Net s = 0.5, alpha = -0.2): overlap ``|A & B| / B >= 0.97`` [0.985-0.995]; the 5%
  payloads decode to index sets with the same overlap;
- student accuracy: CUDA and CPU within 0.02 of each other, both >= 0.92 (0.9467, README).

``PLADA_GPU_TEST_DEVICE=cpu`` runs the same code with the CPU standing in for the GPU (every
comparison is then exact, the bf16 check is skipped): a check of this file on a machine
without a GPU, slow (a CPU teacher). ``PLADA_GPU_TEST_WORKERS`` sets DataLoader workers (2).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

DEVICE = os.environ.get("PLADA_GPU_TEST_DEVICE", "cuda")
WORKERS = int(os.environ.get("PLADA_GPU_TEST_WORKERS", "2"))
ON_GPU = DEVICE.startswith("cuda")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(ON_GPU and not torch.cuda.is_available(), reason="needs a CUDA device"),
]

KEEP = 0.05
LABELS_POOL, LABELS_KEPT = 0.90, 0.995
ENERGY_RTOL, ENERGY_ATOL, ENERGY_WITHIN = 0.02, 0.1, 0.999
ENERGY_MEDIAN_REL = 0.01
RANK_CORRELATION = 0.998
OVERLAP = 0.97
ACCURACY_GAP, STUDENT_FLOOR, TEACHER_FLOOR = 0.02, 0.92, 0.97


@dataclass
class Runs:
    gpu_out: Path
    cpu_out: Path
    gpu: object  # ProduceResult
    cpu: object
    gpu_peak: int | None


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    import plada_train

    root = tmp_path_factory.mktemp("gpu-vs-cpu")
    gpu_out, cpu_out = root / "gpu", root / "cpu"
    if ON_GPU:
        torch.cuda.reset_peak_memory_stats()
    gpu = plada_train.produce("builtin:mnist", "builtin:pool", str(gpu_out), keep=(KEEP,), device=DEVICE,
                              workers=WORKERS)
    peak = torch.cuda.max_memory_allocated() if ON_GPU else None
    cpu_out.mkdir()
    for name in ("teacher.pt", "teacher.json"):
        shutil.copy(gpu_out / name, cpu_out / name)
    cpu = plada_train.produce("builtin:mnist", "builtin:pool", str(cpu_out), keep=(KEEP,), device="cpu",
                              workers=WORKERS)
    return Runs(gpu_out, cpu_out, gpu, cpu, peak)


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


@pytest.mark.skipif(not ON_GPU, reason="autocast is off on the CPU by design")
def test_autocast_is_bf16_on_cuda():
    from plada_train.engine import autocast

    device = torch.device(DEVICE)
    layer = torch.nn.Linear(8, 4).to(device)
    with autocast(device):
        out = layer(torch.randn(2, 8, device=device))
    assert out.dtype == torch.bfloat16


def test_produce_on_cuda_trains_the_teacher_there(runs):
    assert runs.gpu.teacher_accuracy >= TEACHER_FLOOR
    assert not runs.gpu.reused_scores and not runs.cpu.reused_scores
    if ON_GPU:
        assert runs.gpu_peak and runs.gpu_peak > 0  # the run put its tensors on the GPU
    gpu, cpu = _scores(runs.gpu_out), _scores(runs.cpu_out)
    # one teacher: the CPU run reused the copy (same weights digest in both score files)
    assert gpu.provenance["teacher"]["weights_sha256"] == cpu.provenance["teacher"]["weights_sha256"]


def test_scores_agree_within_bf16_tolerance(runs):
    gpu, cpu = _scores(runs.gpu_out), _scores(runs.cpu_out)
    assert gpu.energy.shape == cpu.energy.shape == (90_000,)
    assert np.isfinite(gpu.energy).all() and np.isfinite(cpu.energy).all()
    from plada_train.selection import select

    agree = float(np.mean(gpu.labels == cpu.labels))
    assert agree >= LABELS_POOL, f"pseudo-labels agree on {agree:.4%} of the pool"
    kept = select(cpu.energy, cpu.labels, n_classes=10, keep=0.10).indices
    agree = float(np.mean(gpu.labels[kept] == cpu.labels[kept]))
    assert agree >= LABELS_KEPT, f"pseudo-labels agree on {agree:.4%} of the 10% lowest-energy images"
    close = np.isclose(gpu.energy, cpu.energy, rtol=ENERGY_RTOL, atol=ENERGY_ATOL)
    assert close.mean() >= ENERGY_WITHIN, f"{close.mean():.4%} of energies within tolerance"
    relative = np.abs(gpu.energy - cpu.energy) / np.maximum(np.abs(cpu.energy), 1e-6)
    assert np.median(relative) <= ENERGY_MEDIAN_REL, f"median relative difference {np.median(relative):.4f}"
    rho = np.corrcoef(_ranks(gpu.energy), _ranks(cpu.energy))[0, 1]
    assert rho >= RANK_CORRELATION, f"Spearman {rho:.5f}"


@pytest.mark.parametrize("keep", [0.05, 0.10])
@pytest.mark.parametrize("share", [0.0, 0.5])
def test_selections_agree(runs, keep, share):
    from plada_train.selection import select

    gpu, cpu = _scores(runs.gpu_out), _scores(runs.cpu_out)
    picked = [select(s.energy, s.labels, n_classes=10, keep=keep, safety_share=share, alpha=-0.2).indices
              for s in (gpu, cpu)]
    overlap = _overlap(*picked)
    assert overlap >= OVERLAP, f"keep {keep}, Safety-Net share {share}: overlap {overlap:.4f}"


def test_payloads_agree(runs):
    import plada_codec

    decoded = [plada_codec.decode(p.payloads[0].payload) for p in (runs.gpu, runs.cpu)]
    assert decoded[0].indices.size == decoded[1].indices.size == int(KEEP * 90_000)
    assert _overlap(decoded[0].indices, decoded[1].indices) >= OVERLAP


def test_consume_on_cuda_matches_the_cpu(runs):
    import plada_train

    payload = str(runs.cpu.payloads[0].path)
    if ON_GPU:
        torch.cuda.reset_peak_memory_stats()
    on_gpu = plada_train.consume(payload, "builtin:pool", test="builtin:mnist", device=DEVICE, workers=WORKERS)
    if ON_GPU:
        assert torch.cuda.max_memory_allocated() > 0
        assert next(on_gpu.model.parameters()).device.type == "cuda"
    on_cpu = plada_train.consume(payload, "builtin:pool", test="builtin:mnist", device="cpu", workers=WORKERS)
    print(f"student accuracy: {DEVICE} {on_gpu.accuracy:.4f}, cpu {on_cpu.accuracy:.4f}")
    assert min(on_gpu.accuracy, on_cpu.accuracy) >= STUDENT_FLOOR
    assert abs(on_gpu.accuracy - on_cpu.accuracy) <= ACCURACY_GAP
