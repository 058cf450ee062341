#!/usr/bin/env python3
"""Coverage-guided fuzzer for plada_codec's decoder (atheris + libFuzzer).

    python fuzz/fuzz_decode.py [--backend=c|python|both] [--spec-oracle] [--keep-going]
                               [libFuzzer options] [CORPUS_DIR ...]

Each input goes through ``plada_codec.inspect``, ``decode`` and ``verify``
(fuzz/decode_oracle.py says what is asserted). The mutator
(fuzz/payload_mutator.py) edits header fields, section fields, bodies behind
Zstandard and the section list, then recomputes ``total_length``, the lengths
and every CRC32C, so mutations reach the checks behind the checksums.

Options (each also read from the environment):
  --backend=B      PLADA_FUZZ_BACKEND: kernel backend(s): c, python, auto or
                   both (decode with each and require the same outcome). Default auto.
  --spec-oracle    PLADA_FUZZ_SPEC=1: also decode with spec/educational_decoder.py
                   and require the same outcome (error class or content).
  --keep-going     PLADA_FUZZ_KEEP_GOING=1: record each new kind of finding under
                   fuzz/findings/ (input + report) and go on, instead of
                   stopping at the first (libFuzzer's default, used in CI).
  --slow-seconds=S PLADA_FUZZ_SLOW_SECONDS: a decode slower than S seconds plus
                   100 ns per declared byte or entry, in CPU time, is a finding (default 5).
  --memory-ratio=R PLADA_FUZZ_MEMORY_RATIO: trace memory (tracemalloc) of decodes
                   declaring 1-4 MiB and flag a peak above R x (declared raw bytes
                   + 12 x count) + 4 MiB. Off (0) by default: tracing is slow.
Defaults added unless given: -max_len=65536 -timeout=30 -rss_limit_mb=4096
-artifact_prefix=fuzz/findings/. The first corpus directory is seeded with
the spec vectors (spec/vectors/v1.*/**/*.bin) when it is empty.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FINDINGS = HERE / "findings"
sys.path.insert(0, str(HERE))


def _take_options(argv: list[str]) -> tuple[dict, list[str]]:
    options = {
        "backend": os.environ.get("PLADA_FUZZ_BACKEND", "auto"),
        "spec": os.environ.get("PLADA_FUZZ_SPEC") == "1",
        "keep_going": os.environ.get("PLADA_FUZZ_KEEP_GOING") == "1",
        "memory_ratio": float(os.environ.get("PLADA_FUZZ_MEMORY_RATIO", "0")),
        "seconds": float(os.environ.get("PLADA_FUZZ_SLOW_SECONDS", "5")),
    }
    rest = []
    for arg in argv:
        if arg.startswith("--backend="):
            options["backend"] = arg.split("=", 1)[1]
        elif arg == "--spec-oracle":
            options["spec"] = True
        elif arg == "--keep-going":
            options["keep_going"] = True
        elif arg.startswith("--memory-ratio="):
            options["memory_ratio"] = float(arg.split("=", 1)[1])
        elif arg.startswith("--slow-seconds="):
            options["seconds"] = float(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    return options, rest


def _with_defaults(args: list[str]) -> list[str]:
    given = {a.split("=", 1)[0] for a in args if a.startswith("-")}
    defaults = {"-max_len": "65536", "-timeout": "30", "-rss_limit_mb": "4096",
                "-artifact_prefix": f"{FINDINGS}/"}
    extra = [f"{k}={v}" for k, v in defaults.items() if k not in given]
    return args[:1] + extra + args[1:]


def seed_corpus(directory: Path) -> int:
    """Copy every spec vector into an empty corpus directory; returns how many."""
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        return 0
    seeds = sorted((REPO / "spec" / "vectors").glob("v1.*/**/*.bin"))
    for path in seeds:
        shutil.copyfile(path, directory / f"{path.parent.name}-{path.name}")
    return len(seeds)


def main() -> None:
    options, argv = _take_options(sys.argv)
    backend = options["backend"]
    backends = ("c", "python") if backend == "both" else (backend,)

    # Everything but plada_codec is imported before the instrumentation starts:
    # coverage is wanted for plada_codec only.
    import atheris
    import numpy  # noqa: F401
    import payload_mutator
    import zstandard  # noqa: F401

    with atheris.instrument_imports(include=["plada_codec"]):
        import decode_oracle

        import plada_codec

    corpus_dirs = [a for a in argv[1:] if not a.startswith("-")]
    if corpus_dirs and not Path(corpus_dirs[0]).is_file() and not any(
        a.startswith("-merge") for a in argv
    ):
        seeded = seed_corpus(Path(corpus_dirs[0]))
        if seeded:
            print(f"fuzz_decode: seeded {corpus_dirs[0]} with {seeded} spec vectors", file=sys.stderr)
    FINDINGS.mkdir(exist_ok=True)
    seen: set[str] = set()
    budget = {"seconds": options["seconds"], "memory_ratio": options["memory_ratio"]}

    def record(data: bytes, exc: BaseException) -> None:
        tb = traceback.extract_tb(exc.__traceback__)
        inner = next((f for f in reversed(tb) if "plada_codec" in f.filename), tb[-1] if tb else None)
        where = f"{Path(inner.filename).name}:{inner.lineno}" if inner else "?"
        kind = exc.kind if isinstance(exc, decode_oracle.Finding) else type(exc).__name__
        signature = f"{kind}@{where}"
        if signature in seen:
            return
        seen.add(signature)
        name = f"{kind}-{hashlib.sha1(data).hexdigest()[:12]}"
        (FINDINGS / f"{name}.bin").write_bytes(data)
        (FINDINGS / f"{name}.txt").write_text(
            f"signature: {signature}\nbackend: {backend}\n\n"
            + "".join(traceback.format_exception(exc))
        )
        print(f"\nfuzz_decode: new finding {signature} -> fuzz/findings/{name}.bin", file=sys.stderr)

    def test_one_input(data: bytes) -> None:
        if not options["keep_going"]:
            decode_oracle.check(data, backends, spec=options["spec"], budget=budget)
            return
        try:
            decode_oracle.check(data, backends, spec=options["spec"], budget=budget)
        except Exception as exc:  # keep-going mode records every kind of failure once
            record(data, exc)

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        return payload_mutator.mutate(data, max_size, seed, atheris.Mutate, plada_codec.encode)

    def custom_crossover(data1: bytes, data2: bytes, max_size: int, seed: int) -> bytes:
        return payload_mutator.crossover(data1, data2, max_size, seed)

    print(f"fuzz_decode: backends {backends} (C core built: {'c' in plada_codec.available_backends()}), "
          f"spec oracle {'on' if options['spec'] else 'off'}, "
          f"keep-going {'on' if options['keep_going'] else 'off'}, budget {budget}", file=sys.stderr)
    atheris.Setup(_with_defaults(argv), test_one_input, custom_mutator=custom_mutator,
                  custom_crossover=custom_crossover)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
