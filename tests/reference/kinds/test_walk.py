"""The compact folder walk (plada_codec.kinds._walk) behind every folder listing (issue 15):
canonical order without a global sort, packed arrays, memory per item bounded."""

from __future__ import annotations

import io
import os
import sys
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import plada_codec
from plada_codec.kinds._walk import walk_folder

# Names that order differently as path strings than folder by folder: "/" is 0x2F,
# "." 0x2E and "-" 0x2D sort before it, "0" and letters after it; non-ASCII last.
TRICKY = ["a", "a.txt", "a-b", "a0", "a b", "b", "Z", "é", "日本", "a.b.c"]


def _make(root, paths):
    for path in paths:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.encode())


@settings(max_examples=40, deadline=None)
@given(st.sets(st.lists(st.sampled_from(TRICKY), min_size=1, max_size=3).map("/".join), min_size=1, max_size=12))
def test_walk_order_is_the_byte_order_of_the_paths(tmp_path_factory, paths):
    # A path cannot be both a file and a folder: keep only the leaves.
    leaves = {p for p in paths if not any(q.startswith(p + "/") for q in paths)}
    root = tmp_path_factory.mktemp("walk")
    _make(root, leaves)
    walk = walk_folder(root)
    assert list(walk.names) == sorted(leaves, key=lambda p: p.encode("utf-8"))  # the spec's rule, stated directly
    assert walk.size.tolist() == [len(p.encode()) for p in list(walk.names)]
    assert walk.skipped == 0


def test_walk_skips_hidden_links_and_special_files_and_counts_refused(tmp_path):
    _make(tmp_path, ["a/x.jpg", "a/notes.txt", ".hidden/y.jpg", "a/.z.jpg", "b.png"])
    os.symlink(tmp_path / "b.png", tmp_path / "link.png")
    os.mkfifo(tmp_path / "pipe.png")
    walk = walk_folder(tmp_path, keep=lambda name: not name.endswith(".txt"))
    assert list(walk.names) == ["a/x.jpg", "b.png"]
    assert walk.skipped == 1
    assert list(walk_folder(tmp_path).names) == ["a/notes.txt", "a/x.jpg", "b.png"]


def test_walk_reports_progress_in_files(tmp_path):
    _make(tmp_path, [f"d{i}/f{j}.png" for i in range(3) for j in range(4)])
    seen = []
    walk_folder(tmp_path, progress=seen.append)
    assert seen[-1] == 12 and seen == sorted(seen)


def test_walk_memory_per_item_is_bounded(tmp_path):
    # 20,000 files with ImageNet-like 30-byte paths: the walk holds the packed path
    # bytes plus 24 bytes an item (offset, size, mtime) and one folder's entries.
    n_dirs, per_dir = 100, 200
    for d in range(n_dirs):
        folder = tmp_path / f"n{d:08d}"
        folder.mkdir()
        for f in range(per_dir):
            (folder / f"n{d:08d}_{f:05d}.JPEG").touch()
    tracemalloc.start()
    try:
        walk = walk_folder(tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    n = n_dirs * per_dir
    assert len(walk.names) == n and len(walk.names.blob) == 30 * n
    # 54 bytes an item of results, a few more of the growing buffers' slack, and one folder's
    # entries (a DirEntry with its cached stat, about 1 KB each): a per-item Python object
    # (a tuple of id, path, size and mtime is 250 bytes or more) would break the bound.
    assert peak < 64 * n + 1024 * per_dir + (64 << 10), peak / n


def test_folder_manifest_cache_is_checked_without_the_rows_in_memory(tmp_path):
    # The check streams the cache: a change deep in a large set is found and named.
    root = tmp_path / "ref"
    _make(root, [f"c{i:03d}/img{j:03d}.png" for i in range(20) for j in range(50)])
    manifest = tmp_path / "ref.manifest"
    plada_codec.ReferenceSet.record(root, manifest, content=False)
    assert plada_codec.ReferenceSet.open(root, manifest=manifest).n_ref == 1000
    (root / "c019" / "img049.png").write_bytes(b"longer than before")
    with pytest.raises(plada_codec.StaleManifestError, match=r"'c019/img049.png' is 18 bytes, was 15"):
        plada_codec.ReferenceSet.open(root, manifest=manifest)
    (root / "c000" / "img000.png").unlink()
    (root / "c010" / "extra.png").write_bytes(b"x")
    with pytest.raises(plada_codec.StaleManifestError,
                       match=r"file 'c010/extra.png' was added \(and 1 more changes\)"):
        plada_codec.ReferenceSet.open(root, manifest=manifest)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_listing_and_hashing_show_bars_on_a_terminal_only(tmp_path, monkeypatch):
    _make(tmp_path / "ref", [f"c{i}/img{j}.png" for i in range(3) for j in range(5)])
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    ref = plada_codec.ReferenceSet.from_folder(tmp_path / "ref", progress=True)
    shown = terminal.getvalue()
    assert "listing" in shown and "files/s" in shown and "hashing" in shown and "B/s" in shown, shown
    assert ref == plada_codec.ReferenceSet.from_folder(tmp_path / "ref")  # bars change nothing
    piped = io.StringIO()  # not a terminal: tqdm stays silent
    monkeypatch.setattr(sys, "stderr", piped)
    plada_codec.ReferenceSet.from_folder(tmp_path / "ref", progress=True)
    assert piped.getvalue() == ""
