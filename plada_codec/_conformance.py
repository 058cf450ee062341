"""The conformance kit: run any PLADA decoder against the vectors, generated and mutated payloads.

A decoder under test is either a command that speaks the ``plada-c`` protocol (``CMD {}``:
``{}`` becomes the payload's path; the kit appends ``--max-count N`` and the other limits of
FORMAT.md 5.5, and ``--reference-n N --fingerprint HEX``, where a case needs them; the decoder
prints the vectors' JSON object on stdout and exits 0, or exits 10 + the error class of 9.1:
10 FormatError ... 17 ReferenceMismatch), or a name the kit runs in-process: ``educational``
(spec/educational_decoder.py), ``python`` or ``c`` (plada_codec on that backend).

Cases, in a fixed order for a given seed:

- every vector of spec/vectors/v1.*/ (valid ones against their ``.json``, invalid ones against
  their ``error`` under their ``limits`` and ``reference``);
- *generated* payloads from the reference encoder: random selections over every codec,
  compression and format version, class names with awkward Unicode, task names, metadata,
  bound fingerprints, and some decoded with a (right or wrong) reference or tight limits;
- *mutated* payloads: fuzz/payload_mutator.py's structure-aware edits behind repaired lengths
  and CRCs, of the vectors and the generated payloads.

The expected outcome of a generated or mutated case is plada_codec's (``backend``). A rejection
agrees when the class is the same or, as FORMAT.md 9.1 allows, when the decoder reports
FormatError for one of its kinds (``exact_classes`` turns that allowance off).
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import SPEC_ERRORS, PayloadError

__all__ = ["Case", "Decoder", "Report", "iter_cases", "make_decoder", "run", "write_corpus"]

CONTENT_KEYS = ("format_version", "n_ref", "n_classes", "count", "fingerprint", "indices", "labels",
                "class_names", "task_name", "metadata")
CLASSES = ("FormatError", "Truncated", "TrailingData", "Checksum", "UnsupportedVersion", "UnsupportedFeature",
           "LimitExceeded", "ReferenceMismatch")
FORMAT_KINDS = frozenset(CLASSES[1:6])  # reported as FormatError, they conform (9.1)
EXIT_BASE = 9  # exit status 10 + i names CLASSES[i]
LIMIT_FLAGS = ("max_count", "max_section_bytes", "max_ancillary_bytes", "max_metadata_items")
MAX_MUTATED_BYTES = 1 << 16
_REPO = Path(__file__).resolve().parent.parent

Outcome = Any  # a dict of CONTENT_KEYS, or the name of an error class, or "crash: ..." text


@dataclass
class Case:
    """One payload, the options to decode it with, and the outcome a conforming decoder gives."""

    name: str
    data: bytes
    expected: Outcome = None
    limits: dict[str, int] = field(default_factory=dict)
    reference: tuple[int, bytes] | None = None

    def flags(self) -> list[str]:
        """The protocol's options for this case, appended after the file."""
        out = []
        for key, value in self.limits.items():
            out += ["--" + key.replace("_", "-"), str(value)]
        if self.reference is not None:
            out += ["--reference-n", str(self.reference[0]), "--fingerprint", self.reference[1].hex()]
        return out


# -- outcomes -------------------------------------------------------------------------------------
def _class_of(exc: PayloadError) -> str:
    for name, cls in SPEC_ERRORS.items():
        if type(exc) is cls:
            return name
    for name, cls in SPEC_ERRORS.items():  # a subclass of one of them
        if isinstance(exc, cls) and name != "FormatError":
            return name
    return "FormatError"


def _plada_outcome(case: Case, backend: str) -> Outcome:
    from . import ReferenceSet, decode

    try:
        reference = None if case.reference is None else ReferenceSet(*case.reference)
        limits: dict[str, Any] = dict(case.limits)
        return decode(case.data, backend=backend, reference=reference, **limits).to_dict()
    except PayloadError as exc:
        return _class_of(exc)


def canonical(outcome: Outcome) -> str:
    """Outcomes compare as canonical JSON: 1 and 1.0, and -0.0 and 0.0, stay apart; key order does not count."""
    if isinstance(outcome, dict):
        outcome = {key: outcome.get(key, "<missing>") for key in CONTENT_KEYS}
    return json.dumps(outcome, sort_keys=True)


def agrees(got: Outcome, expected: Outcome, exact_classes: bool = False) -> bool:
    if isinstance(expected, str) and isinstance(got, str):
        return got == expected or (not exact_classes and got == "FormatError" and expected in FORMAT_KINDS)
    return canonical(got) == canonical(expected)


def describe(outcome: Outcome) -> str:
    if isinstance(outcome, dict):
        return f"decoded (count {outcome.get('count')}, format {outcome.get('format_version')})"
    return str(outcome)


# -- decoders under test --------------------------------------------------------------------------
class Decoder:
    """Decodes a case to an outcome (and stderr text for a report)."""

    name = "decoder"

    def decode(self, case: Case) -> tuple[Outcome, str]:
        raise NotImplementedError


class CommandDecoder(Decoder):
    """A command line with ``{}`` for the payload's path, speaking plada-c's protocol."""

    def __init__(self, template: str, timeout: float = 120.0) -> None:
        if "{}" not in template:
            raise ValueError(f"--decoder {template!r} has no '{{}}' for the payload's path")
        self.name = template
        self.argv = shlex.split(template)
        self.timeout = timeout

    def decode(self, case: Case) -> tuple[Outcome, str]:
        with tempfile.NamedTemporaryFile(suffix=".bin", delete=False) as fh:
            fh.write(case.data)
            path = fh.name
        try:
            argv = [path if arg == "{}" else arg.replace("{}", path) for arg in self.argv] + case.flags()
            try:
                done = subprocess.run(argv, capture_output=True, timeout=self.timeout)
            except subprocess.TimeoutExpired:
                return f"crash: no result within {self.timeout:g} s", ""
            except OSError as exc:
                return f"crash: cannot run {argv[0]} ({exc.strerror})", ""
        finally:
            os.unlink(path)
        stderr = done.stderr.decode("utf-8", "replace").strip()
        if done.returncode == 0:
            try:
                value = json.loads(done.stdout)
            except ValueError as exc:
                return f"crash: exit 0 but stdout is not JSON ({exc})", stderr
            return value if isinstance(value, dict) else "crash: exit 0 but stdout is not a JSON object", stderr
        if EXIT_BASE < done.returncode <= EXIT_BASE + len(CLASSES):
            return CLASSES[done.returncode - EXIT_BASE - 1], stderr
        return f"crash: exit status {done.returncode}", stderr


class PladaDecoder(Decoder):
    def __init__(self, backend: str) -> None:
        self.name = f"plada_codec ({backend} backend)"
        self.backend = backend

    def decode(self, case: Case) -> tuple[Outcome, str]:
        try:
            return _plada_outcome(case, self.backend), ""
        except Exception as exc:  # a bug, which is what the kit is for: reported, not raised
            return f"crash: {type(exc).__name__}: {exc}", ""


def load_educational(spec_dir: Path):
    path = spec_dir / "educational_decoder.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the educational decoder is in a source checkout's spec/ folder")
    return _load_file("plada_educational_decoder", path)


class EducationalDecoder(Decoder):
    """spec/educational_decoder.py, in-process."""

    name = "educational"

    def __init__(self, spec_dir: Path) -> None:
        self.module = load_educational(spec_dir)

    def decode(self, case: Case) -> tuple[Outcome, str]:
        try:
            return self.module.decode(case.data, reference=case.reference, **case.limits), ""
        except self.module.DecodeError as exc:
            return exc.kind, str(exc)
        except Exception as exc:
            return f"crash: {type(exc).__name__}: {exc}", ""


def make_decoder(spec: str, spec_dir: Path | None = None, timeout: float = 120.0) -> Decoder:
    """``educational``, ``python``, ``c``, or a command template with ``{}``."""
    if spec == "educational":
        return EducationalDecoder(spec_dir or _REPO / "spec")
    if spec in ("python", "c"):
        return PladaDecoder(spec)
    return CommandDecoder(spec, timeout)


# -- cases ----------------------------------------------------------------------------------------
def vector_cases(vectors: Path) -> Iterator[Case]:
    for folder in sorted(vectors.glob("v1.*")):
        for sub, invalid in ((folder, False), (folder / "invalid", True)):
            for meta_path in sorted(sub.glob("*.json")):
                bin_path = meta_path.with_suffix(".bin")
                if not bin_path.is_file():
                    continue
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                case = Case(f"vector {folder.name}/{'invalid/' if invalid else ''}{bin_path.stem}",
                            bin_path.read_bytes())
                if invalid:
                    case.expected = meta["error"]
                    case.limits = dict(meta.get("limits", {}))
                    if "reference" in meta:
                        ref = meta["reference"]
                        case.reference = (ref["n_ref"], bytes.fromhex(ref["fingerprint"]))
                else:
                    case.expected = {key: meta[key] for key in CONTENT_KEYS}
                yield case


# Names that stress UTF-8 handling: astral characters, combining marks, right-to-left text, a
# BOM character (a name's first character, not a mark to drop), CR, NUL, quotes and escapes.
AWKWARD_NAMES = ("", "cat", "Äpfel 🍎", "e\u0301", "\u05e9\u05dc\u05d5\u05dd", "\ufeffbom", "cr\r", "nul\x00",
                 "\"quoted\" \\ back", "tab\there", "😀" * 5, "\u2028sep", "日本語", "n01440764 tench, kolari",
                 "\U0010fffd", "a" * 200)


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth < 4 and roll < 0.2:
        return {rng.choice(("a", "b", "é", "😀", "key", "")) + str(i): _random_json(rng, depth + 1)
                for i in range(rng.randint(0, 4))}
    if depth < 4 and roll < 0.35:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return rng.choice((0, 1, -1, 2**53 - 1, -(2**53 - 1), 0.5, -0.0, 1e308, 5e-324, 1.0, True, False, None,
                       "x", "", "τ\n\"", "😀", rng.random(), rng.randint(-10**6, 10**6)))


def _selection(rng: random.Random, n_ref: int, k: int, n_classes: int) -> tuple[list[int], list[int]]:
    shape = rng.choice(("uniform", "clustered", "run"))
    if shape == "run" and k:
        start = rng.randrange(n_ref - k + 1)
        indices = list(range(start, start + k))
    elif shape == "clustered" and k:
        chosen: set[int] = set()
        while len(chosen) < k:
            start = rng.randrange(n_ref)
            for i in range(start, min(n_ref, start + rng.randint(1, 40))):
                if len(chosen) < k and rng.random() < 0.8:
                    chosen.add(i)
        indices = sorted(chosen)
    else:
        indices = sorted(rng.sample(range(n_ref), k))
    labels, label = [], rng.randrange(n_classes)
    for _ in indices:
        if rng.random() < (0.9 if shape != "uniform" else 0.0):
            labels.append(label)
        else:
            label = rng.randrange(n_classes)
            labels.append(label)
    return indices, labels


def generated_payload(rng: random.Random) -> tuple[bytes, dict[str, Any]]:
    """A valid payload from the reference encoder, and how it was made."""
    from . import encode
    from ._errors import EncodeError

    n_ref = rng.choice((1, 2, 7, 8, 9, 64, 200, 1000, 5000, 65536, 1 << 20, 14_197_122, 1 << 48))
    k = rng.randint(0, min(n_ref, rng.choice((0, 1, 2, 5, 31, 128, 129, 300, 1000))))
    n_classes = rng.choice((1, 2, 3, 5, 16, 255, 256, 257, 1000, 65536, 1 << 24))
    indices, labels = _selection(rng, n_ref, k, n_classes)
    pair = rng.choice((("auto", "auto"), ("delta", "packed"), ("delta", "bytes"), ("bitmap", "packed"),
                       ("bitmap", "bytes"), ("context-model", "joint"), ("auto", "auto")))
    if pair[0] == "bitmap" and n_ref > 1 << 20:
        pair = ("delta", pair[1])
    options: dict[str, Any] = {"index_codec": pair[0], "label_codec": pair[1],
                               "compression": rng.choice(("auto", "none", "zstd")),
                               "format_version": rng.choice((None, "1.0", "1.1", "1.2")),
                               "zstd_level": rng.choice((None, 1, 3))}
    if pair[0] == "context-model" and options["format_version"] == "1.0":
        options["format_version"] = "1.1"
    extras: dict[str, Any] = {}
    if n_classes <= 300 and rng.random() < 0.35:
        extras["class_names"] = [rng.choice(AWKWARD_NAMES) + ("\n" if rng.random() < 0.02 else "")
                                 for _ in range(n_classes)]
    if rng.random() < 0.3:
        extras["task_name"] = rng.choice(AWKWARD_NAMES)
    if rng.random() < 0.3:
        extras["metadata"] = {"m": _random_json(rng), "plada_version": "x"}
    if rng.random() < 0.25:
        extras["reference"] = rng.randbytes(32)
    try:
        data = encode(indices, labels, n_ref=n_ref, n_classes=n_classes, **options, **extras)
    except EncodeError:  # a combination the encoder refuses (too dense for the context model, ...)
        options = {"index_codec": "auto", "label_codec": "auto", "compression": "auto", "format_version": None}
        data = encode(indices, labels, n_ref=n_ref, n_classes=n_classes, **extras)
    return data, {"n_ref": n_ref, "n_classes": n_classes, "count": k, **options,
                  "reference": "reference" in extras}


def _decode_options(rng: random.Random, data: bytes, case: Case) -> None:
    """Now and then a reference (right, wrong size, wrong fingerprint) or a tight limit."""
    roll = rng.random()
    n_ref = int.from_bytes(data[16:24], "little")
    fingerprint = data[32:64]
    if roll < 0.08 and 1 <= n_ref <= 1 << 48:  # a reference set has a valid N (a garbage header gets none)
        choice = rng.random()
        if choice < 0.5 and any(fingerprint):
            case.reference = (n_ref, fingerprint)
        elif choice < 0.75:
            other = n_ref + 1 if n_ref < 1 << 48 else n_ref - 1  # another valid N
            case.reference = (other, fingerprint if any(fingerprint) else b"\x01" * 32)
        else:
            case.reference = (n_ref, bytes(31) + b"\x07")
    elif roll < 0.16:
        key = rng.choice(LIMIT_FLAGS)
        case.limits = {key: rng.choice((0, 1, 2, 5, 64, 100, 300, 1000, 4096))}


def iter_cases(*, vectors: Path | None, generated: int, mutated: int, seed: int, backend: str = "auto",
               mutator_path: Path | None = None) -> Iterator[Case]:
    """Every case, in a fixed order for *seed*; the expected outcome filled in."""
    pool: list[bytes] = []
    if vectors is not None and vectors.is_dir():
        for case in vector_cases(vectors):
            pool.append(case.data)
            yield case
    rng = random.Random(seed)
    for number in range(generated):
        data, made = generated_payload(rng)
        pool.append(data)
        case = Case(f"generated {number} ({made['index_codec']}/{made['label_codec']}/{made['compression']}, "
                    f"format {made['format_version'] or 'auto'}, k {made['count']})", data)
        _decode_options(rng, data, case)
        case.expected = _plada_outcome(case, backend)
        yield case
    if not mutated:
        return
    mutator = load_mutator(mutator_path)
    from . import encode

    if not pool:
        pool.append(generated_payload(rng)[0])
    for number in range(mutated):
        parent = rng.choice(pool)
        data = mutator.mutate(parent, MAX_MUTATED_BYTES, rng.getrandbits(32), encode=encode)
        if rng.random() < 0.3:  # mutate twice: more of the rules behind the first one
            data = mutator.mutate(data, MAX_MUTATED_BYTES, rng.getrandbits(32), encode=encode)
        case = Case(f"mutated {number}", data)
        _decode_options(rng, data, case)
        case.expected = _plada_outcome(case, backend)
        yield case


def load_mutator(path: Path | None = None):
    path = path or _REPO / "fuzz" / "payload_mutator.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the payload mutator is in a source checkout's fuzz/ folder "
                                "(use --mutated 0 without one)")
    return _load_file("plada_payload_mutator", path)


def _load_file(name: str, path: Path):
    """A module from a file of the source checkout (spec/, fuzz/), loaded once per process."""
    module = sys.modules.get(name)
    if module is None or getattr(module, "__file__", None) != str(path):
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = module  # dataclasses look their module up while the file runs
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


# -- running and reporting ------------------------------------------------------------------------
@dataclass
class Disagreement:
    case: Case
    got: Outcome
    stderr: str


@dataclass
class Report:
    decoder: str
    counts: dict[str, int] = field(default_factory=dict)  # cases per kind (vector, generated, mutated)
    outcomes: dict[str, int] = field(default_factory=dict)  # expected outcome -> cases
    disagreements: list[Disagreement] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        kinds = ", ".join(f"{n} {kind}" for kind, n in self.counts.items())
        seen = ", ".join(f"{name} {n}" for name, n in sorted(self.outcomes.items(), key=lambda x: -x[1]))
        return (f"plada conformance: {self.decoder}\n  {self.total} cases ({kinds}) in {self.seconds:.1f} s\n"
                f"  expected outcomes: {seen}\n  disagreements: {len(self.disagreements)}")


def _minimize(case: Case, got: Outcome, decoder: Decoder, expected_of: Callable[[Case], Outcome],
              exact_classes: bool, mutator, budget: int = 150) -> Case:
    """A smaller case that still disagrees: drop sections, then cut section bodies in halves,
    quarters, ... (lengths and CRCs repaired), within *budget* decoder runs."""
    if mutator is None:
        return case
    best = case
    runs = 0

    def still_disagrees(data: bytes) -> Case | None:
        nonlocal runs
        runs += 1
        trial = Case(case.name, data, limits=case.limits, reference=case.reference)
        trial.expected = expected_of(trial)
        outcome, _ = decoder.decode(trial)
        return trial if not agrees(outcome, trial.expected, exact_classes) else None

    model = mutator.parse(best.data)
    if model is None:
        return best
    i = 0
    while i < len(model.sections) and runs < budget:
        trial_model = mutator.parse(best.data)
        del trial_model.sections[i]
        found = still_disagrees(mutator.serialize(trial_model))
        if found:
            best, model = found, trial_model
        else:
            i += 1
    for index in range(len(model.sections)):
        chunk = len(mutator.parse(best.data).sections[index].body) // 2
        while chunk >= 1 and runs < budget:
            current = mutator.parse(best.data)
            section = current.sections[index]
            start = 0
            shrunk = False
            while start < len(section.body) and runs < budget:
                body = section.body[:start] + section.body[start + chunk:]
                trial_model = mutator.parse(best.data)
                trial_section = trial_model.sections[index]
                trial_section.body = body
                if trial_section.compression == 0:
                    trial_section.raw_length = len(body)
                found = still_disagrees(mutator.serialize(trial_model))
                if found:
                    best, section, shrunk = found, trial_section, True
                else:
                    start += chunk
            if not shrunk:
                chunk //= 2
    return best


def run(decoder: Decoder, cases: Iterator[Case], *, repro_dir: Path | None = None, workers: int = 1,
        exact_classes: bool = False, backend: str = "auto", progress: Callable[[str], None] | None = None,
        mutator_path: Path | None = None) -> Report:
    """Decode every case with *decoder*, compare, and write a minimized repro per disagreement."""
    report = Report(decoder.name)
    started = time.perf_counter()

    def check(case: Case) -> tuple[Case, Outcome, str]:
        got, stderr = decoder.decode(case)
        return case, got, stderr

    def batches() -> Iterator[list[Case]]:
        batch: list[Case] = []
        for case in cases:
            batch.append(case)
            if len(batch) == 256:
                yield batch
                batch = []
        if batch:
            yield batch

    with ThreadPoolExecutor(max(1, workers)) as pool:
        for batch in batches():
            for case, got, stderr in pool.map(check, batch):
                kind = case.name.split(" ")[0]
                report.counts[kind] = report.counts.get(kind, 0) + 1
                shown = describe(case.expected) if not isinstance(case.expected, dict) else "decoded"
                report.outcomes[shown] = report.outcomes.get(shown, 0) + 1
                if not agrees(got, case.expected, exact_classes):
                    report.disagreements.append(Disagreement(case, got, stderr))
            if progress:
                progress(f"{report.total} cases, {len(report.disagreements)} disagreements")
    report.seconds = time.perf_counter() - started
    if repro_dir is not None and report.disagreements:
        _write_repros(report, decoder, repro_dir, exact_classes, backend, mutator_path)
    return report


def _write_repros(report: Report, decoder: Decoder, repro_dir: Path, exact_classes: bool, backend: str,
                  mutator_path: Path | None) -> None:
    repro_dir.mkdir(parents=True, exist_ok=True)
    try:
        mutator = load_mutator(mutator_path)
    except FileNotFoundError:
        mutator = None
    for number, item in enumerate(report.disagreements):
        case = item.case
        if not case.name.startswith("vector"):
            try:
                case = _minimize(case, item.got, decoder, lambda c: _plada_outcome(c, backend), exact_classes,
                                 mutator)
            except Exception:  # a payload the lenient parser cannot take apart: the original is the repro
                case = item.case
        got, stderr = decoder.decode(case)
        stem = repro_dir / f"disagreement-{number:04d}"
        stem.with_suffix(".bin").write_bytes(case.data)
        stem.with_suffix(".json").write_text(json.dumps({
            "case": case.name, "bytes": len(case.data), "limits": case.limits,
            "reference": None if case.reference is None else
            {"n_ref": case.reference[0], "fingerprint": case.reference[1].hex()},
            "expected": case.expected, "got": got, "stderr": stderr,
            "command": decoder.name,
        }, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def write_corpus(cases: Iterator[Case], directory: Path) -> int:
    """Every case as NNNNNN-kind.bin + .json, in the layout of spec/vectors (a valid case's JSON
    is its decoded content; a rejected one's names its ``error``, ``limits`` and ``reference``)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = 0
    for number, case in enumerate(cases):
        stem = directory / f"{number:06d}-{case.name.split(' ')[0]}"
        meta: dict[str, Any] = {"description": case.name}
        if isinstance(case.expected, dict):
            meta.update(case.expected)
        else:
            meta["error"] = case.expected
        if case.limits:
            meta["limits"] = case.limits
        if case.reference is not None:
            meta["reference"] = {"n_ref": case.reference[0], "fingerprint": case.reference[1].hex()}
        stem.with_suffix(".bin").write_bytes(case.data)
        stem.with_suffix(".json").write_text(json.dumps(meta, ensure_ascii=False) + "\n", encoding="utf-8")
        written += 1
    return written
