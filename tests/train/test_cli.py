"""``plada-train`` (plada_train.cli) under a careless user: one exit-code table with plada,
usage errors and --help answered before torch is imported, every path checked before torch,
Ctrl-C as one line, and the baselines options reaching the run. Tiny data (sklearn digits at
16 px, a teacher of 2 steps)."""

import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("PIL")

from plada_train.cli import main  # noqa: E402
from tests.helpers import REPO, one_line, run_python  # noqa: E402

ROOT = REPO

FAST = ["--teacher-steps", "2", "--teacher-batch-size", "64", "--image-size", "16", "--shard-size", "512",
        "--score-batch-size", "128", "--keep", "0.2", "--device", "cpu", "--quiet"]


# -- one exit-code table for plada and plada-train -------------------------------------------------


def test_a_stale_manifest_exits_2_as_in_plada(digits, tmp_path, capsys):
    from PIL import Image

    from plada_codec.cli import main as plada_main

    folder = tmp_path / "ref"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    manifest = tmp_path / "ref.manifest"
    assert plada_main(["ref-hash", str(folder), "--manifest-out", str(manifest)]) == 0
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(folder / "003.png")  # changed since the manifest
    os.utime(folder / "003.png", (1, 1))
    capsys.readouterr()
    stale_plada = plada_main(["ref-hash", str(folder), "--manifest", str(manifest)])
    plada_err = capsys.readouterr().err
    target = digits[0]
    argv = ["produce", "--target", target, "--reference", str(folder), "--manifest", str(manifest),
            "--out", str(tmp_path / "out"), *FAST]
    assert main(argv) == stale_plada == 2, plada_err
    assert "StaleManifestError" in one_line(capsys.readouterr().err)


def test_the_exit_table_is_documented_once_for_both():
    import plada_train.cli

    for text in (plada_train.cli.__doc__, (ROOT / "docs" / "cli.md").read_text()):
        for code in ("130", "141"):
            assert code in text


# -- a CLI that answers before torch is imported ---------------------------------------------------


@pytest.mark.parametrize("argv, message", [
    (["produce", "--keep", "5", "--out", "OUT"], "keep rate 5.0 outside (0, 1]"),
    (["produce", "--target", "missing.npz", "--out", "OUT"], "target 'missing.npz' not found"),
    (["produce", "--reference", "missing-dir", "--out", "OUT"], "reference 'missing-dir' not found"),
    (["produce", "--out", "FILE"], "exists and is not a folder"),
    (["consume", "missing.plada"], "payload missing.plada not found"),
    (["consume", "PAYLOAD", "--save", "nodir/x.pt"], "nodir does not exist"),
])
def test_usage_errors_answer_without_importing_torch(tmp_path, argv, message):
    (tmp_path / "FILE").write_text("")
    (tmp_path / "PAYLOAD").write_bytes(b"")
    code = ("import sys\nfrom plada_train.cli import main\nrc = main(sys.argv[1:])\n"
            "print(rc, 'torch' in sys.modules)")
    done = run_python("-c", code, *argv, cwd=tmp_path)
    assert done.stdout.split() == ["2", "False"], (done.stdout, done.stderr)
    assert message in one_line(done.stderr)


@pytest.mark.parametrize("argv", [["--help"], ["produce", "--help"], ["consume", "--help"]])
def test_help_imports_no_torch(argv):
    done = run_python("-X", "importtime", "-m", "plada_train", *argv)
    assert done.returncode == 0 and "usage: plada-train" in done.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "import time:" in line}
    assert "plada_train.cli" in imported and not {m for m in imported if m.split(".")[0] in ("torch", "timm")}


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
    done = run_python("-c", code, *argv, cwd=tmp_path)
    assert done.stdout.split() == ["2", "False"], (done.stdout, done.stderr)
    assert message in one_line(done.stderr)


# -- Ctrl-C ----------------------------------------------------------------------------------------


def test_ctrl_c_is_one_line_and_exit_130(digits, tmp_path):
    target, reference, _ = digits
    command = [sys.executable, "-m", "plada_train", "produce", "--target", target, "--reference", reference,
               "--out", str(tmp_path / "out"), "--teacher-steps", "1000000", "--teacher-batch-size", "64",
               "--image-size", "16", "--device", "cpu", "--quiet"]
    # A shell's background job starts with SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: restore the default in the child, as a terminal's Ctrl-C finds it.
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    guard = threading.Timer(1800, proc.kill)  # a hang guard only (a loaded CI machine is slow)
    guard.start()
    try:
        for line in proc.stdout:
            if line.startswith("training the teacher"):
                proc.send_signal(signal.SIGINT)
                break
        _, err = proc.communicate()
    finally:
        guard.cancel()
    assert proc.returncode == 130, err
    assert "interrupted while training the teacher" in one_line(err)
    assert "run the same command again to resume" in err


@pytest.mark.parametrize("argv, says", [
    (["consume", "p.plada"], "start over (with --checkpoint-dir a rerun resumes)"),
    (["consume", "p.plada", "--checkpoint-dir", "ckpt"], "resume from the last checkpoint in ckpt"),
])
def test_ctrl_c_in_consume_says_whether_a_rerun_resumes(monkeypatch, capsys, argv, says):
    import plada_train.cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(plada_train.cli, "_cmd_consume", interrupted)  # bound when main builds the parser
    assert main(argv) == 130
    assert says in one_line(capsys.readouterr().err)


# -- plada-train baselines: the options reach the run ----------------------------------------------


def test_cli_options_reach_the_run(monkeypatch, tmp_path, capsys):
    import plada_train.baselines as module
    from plada_train.cli import main

    seen = {}

    def fake(target, reference, out, **kwargs):
        seen.update(target=target, reference=reference, out=str(out), **kwargs)
        return module.BaselineReport([], tmp_path / "baselines.json")

    monkeypatch.setattr(module, "run_baselines", fake)
    assert main(["baselines", "--target", "t.npz", "--reference", "p.npz", "--out", str(tmp_path), "--keep", "0.02",
                 "--per-class", "3", "--seeds", "4", "5", "6", "--steps", "7", "--mode", "high", "--quiet"]) == 0
    assert (seen["target"], seen["reference"], seen["keeps"], seen["per_class"], seen["seeds"]) == \
        ("t.npz", "p.npz", (0.02,), (3,), (4, 5, 6))
    assert seen["student_recipe"].steps == 7 and seen["mode"] == "high"


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


def test_an_argument_error_is_one_line(capsys):
    # The module docstring's promise, for argparse's own errors too (plada's parser, shared).
    from plada_train.cli import main

    with pytest.raises(SystemExit) as info:
        main(["report"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert err.startswith("plada-train report: error: the following arguments are required: out")
