"""``import timm`` in user code on the CPU-only torch the README sets up."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytest.importorskip("timm")


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)  # hang guard


def test_the_hook_makes_timm_import_and_imports_nothing_itself():
    run = _python("import sys, plada_train._timm_hook\n"
                  "assert 'torch' not in sys.modules and 'torchvision' not in sys.modules\n"
                  "import timm, torchvision\n"
                  "print(type(timm.create_model('resnet18', pretrained=False)).__name__, torchvision.__name__)")
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["ResNet", "torchvision"]


def test_setup_installs_the_hook_for_every_interpreter_of_the_venv():
    pth = Path(sysconfig.get_paths()["purelib"]) / "plada-torchvision-cpu.pth"
    if not pth.exists():
        pytest.skip("scripts/setup.sh has not set up this environment")
    assert "plada_train._timm_hook" in pth.read_text()
    run = _python("import timm; print(timm.__version__)")
    assert run.returncode == 0, run.stderr[-2000:]


def test_the_manual_one_liner():
    run = _python("import plada_train; print(plada_train.import_timm().__name__)")
    assert run.returncode == 0 and run.stdout.strip() == "timm", run.stderr[-2000:]
