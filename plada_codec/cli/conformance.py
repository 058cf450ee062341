"""``plada conformance``: check a PLADA decoder against the vectors, generated and mutated
payloads (``plada_codec._conformance``); ``plada_codec.cli`` registers it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .. import _conformance
from ._run import EXIT_OK, EXIT_USAGE
from .catalog import int_at_least

EXIT_DISAGREE = 1  # a case the decoder answered otherwise
_REPO = Path(__file__).resolve().parents[2]
_DESCRIPTION = """\
Run a decoder against every vector of spec/vectors, N payloads from the reference encoder and M
payloads mutated behind repaired checksums, compare each outcome on every field (and, for a
rejection, the error class of FORMAT.md 9.1), print a summary and write a minimized repro of each
disagreement. DECODER is a command with {} for the payload's file, speaking plada-c's protocol:
it prints the vectors' JSON object and exits 0, or exits 10 + the class (10 FormatError,
11 Truncated, 12 TrailingData, 13 Checksum, 14 UnsupportedVersion, 15 UnsupportedFeature,
16 LimitExceeded, 17 ReferenceMismatch); the kit appends --max-count N (and the other limits)
and --reference-n N --fingerprint HEX where a case needs them. DECODER may also be
'educational' (spec/educational_decoder.py), 'python' or 'c' (plada_codec's backends), run
in-process. Expected outcomes come from plada_codec (--backend, default PLADA_BACKEND).
With --write-corpus DIR the same cases are written as .bin + .json pairs instead."""


def add_conformance_command(sub, epilog: str) -> None:
    """Register ``plada conformance`` on *sub*."""
    count = int_at_least(0)
    p = sub.add_parser("conformance", help="check any decoder against vectors, generated and mutated payloads",
                       description=_DESCRIPTION, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--decoder", metavar="DECODER",
                        help="'CMD ... {} ...' (plada-c's protocol), or educational, python or c")
    target.add_argument("--write-corpus", metavar="DIR", type=Path,
                        help="write the cases as NNNNNN-kind.bin + .json (spec/vectors' layout) and exit")
    p.add_argument("--generated", type=count, default=3300, help="payloads from the reference encoder (3300)")
    p.add_argument("--mutated", type=count, default=24000,
                   help="payloads mutated by fuzz/payload_mutator.py behind repaired CRCs (24000)")
    p.add_argument("--seed", type=int, default=0, help="the same seed gives the same cases (0)")
    p.add_argument("--vectors", type=Path, default=_REPO / "spec" / "vectors",
                   help="the vectors folder (default: the source checkout's spec/vectors)")
    p.add_argument("--no-vectors", action="store_true", help="leave the vectors out")
    p.add_argument("--backend", choices=("auto", "c", "python"), default=None,
                   help="plada_codec backend that gives the expected outcomes (default: PLADA_BACKEND or auto)")
    p.add_argument("--repro-dir", type=Path, default=Path("conformance-repros"),
                   help="where a minimized repro of each disagreement goes (default ./conformance-repros)")
    p.add_argument("--workers", type=int_at_least(1), default=min(8, os.cpu_count() or 1),
                   help="decoder runs at once (default: the CPU count, at most 8)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds one decoder run may take (120)")
    p.add_argument("--exact-classes", action="store_true",
                   help="require the exact class, not FormatError for its kinds (9.1 allows that)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_conformance)


def _cmd_conformance(args) -> int:
    backend = args.backend or os.environ.get("PLADA_BACKEND", "auto").strip().lower() or "auto"
    vectors = None if args.no_vectors else args.vectors
    if vectors is not None and not vectors.is_dir():
        print(f"plada conformance: {vectors}: no vectors folder (give --vectors DIR or --no-vectors)", file=sys.stderr)
        return EXIT_USAGE
    try:
        cases = _conformance.iter_cases(vectors=vectors, generated=args.generated, mutated=args.mutated,
                                        seed=args.seed, backend=backend)
        if args.write_corpus is not None:
            written = _conformance.write_corpus(cases, args.write_corpus)
            print(f"plada conformance: wrote {written} cases to {args.write_corpus}")
            return EXIT_OK
        decoder = _conformance.make_decoder(args.decoder, timeout=args.timeout)
        progress = None if args.quiet else (lambda line: print(f"  ... {line}", file=sys.stderr, flush=True))
        report = _conformance.run(decoder, cases, repro_dir=args.repro_dir, workers=args.workers,
                                  exact_classes=args.exact_classes, backend=backend, progress=progress)
    except (FileNotFoundError, ValueError) as exc:
        print(f"plada conformance: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(report.summary())
    for number, item in enumerate(report.disagreements[:20]):
        print(f"  {number:04d} {item.case.name}: expected {_conformance.describe(item.case.expected)}, "
              f"got {_conformance.describe(item.got)}" + (f" ({item.stderr[:120]})" if item.stderr else ""))
    if report.disagreements:
        print(f"  minimized repros: {args.repro_dir}/disagreement-NNNN.bin + .json")
        return EXIT_DISAGREE
    return EXIT_OK
