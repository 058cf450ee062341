"""plada_train on tiny data (sklearn digits, 16x16): scoring, produce -> payload
-> consume through the Python API and the CLI, provenance, validation, timm."""

import json
import os
from dataclasses import replace

import numpy as np
import pytest
import torch

import plada_codec
from plada_train import (
    ConsumeRequest,
    DataError,
    ProduceRequest,
    Scores,
    StudentRecipe,
    TeacherRecipe,
    consume,
    create_model,
    produce,
)
from plada_train.data import open_reference, open_target
from plada_train.distributed import Context, pick_device
from plada_train.models import weights_digest
from plada_train.preprocess import preprocess_for
from plada_train.scoring import score_logits, score_reference
from plada_train.train import train_classifier
from tests.helpers import one_line, write_digits, write_true_payload

CPU = Context()
TEACHER = TeacherRecipe(epochs=8, batch_size=64, checkpoint_every=0)
STUDENT = StudentRecipe(steps=150, batch_size=32, checkpoint_every=0)


def request(digits, out, **changes):
    target, reference, _ = digits
    base = ProduceRequest(target=target, reference=reference, out=str(out), keep=(0.2,), image_size=16,
                          teacher_recipe=TEACHER, shard_size=128, batch_size=64, device="cpu")
    return replace(base, **changes)


@pytest.fixture(scope="module")
def server(digits, tmp_path_factory):
    """One produce run (teacher with outlier exposure, scores, a 20% payload)."""
    out = tmp_path_factory.mktemp("server")
    result = produce(request=request(digits, out, safety_share=0.3, alpha=-0.2))
    return out, result


def test_score_definitions():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]])
    labels, energy, entropy, neg_msp = score_logits(logits, temperature=2.0)
    assert labels.tolist() == [0, 0]
    # energy -T log sum exp(z/T), by hand for the second (uniform) row: -2 * (0.25 + log 3)
    np.testing.assert_allclose(energy[1], -2.0 * (0.25 + np.log(3)), rtol=1e-6)
    np.testing.assert_allclose(entropy[1], np.log(3), rtol=1e-6)  # uniform row
    np.testing.assert_allclose(neg_msp[1], -1 / 3, rtol=1e-6)
    assert energy.dtype == entropy.dtype == np.float32


def test_teacher_with_outlier_exposure_puts_digits_below_noise(digits, server):
    _, _, truth = digits
    out, result = server
    assert result.teacher_accuracy > 0.8
    scores = Scores.load(out / "scores.npz")
    assert scores.labels.shape == truth.shape and scores.energy.dtype == np.float32
    assert scores.energy[truth >= 0].mean() < scores.energy[truth < 0].mean()
    low = np.argsort(scores.energy)[: len(truth) // 10]
    assert (truth[low] >= 0).mean() > 0.9


def test_without_outlier_exposure_noise_looks_confident(digits):
    """... and without it the opposite: why the server trains with it (README)."""
    target, reference, truth = digits
    data, refs = open_target(target), open_reference(reference)
    preprocess = preprocess_for(None, "smallcnn", 1, 16)
    data.set_preprocess(preprocess)
    refs.set_preprocess(preprocess)
    torch.manual_seed(0)
    plain = train_classifier(create_model("smallcnn", 10, 1), data.train, replace(TEACHER, outlier_weight=0.0), CPU)
    scores = score_reference(plain, refs, CPU)
    assert scores.energy[truth >= 0].mean() > scores.energy[truth < 0].mean()


def test_scores_record_what_made_them(server, digits):
    out, _ = server
    provenance = Scores.load(out / "scores.npz").provenance
    reference = open_reference(digits[1]).reference_set()
    assert provenance["reference"] == {"fingerprint": reference.hex, "n": reference.n_ref}
    assert provenance["temperature"] == 1.0 and provenance["outlier_weight"] == TEACHER.outlier_weight
    assert provenance["teacher"]["model"] == "smallcnn"
    teacher = create_model("smallcnn", 10, 1)
    teacher.load_state_dict(torch.load(out / "teacher.pt", weights_only=True))
    assert provenance["teacher"]["weights_sha256"] == weights_digest(teacher)  # the saved teacher made them
    assert provenance["preprocess"]["input_size"] in (16, [1, 16, 16], [16, 16])
    assert provenance["plada_version"] == plada_codec.__version__


def test_mismatched_scores_are_refused(server, digits, tmp_path, capsys):
    out, _ = server
    before = (out / "scores.npz").stat().st_mtime_ns
    with pytest.raises(DataError, match=r"temperature 1\.0 \(requested 2\.0\).*--rescore"):
        produce(request=request(digits, out, temperature=2.0))
    _, other_pool, _ = write_digits(tmp_path)  # same images, then one pixel changed
    with np.load(other_pool) as d:
        x = d["x"].copy()
    x[3, 0, 0] ^= 1
    np.savez(other_pool, x=x)
    with pytest.raises(DataError, match="fingerprint"):
        produce(request=request(digits, out, reference=other_pool, scores=str(out / "scores.npz")))
    assert (out / "scores.npz").stat().st_mtime_ns == before  # untouched
    capsys.readouterr()
    produce(request=request(digits, out, keep=(0.1,)))  # the same request reuses teacher and scores
    printed = capsys.readouterr().out
    assert "reusing teacher" in printed and "reusing scores" in printed


def test_teacher_is_not_reused_for_a_changed_target(tmp_path, capsys):
    # Same file name, size and class count, other labels: the saved teacher was
    # trained on other data, so produce must train a new one.
    target, reference, _ = write_digits(tmp_path / "data")
    quick = replace(TEACHER, epochs=1)
    req = request((target, reference, None), tmp_path / "out", teacher_recipe=quick, rescore=True)
    produce(request=req)
    produce(request=req)
    assert "reusing teacher" in capsys.readouterr().out
    with np.load(target) as d:
        arrays = dict(d)
    arrays["y_train"] = (arrays["y_train"] + 1) % 10
    np.savez(target, **arrays)
    produce(request=req)
    assert "reusing teacher" not in capsys.readouterr().out
    saved = json.loads((tmp_path / "out" / "teacher.json").read_text())["request"]["target"]
    assert saved["n_train"] == 900 and len(saved["train_sha256"]) == len(saved["test_sha256"]) == 64


def test_payload_roundtrip_and_student(server, digits):
    target, reference, truth = digits
    out, result = server
    produced = result.payloads[0]
    scores = Scores.load(out / "scores.npz")
    payload = plada_codec.decode(produced.path.read_bytes(), reference=open_reference(reference).reference_set())
    np.testing.assert_array_equal(payload.indices, produced.selection.indices)
    np.testing.assert_array_equal(payload.labels, scores.labels[payload.indices])
    meta = payload.metadata
    assert meta["mode"] == "low-energy" and meta["safety_net"] == {"share": 0.3, "alpha": -0.2}
    assert meta["teacher"]["model"] == "smallcnn" and meta["teacher"]["epochs"] == TEACHER.epochs
    assert meta["teacher"]["outlier_weight"] == TEACHER.outlier_weight and meta["teacher"]["seed"] == 0
    assert meta["preprocess"] == Scores.load(out / "scores.npz").provenance["preprocess"]
    assert meta["plada_version"] == plada_codec.__version__
    consumed = consume(str(produced.path), reference, test=target, student_recipe=STUDENT, device="cpu")
    assert consumed.count == len(payload) == 179 and consumed.notes == []
    # a student that learnt from the 179 pseudo-labelled pool images; chance is 0.1
    assert consumed.accuracy > 0.7


def test_client_says_what_differs(server, digits, capsys):
    out, result = server
    consumed = consume(str(result.payloads[0].path), digits[1], image_size=20, device="cpu",
                       student_recipe=replace(STUDENT, steps=2))
    assert any(note.startswith("preprocess input_size") for note in consumed.notes)
    assert "note: preprocess input_size" in capsys.readouterr().out


def test_payload_for_another_reference_is_refused_before_training(server, digits, tmp_path):
    _, result = server
    _, other_pool, _ = write_digits(tmp_path)
    with np.load(other_pool) as d:
        x = d["x"].copy()
    x[5, 0, 0] ^= 1  # one pixel of one image
    np.savez(other_pool, x=x)
    with pytest.raises(plada_codec.ReferenceMismatchError):
        consume(str(result.payloads[0].path), other_pool, device="cpu")


def _tiny_training_set(digits):
    data = open_target(digits[0])
    data.set_preprocess(preprocess_for(None, "smallcnn", 1, 16))
    return torch.utils.data.Subset(data.train, range(200))


def test_training_is_repeatable_and_resumes_to_the_same_weights(digits, tmp_path, monkeypatch):
    train = _tiny_training_set(digits)
    recipe = StudentRecipe(steps=12, batch_size=50, checkpoint_every=4, seed=3)

    def run(checkpoint_dir=None):
        torch.manual_seed(3)
        return train_classifier(create_model("smallcnn", 10, 1), train, recipe, CPU, checkpoint_dir=checkpoint_dir)

    a, b = run(), run()
    assert weights_digest(a) == weights_digest(b)
    monkeypatch.setenv("PLADA_TRAIN_FAIL_AFTER", "steps:8")
    with pytest.raises(SystemExit):
        run(tmp_path)  # stopped after step 8, as a kill would
    assert torch.load(tmp_path / "train-state.pt", weights_only=False)["step"] == 8
    monkeypatch.delenv("PLADA_TRAIN_FAIL_AFTER")
    resumed = run(tmp_path)
    assert weights_digest(resumed) == weights_digest(a)
    with pytest.raises(DataError, match="another recipe"):
        train_classifier(create_model("smallcnn", 10, 1), train, replace(recipe, lr=1e-4), CPU,
                         checkpoint_dir=tmp_path)


def test_builtin_cnn_widths_and_their_checkpoints(tmp_path):
    # smallcnn: blocks of 16, 32, 64 channels; smallcnn_w32: 32, 64, 128.
    narrow, wide = create_model("smallcnn", 10, 1), create_model("smallcnn_w32", 10, 3)
    assert narrow.head.in_features == 64 and wide.head.in_features == 128
    assert wide.features[0].weight.shape == (32, 3, 3, 3)
    assert preprocess_for(None, "smallcnn_w32", 1, None).kind == "smallcnn"  # the same input recipe
    path = tmp_path / "narrow.pt"
    torch.save(narrow.state_dict(), path)
    with pytest.raises(DataError, match="does not fit smallcnn_w32"):
        create_model("smallcnn_w32", 10, 1, checkpoint=path)


def test_timm_model_forward_backward_on_cpu():
    model = create_model("test_resnet", num_classes=10, in_chans=1)
    x = torch.randn(2, 1, 28, 28, requires_grad=True)
    out = model(x)
    assert out.shape == (2, 10)
    out.sum().backward()
    assert x.grad is not None
    with pytest.raises(DataError, match="unknown model"):
        create_model("no_such_model_xyz", 10)


def test_timm_checkpoint_keeps_a_matching_head_and_replaces_another(tmp_path):
    source = create_model("test_resnet", num_classes=5, in_chans=1)
    path = tmp_path / "w.pth"
    torch.save(source.state_dict(), path)
    same = create_model("test_resnet", num_classes=5, in_chans=1, checkpoint=path)
    assert weights_digest(same) == weights_digest(source)  # everything, head included, from the file
    other = create_model("test_resnet", num_classes=3, in_chans=1, checkpoint=path).eval()
    assert other(torch.randn(1, 1, 28, 28)).shape == (1, 3)
    for key, value in source.state_dict().items():
        if not key.startswith("fc."):
            torch.testing.assert_close(other.state_dict()[key], value)


def test_pretrained_timm_teacher_used_as_is(digits, tmp_path):
    """The paper's setting: a local timm checkpoint scores the reference set with no teacher training."""
    torch.manual_seed(0)
    pretrained = create_model("test_resnet", num_classes=10, in_chans=1)
    path = tmp_path / "pretrained.pth"
    torch.save(pretrained.state_dict(), path)
    no_training = TeacherRecipe(epochs=0)
    result = produce(request=request(digits, tmp_path / "server", teacher="test_resnet", teacher_checkpoint=str(path),
                                     teacher_recipe=no_training, image_size=32))
    assert len(result.payloads) == 1
    scores = Scores.load(result.scores_path)
    assert scores.provenance["teacher"]["weights_sha256"] == weights_digest(pretrained)
    assert json.loads((tmp_path / "server" / "teacher.json").read_text())["request"]["model"] == "test_resnet"
    five = tmp_path / "five.pth"
    torch.save(create_model("test_resnet", num_classes=5, in_chans=1).state_dict(), five)
    with pytest.raises(DataError, match="5-class head.*--teacher-epochs"):
        produce(request=request(digits, tmp_path / "s2", teacher="test_resnet", teacher_checkpoint=str(five),
                                teacher_recipe=no_training, image_size=32))


def test_api_and_cli_share_defaults():
    from plada_train.cli import build_parser

    produce_args = build_parser().parse_args(["produce", "--out", "x"])
    consume_args = build_parser().parse_args(["consume", "p.plada"])
    defaults = ProduceRequest()
    assert tuple(produce_args.keep) == defaults.keep and produce_args.alpha == defaults.alpha
    assert produce_args.shard_size == defaults.shard_size and consume_args.student == ConsumeRequest().student
    from plada_train.cli import _student_recipe, _teacher_recipe

    assert _teacher_recipe(produce_args) == TeacherRecipe()  # outlier exposure on in both
    assert _student_recipe(consume_args) == StudentRecipe()
    assert TeacherRecipe().outlier_weight > 0


@pytest.mark.parametrize("argv, message", [
    (["produce", "--keep", "5"], "keep rate 5.0 outside (0, 1]"),
    (["produce", "--teacher", "resnet_typo"], "unknown model 'resnet_typo'"),
    (["produce", "--teacher-checkpoint", "/nonexistent.pth"], "teacher checkpoint /nonexistent.pth not found"),
    (["produce", "--teacher-epochs", "0"], "needs --teacher-checkpoint"),
    (["produce", "--temperature", "0"], "temperature must be positive"),
    (["produce", "--spread", "0.5"], "spread must be a finite number >= 1, got 0.5"),
    (["produce", "--spread", "2", "--mode", "random"], "use it without --mode random"),
    (["produce", "--class-names", "/nonexistent.txt"], "class names file /nonexistent.txt not found"),
    (["produce", "--target", "nothing.npz"], "target 'nothing.npz' not found"),
    (["consume", "/nonexistent.plada"], "payload /nonexistent.plada not found"),
    (["consume", "PAYLOAD", "--student", "nope"], "unknown model 'nope'"),
    (["consume", "PAYLOAD", "--lr", "-1"], "learning rate must be positive"),
])
def test_cli_everyday_mistakes_get_one_line(argv, message, tmp_path, capsys):
    from plada_train.cli import main

    payload = tmp_path / "p.plada"
    payload.write_bytes(b"")
    argv = [str(payload) if a == "PAYLOAD" else a for a in argv]
    if argv[0] == "produce":
        argv += ["--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "out" / "teacher.pt").exists()


def test_cli_class_names_and_missing_test_split(digits, tmp_path, capsys):
    from plada_train.cli import main

    target, reference, _ = digits
    names = tmp_path / "names.txt"
    names.write_text("zero\none\n")
    common = ["--target", target, "--reference", reference, "--out", str(tmp_path), "--device", "cpu"]
    assert main(["produce", *common, "--class-names", str(names)]) == 2
    assert "2 class names for 10 classes" in capsys.readouterr().err
    no_test = tmp_path / "no-test.npz"
    with np.load(target) as d:
        np.savez(no_test, x_train=d["x_train"], y_train=d["y_train"])
    payload = tmp_path / "p.plada"
    payload.write_bytes(b"\0")
    assert main(["consume", str(payload), "--reference", reference, "--test", str(no_test)]) == 2
    assert "no test split; add x_test/y_test" in capsys.readouterr().err


def test_cli_produce_consume(server, digits, capsys):
    """Server and client from the shell, reusing the server fixture's teacher and scores."""
    from plada_train.cli import main

    target, reference, _ = digits
    out, _ = server
    common = ["--reference", reference, "--image-size", "16", "--device", "cpu", "--quiet"]
    assert main(["produce", "--target", target, "--out", str(out), "--keep", "0.1", "--teacher-epochs", "8",
                 "--teacher-batch-size", "64", "--shard-size", "128", "--score-batch-size", "64", *common]) == 0
    assert "reusing scores" in capsys.readouterr().out
    payload = out / "payload-low-0.1.plada"
    assert main(["consume", str(payload), "--test", target, "--steps", "100", "--batch-size", "32", *common]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["count"] == 89 and result["accuracy"] > 0.5
    broken = out / "broken.plada"
    broken.write_bytes(payload.read_bytes()[:-1])
    assert main(["consume", str(broken), *common]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cuda_request_without_gpu_is_clear():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(DataError, match="no GPU"):
        pick_device("cuda")


def test_demo_quick_runs(tmp_path):
    """The demo in its reduced form: every artefact, every selection mode, the CLI's files."""
    pytest.importorskip("mnist")
    from plada_train.data import FASHION_DIR

    if not FASHION_DIR.exists():
        pytest.skip("dataset-fashion-mnist not installed")
    from plada_train.cli import main

    assert main(["demo", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert {r["selection"] for r in report["runs"]} == {"low-energy", "high-energy", "random", "no filter"}
    assert (tmp_path / "accuracy_vs_size.png").stat().st_size > 1000
    for row in report["runs"]:
        data = (tmp_path / row["payload"]).read_bytes()
        assert plada_codec.decode(data).metadata["teacher"]["model"] == "smallcnn"
        assert len(data) == row["payload_bytes"]
    assert os.path.exists(tmp_path / "server" / "teacher.pt")


def test_payload_names_tell_the_selections_apart():
    from plada_train.workdir import payload_name

    assert payload_name("low", 0.0, 0.05) == "payload-low-0.05.plada"
    assert payload_name("low", 0.5, 0.05) == "payload-low-safety-0.05.plada"
    assert payload_name("low", 0.5, 0.05, 2.0) == "payload-low-safety-spread2-0.05.plada"
    assert payload_name("high", 0.0, 0.1, 1.5) == "payload-high-spread1.5-0.1.plada"
    assert payload_name("low", 0.0, 0.05, 10 / 6) == "payload-low-spread1.6666666666666667-0.05.plada"
    assert payload_name("low", 0.0, 0.05, 2.0000001) == "payload-low-spread2.0000001-0.05.plada"


def test_a_damaged_training_state_names_itself(digits, tmp_path, capsys):
    from plada_train.cli import main

    payload = tmp_path / "p.plada"
    write_true_payload(digits, payload)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "train-state.pt").write_bytes(b"PK\x03\x04 truncated")
    argv = ["consume", str(payload), "--reference", digits[1], "--steps", "2", "--checkpoint-dir", str(ckpt),
            "--image-size", "16", "--device", "cpu", "--quiet"]
    assert main(argv) == 2
    err = one_line(capsys.readouterr().err)
    assert "train-state.pt is unreadable" in err and "delete it" in err
