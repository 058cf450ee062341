"""Shared checks that keep each test file short, and the one place a test finds the repository.

Every path a test needs outside tests/ (spec/, csrc/, scripts/, docs/...) is taken from
:data:`REPO`, never counted from the test file's own folder: test files live at different
depths (tests/codec/codecs/, tests/train/data/...).
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import plada_codec

REPO = Path(__file__).resolve().parent.parent  # the repository root (this file is tests/helpers.py)


def check_roundtrip(indices, labels, *, backend, **kwargs):
    data = plada_codec.encode(indices, labels, backend=backend, **kwargs)
    payload = plada_codec.decode(data, backend=backend)
    assert payload.indices.dtype == np.int64 and payload.labels.dtype == np.int32
    np.testing.assert_array_equal(payload.indices, np.asarray(indices, dtype=np.int64))
    np.testing.assert_array_equal(payload.labels, np.asarray(labels, dtype=np.int64))
    assert payload.n_classes == kwargs["n_classes"]
    # Deterministic: the same input and options give the same bytes.
    assert plada_codec.encode(indices, labels, backend=backend, **kwargs) == data
    return data, payload


def check_rejects_only_documented(data, *, backend, **kwargs):
    """Decoding *data* either succeeds or raises a PayloadError, nothing else."""
    try:
        return plada_codec.decode(data, backend=backend, **kwargs)
    except plada_codec.PayloadError:
        return None


# -- plada_train (tests/train/): each imports what needs torch or sklearn only when called ---------


def write_digits(folder):
    """sklearn digits upsampled to 16x16 uint8, as .npz files: a target (train
    900, test 400) and a reference pool of held-out digits plus noise images.
    Returns (target path, reference path, truth: digit or -1 per pool item)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (np.kron(d.images, np.ones((2, 2))) * (255 / 16)).astype(np.uint8)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(images))
    train, test, held = order[:900], order[900:1300], order[1300:]
    noise = rng.integers(0, 256, (400, 16, 16), dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    target, reference = folder / "target.npz", folder / "pool.npz"
    np.savez(target, x_train=images[train], y_train=d.target[train], x_test=images[test], y_test=d.target[test])
    np.savez(reference, x=np.concatenate([images[held], noise]))
    return str(target), str(reference), np.concatenate([d.target[held], np.full(400, -1)])


def write_true_payload(digits, path):
    """A payload of the first 64 digits of the pool with their true labels, for *digits*
    (what :func:`write_digits` returns)."""
    from plada_train.data import open_reference

    _, reference, truth = digits
    at = np.flatnonzero(truth >= 0)[:64]
    path.write_bytes(plada_codec.encode(at, truth[at], n_classes=10,
                                        reference=open_reference(reference).reference_set()))


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def run_python(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """``python ARGS`` in a fresh interpreter (timeout: a hang guard only)."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))  # this tree's plada_train
    return subprocess.run([sys.executable, *args], env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path},
                          capture_output=True, text=True, timeout=1800, cwd=cwd)
