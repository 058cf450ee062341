"""plada-train as a new user meets it, and its report and baselines under hostile input
(issue 23): a reference of mixed image sizes, paths checked before torch, a teacher at
chance, what consume says and leaves behind, progress in a log file, catalog payloads,
a report bounded by what the payloads hold, baselines options checked before any work."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("PIL")

import plada_codec  # noqa: E402
from plada_codec import Catalog  # noqa: E402
from plada_train import DataError, consume, produce  # noqa: E402
from plada_train.cli import main  # noqa: E402

from .test_catalog_train import STUDENT, world  # noqa: E402, F401  (world: the catalog world fixture)
from .test_train import write_digits  # noqa: E402
from .test_train_trust import _run_python, one_line  # noqa: E402

FAST = dict(teacher_steps=2, teacher_batch_size=64, shard_size=512, score_batch_size=128, keep=0.2, device="cpu")


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_digits(tmp_path_factory.mktemp("digits"))


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


# -- tried as a new user would -------------------------------------------------------------------


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


@pytest.mark.parametrize("argv, message", [
    (["consume", "PAYLOAD", "--catalog", "CAT", "--reference", "typo-copy"], "reference (the local copy"),
    (["produce", "--catalog", "CAT", "--reference", "typo-copy", "--out", "OUT"], "'typo-copy' not found"),
    (["consume", "PAYLOAD", "--checkpoint-dir", "FILE/ckpt"], "FILE is not a folder"),
    (["produce", "--scores", "nodir/scores.npz", "--out", "OUT"], "nodir does not exist"),
])
def test_every_path_is_checked_before_torch_is_imported(tmp_path, argv, message):
    for name in ("FILE", "PAYLOAD", "CAT"):
        (tmp_path / name).write_bytes(b"")
    code = ("import sys\nfrom plada_train.cli import main\nrc = main(sys.argv[1:])\n"
            "print(rc, 'torch' in sys.modules)")
    done = _run_python("-c", code, *argv, cwd=tmp_path)
    assert done.stdout.split() == ["2", "False"], (done.stdout, done.stderr)
    assert message in one_line(done.stderr)


def _partial_payload(world, tmp_path) -> Path:  # noqa: F811
    stored, catalog_path, _, _ = world
    catalog = Catalog.open(catalog_path)
    removed = catalog.positions_of(stored.removed[:3]).tolist()
    held = [p for p in range(len(catalog)) if catalog.ids[p] not in set(stored.removed)][:7]
    indices = sorted(removed + held)
    payload = tmp_path / "p.plada"
    payload.write_bytes(plada_codec.encode(indices, [0] * len(indices), n_classes=4, reference=catalog.reference))
    return payload


def test_consume_on_a_partial_copy_says_what_it_trains_on(world, tmp_path, capsys):  # noqa: F811
    stored, catalog_path, _, _ = world
    consumed = consume(str(_partial_payload(world, tmp_path)), str(stored.partial), catalog=str(catalog_path),
                       student_recipe=STUDENT, device="cpu", max_missing=0.5)
    out = capsys.readouterr().out
    assert "3 of 10 selected images" in out and "training on the other 7" in out
    assert "training smallcnn on the 7 this copy holds" in out and "on them" not in out
    assert consumed.count == 7 and consumed.selected == 10


def test_consume_on_a_reencoded_copy_says_every_image_differs(world, capsys):  # noqa: F811
    stored, catalog_path, _, result = world
    consume(str(result.payloads[0].path), str(stored.reencoded), catalog=str(catalog_path), student_recipe=STUDENT,
            device="cpu")
    lines = [line for line in capsys.readouterr().out.splitlines() if "differ in content" in line]
    assert len(lines) == 1 and lines[0].startswith("note: every one of the selected images")
    consume(str(result.payloads[0].path), str(stored.folder), catalog=str(catalog_path), student_recipe=STUDENT,
            device="cpu")
    assert "differ in content" not in capsys.readouterr().out  # the same bytes: nothing to say


def test_a_catalog_payload_says_so_and_keeps_its_keep_rate(world):  # noqa: F811
    stored, catalog_path, _, result = world
    meta = plada_codec.decode(result.payloads[0].payload).metadata
    catalog = Catalog.open(catalog_path)
    assert meta["catalog"] == {"fingerprint": catalog.hex, "n": len(catalog), "id_rule": "stem",
                               "file": catalog_path.name}
    assert meta["keep_fraction"] == 0.25
    with pytest.raises(plada_codec.ReferenceMismatchError, match=f"pass --catalog {catalog_path.name}"):
        consume(str(result.payloads[0].path), str(stored.folder), student_recipe=STUDENT, device="cpu")


def test_consume_leaves_a_result_that_report_reads(world, capsys):  # noqa: F811
    stored, catalog_path, target, result = world
    path = result.payloads[0].path
    code = main(["consume", str(path), "--reference", str(stored.folder), "--catalog", str(catalog_path),
                 "--test", str(target), "--steps", "2", "--batch-size", "8", "--device", "cpu", "--quiet"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    teacher = plada_codec.decode(result.payloads[0].payload).metadata["teacher_accuracy"]
    assert summary["test_count"] == 16 and summary["teacher_accuracy"] == teacher
    assert summary["selected"] == summary["count"] == 100
    written = json.loads(path.with_name(path.stem + ".result.json").read_text())
    assert written["accuracy"] == summary["accuracy"] and written["student"] == "smallcnn"
    assert main(["report", str(path.parent), "--json", "--no-plot"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["accuracy"] for row in rows if row["payload"] == path.name] == [summary["accuracy"]]
    assert [row["keep"] for row in rows if row["payload"] == path.name] == [0.25]


def test_the_api_takes_the_clis_quiet(tmp_path):
    with pytest.raises(DataError, match="keep rate 5.0 outside"):  # quiet accepted, the bad keep reached
        produce("builtin:mnist", "builtin:pool", str(tmp_path / "o"), keep=5, quiet=True)
    with pytest.raises(DataError, match="quiet must be True or False, got str"):
        produce("builtin:mnist", "builtin:pool", str(tmp_path / "o"), quiet="yes")


def test_long_phases_print_progress_lines_where_stderr_is_not_a_terminal(digits, capsys, monkeypatch):
    from plada_train.data import open_reference
    from plada_train.distributed import Context
    from plada_train.models import create_model
    from plada_train.scoring import score_reference

    _, reference, _ = digits
    monkeypatch.setenv("PLADA_PROGRESS_SECONDS", "0")
    refs = open_reference(reference)
    scores = score_reference(create_model("smallcnn", 10, 1), refs, Context(), batch_size=500, progress=True)
    assert len(scores.labels) == 897  # 497 held-out digits + 400 noise images
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and lines[0] == "scoring the reference set: 0 / 897 images (0.0%)"
    assert lines[1].startswith("scoring the reference set: 500 / 897 images (55.7%), ") and "left" in lines[1]
    assert lines[2].startswith("scoring the reference set: 897 / 897 images (100.0%), ") and "done in" in lines[2]
    assert "\r" not in "".join(lines)
    score_reference(create_model("smallcnn", 10, 1), refs, Context(), batch_size=500, progress=False)
    assert capsys.readouterr().err == ""


def test_a_keep_rate_that_selects_no_image_is_refused_before_the_teacher(digits, tmp_path):
    target, reference, _ = digits
    out = tmp_path / "s"
    with pytest.raises(DataError, match=r"keep rate 1e-09 of 897 reference images selects no image"):
        produce(target, reference, str(out), image_size=16, **{**FAST, "keep": 1e-9})
    assert not list(out.glob("payload-*")) and not (out / "teacher.pt").exists()


# -- plada-train report, tried as an attacker would ----------------------------------------------


def _payload(folder: Path, name: str, **kwargs) -> Path:
    path = folder / name
    path.write_bytes(plada_codec.encode(**kwargs))
    return path


def test_report_takes_a_keep_of_the_wrong_type(tmp_path, capsys):
    _payload(tmp_path, "payload-a.plada", indices=[1, 2], labels=[0, 1], n_ref=10, n_classes=2,
             metadata={"keep": [0.1], "safety_share": "x", "mode": 3})
    assert main(["report", str(tmp_path), "--no-plot"]) == 0
    assert "| payload-a.plada |" in capsys.readouterr().out


def test_report_costs_what_the_payload_holds_not_what_it_declares(tmp_path):
    from plada_train.report import report

    path = _payload(tmp_path, "payload-big.plada", indices=[1, 2, 3], labels=[0, 7, 19999], n_ref=10,
                    n_classes=20000)
    assert path.stat().st_size < 200
    rows = report(tmp_path)
    assert rows[0]["per_class"] == {"0": 1, "7": 1, "19999": 1}
    assert len((tmp_path / "report.md").read_text()) < 1000


def test_report_refuses_a_fifo(tmp_path, capsys):
    _payload(tmp_path, "payload-a.plada", indices=[1], labels=[0], n_ref=10, n_classes=2)
    os.mkfifo(tmp_path / "payload-x.plada")
    assert main(["report", str(tmp_path), "--no-plot"]) == 2
    assert "payload-x.plada is not a regular file" in one_line(capsys.readouterr().err)


def test_report_keeps_duplicate_class_names_apart(tmp_path):
    from plada_train.report import report

    _payload(tmp_path, "payload-a.plada", indices=[1, 2, 3, 4], labels=[0, 1, 1, 2], n_ref=10, n_classes=3,
             class_names=["cat", "cat", "dog"])
    assert report(tmp_path, plot=False)[0]["per_class"] == {"cat (label 0)": 1, "cat (label 1)": 2, "dog": 1}


# -- plada-train baselines: every option checked before any work ---------------------------------


def _never(*args, **kwargs):
    raise AssertionError("work started before the options were checked")


@pytest.mark.parametrize("extra, message", [
    (["--keep", "0"], "keep rate 0.0 outside (0, 1]"),
    (["--per-class", "0"], "--per-class 0"),
    (["--sparsity", "1.5"], "--sparsity 1.5 outside [0, 1)"),
    (["--image-size", "2"], "image size must be 8..4096"),
    (["--catalog", "missing.plcat"], "catalog missing.plcat not found"),
])
def test_baselines_options_are_checked_before_any_work(digits, tmp_path, capsys, monkeypatch, extra, message):
    import plada_train.server

    monkeypatch.setattr(plada_train.server, "produce", _never)
    target, reference, _ = digits
    out = tmp_path / "curves"
    assert main(["baselines", "--target", target, "--reference", reference, "--out", str(out), *extra]) == 2
    assert message in one_line(capsys.readouterr().err)
    assert not out.exists()  # a refused run leaves no folder behind


@pytest.mark.parametrize("stored", ["[]", "null", '{"config": {}, "points": [{"method": "x", "extra": 1}]}',
                                    '{"config": {}, "points": 3}'])
def test_baselines_refuse_a_results_file_of_another_shape_in_one_line(digits, tmp_path, capsys, monkeypatch, stored):
    import plada_train.distributed

    monkeypatch.setattr(plada_train.distributed, "setup", _never)
    target, reference, _ = digits
    (tmp_path / "baselines.json").write_text(stored)
    assert main(["baselines", "--target", target, "--reference", reference, "--out", str(tmp_path)]) == 2
    assert "is not a baselines file" in one_line(capsys.readouterr().err)


def test_baselines_image_size_catalog_and_quick_reach_the_run(monkeypatch, tmp_path):
    import plada_train.baselines as module

    seen = {}

    def fake(target, reference, out, **kwargs):
        seen.update(kwargs)
        return module.BaselineReport([], tmp_path / "baselines.json")

    monkeypatch.setattr(module, "run_baselines", fake)
    assert main(["baselines", "--out", str(tmp_path), "--image-size", "32", "--catalog", "c.plcat", "--quick",
                 "--methods", "plada", "--quiet"]) == 0
    assert (seen["image_size"], seen["catalog"], seen["quick"], seen["methods"]) == (32, "c.plcat", True, ("plada",))


def test_baselines_quick_plada_is_one_point(digits, tmp_path):
    from plada_train.baselines import run_baselines
    from plada_train.recipes import StudentRecipe, TeacherRecipe

    target, reference, _ = digits
    report = run_baselines(target, reference, tmp_path, keeps=(0.1, 0.2), seeds=(3, 4), methods=("plada",),
                           quick=True, student_recipe=StudentRecipe(steps=2, batch_size=16, checkpoint_every=0),
                           teacher_recipe=TeacherRecipe(steps=2, batch_size=32, checkpoint_every=0),
                           log=lambda line: None)
    assert [(p.method, p.variant, p.seeds) for p in report.points] == [("plada", "low 0.1", [3])]
