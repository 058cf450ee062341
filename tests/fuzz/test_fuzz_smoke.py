"""The fuzzers in fuzz/ work: the mutator gets past the CRCs, the oracle
flags what it claims to flag, and each harness runs a short fixed campaign
clean (atheris on each backend, libFuzzer on the C kernels).

The harness runs skip only where their tool is not installed (atheris,
clang with libFuzzer); see fuzz/README.md for long campaigns.
"""

from __future__ import annotations

import collections
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys

import pytest

import plada_codec
from tests.helpers import REPO

FUZZ = REPO / "fuzz"
sys.path.insert(0, str(FUZZ))
sys.path.insert(0, str(REPO / "spec"))

import decode_oracle  # noqa: E402
import educational_decoder  # noqa: E402  (its own CRC32C, written from the spec)
import payload_mutator  # noqa: E402

from tests.conftest import BACKENDS  # noqa: E402  (PLADA_BACKEND=python runs the numpy path alone)

VECTORS = sorted((REPO / "spec" / "vectors").glob("v1.*/*.bin"))


def _seeds() -> list[bytes]:
    return [path.read_bytes() for path in VECTORS]


def _crcs_hold(data: bytes) -> bool:
    """Header and section CRC32Cs as spec/FORMAT.md 4 and 5.1 define them,
    checked with the spec decoder's own CRC (not the mutator's)."""
    crc = educational_decoder.crc32c
    if len(data) < 80 or crc(data[:76]) != struct.unpack_from("<I", data, 76)[0]:
        return False
    (n_sections,) = struct.unpack_from("<H", data, 72)
    offset = 80
    for _ in range(n_sections):
        if offset + 24 > len(data):
            return False
        (stored,) = struct.unpack_from("<Q", data, offset + 16)
        end = offset + 24 + stored
        if end + 4 > len(data) or crc(data[offset:end]) != struct.unpack_from("<I", data, end)[0]:
            return False
        offset = end + 4
    return offset == len(data) == struct.unpack_from("<Q", data, 64)[0]


def test_repair_recomputes_every_crc_and_the_total_length():
    data = bytearray((REPO / "spec/vectors/v1.0/002-small-delta.bin").read_bytes())
    data[80 + 24] ^= 0x01  # first byte of the index body
    data[20] ^= 0x01  # n_ref
    assert not _crcs_hold(bytes(data))
    fixed = payload_mutator.repair(bytes(data))
    assert _crcs_hold(fixed)
    assert fixed[:76] == bytes(data[:76])  # only CRC fields changed
    assert fixed[80:104] == bytes(data[80:104])


def test_mutations_reach_past_the_checksums():
    """Most structure-aware mutants keep valid CRCs, so the decoder's later
    checks run; plain byte flips mostly die at the CRC (the contrast shows the
    repair is what gets them through)."""
    rng = random.Random(7)
    seeds = _seeds()
    outcomes = collections.Counter()
    crc_ok = 0
    for number in range(400):
        mutant = payload_mutator.mutate(rng.choice(seeds), 65536, number, None, plada_codec.encode,
                                        bombs=False)
        crc_ok += _crcs_hold(mutant)
        try:
            plada_codec.decode(mutant, max_count=1 << 20, max_section_bytes=1 << 24)
            outcomes["ok"] += 1
        except plada_codec.PayloadError as exc:  # anything else fails the test: one exception tree
            outcomes[type(exc).__name__] += 1
    assert crc_ok >= 0.85 * 400
    assert outcomes["ChecksumError"] <= 0.1 * 400
    # past the CRC: body-level rejections and successful decodes both occur
    assert outcomes["PayloadFormatError"] >= 40 and outcomes["ok"] >= 20
    assert outcomes["UnsupportedFeatureError"] >= 5

    flipped = 0
    for _ in range(200):
        data = bytearray(rng.choice(seeds))
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        try:
            plada_codec.inspect(bytes(data))
        except plada_codec.ChecksumError:
            flipped += 1
        except plada_codec.PayloadError:
            pass
    assert flipped >= 0.6 * 200


def test_compression_bombs_declare_much_more_than_they_store():
    seeds = _seeds()
    for number in range(5):
        model = payload_mutator.parse(seeds[number])
        payload_mutator.compression_bomb(model, random.Random(number))
        data = payload_mutator.serialize(model)
        info = plada_codec.inspect(data)  # framing and CRCs valid
        declared = sum(s.raw_length for s in info.sections)
        assert declared >= 1 << 16 and len(data) * 50 < declared


def test_crossover_splices_sections_behind_valid_crcs():
    seeds = _seeds()
    spliced = [payload_mutator.crossover(seeds[2], seeds[9], 65536, s) for s in range(50)]
    assert sum(_crcs_hold(d) for d in spliced) == 50
    assert len(set(spliced)) > 10


def test_oracle_passes_every_vector_on_every_backend():
    for path in VECTORS:
        assert decode_oracle.check(path.read_bytes(), tuple(BACKENDS), spec=True) == "ok"


def test_oracle_flags_an_error_that_is_not_a_payload_error(monkeypatch):
    def broken(data, **kwargs):
        raise ValueError("Exceeds the limit (4300 digits) for integer string conversion")

    monkeypatch.setattr(plada_codec, "decode", broken)
    with pytest.raises(ValueError, match="4300"):
        decode_oracle.check(VECTORS[2].read_bytes())


@pytest.mark.parametrize(
    "change, kind",
    [
        (lambda p: {"indices": p.indices[::-1].copy()}, "index-order"),
        (lambda p: {"indices": p.indices + p.n_ref}, "index-range"),
        (lambda p: {"labels": p.labels + p.n_classes}, "label-range"),
        (lambda p: {"labels": p.labels[:-1]}, "count-mismatch"),
        (lambda p: {"metadata": {"a": float("inf")}}, "metadata-non-finite"),
        (lambda p: {"metadata": {"a": "\ud800"}}, "text-not-utf8"),
        (lambda p: {"class_names": ("x",)}, "class-names"),
    ],
)
def test_oracle_flags_output_that_breaks_the_format(monkeypatch, change, kind):
    data = (REPO / "spec/vectors/v1.0/002-small-delta.bin").read_bytes()
    real = plada_codec.decode(data)
    fields = {name: getattr(real, name) for name in
              ("indices", "labels", "n_ref", "n_classes", "fingerprint", "class_names",
               "task_name", "metadata", "version")}
    fields.update(change(real))
    monkeypatch.setattr(plada_codec, "decode", lambda d, **kw: plada_codec.Payload(**fields))
    with pytest.raises(decode_oracle.Finding) as caught:
        decode_oracle.check(data)
    assert caught.value.kind == kind


def test_oracle_flags_backends_that_disagree(monkeypatch):
    data = (REPO / "spec/vectors/v1.0/002-small-delta.bin").read_bytes()
    real_decode = plada_codec.decode

    def skewed(d, *, backend="auto", **kw):
        payload = real_decode(d, backend=backend, **kw)
        if backend == "python":
            raise plada_codec.PayloadFormatError("python says no")
        return payload

    monkeypatch.setattr(plada_codec, "decode", skewed)
    monkeypatch.setattr(plada_codec, "verify",
                        lambda d, **kw: (skewed(d, **kw), plada_codec.inspect(d))[1])
    with pytest.raises(decode_oracle.Finding) as caught:
        decode_oracle.check(data, ("auto", "python"))
    assert caught.value.kind == "backends-disagree"


# -- the harnesses, a few seconds each ---------------------------------------------
# Each run is bounded by its work, never by a short wall clock (a busy machine
# stretches wall time, not work): a fixed number of executions (-runs=N) and a
# CPU-time limit on the child (RLIMIT_CPU). The wall-clock guard is only there
# to stop a hung child, far above any run on a loaded machine.

CPU_SECONDS = 900  # per child process; the smoke runs take a few CPU seconds each
HANG_GUARD_S = 1800
# Per-input limit inside libFuzzer/atheris (wall clock there): as large as the guard.
PER_INPUT = f"-timeout={HANG_GUARD_S}"


def _limit_cpu(seconds: int):
    def apply() -> None:
        import resource

        # soft limit: SIGXCPU; hard limit a little later: SIGKILL
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 5))

    return apply


def _run(cmd: list[str], cpu_seconds: int = CPU_SECONDS, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=HANG_GUARD_S,
        preexec_fn=_limit_cpu(cpu_seconds), env={**os.environ, "PYTHONHASHSEED": "0", **env},
    )


def test_runs_are_bounded_by_cpu_time_not_wall_time():
    """A child that computes past its CPU limit is stopped; one that only
    waits (as on a busy machine, where it gets little CPU) is not."""
    spin = ("import time\nwhile time.process_time() < 4: pass\nprint('unbounded')")
    spun = _run([sys.executable, "-c", spin], cpu_seconds=1)
    assert spun.returncode in (-signal.SIGXCPU, -signal.SIGKILL), (spun.returncode, spun.stdout)
    waited = _run([sys.executable, "-c", "import time; time.sleep(2.5); print('done')"], cpu_seconds=1)
    assert waited.returncode == 0 and waited.stdout.strip() == "done"


@pytest.mark.parametrize("backend", BACKENDS)
def test_atheris_harness_smoke(tmp_path, backend):
    pytest.importorskip("atheris")
    runs = 600
    result = _run([sys.executable, str(FUZZ / "fuzz_decode.py"), f"--backend={backend}",
                   "--spec-oracle", f"-runs={runs}", "-seed=1", PER_INPUT,
                   f"-artifact_prefix={tmp_path}/", str(tmp_path / "corpus")])
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"^Done \d+ runs", result.stderr, re.M), result.stderr[-3000:]
    assert "Instrumenting plada_codec._format" in result.stderr or "Instrumenting plada_codec" in result.stderr
    grown = len(list((tmp_path / "corpus").iterdir()))
    assert grown > len(VECTORS)  # the mutator found new coverage beyond the seeds


@pytest.fixture(scope="module")
def kernel_fuzzer(tmp_path_factory):
    if shutil.which(os.environ.get("CC", "clang")) is None:
        pytest.skip("clang is not installed (Debian: apt-get install -y clang)")
    out = tmp_path_factory.mktemp("libfuzzer")
    build = _run(["bash", str(FUZZ / "build_libfuzzer.sh")], OUT=str(out))
    if build.returncode == 2:
        pytest.skip(build.stderr.strip())
    assert build.returncode == 0, build.stderr[-3000:]
    return out


@pytest.mark.parametrize("harness, runs", [("kernels", 8000), ("range", 1500)])
def test_libfuzzer_harness_smoke(kernel_fuzzer, tmp_path, harness, runs):
    binary = kernel_fuzzer / f"fuzz_{harness}"
    if not binary.exists():  # fuzz_range is built only where csrc/plada_cm.c exists
        assert harness == "range" and not (REPO / "csrc" / "plada_cm.c").exists()
        pytest.skip("no format 1.1 range decoder in csrc/")
    seeds = tmp_path / "seeds"
    made = _run([sys.executable, str(FUZZ / "make_kernel_seeds.py"), harness, str(seeds)])
    assert made.returncode == 0, made.stderr
    assert len(list(seeds.iterdir())) >= 10
    result = _run([str(binary), f"-runs={runs}", "-seed=1", PER_INPUT, f"-artifact_prefix={tmp_path}/",
                   str(seeds)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"^Done \d+ runs", result.stderr, re.M), result.stderr[-3000:]


def test_cm_twin_fuzzer_smoke(tmp_path):
    pytest.importorskip("atheris")
    if not (REPO / "plada_codec" / "_cm_py.py").exists() or "c" not in BACKENDS:
        pytest.skip("needs the format 1.1 codec with its C twin")
    seeds = tmp_path / "corpus"
    made = _run([sys.executable, str(FUZZ / "make_kernel_seeds.py"), "cm", str(seeds)])
    assert made.returncode == 0, made.stderr
    runs = 150
    result = _run([sys.executable, str(FUZZ / "fuzz_cm.py"), f"-runs={runs}", "-seed=1", PER_INPUT,
                   f"-artifact_prefix={tmp_path}/", str(seeds)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"^Done \d+ runs", result.stderr, re.M), result.stderr[-3000:]


def test_libfuzzer_kernel_harness_catches_a_wrong_result(kernel_fuzzer, tmp_path):
    """The harness is only worth running if a kernel bug stops it: built
    against a copy of plada_core.c whose label check lets a label equal to C
    through, it must abort on that input; the real kernel passes it."""
    crafted = tmp_path / "label-equals-c"
    # kernel 3 (labels), width byte 2, count 1, n_classes 3; body: the label 3
    crafted.write_bytes(struct.pack("<BBHQ", 3, 2, 1, 3) + bytes([3]))
    real = _run([str(kernel_fuzzer / "fuzz_kernels"), str(crafted)])
    assert real.returncode == 0, real.stderr[-3000:]

    source = (REPO / "csrc" / "plada_core.c").read_text()
    check = "if (v >= n_classes) {"
    assert check in source, "plada_core.c changed: update the planted bug of this test"
    broken = tmp_path / "plada_core.c"
    broken.write_text(source.replace(check, "if (v > n_classes) {"))
    shutil.copy(REPO / "csrc" / "plada_core.h", tmp_path / "plada_core.h")
    binary = tmp_path / "fuzz_kernels_broken"
    build = _run([os.environ.get("CC", "clang"), "-O0", "-fsanitize=fuzzer", f"-I{tmp_path}",
                  str(FUZZ / "libfuzzer" / "fuzz_kernels.c"), str(broken), "-o", str(binary)])
    assert build.returncode == 0, build.stderr[-3000:]
    caught = _run([str(binary), str(crafted)])
    assert caught.returncode != 0
    assert "plada kernel invariant broken" in caught.stderr
    assert "labels status 0, reference 5" in caught.stderr
