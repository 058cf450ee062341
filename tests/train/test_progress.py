"""Progress of the long phases (plada_train.progress): lines, not a bar, where stderr is not a
terminal (a scheduler's log file), and nothing when progress is off."""

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("PIL")

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
