"""The scoring data path (issue 15): uint8 items from the workers, normalised per
batch on the device with the numbers of the float items; one DataLoader for all
of a rank's shards; a progress bar in images that resumes at its true position."""

import io
import tarfile

import numpy as np
import pytest
import torch

from plada_train import scoring
from plada_train.data import open_reference, uint8_view
from plada_train.distributed import Context
from plada_train.preprocess import Preprocess

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
TIMM = Preprocess("timm", "test", 3, (24, 24), resize=True, mean=MEAN, std=STD, interpolation="bicubic",
                  crop_pct=0.875)
N = 37


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    """N RGB JPEGs of mixed sizes as a folder and as two tar shards (the same images)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("jpegs")
    folder, shards = root / "folder", root / "tar"
    folder.mkdir()
    shards.mkdir()
    rng = np.random.default_rng(3)
    blobs = []
    for i in range(N):
        h, w = (int(v) for v in rng.integers(30, 50, 2))
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
        (folder / f"{i:03d}.jpg").write_bytes(buf.getvalue())
        blobs.append((f"{i:03d}.jpg", buf.getvalue()))
    for s, part in enumerate((blobs[:20], blobs[20:])):
        with tarfile.open(shards / f"s{s}.tar", "w") as tar:
            for name, data in part:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return folder, shards


def test_normalize_matches_a_hand_written_reference_and_the_float_path():
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (4, 3, 5, 6), dtype=np.uint8))
    want = (x.numpy().astype(np.float64) / 255 - np.array(MEAN)[:, None, None]) / np.array(STD)[:, None, None]
    got = TIMM.normalize(x)
    assert got.dtype == torch.float32 and got.shape == x.shape
    np.testing.assert_allclose(got.numpy(), want, rtol=2e-6, atol=2e-6)  # float32 rounding
    small = Preprocess("smallcnn", "smallcnn", 3, mean=(0.5,) * 3, std=(0.5,) * 3)
    np.testing.assert_allclose(small.normalize(x).numpy(), x.numpy() / 255 * 2 - 1, rtol=0, atol=2e-7)
    floats = small.normalize(x)
    assert TIMM.normalize(floats) is floats  # already float: unchanged
    out = torch.empty(x.shape)
    assert TIMM.normalize(x, out).data_ptr() == out.data_ptr() and torch.equal(out, got)


@pytest.mark.parametrize("pre", [TIMM, Preprocess("smallcnn", "smallcnn", 3, (20, 20), resize=True,
                                                   mean=(0.5,) * 3, std=(0.5,) * 3, interpolation="bicubic")],
                         ids=["timm", "smallcnn"])
def test_uint8_items_normalised_per_batch_equal_the_float_items_bit_for_bit(jpegs, pre):
    refs = open_reference(str(jpegs[0]))
    refs.set_preprocess(pre)
    view, normalise = uint8_view(refs)
    assert view is not refs and normalise is not None
    items = [view[i] for i in range(5)]
    assert all(x.dtype == torch.uint8 and x.shape == (3, *pre.input_size) and i == j
               for j, (x, i) in enumerate(items))
    batch = normalise(torch.stack([x for x, _ in items]))
    floats = torch.stack([refs[i][0] for i in range(5)])  # the reference set itself still gives floats
    assert floats.dtype == torch.float32 and torch.equal(batch, floats)


def test_a_data_set_without_a_preprocess_transform_passes_through():
    data = torch.utils.data.TensorDataset(torch.zeros(3, 1, 2, 2), torch.arange(3))
    assert uint8_view(data) == (data, None)


@pytest.mark.parametrize("storage", ["folder", "tar"])
def test_iter_inputs_same_numbers_for_0_and_2_workers_and_as_the_float_items(jpegs, storage):
    refs = open_reference(str(jpegs[0] if storage == "folder" else jpegs[1]))
    refs.set_preprocess(TIMM)
    shards = [(0, 16), (16, 32), (32, N)]
    runs = {}
    for workers in (0, 2):
        # on CPU a batch's inputs live in a reused buffer until the next batch: copy them
        got = [(n, x.clone(), i) for n, x, i in scoring.iter_inputs(refs, shards, batch_size=6, workers=workers)]
        assert [n for n, _, _ in got] == [0, 0, 0, 1, 1, 1, 2]  # batches start at each shard's first item
        assert [int(i[0]) for _, _, i in got] == [0, 6, 12, 16, 22, 28, 32]
        runs[workers] = torch.cat([x for _, x, _ in got])
    assert torch.equal(runs[0], runs[2])
    assert torch.equal(runs[0], torch.stack([refs[i][0] for i in range(N)]))


def test_one_data_loader_serves_every_shard(jpegs, monkeypatch):
    made = []

    class Counting(scoring.DataLoader):
        def __init__(self, *args, **kwargs):
            made.append(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(scoring, "DataLoader", Counting)
    refs = open_reference(str(jpegs[1]))
    refs.set_preprocess(TIMM)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(4))
    scores = scoring.score_reference(model, refs, Context(), batch_size=8, shard_size=10, workers=1)
    assert len(scores.labels) == N and len(made) == 1  # 4 shards, workers forked once


class _Bar:
    made = []

    def __init__(self, *args, **kwargs):
        self.kwargs, self.n = kwargs, kwargs.get("initial", 0)
        _Bar.made.append(self)

    def update(self, k):
        self.n += k

    def close(self):
        pass


def test_the_bar_counts_images_and_a_resumed_run_starts_where_it_stopped(jpegs, tmp_path, monkeypatch):
    import tqdm.auto

    monkeypatch.setattr(tqdm.auto, "tqdm", _Bar)
    refs = open_reference(str(jpegs[0]))
    refs.set_preprocess(TIMM)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 24 * 24, 4))
    parts = tmp_path / "parts"
    monkeypatch.setenv("PLADA_TRAIN_FAIL_AFTER", "shards:2")
    with pytest.raises(SystemExit):
        scoring.score_reference(model, refs, Context(), batch_size=4, shard_size=10, parts_dir=parts,
                                progress=True)
    first = _Bar.made[-1]
    assert first.kwargs["total"] == N and first.kwargs["initial"] == 0 and first.n == 20
    assert first.kwargs["unit"] == "img" and first.kwargs["disable"] is None  # None: off when not a TTY
    monkeypatch.delenv("PLADA_TRAIN_FAIL_AFTER")
    resumed = scoring.score_reference(model, refs, Context(), batch_size=4, shard_size=10, parts_dir=parts,
                                      progress=True)
    bar = _Bar.made[-1]
    assert bar.kwargs["total"] == N and bar.kwargs["initial"] == 20 and bar.n == N
    whole = scoring.score_reference(model, refs, Context(), batch_size=4, shard_size=10)
    assert resumed.energy.tobytes() == whole.energy.tobytes()
    assert _Bar.made[-1].kwargs["disable"] is True  # progress=False (--quiet): no bar at all


def test_training_and_evaluation_batches_travel_as_uint8_and_match_the_float_items(jpegs, monkeypatch):
    from plada_train import train as engine
    from plada_train.data import LabelledSubset

    seen = []

    class Spying(engine.DataLoader):
        def __iter__(self):
            for x, y in super().__iter__():
                seen.append(x.dtype)
                yield x, y

    monkeypatch.setattr(engine, "DataLoader", Spying)
    refs = open_reference(str(jpegs[1]))
    subset = LabelledSubset(refs, [3, 30, 7, 21, 0], [1, 0, 1, 2, 0]).set_preprocess(TIMM)
    batches = list(engine._loader(subset, 2, [0, 1, 2, 3, 4], 0, torch.device("cpu")))
    assert seen == [torch.uint8] * 3
    x = torch.cat([b for b, _ in batches])
    assert x.dtype == torch.float32 and torch.equal(x, torch.stack([subset[j][0] for j in range(5)]))
    assert torch.cat([y for _, y in batches]).tolist() == [1, 0, 1, 2, 0]
