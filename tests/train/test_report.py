"""``plada-train report`` (plada_train.report): kept images per class, and a report tried as an
attacker would (issue 23): a keep of the wrong type, a payload declaring more than it holds, a
FIFO, duplicate class names, a file given for the folder, a payload that fails its checksum."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("PIL")

import plada_codec  # noqa: E402
from plada_train import DataError  # noqa: E402
from plada_train.cli import main  # noqa: E402
from tests.helpers import one_line  # noqa: E402


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


def test_report_names_a_file_given_for_the_folder_and_the_payload_that_fails(tmp_path):
    from plada_train.report import report

    good = tmp_path / "payload-low-0.1.plada"
    good.write_bytes(plada_codec.encode([1], [0], n_ref=4, n_classes=1))
    with pytest.raises(DataError, match="a file, not the --out folder"):
        report(good)
    bad = tmp_path / "payload-low-0.2.plada"
    bad.write_bytes(good.read_bytes()[:-1] + bytes([good.read_bytes()[-1] ^ 1]))
    with pytest.raises(plada_codec.ChecksumError, match=r"payload-low-0\.2\.plada: "):
        report(tmp_path, plot=False)


# -- tried as an attacker would --------------------------------------------------------------------


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


def test_report_reads_the_safety_net_share_produce_writes(tmp_path):
    import plada_codec
    from plada_train.report import report

    (tmp_path / "payload-low-safety-0.1.plada").write_bytes(plada_codec.encode(
        [1, 4], [0, 1], n_ref=10, n_classes=2,
        metadata={"keep_fraction": 0.1, "mode": "low-energy", "safety_net": {"share": 0.5, "alpha": -0.2}}))
    (tmp_path / "payload-low-0.1.plada").write_bytes(plada_codec.encode(
        [1, 4], [0, 1], n_ref=10, n_classes=2, metadata={"keep_fraction": 0.1, "mode": "low-energy",
                                                          "safety_net": None}))
    rows = {row["payload"]: row for row in report(tmp_path, plot=False)}
    assert rows["payload-low-safety-0.1.plada"]["safety_share"] == 0.5
    assert rows["payload-low-0.1.plada"]["safety_share"] is None


def test_a_closed_standard_output_does_not_stop_a_run(tmp_path, monkeypatch):
    # plada-train's standard output reports progress and results that also go to files: a shell
    # that closed it (>&-) must not turn a finished run into an error. (plada, whose standard
    # output can be the result itself, refuses instead.)
    import plada_codec
    from plada_train.cli import main

    (tmp_path / "payload-low-0.1.plada").write_bytes(plada_codec.encode([1], [0], n_ref=4, n_classes=1))
    monkeypatch.setattr("sys.stdout", None)
    assert main(["report", str(tmp_path), "--no-plot"]) == 0
    assert (tmp_path / "report.md").exists()
