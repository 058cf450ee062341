"""The one store of every family's points (plada_train.baselines.store): a results file of
another shape is refused in one line, before any work."""

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("PIL")

from plada_train.cli import main  # noqa: E402
from tests.helpers import one_line  # noqa: E402


def _never(*args, **kwargs):
    raise AssertionError("work started before the options were checked")


@pytest.mark.parametrize("stored", ["[]", "null", '{"config": {}, "points": [{"method": "x", "extra": 1}]}',
                                    '{"config": {}, "points": 3}'])
def test_baselines_refuse_a_results_file_of_another_shape_in_one_line(digits, tmp_path, capsys, monkeypatch, stored):
    import plada_train.distributed

    monkeypatch.setattr(plada_train.distributed, "setup", _never)
    target, reference, _ = digits
    (tmp_path / "baselines.json").write_text(stored)
    assert main(["baselines", "--target", target, "--reference", reference, "--out", str(tmp_path)]) == 2
    assert "is not a baselines file" in one_line(capsys.readouterr().err)


def test_the_table_says_how_many_seeds_each_accuracy_has(tmp_path):
    from plada_train.baselines.store import BaselineReport, Point

    points = [Point("plada", "low 0.1", 500, 0.9, 0.01, [0.89, 0.91], [0, 1], 2.0, {}),
              Point("plada-random", "random 0.1", 520, 0.8, 0.0, [0.8], [0], 1.0, {}),
              Point("model-int8", "dense", 9000, 0.95, 0.0, [0.95], [], 1.0, {})]
    rows = {line.split("|")[1].strip(): line for line in BaselineReport(points, tmp_path).table().splitlines()[2:]}
    assert "0.9000 ± 0.0100" in rows["plada"]
    assert "0.8000 (1 seed)" in rows["plada-random"]  # quick mode: one student, no spread to show
    assert "0.9500 (no student)" in rows["model-int8"]  # the teacher runs as sent
