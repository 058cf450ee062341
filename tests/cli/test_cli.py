import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import plada_codec
from plada_codec.cli import EXIT_INVALID, EXIT_OK, EXIT_USAGE, build_parser, main
from tests.helpers import REPO


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
    # An invalid selection is a usage error (2), not an invalid payload (1).
    assert main(["encode", str(unsorted), "-o", str(out), "--n-ref", "5", "--n-classes", "2"]) == EXIT_USAGE
    assert "sorted and distinct" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == EXIT_USAGE


def test_console_script_runs(tmp_path, selection_npz):
    out = tmp_path / "p.plada"
    result = subprocess.run([sys.executable, "-m", "plada_codec.cli", "encode", str(selection_npz), "-o", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    result = subprocess.run([sys.executable, "-m", "plada_codec.cli", "decode", str(out)],
                            capture_output=True, text=True)
    assert json.loads(result.stdout)["indices"] == [3, 17, 90]


# -- every error is one line, with the documented exit status ---------------------


def _run(argv, capsys):
    """main(argv) -> (status, stdout, stderr); a traceback would escape as an exception."""
    capsys.readouterr()
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's usage errors
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def _one_line_error(err, command):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"plada {command}: error: "), err
    return lines[0]


@functools.cache
def _blowup_payload() -> bytes:
    return _with_metadata_body(b'{"a":[' + b"{}," * 21_000_000 + b"{}]}", compressed=True)


def _with_metadata_body(body: bytes, compressed: bool = False) -> bytes:
    import zstandard

    from plada_codec import wire

    raw = wire.split(plada_codec.encode([1, 2], [0, 1], n_ref=4, n_classes=2, metadata={"a": 1}))
    (section,) = [s for s in raw.sections if s.type == 0x8003]
    section.body, section.compression, section.raw_length = body, 0, None
    if compressed:
        section.body, section.compression, section.raw_length = zstandard.compress(body, 1), 1, len(body)
    return wire.join(raw)


@pytest.mark.parametrize("command", ["decode", "verify", "inspect", "compare"])
def test_bad_payload_inputs_give_one_line_and_exit_1(tmp_path, selection_npz, capsys, command):
    good = tmp_path / "good.plada"
    assert main(["encode", str(selection_npz), "-o", str(good)]) == EXIT_OK
    garbage = tmp_path / "garbage.plada"
    garbage.write_bytes(b"PK\x03\x04 this is a zip file, not a payload" * 10)
    # A 3 GB sparse file that starts with a valid payload: refused after total_length + 1 bytes.
    huge = tmp_path / "huge.plada"
    with open(huge, "wb") as fh:
        fh.write(good.read_bytes())
        fh.truncate(3 << 30)
    inputs = {
        "/dev/zero": "FormatError|magic",
        garbage: "magic",
        huge: "TrailingDataError",
        tmp_path / "empty.plada": "Truncated",
    }
    (tmp_path / "empty.plada").write_bytes(b"")
    # Metadata the decoder must refuse, quickly: a 5,000-digit integer, 5,000-deep nesting,
    # 1e999, a lone surrogate, and 21 million empty objects (63 MB) zstd-packed into 5 KB.
    metadata_bombs = {
        "bigint.plada": (b'{"x": ' + b"9" * 5000 + b"}", False),
        "deep.plada": (b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}", False),
        "inf.plada": (b'{"x": 1e999}', False),
        "surrogate.plada": (b'{"x": "\\ud800"}', False),
        "blowup.plada": (None, True),
    }
    for name, (body, compressed) in metadata_bombs.items():
        (tmp_path / name).write_bytes(_blowup_payload() if body is None else _with_metadata_body(body, compressed))
        inputs[tmp_path / name] = "metadata"
    for path, expected in inputs.items():
        if str(path) == "/dev/zero" and not os.path.exists("/dev/zero"):
            continue
        status, _, err = _run([command, path], capsys)
        line = _one_line_error(err, command)
        assert status == EXIT_INVALID, (path, err)
        assert re.search(expected, line), (path, line)
    status, _, err = _run([command, good, "--max-total-length", "100"], capsys)
    assert status == EXIT_INVALID and "LimitExceededError" in _one_line_error(err, command)


def test_encode_input_errors_are_usage_errors_naming_the_problem(tmp_path, capsys):
    out = tmp_path / "p.plada"
    wrong_shape = tmp_path / "shape.npz"
    np.savez(wrong_shape, indices=np.array([1, 2]), labels=np.array([0, 1]), n_ref=np.array([10, 20]), n_classes=2)
    status, _, err = _run(["encode", wrong_shape, "-o", out], capsys)
    assert status == EXIT_USAGE and "'n_ref' must be a single integer" in _one_line_error(err, "encode")

    csv_path = tmp_path / "sel.csv"
    csv_path.write_text("index,label\n1,0\n")
    listed = tmp_path / "meta.json"
    listed.write_text("[1, 2]")
    status, _, err = _run(["encode", csv_path, "-o", out, "--n-ref", 5, "--n-classes", 2, "--metadata-json", listed],
                          capsys)
    assert status == EXIT_USAGE and "must hold a JSON object" in _one_line_error(err, "encode")

    status, _, err = _run(["encode", csv_path, "-o", out, "--n-ref", 5, "--n-classes", 0], capsys)
    line = _one_line_error(err, "encode")
    assert status == EXIT_USAGE and ">= 1" in line and "required" not in line

    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("index,label\n1,0\n# caf\xe9\n".encode("latin-1"))
    status, _, err = _run(["encode", latin1, "-o", out, "--n-ref", 5, "--n-classes", 2], capsys)
    line = _one_line_error(err, "encode")
    assert status == EXIT_USAGE and str(latin1) in line and "UTF-8" in line

    status, _, err = _run(["encode", csv_path, "-o", out, "--n-ref", 5, "--n-classes", 2, "--level", 99], capsys)
    assert status == EXIT_USAGE and "EncodeError" in _one_line_error(err, "encode")

    for name, content in (("trunc.npz", None), ("garbage.npz", b"PK\x03\x04garbage")):
        bad_npz = tmp_path / name
        if content is None:
            np.savez(bad_npz, indices=np.arange(50), labels=np.zeros(50, int))
            content = bad_npz.read_bytes()[:100]
        bad_npz.write_bytes(content)
        status, _, err = _run(["encode", bad_npz, "-o", out, "--n-ref", 100, "--n-classes", 2], capsys)
        assert status == EXIT_USAGE and "cannot read .npz" in _one_line_error(err, "encode")

    huge = tmp_path / "huge.csv"
    huge.write_text("index,label\n" + "9" * 30 + ",0\n")
    status, _, err = _run(["encode", huge, "-o", out, "--n-ref", 5, "--n-classes", 2], capsys)
    assert status == EXIT_USAGE and "64-bit" in _one_line_error(err, "encode")

    status, _, err = _run(["encode", csv_path, "-o", out, "--n-classes", "x"], capsys)
    assert status == EXIT_USAGE and "expected an integer" in _one_line_error(err, "encode")


def test_encode_to_stdout_and_decode_from_stdin(tmp_path, selection_npz):
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    encoded = subprocess.run([sys.executable, "-m", "plada_codec.cli", "encode", str(selection_npz), "-o", "-"],
                             capture_output=True, env=env, cwd=tmp_path)
    assert encoded.returncode == 0, encoded.stderr
    assert not (tmp_path / "-").exists()
    assert encoded.stdout[:8] == b"\x89PLADA\r\n" and b"wrote standard output" in encoded.stderr
    decoded = subprocess.run([sys.executable, "-m", "plada_codec.cli", "decode", "-"], input=encoded.stdout,
                             capture_output=True, env=env)
    assert json.loads(decoded.stdout)["indices"] == [3, 17, 90]


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        main(["decode"])
    assert info.value.code == EXIT_USAGE
    _one_line_error(capsys.readouterr().err, "decode")


def test_ref_hash_manifest_then_verify_and_decode_against_it(tmp_path, capsys):
    import hashlib

    folder = tmp_path / "ref"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.bin").write_bytes(bytes([i]))
    manifest = tmp_path / "ref.manifest"
    status, out, _ = _run(["ref-hash", folder, "--manifest-out", manifest, "--workers", 2, "--json"], capsys)
    assert status == EXIT_OK
    by_hand = b"plada-reference-manifest 1\n" + b"".join(
        f"{i}.bin\t{hashlib.sha256(bytes([i])).hexdigest()}\n".encode() for i in range(5))
    assert manifest.read_bytes() == by_hand
    assert json.loads(out) == {"n_ref": 5, "fingerprint": hashlib.sha256(by_hand).hexdigest()}
    csv_path = tmp_path / "sel.csv"
    csv_path.write_text("index,label\n0,1\n4,0\n")
    payload = tmp_path / "p.plada"
    assert _run(["encode", csv_path, "-o", payload, "--n-classes", 2, "--reference", folder,
                 "--manifest", manifest], capsys)[0] == EXIT_OK
    assert _run(["verify", payload, "--reference", folder, "--manifest", manifest], capsys)[0] == EXIT_OK
    status, out, _ = _run(["decode", payload, "--reference", folder, "--manifest", manifest], capsys)
    assert status == EXIT_OK and json.loads(out)["indices"] == [0, 4]
    # A change since the manifest: one line, exit 2, and the command that fixes it.
    (folder / "4.bin").write_bytes(b"changed")
    status, _, err = _run(["verify", payload, "--reference", folder, "--manifest", manifest], capsys)
    line = _one_line_error(err, "verify")
    assert status == EXIT_USAGE and "StaleManifestError" in line and "plada ref-hash" in line
    # --rehash reads everything again: the set now differs from the payload's.
    status, _, err = _run(["verify", payload, "--reference", folder, "--manifest", manifest, "--rehash"], capsys)
    assert status == EXIT_INVALID and "ReferenceMismatchError" in _one_line_error(err, "verify")
    assert _run(["ref-hash", folder, "--manifest", manifest], capsys)[0] == EXIT_OK
    status, _, err = _run(["verify", payload, "--manifest", manifest], capsys)
    assert status == EXIT_USAGE and "need --reference" in _one_line_error(err, "verify")
    # A folder with a file name the manifest cannot hold: one line, exit 2.
    (folder / "bad\nname.bin").write_bytes(b"")
    status, _, err = _run(["ref-hash", folder], capsys)
    assert status == EXIT_USAGE and "control character" in _one_line_error(err, "ref-hash")


def test_inspect_shows_metadata_and_bits_per_pair(tmp_path, selection_npz, capsys):
    from plada_codec import wire

    out = tmp_path / "p.plada"
    assert main(["encode", str(selection_npz), "-o", str(out), "--meta", "teacher=resnet50",
                 "--task-name", "pets"]) == EXIT_OK
    data = out.read_bytes()
    status, text, _ = _run(["inspect", out, "--json"], capsys)
    info = json.loads(text)
    assert status == EXIT_OK and info["metadata"] == {"teacher": "resnet50"} and info["task_name"] == "pets"
    assert info["bits_per_pair"] == pytest.approx(8 * len(data) / 3)
    stored = [len(s.body) for s in wire.split(data).sections]  # an independent parse of the framing
    assert [s["bits_per_pair"] for s in info["sections"]] == pytest.approx([8 * n / 3 for n in stored])
    status, table, _ = _run(["inspect", out], capsys)
    assert status == EXIT_OK and '"teacher" = "resnet50"' in table and "bits/pair" in table
    assert f"{8 * len(data) / 3:.2f} bits per (index, label) pair" in table


def test_compare_against_the_papers_layouts_and_the_limit(tmp_path, selection_npz, capsys):
    import math

    import zstandard

    out = tmp_path / "p.plada"
    assert main(["encode", str(selection_npz), "-o", str(out)]) == EXIT_OK
    status, text, _ = _run(["compare", out, "--json"], capsys)
    result = json.loads(text)
    z = zstandard.ZstdCompressor(level=19)
    delta, labels = bytes([3, 14, 73]), bytes([1, 0, 1])
    bitmap = bytes([0x10, 0, 0x40] + [0] * 8 + [0x20, 0])
    assert status == EXIT_OK and result["payload_bytes"] == out.stat().st_size
    assert result["paper_layouts_bytes"]["index-delta concatenated"] == len(z.compress(delta + labels))
    assert result["paper_layouts_bytes"]["bitmap separate"] == len(z.compress(bitmap)) + len(z.compress(labels))
    # log2 C(100, 3) + 3 * H(2/3, 1/3) = log2(161700) + 3 log2(3) - 2
    assert result["information_limit_bits"] == pytest.approx(math.log2(161700) + 3 * math.log2(3) - 2)
    status, table, _ = _run(["compare", out], capsys)
    assert status == EXIT_OK and "bitmap concatenated" in table and "information limit" in table


def test_compare_sets_pairs_against_pairs_and_names_the_ancillary_sections(tmp_path, capsys, backend):
    """Issue 17 section 4, by hand (FORMAT.md 4, 5.1, 5.6, 6.2, 7.1): gaps 3, 13, 72 take 7 bits, so the
    delta body is 1 width byte + ceil(3 * 7 / 8) = 4 bytes; 3 labels of 1 bit, 1 byte. Pairs: header 80
    + (24 + 4 + 4) + (24 + 1 + 4) = 141. Class names "cat", "dog" (codec 1, 1.2): "cat" LF "dog" = 7 bytes,
    framed 35; task name "pets", framed 32. Whole payload 141 + 67 = 208."""
    out = tmp_path / "p.plada"
    out.write_bytes(plada_codec.encode([3, 17, 90], [1, 0, 1], n_ref=100, n_classes=2, class_names=["cat", "dog"],
                                       task_name="pets", index_codec="delta", label_codec="packed",
                                       compression="none", backend=backend))
    status, text, _ = _run(["compare", out, "--json"], capsys)
    result = json.loads(text)
    assert status == EXIT_OK and result["payload_bytes"] == 208 == out.stat().st_size
    assert result["pairs_bytes"] == 141 and result["pairs_body_bytes"] == 5 and result["pairs_framing_bytes"] == 136
    assert result["pair_sections_bytes"] == {"index": 4, "labels": 1}
    assert result["ancillary_bytes"] == 67
    assert result["ancillary_sections_bytes"] == {"class-names": 35, "task-name": 32}
    layouts = result["paper_layouts_bytes"]
    assert result["pairs_over_paper_layouts"] == {name: pytest.approx(141 / size) for name, size in layouts.items()}
    assert result["compared"].startswith("pairs")
    status, table, _ = _run(["compare", out], capsys)
    rows = {line.split("  ")[1].strip(): line for line in table.splitlines() if line.startswith("  ")}
    pairs_row = next(line for name, line in rows.items() if name.startswith("this payload's pairs"))
    assert status == EXIT_OK and pairs_row.split()[-3:] == ["141.0", "376.00", "1.000"]
    concatenated = rows["paper Zstd-19, index-delta concatenated"].split()
    assert concatenated[-1] == f"{141 / layouts['index-delta concatenated']:.3f}"
    assert "pairs against pairs" in table
    assert "whole payload: 208 B = the pairs' 141 B + ancillary sections 67 B (class-names 35, task-name 32" in table


def test_compare_says_when_a_payload_is_the_pairs_alone(tmp_path, selection_npz, capsys, backend):
    out = tmp_path / "p.plada"
    out.write_bytes(plada_codec.encode([3, 17, 90], [1, 0, 1], n_ref=100, n_classes=2, backend=backend))
    status, text, _ = _run(["compare", out, "--json"], capsys)
    result = json.loads(text)
    assert status == EXIT_OK and result["pairs_bytes"] == result["payload_bytes"] and result["ancillary_bytes"] == 0
    status, table, _ = _run(["compare", out], capsys)
    assert f"whole payload: {out.stat().st_size} B, the pairs alone (no ancillary sections)" in table


def test_codec_choices_come_from_the_registry(tmp_path, selection_npz, capsys):
    from plada_codec import codecs

    @codecs.register
    class Experimental(codecs.get(codecs.SECTION_INDEX, 0).__class__):
        id = 250
        name = "experimental-test-only"

    try:
        help_text = build_parser()._subparsers._group_actions[0].choices["encode"].format_help()
        assert "experimental-test-only" in help_text
    finally:
        codecs.unregister(codecs.SECTION_INDEX, 250)
    status, _, err = _run(["encode", selection_npz, "-o", tmp_path / "p.plada", "--index-codec", "rice"], capsys)
    assert status == EXIT_USAGE and "invalid choice: 'rice'" in _one_line_error(err, "encode")


def test_ref_hash_of_tar_shards(tmp_path, capsys):
    import io
    import tarfile

    shards = tmp_path / "shards"
    shards.mkdir()
    for name, members in {"000.tar": [("s1.cls", b"7"), ("s1.jpg", b"IMG-1"), ("s2.png", b"IMG-2")],
                          "001.tar": [("x.webp", b"IMG-X"), ("x.json", b"{}")]}.items():
        with tarfile.open(shards / name, "w") as archive:
            for member, data in members:
                info = tarfile.TarInfo(member)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    # spec/REFERENCE.md section 7, vector 4 (computed with sha256sum)
    expected = "f29c1fc95f1ea3f3ca607836fb112ca5d48d6771ba518c720a094d8dfb5ce02e"
    status, out, _ = _run(["ref-hash", shards, "--json"], capsys)
    assert status == EXIT_OK and json.loads(out) == {"n_ref": 3, "fingerprint": expected}
    status, out, _ = _run(["ref-hash", shards, "--manifest-out", tmp_path / "m", "--workers", 2], capsys)
    assert status == EXIT_OK and out.startswith(expected)
    status, out, _ = _run(["ref-hash", shards, "--manifest", tmp_path / "m"], capsys)
    assert status == EXIT_OK and out.startswith(expected)


def test_fingerprint_option_accepts_either_case_and_compressed_shards_are_refused(tmp_path, capsys):
    csv_path = tmp_path / "sel.csv"
    csv_path.write_text("index,label\n1,0\n")
    out = tmp_path / "p.plada"
    fingerprint = bytes(range(32))
    assert _run(["encode", csv_path, "-o", out, "--n-ref", 5, "--n-classes", 2,
                 "--fingerprint", fingerprint.hex().upper()], capsys)[0] == EXIT_OK
    assert plada_codec.decode(out.read_bytes()).fingerprint == fingerprint
    (tmp_path / "shard.tar.gz").write_bytes(b"\x1f\x8b")
    status, _, err = _run(["ref-hash", tmp_path / "shard.tar.gz"], capsys)
    assert status == EXIT_USAGE and "uncompressed" in _one_line_error(err, "ref-hash")


def test_compare_and_inspect_an_empty_selection_and_a_huge_reference(tmp_path, capsys):
    empty = tmp_path / "empty.plada"
    empty.write_bytes(plada_codec.encode([], [], n_ref=10, n_classes=3))
    for command in ("compare", "inspect"):
        status, out, _ = _run([command, empty], capsys)
        assert status == EXIT_OK and "-" in out
    huge = tmp_path / "huge.plada"
    huge.write_bytes(plada_codec.encode([7, 2**45], [0, 1], n_ref=2**46, n_classes=2))
    status, out, _ = _run(["compare", huge], capsys)
    assert status == EXIT_OK and "not computed" in out



def test_decode_npz_writes_exactly_the_named_file(tmp_path):
    payload = tmp_path / "p.plada"
    payload.write_bytes(plada_codec.encode([2, 5], [1, 0], n_ref=8, n_classes=2))
    out = tmp_path / "selection.bin"
    assert main(["decode", str(payload), "-o", str(out), "--format", "npz"]) == EXIT_OK
    assert out.exists() and not (tmp_path / "selection.bin.npz").exists()
    with np.load(out) as data:
        assert data["indices"].tolist() == [2, 5] and data["labels"].tolist() == [1, 0]


def test_inspect_shows_the_framing_of_a_payload_whose_body_does_not_decode(tmp_path, capsys):
    # v1.1 invalid/000: the framing and CRCs are valid, the context-model stream
    # has a trailing byte (FORMAT.md 15.7 rule 1), so only the body decode fails.
    vector = (REPO / "spec" / "vectors" / "v1.1" / "invalid"
              / "000-cm-trailing-byte.bin")
    assert main(["inspect", str(vector)]) == EXIT_INVALID
    captured = capsys.readouterr()
    assert "k = 100 entries, C = 7 classes" in captured.out
    assert re.search(r"index\s+context-model\s+none", captured.out)
    assert "contents    not shown: the payload does not decode" in captured.out
    assert captured.err.startswith("plada inspect: error: PayloadFormatError")
    assert main(["inspect", str(vector), "--json"]) == EXIT_INVALID
    out = json.loads(capsys.readouterr().out)
    assert out["count"] == 100 and out["metadata"] is None and out["error"].startswith("PayloadFormatError")


def test_closed_output_pipe_exits_141_without_a_message(tmp_path):
    # `plada decode p.plada -o - | head -c 0`: the reader is gone before plada
    # writes; plada must end like a program SIGPIPE ended (128 + 13), silently.
    payload = tmp_path / "p.plada"
    payload.write_bytes(plada_codec.encode([1, 5], [0, 1], n_ref=10, n_classes=2))
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "plada_codec.cli", "decode", str(payload), "--format", "csv",
                               "-o", "-"], stdout=write_end, stderr=subprocess.PIPE, timeout=1800)  # hang guard
    finally:
        os.close(write_end)
    assert proc.returncode == 141 and proc.stderr == b""


# -- a reader that goes away, bounded inputs, strict CSV (issue 14) -------------------------


@pytest.mark.parametrize("fmt", ["json", "csv", "npz"])
def test_output_pipe_closed_after_one_byte_exits_141(tmp_path, fmt):
    """`plada decode big.plada | head -c 1`: the first write fills the pipe and comes back
    short when the reader leaves; that short write was taken as done (exit 0)."""
    payload = tmp_path / "big.plada"
    indices = np.arange(0, 600_000, 3)
    payload.write_bytes(plada_codec.encode(indices, indices % 7, n_ref=600_000, n_classes=7))
    proc = subprocess.Popen([sys.executable, "-m", "plada_codec.cli", "decode", str(payload), "--format", fmt,
                             "-o", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert len(proc.stdout.read(1)) == 1  # output is ~1 MB, far more than a pipe holds
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait() == 141 and err == b""


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_class_names_from_an_endless_file_are_refused_at_the_ancillary_limit(tmp_path, capsys):
    csv_path = tmp_path / "sel.csv"
    csv_path.write_text("index,label\n1,0\n")
    status, _, err = _run(["encode", csv_path, "-o", tmp_path / "p.plada", "--n-ref", 5, "--n-classes", 2,
                           "--class-names", "/dev/zero"], capsys)
    line = _one_line_error(err, "encode")
    assert status == EXIT_USAGE and "/dev/zero: the class-names file is over 4194304 bytes" in line
    assert not (tmp_path / "p.plada").exists()


@pytest.mark.parametrize("text, line_number, shown", [
    ("index,label\n1,0\n1_0,1\n", 3, "['1_0', '1']"),  # int() reads "1_0" as 10
    ("index,label\n1,0\n2,1,7\n", 3, "['2', '1', '7']"),  # a third column was ignored
    ("index,label\n+1,0\n", 2, "['+1', '0']"),
    ("index,label\n\u0661,0\n", 2, "['\u0661', '0']"),  # an Arabic-Indic digit one, also int()'s
    ("index,label\n1,\n", 2, "['1', '']"),
    ("index,label\n7\n", 2, "['7']"),
])
def test_csv_fields_are_strict_decimal_integers(tmp_path, capsys, text, line_number, shown):
    path = tmp_path / "sel.csv"
    path.write_text(text, encoding="utf-8")
    status, _, err = _run(["encode", path, "-o", tmp_path / "p.plada", "--n-ref", 50, "--n-classes", 2], capsys)
    line = _one_line_error(err, "encode")
    assert status == EXIT_USAGE
    assert f"{path}:{line_number}: expected two decimal integers 'index,label', got {shown}" in line


def test_csv_header_with_a_third_column_is_refused(tmp_path, capsys):
    path = tmp_path / "sel.csv"
    path.write_text("index,label,score\n1,0,0.5\n")
    status, _, err = _run(["encode", path, "-o", tmp_path / "p.plada", "--n-ref", 50, "--n-classes", 2], capsys)
    assert status == EXIT_USAGE and f"{path}:1: a CSV input starts with the header 'index,label'" in \
        _one_line_error(err, "encode")


def test_csv_with_a_byte_order_mark_reads_as_without(tmp_path, capsys):
    plain, marked = tmp_path / "plain.csv", tmp_path / "marked.csv"
    plain.write_text("index,label\n 1 , 0\n4,1\n")
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    for path in (plain, marked):
        status, _, err = _run(["encode", path, "-o", path.with_suffix(".plada"), "--n-ref", 5, "--n-classes", 2],
                              capsys)
        assert status == EXIT_OK, err
    assert marked.with_suffix(".plada").read_bytes() == plain.with_suffix(".plada").read_bytes()
    assert plada_codec.decode(plain.with_suffix(".plada").read_bytes()).indices.tolist() == [1, 4]


# -- outputs are written atomically and never through a FIFO, device or link -----------------


def _refused_targets(tmp_path):
    """A FIFO (with a reader attached, so a write through it would not block) and a link."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "link"
    link.symlink_to(victim)
    return reader, {"FIFO": fifo, "symbolic link": link}, victim


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("command", ["encode", "decode", "ref-hash"])
def test_outputs_refuse_a_target_that_is_not_a_regular_file(tmp_path, selection_npz, capsys, command):
    payload = tmp_path / "p.plada"
    payload.write_bytes(plada_codec.encode([3], [1], n_ref=100, n_classes=2))
    folder = tmp_path / "ref"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"a")
    reader, targets, victim = _refused_targets(tmp_path)
    try:
        for what, target in targets.items():
            argv = {"encode": ["encode", selection_npz, "-o", target],
                    "decode": ["decode", payload, "-o", target, "--format", "json"],
                    "ref-hash": ["ref-hash", folder, "--manifest-out", target]}[command]
            status, _, err = _run(argv, capsys)
            line = _one_line_error(err, command)
            assert status == EXIT_USAGE and f"{target}: exists and is a {what}; refusing to replace it" in line
        assert os.read(reader, 100) == b""  # nothing went into the FIFO
        assert victim.read_text() == "keep me" and targets["symbolic link"].is_symlink()
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left
    finally:
        os.close(reader)


def test_ref_hash_refuses_a_linked_cache_before_hashing(tmp_path, capsys):
    folder = tmp_path / "ref"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"a")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    manifest = tmp_path / "m.txt"
    Path(str(manifest) + ".cache").symlink_to(victim)
    status, _, err = _run(["ref-hash", folder, "--manifest-out", manifest], capsys)
    assert status == EXIT_USAGE and "m.txt.cache: exists and is a symbolic link" in _one_line_error(err, "ref-hash")
    assert not manifest.exists() and victim.read_text() == "keep me"


def test_decode_output_replaces_a_regular_file_whole(tmp_path, capsys):
    payload = tmp_path / "p.plada"
    payload.write_bytes(plada_codec.encode([3, 9], [1, 0], n_ref=100, n_classes=2))
    target = tmp_path / "out.csv"
    target.write_text("old content that is longer than the new one\n" * 100)
    status, _, err = _run(["decode", payload, "-o", target], capsys)
    assert status == EXIT_OK, err
    assert target.read_text() == "index,label\n3,1\n9,0\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "p.plada"]  # no temporary left


@pytest.mark.parametrize("command, redirect, stream", [
    ("decode -", "<&-", "input"), ("inspect -", "<&-", "input"), ("decode {payload}", ">&-", "output"),
    ("--help", ">&-", "output"),
])
def test_a_closed_standard_stream_is_one_line(tmp_path, command, redirect, stream):
    payload = tmp_path / "p.plada"
    payload.write_bytes(plada_codec.encode([1, 2], [0, 1], n_ref=4, n_classes=2))
    line = f"{sys.executable} -m plada_codec.cli {command.format(payload=payload)} {redirect}"
    result = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=600)
    assert result.returncode == EXIT_USAGE
    assert result.stderr.endswith(f"error: standard {stream} is closed\n") and result.stderr.count("\n") == 1


def test_encode_messages_name_the_cli_options(tmp_path, capsys):
    csv = tmp_path / "x.csv"
    csv.write_text("index,label\n1,0\n")
    out = str(tmp_path / "y.plada")
    assert main(["encode", str(csv), "-o", out, "--n-classes", "3"]) == EXIT_USAGE
    assert "give --n-ref N" in capsys.readouterr().err
    assert main(["encode", str(csv), "-o", out, "--n-ref", "9", "--n-classes", "3", "--fingerprint", "0" * 64]) \
        == EXIT_USAGE
    assert "all-zero --fingerprint" in capsys.readouterr().err
    assert main(["encode", str(csv), "-o", str(tmp_path / "missing" / "y.plada"), "--n-ref", "9",
                 "--n-classes", "3"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{tmp_path / 'missing' / 'y.plada'}: No such file or directory" in err and ".tmp" not in err


def test_a_byte_order_mark_is_not_part_of_the_first_class_name(tmp_path, capsys):
    csv = tmp_path / "x.csv"
    csv.write_bytes("\ufeffindex,label\n1,0\n2,2\n".encode())  # a BOM before the CSV header too
    names = tmp_path / "names.txt"
    names.write_bytes("\ufeffcat\ndog\nbird\n".encode())
    out = tmp_path / "y.plada"
    assert main(["encode", str(csv), "-o", str(out), "--n-ref", "9", "--n-classes", "3",
                 "--class-names", str(names)]) == EXIT_OK
    assert list(plada_codec.decode(out.read_bytes()).class_names) == ["cat", "dog", "bird"]


def test_options_that_cannot_apply_together_are_refused(tmp_path, capsys):
    csv = tmp_path / "x.csv"
    csv.write_text("index,label\n1,0\n")
    assert main(["encode", str(csv), "-o", str(tmp_path / "y.plada"), "--n-ref", "9", "--n-classes", "3",
                 "--compression", "none", "--level", "5"]) == EXIT_USAGE
    assert "--level sets the Zstandard level" in capsys.readouterr().err
    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / "a.png").write_bytes(b"a")
    assert main(["ref-hash", str(tmp_path / "ref"), "--rehash"]) == EXIT_USAGE
    assert "--rehash rewrites the manifest given with --manifest" in capsys.readouterr().err
