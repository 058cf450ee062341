"""plada_train on tiny data: scoring, produce -> payload -> consume, mismatch, timm, devices."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import plada_codec  # noqa: E402
from plada_train import (  # noqa: E402
    ImageSet, Scores, TrainConfig, consume_payload, create_model, evaluate, pick_device, produce_payload,
    score_reference, train_student, train_teacher,
)
from plada_train.engine import score_logits  # noqa: E402

DEVICE = pick_device("cpu")


@pytest.fixture(scope="module")
def digits():
    """sklearn digits upsampled to 16x16 uint8: target train/test and a reference pool
    of held-out digits plus noise images (in-domain and out-of-domain parts)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (np.kron(d.images, np.ones((2, 2))) * (255 / 16)).astype(np.uint8)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(images))
    train, test, held = order[:900], order[900:1300], order[1300:]
    noise = rng.integers(0, 256, (400, 16, 16), dtype=np.uint8)
    pool = ImageSet(np.concatenate([images[held], noise]), name="pool")
    truth = np.concatenate([d.target[held], np.full(400, -1)])
    return ImageSet(images[train], d.target[train]), ImageSet(images[test], d.target[test]), pool, truth


@pytest.fixture(scope="module")
def teacher(digits):
    train, _, pool, _ = digits
    config = TrainConfig(epochs=15, batch_size=64, lr=3e-3, max_shift=1, outlier_weight=0.5)
    return train_teacher(train, 10, DEVICE, config=config, outliers=pool)


def test_score_definitions():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]])
    labels, energy, entropy, neg_msp = score_logits(logits, temperature=2.0)
    assert labels.tolist() == [0, 0]
    expected = -2.0 * torch.logsumexp(logits / 2.0, 1)
    np.testing.assert_allclose(energy, expected.numpy(), rtol=1e-6)
    np.testing.assert_allclose(entropy[1], np.log(3), rtol=1e-6)  # uniform row
    np.testing.assert_allclose(neg_msp[1], -1 / 3, rtol=1e-6)


def test_teacher_learns_and_scores_stream(digits, teacher):
    train, test, pool, truth = digits
    assert evaluate(teacher, test, DEVICE) > 0.8
    scores = score_reference(teacher, pool, DEVICE, batch_size=97)  # batches not dividing N
    assert scores.labels.shape == (len(pool),) and scores.energy.dtype == np.float32
    # With outlier exposure, held-out digits get lower energy than noise ...
    assert scores.energy[truth >= 0].mean() < scores.energy[truth < 0].mean()
    low = np.argsort(scores.energy)[: len(pool) // 10]
    assert (truth[low] >= 0).mean() > 0.9


def test_without_outlier_exposure_noise_looks_confident(digits):
    """... and without it the opposite: why the server trains with it (README)."""
    train, _, pool, truth = digits
    plain = train_teacher(train, 10, DEVICE, config=TrainConfig(epochs=15, batch_size=64, lr=3e-3, max_shift=1))
    scores = score_reference(plain, pool, DEVICE)
    assert scores.energy[truth >= 0].mean() > scores.energy[truth < 0].mean()


def test_scores_save_load(tmp_path, digits, teacher):
    scores = score_reference(teacher, digits[2], DEVICE)
    scores.save(tmp_path / "s.npz")
    again = Scores.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(again.energy, scores.energy)
    with pytest.raises(ValueError, match="score must be"):
        again.get("odin")


def test_produce_consume_roundtrip(digits, teacher):
    train, test, pool, truth = digits
    reference = pool.reference_set()
    scores = score_reference(teacher, pool, DEVICE)
    produced = produce_payload(scores, n_classes=10, reference=reference, keep=0.2, mode="low",
                               safety_share=0.3, alpha=-0.2, class_names=[str(i) for i in range(10)],
                               task_name="digits")
    virtual, payload = consume_payload(produced.payload, pool, reference)
    np.testing.assert_array_equal(payload.indices, produced.selection.indices)
    np.testing.assert_array_equal(virtual.labels, scores.labels[produced.selection.indices])
    np.testing.assert_array_equal(virtual.images, pool.images[payload.indices])
    assert payload.metadata["mode"] == "low-energy" and payload.metadata["safety_net"] == {"share": 0.3, "alpha": -0.2}
    assert payload.task_name == "digits"
    student = train_student(virtual, 10, DEVICE, config=TrainConfig(epochs=1, min_steps=30, batch_size=32))
    assert 0.0 <= evaluate(student, test, DEVICE) <= 1.0


def test_fingerprint_mismatch_is_an_error(digits, teacher):
    pool = digits[2]
    scores = score_reference(teacher, pool, DEVICE)
    produced = produce_payload(scores, n_classes=10, reference=pool.reference_set(), keep=0.1)
    changed = ImageSet(pool.images.copy(), name="changed")
    changed.images[5, 0, 0, 0] ^= 1  # one pixel of one image
    with pytest.raises(plada_codec.ReferenceMismatchError):
        consume_payload(produced.payload, changed)


def test_training_is_repeatable(digits):
    train = ImageSet(digits[0].images[:200], digits[0].labels[:200])
    config = TrainConfig(epochs=1, batch_size=50, seed=3)
    a = train_student(train, 10, DEVICE, config=config)
    b = train_student(train, 10, DEVICE, config=config)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb)


def test_timm_model_forward_backward_on_cpu():
    model = create_model("test_resnet", num_classes=10, in_chans=1)
    x = torch.randn(2, 1, 28, 28, requires_grad=True)
    out = model(x)
    assert out.shape == (2, 10)
    out.sum().backward()
    assert x.grad is not None
    with pytest.raises(ValueError, match="unknown model"):
        create_model("no_such_model_xyz", 10)


def test_timm_checkpoint_file(tmp_path):
    source = create_model("test_resnet", num_classes=5, in_chans=1)
    path = tmp_path / "w.pth"
    torch.save(source.state_dict(), path)
    loaded = create_model("test_resnet", num_classes=3, in_chans=1, checkpoint=path).eval()  # head re-shaped
    assert loaded(torch.randn(1, 1, 28, 28)).shape == (1, 3)
    body = {k: v for k, v in source.state_dict().items() if not k.startswith("fc.")}
    for key, value in body.items():  # the body weights came from the file
        torch.testing.assert_close(loaded.state_dict()[key], value)


def test_torchvision_shim_is_idempotent():
    from plada_train._compat import import_timm

    assert import_timm() is import_timm()
    import torchvision  # noqa: F401  (imports after the shim on CPU-only torch too)


def test_cuda_request_without_gpu_is_clear():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no GPU"):
        pick_device("cuda")


def test_demo_quick_runs(tmp_path):
    """The demo in its reduced form: every artefact, every selection mode."""
    pytest.importorskip("mnist")
    from plada_train.data import FASHION_DIR

    if not FASHION_DIR.exists():
        pytest.skip("dataset-fashion-mnist not installed")
    from plada_train.cli import main

    assert main(["demo", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert {r["selection"] for r in report["runs"]} == {"low-energy", "high-energy", "random", "no filter"}
    assert (tmp_path / "accuracy_vs_size.png").stat().st_size > 1000
    for payload in (tmp_path / "payloads").glob("*.plada"):
        plada_codec.verify(payload.read_bytes())


def test_cli_produce_consume_with_npz_target_and_image_folder(tmp_path, digits, capsys):
    """Server and client from the shell: .npz target, a folder of PNGs as the reference."""
    from PIL import Image

    from plada_train.cli import main
    from plada_train.data import load_folder

    train, test, pool, _ = digits
    target = tmp_path / "target.npz"
    np.savez(target, x_train=train.images[:, 0], y_train=train.labels, x_test=test.images[:, 0], y_test=test.labels)
    folder = tmp_path / "ref"
    for i, image in enumerate(pool.images[:300, 0]):
        sub = folder / f"part{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(sub / f"{i:04d}.png")
    loaded = load_folder(folder, grayscale=True)
    assert loaded.images.shape == (300, 1, 16, 16)
    assert loaded.reference_set() == plada_codec.ReferenceSet.from_folder(folder)  # files, as `plada ref-hash`
    out = tmp_path / "server"
    common = ["--reference", str(folder), "--grayscale", "--device", "cpu"]
    assert main(["produce", "--target", str(target), "--out", str(out), "--keep", "0.1", "0.3",
                 "--teacher-epochs", "2", "--safety-share", "0.5", "--alpha", "-0.2", *common]) == 0
    payloads = sorted(out.glob("payload-low-*.plada"))
    assert [p.name for p in payloads] == ["payload-low-0.1.plada", "payload-low-0.3.plada"]
    assert plada_codec.decode(payloads[0].read_bytes()).metadata["safety_net"] == {"share": 0.5, "alpha": -0.2}
    from plada_codec.cli import main as plada_main

    assert plada_main(["verify", str(payloads[0]), "--reference", str(folder)]) == 0  # the codec CLI agrees
    # Second produce call reuses the saved scores (one scoring pass for many keep rates).
    assert main(["produce", "--target", str(target), "--out", str(out), "--keep", "0.2", *common]) == 0
    assert "reusing scores" in capsys.readouterr().out
    capsys.readouterr()
    assert main(["consume", str(payloads[1]), "--test", str(target), "--epochs", "1", "--min-steps", "10", *common]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["count"] == 90 and 0.0 <= result["accuracy"] <= 1.0
    (folder / "part0" / "0000.png").unlink()  # the client's reference set differs
    assert main(["consume", str(payloads[1]), *common]) == 1
    assert "ReferenceMismatchError" in capsys.readouterr().err
