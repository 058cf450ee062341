"""Fixtures shared by the tests of plada_train.data (``pixels`` and ``image_folder`` are in
tests/train/conftest.py, as tests/train/test_preprocess.py uses them too)."""

import io
import tarfile

import numpy as np
import pytest

# _one_line's assert reports its operand as a test file's own asserts do.
pytest.register_assert_rewrite("tests.train.data.images")

from tests.train.data.images import N_IMAGES, _png  # noqa: E402


@pytest.fixture(scope="module")
def tar_set(tmp_path_factory, pixels):
    """Three shards; members written in a shuffled (non-sorted) key order with
    .cls/.json extras. Returns (folder, [(shard name, key, member, pixels)] in archive order)."""
    root = tmp_path_factory.mktemp("tars")
    rng = np.random.default_rng(3)
    order = rng.permutation(N_IMAGES)
    written = []
    for number, part in enumerate(np.array_split(order, 3)):
        shard = f"shard-{number:03d}.tar"
        with tarfile.open(root / shard, "w", format=tarfile.USTAR_FORMAT) as tar:
            for i in part:
                key = f"img{int(i):05d}"
                members = [(f"{key}.cls", str(i % 10).encode()), (f"{key}.png", _png(pixels[i])),
                           (f"{key}.json", b"{}")]
                for name, data in members:
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                written.append((shard, key, f"{key}.png", pixels[i]))
    return root, written
