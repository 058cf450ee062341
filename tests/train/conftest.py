"""The tests of plada_train, and their one torch gate.

The codec's own environment (.venv-codec, ``scripts/setup.sh --codec``) has no torch: there
every test file below this folder is skipped, with the reason ``could not import 'torch'``,
except those in :data:`RUN_WITHOUT_TORCH` (pure numpy), which run there too. No test file here
calls ``pytest.importorskip("torch")`` itself; the other optional packages (PIL, sklearn,
timm) are still asked for by the files, or the tests, that need them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

# Test files (relative to this folder) that need no torch: they run in the codec environment too.
RUN_WITHOUT_TORCH = {"test_selection.py"}
HERE = Path(__file__).resolve().parent


def _needs_torch(file_path: Path) -> bool:
    if not (file_path.name.startswith("test_") and file_path.suffix == ".py"):
        return False  # conftest.py, __init__.py: no tests of their own
    try:
        return file_path.resolve().relative_to(HERE).as_posix() not in RUN_WITHOUT_TORCH
    except ValueError:
        return True


class _TorchMissing(pytest.File):
    """Stands in for a test file that needs torch where torch is missing: collecting it skips."""

    def collect(self):
        try:
            import torch  # noqa: F401
        except ImportError as exc:
            pytest.skip(f"{self.nodeid} needs torch: could not import 'torch': {exc}")
        return []


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path, parent):
    collectors = yield
    if collectors and _needs_torch(file_path) and importlib.util.find_spec("torch") is None:
        # One stand-in per collector of the file (its test module, and its doctest module under
        # --doctest-modules): each reports the skip, without importing the file.
        return [_TorchMissing.from_parent(parent, path=file_path) for _ in collectors]
    return collectors


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """sklearn digits as a 16x16 target and reference pool (tests/helpers.py write_digits)."""
    from tests.helpers import write_digits

    return write_digits(tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="module")
def pixels():
    """N_IMAGES random grayscale SIDE x SIDE images (tests/train/data/images.py)."""
    import numpy as np

    from tests.train.data.images import N_IMAGES, SIDE

    return np.random.default_rng(7).integers(0, 256, (N_IMAGES, SIDE, SIDE), dtype=np.uint8)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory, pixels):
    """A folder of N_IMAGES grayscale PNGs; returns (root, {relative path: pixels})."""
    from tests.train.data.images import N_IMAGES, _names, _png

    root = tmp_path_factory.mktemp("folder")
    written = {}
    for name, image in zip(_names(N_IMAGES), pixels):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_png(image))
        written[name] = image
    return root, written


@pytest.fixture(scope="module")
def server(digits, tmp_path_factory):
    """One fast produce (a 2-step teacher, 20% kept) through the API, with the CLI's option names as
    keywords: ``(out folder, result)``, one a test module, which its tests may then change.
    (test_train.py has its own, with an outlier-exposure teacher that can tell digits from noise.)"""
    from plada_train import produce

    target, reference, _ = digits
    out = tmp_path_factory.mktemp("server")
    return out, produce(target, reference, str(out), teacher_steps=2, teacher_batch_size=64, image_size=16,
                        shard_size=512, score_batch_size=128, keep=0.2, device="cpu")

