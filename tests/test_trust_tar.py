"""Tar shards cut short or damaged are one error naming the shard, never a shorter shard.

Python's tarfile stops silently at a header cut short, a damaged header or the
end of the file; the reference-set listing (plada_codec) and plada_train's
member index (the same lister, plada_codec.kinds.tar) check where it stopped.
"""

import io
import re
import tarfile

import pytest

import plada_codec
from plada_codec.cli import EXIT_USAGE, main

MEMBER_BYTES = 700  # data of each image: 2 blocks after its 512-byte header
SECOND_HEADER = 512 + 1024  # byte offset of member 1's header


def _six_images() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for i in range(6):
            info = tarfile.TarInfo(f"sample{i}.jpg")
            info.size = MEMBER_BYTES
            archive.addfile(info, io.BytesIO(bytes([i]) * MEMBER_BYTES))
    return out.getvalue()


DAMAGE = {
    "cut-inside-a-header": (lambda raw: raw[: SECOND_HEADER + 100], "is cut inside a member header (100 of its 512"),
    "cut-after-a-member": (lambda raw: raw[:SECOND_HEADER], "ends without the end-of-archive marker"),
    "damaged-header": (lambda raw: raw[:SECOND_HEADER] + b"\x01" * 512 + raw[SECOND_HEADER + 512 :],
                       "holds a damaged member header"),
}


@pytest.fixture
def shards(tmp_path):
    raw = _six_images()
    (tmp_path / "good.tar").write_bytes(raw)
    for name, (damage, _) in DAMAGE.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "a-good.tar").write_bytes(raw)
        (folder / "b-bad.tar").write_bytes(damage(raw))
    return tmp_path


def test_the_intact_shard_has_six_items(shards):
    assert len(plada_codec.tar_images(shards / "good.tar")) == 6
    # One end block of zeros instead of two (GNU tar accepts it with a warning): still complete.
    one_block = _six_images()[: 512 + 6 * 1536 + 512]
    (shards / "one-block.tar").write_bytes(one_block)
    assert len(plada_codec.tar_images(shards / "one-block.tar")) == 6


@pytest.mark.parametrize("name", list(DAMAGE))
def test_a_damaged_shard_is_one_error_naming_it(shards, name):
    shard = shards / name / "b-bad.tar"
    message = DAMAGE[name][1]
    expected = f"{shard}: truncated or damaged tar shard: at byte {SECOND_HEADER}, after 1 member, it {message}"
    with pytest.raises(plada_codec.ReferenceSetError, match=re.escape(expected)):
        plada_codec.tar_images(shard)
    with pytest.raises(plada_codec.ReferenceSetError, match="b-bad.tar: truncated or damaged"):
        plada_codec.ReferenceSet.from_tar_shards(shards / name)  # a folder holding the shard


@pytest.mark.parametrize("name", list(DAMAGE))
def test_ref_hash_exits_2_for_the_shard_and_for_its_folder(shards, capsys, name):
    for target in (shards / name / "b-bad.tar", shards / name):
        capsys.readouterr()
        assert main(["ref-hash", str(target)]) == EXIT_USAGE
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert out == "" and len(lines) == 1
        assert lines[0].startswith("plada ref-hash: error: ReferenceSetError: ") and "b-bad.tar: truncated" in lines[0]


@pytest.mark.parametrize("name", list(DAMAGE))
def test_the_one_tar_lister_and_training_refuse_it_too(shards, name):
    from plada_codec.kinds.tar import list_shard

    listed = list_shard(str(shards / "good.tar"))
    assert len(listed.keys) == 6 and listed.size.tolist() == [MEMBER_BYTES] * 6
    with pytest.raises(plada_codec.ReferenceSetError, match="b-bad.tar: truncated or damaged tar shard"):
        list_shard(str(shards / name / "b-bad.tar"))
    pytest.importorskip("torch")
    from plada_train.data import DataError, TarImages

    with pytest.raises(DataError, match="b-bad.tar: truncated or damaged tar shard"):
        TarImages([str(shards / name / "a-good.tar"), str(shards / name / "b-bad.tar")], index_workers=1)
