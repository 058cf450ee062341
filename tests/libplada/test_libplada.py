"""libplada (csrc/libplada/), the C decoder a client without Python links, and its command plada-c.

Expected values are the spec's: every vector's .json (FORMAT.md 12: valid content exactly, the
invalid ones' error class), the exit-status table of plada-c's protocol, and, for the
conformance kit, the reference encoder's inputs and plada_codec's outcomes. The library is built
with its one command (make) and -Wall -Wextra -Werror, and its own tests run once under
AddressSanitizer and UndefinedBehaviorSanitizer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import plada_codec
from plada_codec import _conformance
from tests.helpers import REPO

ROOT = REPO
LIBDIR = ROOT / "csrc" / "libplada"
VECTORS = ROOT / "spec" / "vectors"
CLASSES = _conformance.CLASSES
# plada-c's exit statuses (csrc/libplada/README.md): 0 ok, 10 + the class of FORMAT.md 9.1.
EXIT_STATUS = {name: 10 + i for i, name in enumerate(CLASSES)}


def _missing_tools() -> str | None:
    for tool in ("make", "cc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = subprocess.run(["cc", "-E", "-x", "c", "-"], input=b"#include <zstd.h>\n", capture_output=True)
    if probe.returncode != 0:
        return "libzstd headers are absent (apt-get install libzstd-dev; scripts/setup.sh installs them)"
    return None


_MISSING = _missing_tools()
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=f"libplada not built: {_MISSING}")


def _make(build: Path, *targets: str, **variables: str) -> subprocess.CompletedProcess:
    args = ["make", "-s", "-C", str(LIBDIR), f"BUILD={build}", "EXTRA_CFLAGS=-Werror", *targets]
    args += [f"{key}={value}" for key, value in variables.items()]
    return subprocess.run(args, capture_output=True, text=True)


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    build = tmp_path_factory.mktemp("libplada")
    done = _make(build)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", f"compiler warnings: {done.stderr}"  # -Werror makes them fail too
    return build


@pytest.fixture(scope="module")
def plada_c(build) -> Path:
    return build / "plada-c"


def _vectors(invalid: bool) -> list[Path]:
    pattern = "v1.*/invalid/*.bin" if invalid else "v1.*/*.bin"
    return sorted(VECTORS.glob(pattern))


def _vector_id(path: Path) -> str:
    return str(path.relative_to(VECTORS))


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True)  # 1 and 1.0, -0.0 and 0.0 stay apart


def test_build_makes_both_libraries_and_the_command(build):
    for name in ("libplada.a", "libplada.so.1", "libplada.so", "plada-c", "plada.pc"):
        assert (build / name).exists(), name


@pytest.mark.parametrize("path", _vectors(invalid=False), ids=_vector_id)
def test_valid_vector_decodes_exactly(plada_c, path):
    expected = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    done = subprocess.run([plada_c, "decode", path, "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    got = json.loads(done.stdout)
    assert list(got) == list(_conformance.CONTENT_KEYS)  # exactly the vector object's fields, in order
    for key in _conformance.CONTENT_KEYS:
        assert _canonical(got[key]) == _canonical(expected[key]), key


@pytest.mark.parametrize("path", _vectors(invalid=True), ids=_vector_id)
def test_invalid_vector_is_refused_with_its_class(plada_c, path):
    expected = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    case = _conformance.Case(path.stem, b"", limits=expected.get("limits", {}))
    if "reference" in expected:
        case.reference = (expected["reference"]["n_ref"], bytes.fromhex(expected["reference"]["fingerprint"]))
    done = subprocess.run([plada_c, "decode", path, "--json", *case.flags()], capture_output=True, text=True)
    assert done.returncode == EXIT_STATUS[expected["error"]], done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"plada-c: {expected['error']}: "), done.stderr


@pytest.mark.parametrize("path", _vectors(invalid=False)[::4], ids=_vector_id)
def test_inspect_matches_plada_codec(plada_c, path):
    done = subprocess.run([plada_c, "inspect", path, "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == plada_codec.inspect(path.read_bytes()).to_dict()


def test_help_lists_the_exit_statuses(plada_c):
    text = subprocess.run([plada_c, "--help"], capture_output=True, text=True, check=True).stdout
    for name, status in EXIT_STATUS.items():
        assert f"{status}  {name}" in text
    usage = subprocess.run([plada_c, "decode"], capture_output=True, text=True)
    assert usage.returncode == 2 and len(usage.stderr.splitlines()) == 1
    missing = subprocess.run([plada_c, "decode", "/nonexistent/payload.bin"], capture_output=True, text=True)
    assert missing.returncode == 3


def test_reference_binding(plada_c):
    path = VECTORS / "v1.0" / "013-bound.bin"
    fingerprint = json.loads(path.with_suffix(".json").read_text())["fingerprint"]
    ok = subprocess.run([plada_c, "decode", path, "--json", "--reference-n", "50", "--fingerprint", fingerprint],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and json.loads(ok.stdout)["indices"] == [7, 8, 30]
    wrong = subprocess.run([plada_c, "decode", path, "--reference-n", "50", "--fingerprint", "ab" * 32],
                           capture_output=True, text=True)
    assert wrong.returncode == EXIT_STATUS["ReferenceMismatch"]


def test_quick_conformance_plada_c(plada_c, tmp_path):
    """Generated and mutated payloads: plada-c gives plada_codec's outcome, class for class."""
    decoder = _conformance.make_decoder(f"{plada_c} decode --json {{}}")
    cases = _conformance.iter_cases(vectors=VECTORS, generated=60, mutated=400, seed=7)
    report = _conformance.run(decoder, cases, repro_dir=tmp_path, workers=2, exact_classes=True)
    assert report.counts == {"vector": len(_vectors(False)) + len(_vectors(True)), "generated": 60, "mutated": 400}
    assert len(report.outcomes) >= 5  # decoded and several error classes were exercised
    assert report.disagreements == [], [(d.case.name, d.case.expected, d.got, d.stderr) for d in report.disagreements]


def test_quick_conformance_educational(tmp_path):
    decoder = _conformance.make_decoder("educational")
    cases = _conformance.iter_cases(vectors=VECTORS, generated=30, mutated=200, seed=8)
    report = _conformance.run(decoder, cases, repro_dir=tmp_path)
    assert report.disagreements == [], [(d.case.name, d.case.expected, d.got) for d in report.disagreements]


def test_kit_reports_a_disagreement(plada_c, tmp_path):
    """A decoder that refuses every format 1.1 payload is caught, with a repro written."""
    script = tmp_path / "picky.sh"
    script.write_text('#!/bin/sh\nminor=$(od -An -tu1 -j9 -N1 "$1" | tr -d " ")\n'
                      'if [ "$minor" = 1 ]; then echo "picky: no 1.1" >&2; exit 15; fi\n'
                      f'exec {plada_c} decode --json "$@"\n')
    script.chmod(0o755)
    decoder = _conformance.make_decoder(f"{script} {{}}")
    cases = [c for c in _conformance.vector_cases(VECTORS) if c.name.startswith(("vector v1.1/00", "vector v1.0/00"))]
    report = _conformance.run(decoder, iter(cases), repro_dir=tmp_path / "repro")
    assert len(report.disagreements) == len([c for c in cases if "v1.1" in c.name]) > 0
    written = json.loads((tmp_path / "repro" / "disagreement-0000.json").read_text())
    assert written["got"] == "UnsupportedFeature" and isinstance(written["expected"], dict)
    assert (tmp_path / "repro" / "disagreement-0000.bin").read_bytes()[9] == 1


def test_write_corpus(tmp_path):
    cases = _conformance.iter_cases(vectors=None, generated=20, mutated=30, seed=3)
    assert _conformance.write_corpus(cases, tmp_path) == 50
    pairs = sorted(tmp_path.glob("*.bin"))
    assert len(pairs) == 50 and all(p.with_suffix(".json").is_file() for p in pairs)
    for path in pairs[:20]:  # the generated ones decode to their JSON
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        if "error" not in meta and "reference" not in meta and "limits" not in meta:
            assert _canonical(plada_codec.decode(path.read_bytes()).to_dict()) == _canonical(
                {key: meta[key] for key in _conformance.CONTENT_KEYS})


def test_library_tests_under_sanitizers(tmp_path):
    """test_plada (every vector, every prefix and byte change of the small ones, the API's
    contract) built with -fsanitize=address,undefined: any finding fails the run."""
    env_ok = subprocess.run(["cc", "-fsanitize=address,undefined", "-x", "c", "-", "-o", str(tmp_path / "probe")],
                            input=b"int main(void){return 0;}\n", capture_output=True)
    if env_ok.returncode != 0:
        pytest.skip("the C compiler has no ASan/UBSan runtime")
    # PLADA_NO_HW_CRC: the portable CRC32C table path, which x86 builds otherwise skip for SSE4.2's.
    done = _make(tmp_path / "san", "check", SANITIZE="1", EXTRA_CFLAGS="-Werror -DPLADA_NO_HW_CRC")
    assert done.returncode == 0, done.stdout + done.stderr
    assert ", 0 failures" in done.stdout


def test_install_and_the_cpp_example(build, tmp_path):
    prefix = tmp_path / "prefix"
    done = _make(build, "install", PREFIX=str(prefix))
    assert done.returncode == 0, done.stderr
    for name in ("include/plada.h", "lib/libplada.a", "lib/libplada.so.1", "lib/pkgconfig/plada.pc", "bin/plada-c"):
        assert (prefix / name).exists(), name
    if shutil.which("c++") is None or shutil.which("pkg-config") is None:
        pytest.skip("no C++ compiler or pkg-config for the example")
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "plada"], env=env, capture_output=True, text=True,
                           check=True).stdout.split()
    program = tmp_path / "read_payload"
    subprocess.run(["c++", "-std=c++17", "-Wall", "-Wextra", "-Werror", str(ROOT / "examples" / "read_payload.cpp"),
                    *flags, "-o", str(program)], check=True)
    env["LD_LIBRARY_PATH"] = str(prefix / "lib")
    vector = VECTORS / "v1.0" / "013-bound.bin"
    fingerprint = json.loads(vector.with_suffix(".json").read_text())["fingerprint"]
    ok = subprocess.run([program, vector, "50", fingerprint], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert [line.split("\t")[:2] for line in ok.stdout.splitlines()] == [["7", "1"], ["8", "1"], ["30", "0"]]
    refused = subprocess.run([program, vector, "51", fingerprint], env=env, capture_output=True, text=True)
    assert refused.returncode == 1 and refused.stderr.startswith("ReferenceMismatch:")


def _payload(n_ref: int, count: int, n_classes: int, sections: list[tuple[int, int, int, int, bytes]]) -> bytes:
    """A payload written from FORMAT.md 4 and 5.1 by hand: (type, codec, compression, raw_length, body)."""
    import struct

    import crc32c

    total = 80 + sum(24 + len(body) + 4 for *_, body in sections)
    header = struct.pack("<8sBBHIQQ32sQHH", b"\x89PLADA\r\n", 1, 0, 0, n_classes, n_ref, count, bytes(32), total,
                         len(sections), 0)
    out = header + struct.pack("<I", crc32c.crc32c(header))
    for stype, codec, compression, raw_length, body in sections:
        framed = struct.pack("<HBBIQQ", stype, codec, compression, 0, raw_length, len(body)) + body
        out += framed + struct.pack("<I", crc32c.crc32c(framed))
    return out


def test_a_bad_first_label_costs_one_step_not_the_declared_count(plada_c, tmp_path):
    """FORMAT.md 13: k = 2^24 declared in a few hundred bytes of Zstandard, label 0 out of range.
    Allocating the declared output (192 MiB) would fail under a 96 MiB address-space limit; the
    decoder holds one step of 65,536 entries, so it reports the FormatError instead."""
    import resource

    import zstandard

    k = 1 << 24
    widths = bytes(k // 128)  # every gap 0: indices 0 .. k-1
    labels = b"\x03" + bytes(k * 2 // 8 - 1)  # C = 3, 2 bits a label: label 0 is 3
    zstd = zstandard.ZstdCompressor(level=3)
    data = _payload(k, k, 3, [(1, 0, 1, len(widths), zstd.compress(widths)),
                              (2, 0, 1, len(labels), zstd.compress(labels))])
    assert len(data) < 2000
    path = tmp_path / "bomb.bin"
    path.write_bytes(data)

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (96 << 20, 96 << 20))

    done = subprocess.run([plada_c, "decode", path], capture_output=True, text=True, preexec_fn=limit_memory)
    assert done.returncode == EXIT_STATUS["FormatError"], done.stderr
    assert "entry 0: label 3 >= n_classes = 3" in done.stderr
    with pytest.raises(plada_codec.PayloadFormatError):
        plada_codec.decode(data)  # the reference decoder agrees on the class
