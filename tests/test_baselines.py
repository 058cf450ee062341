"""The pixel and weight baselines: byte counts by hand, K-Center against a
brute-force search, and a quick run that writes its curve and resumes."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("PIL")
zstandard = pytest.importorskip("zstandard")

from plada_train import baselines  # noqa: E402
from plada_train.recipes import StudentRecipe, TeacherRecipe  # noqa: E402


def _pil_jpeg(image: np.ndarray) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(image[0]).save(out, format="JPEG", quality=30)
    return out.getvalue()


def test_pixel_bytes_by_hand():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 1, 12, 12), dtype=np.uint8)
    labels = np.array([2, 0, 7])
    jpegs = [_pil_jpeg(image) for image in images]
    stream = (struct.pack("<I", 3) + b"".join(struct.pack("<I", len(j)) + j for j in jpegs) + bytes([2, 0, 7]))
    assert len(stream) == 4 + sum(4 + len(j) for j in jpegs) + 3
    wire, decoded = baselines.jpeg_zstd_bytes(images, labels, n_classes=10)
    assert wire == zstandard.ZstdCompressor(level=19).compress(stream)
    assert decoded.shape == images.shape and decoded.dtype == np.uint8
    jpegs_back, labels_back = baselines.unpack_images(zstandard.ZstdDecompressor().decompress(wire), 10)
    assert jpegs_back == jpegs and labels_back.tolist() == [2, 0, 7]
    assert baselines.pack_images(jpegs, labels, 300).endswith(struct.pack("<3H", 2, 0, 7))  # 2 B labels > 256


def test_int8_bytes_by_hand():
    weight = torch.tensor([[-1.27, 0.5], [1.27, 0.0]])
    bias = torch.tensor([0.25, -0.5])
    wire, restored = baselines.int8_state_bytes({"w": weight, "b": bias, "n": torch.tensor(3)}, keep_float=("b",))
    scale = 1.27 / 127
    expected = np.array([-127, 50, 127, 0], np.int8).tobytes() + struct.pack("<f", scale) + \
        np.array([0.25, -0.5], "<f4").tobytes()
    assert wire == zstandard.ZstdCompressor(level=19).compress(expected)
    assert torch.allclose(restored["w"], torch.tensor([[-127, 50], [127, 0]]) * np.float32(scale))
    assert torch.equal(restored["b"], bias) and torch.equal(restored["n"], torch.tensor(3))
    q, s = baselines.quantize_int8(torch.zeros(4))
    assert s == 1.0 and q.tolist() == [0, 0, 0, 0]


def _brute_kcenter(points: np.ndarray, m: int) -> list[int]:
    n = len(points)
    mean = [sum(points[i][d] for i in range(n)) / n for d in range(points.shape[1])]
    def dist(a, b):
        return sum((x - y) ** 2 for x, y in zip(a, b))
    chosen = [min(range(n), key=lambda i: (dist(points[i], mean), i))]
    while len(chosen) < m:
        best = max(range(n), key=lambda i: (min(dist(points[i], points[c]) for c in chosen), -i))
        chosen.append(best)
    return chosen


@pytest.mark.parametrize("seed", range(5))
def test_kcenter_matches_brute_force(seed):
    points = np.random.default_rng(seed).normal(size=(25, 3))
    assert baselines.kcenter_greedy(points, 7).tolist() == _brute_kcenter(points, 7)


def test_pruning_zeroes_the_smallest_weights():
    model = torch.nn.Sequential(torch.nn.Linear(10, 10), torch.nn.Linear(10, 2))
    pruned = baselines._pruned(model, 0.5)
    weights = torch.cat([m.weight.flatten() for m in pruned if isinstance(m, torch.nn.Linear)])
    assert int((weights == 0).sum()) == 60  # half of 120 weights
    original = torch.cat([m.weight.flatten() for m in model if isinstance(m, torch.nn.Linear)]).abs()
    assert original[weights == 0].max() <= original[weights != 0].min()


@pytest.fixture(scope="module")
def quick_task(tmp_path_factory):
    from plada_train.data import load_miniature

    base = tmp_path_factory.mktemp("task")
    mini = load_miniature(limit=120)
    target, pool = base / "target.npz", base / "pool.npz"
    np.savez(target, x_train=mini.target_train.images, y_train=mini.target_train.labels,
             x_test=mini.target_test.images[:100], y_test=mini.target_test.labels[:100])
    np.savez(pool, x=mini.pool.images)
    return str(target), str(pool)


def test_quick_run_writes_curve_and_resumes(quick_task, tmp_path, monkeypatch):
    target, pool = quick_task
    kwargs = dict(keeps=(0.1,), per_class=(1,), sparsities=(0.5,), seeds=(0, 1),
                  student_recipe=StudentRecipe(steps=3, batch_size=16, checkpoint_every=0),
                  teacher_recipe=TeacherRecipe(steps=3, batch_size=32, checkpoint_every=0))
    logged: list[str] = []

    def stop_after_two(line: str) -> None:
        logged.append(line)
        if len(logged) == 2:
            raise KeyboardInterrupt  # a run killed after two points

    with pytest.raises(KeyboardInterrupt):
        baselines.run_baselines(target, pool, tmp_path, log=stop_after_two, **kwargs)
    saved = json.loads((tmp_path / "baselines.json").read_text())
    assert len(saved["points"]) == 2
    import plada_train.client
    import plada_train.train

    consumed, trained = [], []
    real_consume, real_train = plada_train.client.consume, plada_train.train.train_classifier
    monkeypatch.setattr(plada_train.client, "consume", lambda *a, **k: consumed.append(1) or real_consume(*a, **k))
    monkeypatch.setattr(plada_train.train, "train_classifier",
                        lambda *a, **k: trained.append(1) or real_train(*a, **k))
    report = baselines.run_baselines(target, pool, tmp_path, log=lambda line: None, **kwargs)
    methods = {p.method for p in report.points}
    assert methods == {"plada", "pixels-random", "pixels-kcenter", "probe-int8", "model-int8"}
    # The two finished points (the two PLADA payloads, 2 seeds each) were not trained again.
    assert consumed == [] and len(report.points) == 2 + 2 + 1 + 2
    for point in report.points:
        assert point.bytes > 0 and 0 <= point.accuracy <= 1
        assert len(point.accuracies) == (1 if point.method == "model-int8" else 2)
    assert (tmp_path / "baselines.png").stat().st_size > 1000
    assert "pixels-kcenter" in (tmp_path / "baselines.md").read_text()
    plada = [p for p in report.points if p.method == "plada"]
    assert all(p.details["format_1_0_bytes"] > 0 for p in plada)


def test_cli_options_reach_the_run(monkeypatch, tmp_path, capsys):
    import plada_train.baselines as module
    from plada_train.cli import main

    seen = {}

    def fake(target, reference, out, **kwargs):
        seen.update(target=target, reference=reference, out=str(out), **kwargs)
        return module.BaselineReport([], tmp_path / "baselines.json")

    monkeypatch.setattr(module, "run_baselines", fake)
    assert main(["baselines", "--target", "t.npz", "--reference", "p.npz", "--out", str(tmp_path), "--keep", "0.02",
                 "--per-class", "3", "--seeds", "4", "5", "6", "--steps", "7", "--mode", "high", "--quiet"]) == 0
    assert (seen["target"], seen["reference"], seen["keeps"], seen["per_class"], seen["seeds"]) == \
        ("t.npz", "p.npz", (0.02,), (3,), (4, 5, 6))
    assert seen["student_recipe"].steps == 7 and seen["mode"] == "high"


def test_report_counts_kept_images_per_class(tmp_path, capsys):
    import plada_codec
    from plada_train.cli import main

    names = ["zero", "one", "two"]
    (tmp_path / "payload-low-0.01.plada").write_bytes(plada_codec.encode(
        [1, 4, 5, 9], [2, 0, 2, 2], n_ref=10, n_classes=3, class_names=names, metadata={"keep": 0.01, "mode": "low"}))
    (tmp_path / "accuracy.json").write_text('{"payload-low-0.01.plada": 0.75}')
    assert main(["report", str(tmp_path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [{"payload": "payload-low-0.01.plada", "bytes": (tmp_path / "payload-low-0.01.plada").stat().st_size,
                     "k": 4, "n_ref": 10, "keep": 0.01, "mode": "low", "safety_share": None,
                     "per_class": {"zero": 1, "one": 0, "two": 3}, "accuracy": 0.75}]
    assert (tmp_path / "report.png").stat().st_size > 1000 and "zero: 1, one: 0, two: 3" in \
        (tmp_path / "report.md").read_text()
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_retraining_after_pruning_keeps_the_pruned_weights_zero():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 10), torch.nn.Linear(10, 2))
    pruned_before = baselines._pruned(model, 0.5)
    zeros_before = [m.weight == 0 for m in pruned_before]

    def finetune(m):
        optimiser = torch.optim.SGD(m.parameters(), lr=1.0)
        for _ in range(3):
            optimiser.zero_grad()
            m(torch.randn(8, 10)).square().sum().backward()
            optimiser.step()
        return m

    tuned = baselines._pruned(model, 0.5, finetune)
    for layer, zero in zip(tuned, zeros_before):
        assert torch.equal(layer.weight == 0, zero)  # the same weights pruned, and still zero
    assert any(not torch.equal(a.weight, b.weight) for a, b in zip(tuned, pruned_before))  # the rest moved


def test_probe_bytes_carry_weights_bias_and_standardisation():
    weight, bias = torch.tensor([[1.27, -0.635]]), torch.tensor([0.5])
    mean, std = torch.tensor([1.0, 2.0]), torch.tensor([0.5, 4.0])
    wire, _ = baselines.int8_state_bytes({"weight": weight, "bias": bias, "mean": mean, "std": std},
                                         keep_float=("bias", "mean", "std"))
    raw = np.array([127, -64], np.int8).tobytes() + struct.pack("<f", 0.01) + \
        np.array([0.5, 1.0, 2.0, 0.5, 4.0], "<f4").tobytes()
    assert wire == zstandard.ZstdCompressor(level=19).compress(raw)
