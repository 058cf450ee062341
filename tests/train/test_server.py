"""The server, ``produce`` (plada_train.server), as a new user meets it (issue 23): a reference of
mixed image sizes resized to the model's input, a teacher at chance warned about before it
labels, a keep rate that selects no image refused before the teacher. Tiny data (sklearn digits
at 16 px, a teacher of 2 steps)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("PIL")

import plada_codec  # noqa: E402
from plada_train import DataError, produce  # noqa: E402

FAST = dict(teacher_steps=2, teacher_batch_size=64, shard_size=512, score_batch_size=128, keep=0.2, device="cpu")


def _png_folder(folder: Path, sizes: list[int]) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i, side in enumerate(sizes):
        Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def mixed(digits, tmp_path_factory):
    """produce on a folder of 20x20 and 24x24 images for a 16x16 task, no --image-size,
    with a teacher whose test accuracy is 0.131 (evaluate stands in for an undertrained one)."""
    import plada_train.train

    target, _, _ = digits
    base = tmp_path_factory.mktemp("mixed")
    reference = _png_folder(base / "ref", [20, 24] * 30)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plada_train.train, "evaluate", lambda *a, **k: 0.131)
        out, err = io.StringIO(), io.StringIO()
        patch.setattr("sys.stdout", out)
        patch.setattr("sys.stderr", err)
        result = produce(target, str(reference), str(base / "server"), **FAST)
    return result, out.getvalue(), err.getvalue()


def test_mixed_reference_sizes_are_resized_to_the_models_input_by_default(mixed):
    result, out, _ = mixed
    notes = [line for line in out.splitlines() if "resized" in line]
    assert len(notes) == 1 and "20x20" in notes[0] and "16x16" in notes[0] and "--image-size" in notes[0]
    preprocess = plada_codec.decode(result.payloads[0].payload).metadata["preprocess"]
    assert preprocess["resize"] is True and preprocess["input_size"] == [16, 16]
    assert len(result.payloads[0].selection.indices) == 12  # 20% of 60


def test_a_teacher_at_chance_is_warned_about_before_it_labels(mixed):
    _, _, err = mixed
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "0.131" in warnings[0] and "chance (0.100 for 10 classes)" in warnings[0]


def test_a_teacher_well_above_chance_is_not_warned_about(digits, tmp_path, capsys, monkeypatch):
    import plada_train.train

    target, reference, _ = digits
    monkeypatch.setattr(plada_train.train, "evaluate", lambda *a, **k: 0.5)
    produce(target, reference, str(tmp_path / "s"), image_size=16, **FAST)
    assert "warning" not in capsys.readouterr().err


def test_a_keep_rate_that_selects_no_image_is_refused_before_the_teacher(digits, tmp_path):
    target, reference, _ = digits
    out = tmp_path / "s"
    with pytest.raises(DataError, match=r"keep rate 1e-09 of 897 reference images selects no image"):
        produce(target, reference, str(out), image_size=16, **{**FAST, "keep": 1e-9})
    assert not list(out.glob("payload-*")) and not (out / "teacher.pt").exists()


def test_a_score_the_saved_scores_lack_is_refused_before_training(digits, tmp_path):
    target, reference, truth = digits
    out = tmp_path / "server"
    produce(target, reference, str(out), **FAST)
    old = tmp_path / "scores-before-margin.npz"  # the scores as a plada without the margin score wrote them
    with np.load(out / "scores.npz") as d:
        np.savez(old, **{k: d[k] for k in d.files if k != "margin"})
    with pytest.raises(DataError, match="holds no margin scores.*--rescore"):
        produce(target, reference, str(out), **{**FAST, "score": "margin", "scores": str(old)})
    result = produce(target, reference, str(out), **{**FAST, "score": "margin", "mode": "ends", "keep": 0.1})
    payload = plada_codec.decode(result.payloads[0].payload)
    assert payload.metadata["score"] == "margin" and payload.metadata["mode"] == "both-ends"
    assert "seed" not in payload.metadata and len(payload) == len(truth) // 10
    assert result.payloads[0].path.name == "payload-ends-margin-0.1.plada"  # beside, not over, the energy one
    with pytest.raises(DataError, match="use it without --mode ends"):
        produce(target, reference, str(out), **{**FAST, "mode": "ends", "spread": 2.0})
