"""``plada-train baselines`` (plada_train.baselines): PLADA next to the paper's pixel and weight
baselines. Every option is checked before any work; a quick run writes its curve and resumes;
a quick PLADA-only run is one point."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("PIL")

from plada_train import baselines  # noqa: E402
from plada_train.cli import main  # noqa: E402
from plada_train.recipes import StudentRecipe, TeacherRecipe  # noqa: E402
from tests.helpers import one_line  # noqa: E402


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


# -- every option checked before any work ----------------------------------------------------------


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


def test_baselines_quick_plada_is_one_point(digits, tmp_path):
    from plada_train.baselines import run_baselines
    from plada_train.recipes import StudentRecipe, TeacherRecipe

    target, reference, _ = digits
    report = run_baselines(target, reference, tmp_path, keeps=(0.1, 0.2), seeds=(3, 4), methods=("plada",),
                           quick=True, student_recipe=StudentRecipe(steps=2, batch_size=16, checkpoint_every=0),
                           teacher_recipe=TeacherRecipe(steps=2, batch_size=32, checkpoint_every=0),
                           log=lambda line: None)
    assert [(p.method, p.variant, p.seeds) for p in report.points] == [("plada", "low 0.1", [3])]


def test_the_families_table_is_read_without_torch():
    import subprocess
    import sys

    code = ("import sys, plada_train.baselines as b, plada_train.cli as c; "
            "print(list(b.FAMILIES), list(b.DEFAULT_METHODS), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("] ")[-1].strip() == "False"
    assert "'plada-random'" in out.split("] [")[0] and "'plada-random'" not in out.split("] [")[1]


def test_methods_choices_and_checks_follow_the_families(quick_task, tmp_path, capsys):
    from plada_train.cli import build_parser
    from plada_train.errors import DataError

    target, pool = quick_task
    assert build_parser().parse_args(["baselines", "--methods", "plada-random"]).methods == ["plada-random"]
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["baselines", "--methods", "plada-randomly"])
    assert exit_info.value.code == 2 and "invalid choice" in capsys.readouterr().err
    options = dict(keeps=(0,), per_class=(1,), sparsities=(0.5,), seeds=(0,), mode="low")
    baselines.check_options(target, pool, tmp_path / "a", families=("pixels",), **options)  # keeps not read
    with pytest.raises(DataError, match="keep rate 0 outside"):
        baselines.check_options(target, pool, tmp_path / "b", families=("plada-random",), **options)
