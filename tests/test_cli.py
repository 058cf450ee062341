import json
import subprocess
import sys

import numpy as np
import pytest

import plada_codec
from plada_codec.cli import EXIT_INVALID, EXIT_OK, EXIT_USAGE, main


@pytest.fixture
def selection_npz(tmp_path):
    path = tmp_path / "sel.npz"
    np.savez(path, indices=np.array([3, 17, 90]), labels=np.array([1, 0, 1]), n_ref=100, n_classes=2)
    return path


def test_encode_inspect_decode_verify(tmp_path, selection_npz, capsys):
    out = tmp_path / "p.plada"
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\n", encoding="utf-8")
    assert main(["encode", str(selection_npz), "-o", str(out), "--class-names", str(names),
                 "--task-name", "pets", "--meta", "keep=0.03", "--meta", "mode=low-energy"]) == EXIT_OK
    payload = plada_codec.decode(out.read_bytes())
    assert payload.indices.tolist() == [3, 17, 90] and payload.class_names == ("cat", "dog")
    assert payload.metadata == {"keep": 0.03, "mode": "low-energy"}
    capsys.readouterr()
    assert main(["inspect", str(out)]) == EXIT_OK
    table = capsys.readouterr().out
    assert "n_ref = 100" in table and "class-names" in table
    assert main(["inspect", str(out), "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["count"] == 3
    for fmt in ("json", "csv", "npz"):
        target = tmp_path / f"out.{fmt}"
        assert main(["decode", str(out), "-o", str(target)]) == EXIT_OK
    assert (tmp_path / "out.csv").read_text().splitlines() == ["index,label", "3,1", "17,0", "90,1"]
    assert json.loads((tmp_path / "out.json").read_text())["labels"] == [1, 0, 1]
    with np.load(tmp_path / "out.npz") as data:
        assert data["indices"].tolist() == [3, 17, 90]
    assert main(["verify", str(out)]) == EXIT_OK


def test_csv_input_and_reference_folder(tmp_path, capsys):
    folder = tmp_path / "ref"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.bin").write_bytes(bytes([i]))
    csv_path = tmp_path / "sel.csv"
    csv_path.write_text("index,label\n0,1\n4,0\n")
    out = tmp_path / "p.plada"
    assert main(["encode", str(csv_path), "-o", str(out), "--n-classes", "2", "--reference", str(folder)]) == EXIT_OK
    assert main(["verify", str(out), "--reference", str(folder)]) == EXIT_OK
    manifest = tmp_path / "m.txt"
    assert main(["ref-hash", str(folder), "--manifest-out", str(manifest), "--json"]) == EXIT_OK
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["n_ref"] == 5
    assert main(["verify", str(out), "--reference", str(manifest)]) == EXIT_OK
    (folder / "4.bin").write_bytes(b"changed")
    assert main(["verify", str(out), "--reference", str(folder)]) == EXIT_INVALID
    assert "ReferenceMismatchError" in capsys.readouterr().err


def test_exit_codes(tmp_path, selection_npz, capsys):
    out = tmp_path / "p.plada"
    main(["encode", str(selection_npz), "-o", str(out)])
    (tmp_path / "bad.plada").write_bytes(out.read_bytes()[:-3])
    assert main(["verify", str(tmp_path / "bad.plada")]) == EXIT_INVALID
    assert "TruncatedPayloadError" in capsys.readouterr().err
    assert main(["decode", str(tmp_path / "missing.plada")]) == EXIT_USAGE
    assert main(["encode", str(tmp_path / "sel.txt"), "-o", str(out)]) == EXIT_USAGE
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("index,label\n1,x\n")
    assert main(["encode", str(bad_csv), "-o", str(out), "--n-ref", "5", "--n-classes", "2"]) == EXIT_USAGE
    unsorted = tmp_path / "unsorted.csv"
    unsorted.write_text("index,label\n3,0\n1,0\n")
    assert main(["encode", str(unsorted), "-o", str(out), "--n-ref", "5", "--n-classes", "2"]) == EXIT_INVALID
    assert "sorted and distinct" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == EXIT_USAGE


def test_console_script_runs(tmp_path, selection_npz):
    out = tmp_path / "p.plada"
    result = subprocess.run([sys.executable, "-m", "plada_codec.cli", "encode", str(selection_npz), "-o", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    result = subprocess.run([sys.executable, "-m", "plada_codec.cli", "decode", str(out)], capture_output=True, text=True)
    assert json.loads(result.stdout)["indices"] == [3, 17, 90]
