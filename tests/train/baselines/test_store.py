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
