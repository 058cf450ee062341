"""Tests plada_train.data.reference and its kinds (folder, tar, npz array): order, fingerprint, tar index, listings."""

import hashlib
import io
import tarfile

import numpy as np
import pytest
import torch

Image = pytest.importorskip("PIL.Image")

from torch.utils.data import DataLoader  # noqa: E402

from plada_codec import ReferenceSet  # noqa: E402
from plada_train.data import DataError, open_reference  # noqa: E402
from plada_train.preprocess import preprocess_for  # noqa: E402
from tests.train.data.images import N_IMAGES, OpenCounter, _one_line, _png  # noqa: E402


def test_folder_order_is_the_fingerprint_order(image_folder):
    root, written = image_folder
    expected = sorted(written, key=lambda name: name.encode("utf-8"))  # the spec's rule, computed here
    reference = open_reference(root)
    assert [reference.item_id(i) for i in range(len(reference))] == expected
    for i in (0, 1, 57, len(expected) - 1):
        assert np.array_equal(np.asarray(reference.raw(i)), written[expected[i]])
    digests = [hashlib.sha256((root / name).read_bytes()).hexdigest() for name in expected]
    assert reference.reference_set() == ReferenceSet.from_ids(expected, digests)


def test_tar_order_ids_and_fingerprint(tar_set):
    root, written = tar_set
    reference = open_reference(root)
    assert len(reference) == N_IMAGES
    assert [reference.item_id(i) for i in range(len(reference))] == [f"{s}/{k}" for s, k, _, _ in written]
    for i in (0, 80, 81, N_IMAGES - 1):  # across shard boundaries
        assert np.array_equal(np.asarray(reference.raw(i)), written[i][3])
    digests = []
    for shard, _key, member, _ in written:
        with tarfile.open(root / shard) as tar:
            digests.append(hashlib.sha256(tar.extractfile(member).read()).hexdigest())
    assert reference.reference_set() == ReferenceSet.from_ids([f"{s}/{k}" for s, k, _, _ in written], digests)


def test_tar_and_folder_give_the_same_inputs(image_folder, tar_set, pixels):
    folder_root, folder_written = image_folder
    tar_root, tar_written = tar_set
    folder, tars = open_reference(folder_root), open_reference(tar_root)
    where_in_folder = {folder.item_id(i): i for i in range(len(folder))}
    name_of_pixel = {written.tobytes(): name for name, written in folder_written.items()}
    for j in (0, 5, 100, 239):
        i = where_in_folder[name_of_pixel[tar_written[j][3].tobytes()]]
        x_folder, _ = folder[i]
        x_tar, index = tars[j]
        assert index == j and torch.equal(x_folder, x_tar)
        expected = torch.from_numpy(tar_written[j][3].astype(np.float32))[None] / 127.5 - 1  # by hand
        torch.testing.assert_close(x_tar, expected, rtol=0, atol=1e-6)


def test_dataloader_workers_read_the_same_items(tar_set):
    reference = open_reference(tar_set[0])
    serial = torch.cat([x for x, _ in DataLoader(reference, batch_size=64)])
    loader = DataLoader(reference, batch_size=64, num_workers=2)
    parallel = torch.zeros_like(serial)
    for x, index in loader:
        parallel[index] = x
    assert torch.equal(serial, parallel)


def test_npz_reference_is_memory_mapped_and_fingerprinted_as_an_array(tmp_path, pixels):
    np.savez(tmp_path / "plain.npz", x=pixels)
    np.savez_compressed(tmp_path / "packed.npz", x=pixels)
    np.savez(tmp_path / "float.npz", x=pixels.astype(np.float32) / 255)
    plain = open_reference(tmp_path / "plain.npz")
    assert isinstance(plain.images, np.memmap)
    import pickle

    shipped = pickle.dumps(plain)  # what a spawned DataLoader worker receives
    assert len(shipped) < pixels.nbytes // 4 and np.array_equal(pickle.loads(shipped).raw(5)[0], pixels[5])
    expected = ReferenceSet.from_array(pixels[:, None])
    for name in ("plain", "packed", "float"):
        reference = open_reference(tmp_path / f"{name}.npz")
        assert np.array_equal(reference.raw(9)[0], pixels[9])
        assert reference.reference_set() == expected


def test_hidden_files_are_not_part_of_a_folder_reference(tmp_path, pixels):
    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(_png(pixels[i]))
    (tmp_path / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    reference = open_reference(tmp_path)
    assert [reference.item_id(i) for i in range(len(reference))] == ["0.png", "1.png", "2.png"]


def test_cached_manifest_verifies_without_reading_images(image_folder, tmp_path, monkeypatch):
    root, written = image_folder
    manifest = tmp_path / "ref.manifest"
    first = open_reference(root, manifest=manifest).reference_set()  # hashes once, writes the cache
    assert first == ReferenceSet.from_folder(root)
    reference = open_reference(root, manifest=manifest)
    counter = OpenCounter(monkeypatch)
    assert reference.reference_set() == first
    assert not [p for p in counter.paths if p.endswith(".png")]


def test_tar_sample_with_two_images_is_refused(tmp_path, pixels):
    with tarfile.open(tmp_path / "bad.tar", "w") as tar:
        for name in ("k1.png", "k1.jpg"):
            data = _png(pixels[0])
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(DataError, match="two image members") as exc:
        open_reference(tmp_path / "bad.tar")
    _one_line(exc)


def test_tar_index_cache_spares_the_header_scan(tar_set, tmp_path, monkeypatch):
    import os

    root, written = tar_set
    manifest = tmp_path / "tars.manifest"
    first = open_reference(root, manifest=manifest)
    assert (tmp_path / "tars.manifest.index.npz").exists()
    monkeypatch.setattr("plada_codec.kinds.tar.list_shard", lambda *a, **k: pytest.fail("the tar headers were scanned"))
    again = open_reference(root, manifest=manifest)
    assert [again.item_id(i) for i in range(len(again))] == [first.item_id(i) for i in range(len(first))]
    assert np.array_equal(np.asarray(again.raw(100)), written[100][3])
    shard = root / "shard-001.tar"
    stat = shard.stat()
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # touched: the cache is stale
    with pytest.raises(pytest.fail.Exception, match="scanned"):
        open_reference(root, manifest=manifest)
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_tar_shards_with_one_file_name_are_refused(tar_set, tmp_path):
    import shutil

    root, _ = tar_set
    (tmp_path / "copy").mkdir()
    shutil.copy(root / "shard-000.tar", tmp_path / "copy" / "shard-000.tar")
    with pytest.raises(DataError, match="same file name"):
        open_reference([root / "shard-000.tar", tmp_path / "copy" / "shard-000.tar"])


def _count_pools(monkeypatch) -> list:
    """The max_workers of every ProcessPoolExecutor created from now on."""
    import concurrent.futures

    pools: list = []

    class CountedPool(concurrent.futures.ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            pools.append(kwargs["max_workers"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", CountedPool)
    return pools


@pytest.mark.filterwarnings("error::RuntimeWarning")  # no silent fallback to listing in-process
def test_tar_index_listed_by_worker_processes(tar_set, tmp_path, monkeypatch):
    # The worker-process path of the header scan gives the archive order written
    # by the fixture, across shard boundaries, and the same pixels.

    from plada_train.data import TarImages

    pools = _count_pools(monkeypatch)
    root, written = tar_set
    shards = sorted(str(p) for p in root.glob("*.tar"))
    empty = tmp_path / "shard-zzz-empty.tar"
    with tarfile.open(empty, "w", format=tarfile.USTAR_FORMAT):
        pass  # an empty shard is allowed in a set
    reference = TarImages(shards + [str(empty)], index_workers=2)
    assert pools == [2]
    assert [reference.item_id(i) for i in range(len(reference))] == [f"{s}/{k}" for s, k, _, _ in written]
    for i in (0, 79, 80, 161, N_IMAGES - 1):
        assert np.array_equal(np.asarray(reference.raw(i)), written[i][3])


@pytest.mark.filterwarnings("error::RuntimeWarning")  # no silent fallback to listing in-process
def test_tar_index_workers_report_a_damaged_shard_in_one_line(tar_set, tmp_path, monkeypatch):

    from plada_train.data import TarImages

    pools = _count_pools(monkeypatch)
    root, _ = tar_set
    bad = tmp_path / "shard-bad.tar"
    bad.write_bytes(b"not a tar file" * 100)
    with pytest.raises(DataError, match="shard-bad.tar.*fix the shard or leave it out") as caught:
        TarImages([str(root / "shard-000.tar"), str(bad)], index_workers=2)
    _one_line(caught)
    assert pools == [2]  # the error came back from a worker process


def test_tar_index_falls_back_to_this_process_when_workers_cannot_run(tar_set, monkeypatch):
    import concurrent.futures
    from concurrent.futures.process import BrokenProcessPool

    from plada_train.data import TarImages

    class BrokenPool(concurrent.futures.ProcessPoolExecutor):
        def map(self, *args, **kwargs):
            raise BrokenProcessPool("a child process terminated abruptly")

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", BrokenPool)
    root, written = tar_set
    with pytest.warns(RuntimeWarning, match="listing them here"):
        reference = TarImages(sorted(str(p) for p in root.glob("*.tar")), index_workers=2)
    assert [reference.item_id(i) for i in range(len(reference))] == [f"{s}/{k}" for s, k, _, _ in written]


def test_tar_index_cleans_up_when_a_worker_cannot_be_forked(tar_set, monkeypatch):
    # The second fork fails (EAGAIN): the first worker must not be left waiting for
    # work, which would block the interpreter's exit, and the index is still built.
    import errno
    import multiprocessing
    import os

    from plada_train.data import TarImages

    real_fork, calls, forked = os.fork, [], []

    def flaky_fork():
        calls.append(1)
        if len(calls) >= 2:
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid

    root, written = tar_set
    monkeypatch.setattr(os, "fork", flaky_fork)
    with pytest.warns(RuntimeWarning, match="listing them here"):
        reference = TarImages(sorted(str(p) for p in root.glob("*.tar")), index_workers=2)
    monkeypatch.undo()
    assert len(calls) == 2
    assert [reference.item_id(i) for i in range(len(reference))] == [f"{s}/{k}" for s, k, _, _ in written]
    # Only the pool's own worker counts: DataLoader workers of earlier tests may still be alive.
    assert len(forked) == 1
    assert not [p for p in multiprocessing.active_children() if p.pid in forked and p.is_alive()]
    with pytest.raises(ChildProcessError):  # reaped, not a zombie
        os.waitpid(forked[0], os.WNOHANG)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_tar_index_uses_workers_by_itself_for_large_sets(tar_set, monkeypatch):

    import plada_train.data.reference_tar as datasets

    pools = _count_pools(monkeypatch)
    monkeypatch.setattr("plada_codec.kinds.tar.listing_workers", lambda: 2)
    shards = sorted(str(p) for p in tar_set[0].glob("*.tar"))
    datasets.TarImages(shards)  # three small shards: below PARALLEL_LISTING_BYTES
    assert pools == []
    monkeypatch.setattr("plada_codec.kinds.tar.PARALLEL_LISTING_BYTES", 0)
    assert len(datasets.TarImages(shards)) == N_IMAGES
    assert pools == [2]


def _index_in_a_daemon(shards, queue):
    from plada_train.data import TarImages

    try:
        queue.put(len(TarImages(shards, index_workers=2)))
    except BaseException as exc:  # report anything, so the test shows it
        queue.put(repr(exc))


def test_tar_index_in_a_daemonic_process_lists_in_process(tar_set):
    # A DataLoader worker is daemonic and may not start children: it must list itself.
    import multiprocessing

    root, _ = tar_set
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    worker = context.Process(target=_index_in_a_daemon, args=(sorted(str(p) for p in root.glob("*.tar")), queue),
                             daemon=True)
    worker.start()
    # Hang guards only, generous for a loaded 2-core machine: the result, not the time, is tested.
    result = queue.get(timeout=1800)
    worker.join(timeout=600)
    assert result == N_IMAGES


def test_listing_workers_share_the_cpus_among_local_ranks(monkeypatch):
    import os

    from plada_codec.kinds.tar import listing_workers as _listing_workers

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert _listing_workers() == 8  # at most 8
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert _listing_workers() == 4  # 16 CPUs / 4 ranks
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert _listing_workers() == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "not-a-number")
    assert _listing_workers() == 8


def test_a_shared_folder_index_is_written_once_and_then_memory_mapped(tmp_path):
    # The first process lists the folder and writes the index; the next maps it
    # (its listing costs no heap) and reads the same ids, without walking the folder.
    from plada_train.data.reference_folder import FolderImages

    root = tmp_path / "ref"
    for i in range(30):
        path = root / f"c{i % 3}" / f"{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8), i, np.uint8)).save(path)
    index = tmp_path / "listing.npz"
    first = FolderImages(root, shared_index=index)
    assert index.is_file() and first.index_nbytes() > 0
    (root / "c0" / "999.png").write_bytes((root / "c0" / "000.png").read_bytes())  # not seen by the next one
    second = FolderImages(root, shared_index=index)
    assert [second.item_id(i) for i in range(len(second))] == [first.item_id(i) for i in range(len(first))]
    assert len(second) == 30 and second.index_nbytes() == 0
    assert second.item_id(0) == "c0/000.png" and second.item_id(29) == "c2/029.png"
    other = FolderImages(tmp_path / "ref", shared_index=tmp_path / "other.npz")
    assert len(other) == 31  # another index file: listed afresh
    index.write_bytes(b"PK not a zip")  # a listing that does not check out is a miss: listed again
    third = FolderImages(root, shared_index=index)
    assert len(third) == 31 and third.index_nbytes() > 0


def test_listing_and_target_hashing_show_bars_on_a_terminal(tmp_path, monkeypatch):
    import sys

    from plada_train.data.reference_folder import FolderImages
    from plada_train.data.targets import FolderLabelled

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for split in ("train",):
        for c in range(2):
            for i in range(3):
                path = tmp_path / "target" / split / f"class{c}" / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.full((8, 8), 10 * i + c, np.uint8)).save(path)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    refs = FolderImages(tmp_path / "target" / "train", progress=True)
    refs.reference_set(progress=True)
    target = FolderLabelled(str(tmp_path / "target" / "train"))
    digest = target.content_digest(progress=True)
    shown = terminal.getvalue()
    assert "listing" in shown and "hashing" in shown and "images/s" in shown, shown
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert target.content_digest() == digest  # the bar changes nothing


def test_every_reference_kind_takes_its_preprocess_at_construction(tmp_path):
    # As torchvision's datasets take transform=: items come out in the recipe's shape at once.
    from plada_train.data import open_reference, open_target
    from plada_train.data.reference_array import ArrayImages
    from plada_train.data.reference_folder import FolderImages

    recipe = preprocess_for(None, "smallcnn", 1, 16)
    images = np.arange(3 * 8 * 8, dtype=np.uint8).reshape(3, 8, 8)
    root = tmp_path / "ref"
    root.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image).save(root / f"{i}.png")
    np.savez(tmp_path / "ref.npz", x=images)
    np.savez(tmp_path / "target.npz", x_train=images, y_train=np.array([0, 1, 0]))
    for refs in (FolderImages(root, preprocess=recipe), ArrayImages(images, preprocess=recipe),
                 open_reference(str(root), preprocess=recipe), open_reference(str(tmp_path / "ref.npz"),
                                                                           preprocess=recipe)):
        x, index = refs[2]
        assert tuple(x.shape) == (1, 16, 16) and index == 2
    x, _ = FolderImages(root)[2]
    assert tuple(x.shape) == (1, 8, 8)  # without one: native size
    target = open_target(tmp_path / "target.npz", preprocess=recipe)
    assert tuple(target.train[0][0].shape) == (1, 16, 16)
