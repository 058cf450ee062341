"""``plada export PAYLOAD --reference LOCAL [--catalog C] --format F -o OUT``:
a payload's virtual dataset as csv, jsonl, an image folder, WebDataset shards
or parquet (:mod:`plada_codec.export`; ``plada_codec.cli`` registers it)."""

from __future__ import annotations

import argparse
import json
import sys

from ..export import (
    DEFAULT_MAX_MISSING,
    DEFAULT_SHARD_SAMPLES,
    FORMATS,
    ExportError,
    check_new_output,
    virtual_set,
    write,
)
from ..kinds import KINDS
from ._run import UsageError
from .catalog import int_at_least

_ID_HELP = ("with --catalog: the id rule the catalog was built with (stem, the default; key; or column:NAME for "
            "parquet)")


def _fraction(text: str) -> float:
    """An argparse type: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1], got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1] (0.05 is 5%), got {text}")
    return value


def _usage(message: str) -> Exception:
    return UsageError(message)


def _cmd_export(args) -> int:
    if args.copy and args.format != "imagefolder":
        raise _usage(f"--copy applies to --format imagefolder (a {args.format} export holds no links)")
    if args.manifest and args.catalog:
        raise _usage("--manifest describes the reference set itself; with --catalog, --reference LOCAL is resolved "
                     "against the catalog instead")
    try:
        check_new_output(args.output)  # before the copy is listed or hashed
        vset = virtual_set(args.payload, args.reference, args.catalog, max_missing=args.max_missing,
                           manifest=args.manifest, id_rule=args.id_rule, kind=args.reference_kind,
                           index=args.index, workers=args.workers, max_count=args.max_count)
        if len(vset.missing_positions):
            shown = ", ".join(repr(i) for i in vset.missing_ids[:5])
            print(f"note: {len(vset.missing_positions)} of {len(vset) + len(vset.missing_positions)} selected items "
                  f"are missing from {args.reference} and are left out (first: {shown})", file=sys.stderr)
        result = write(vset, args.output, args.format, copy=args.copy, shard_samples=args.shard_samples,
                       seed=args.seed)
    except ExportError as exc:
        raise _usage(str(exc)) from None
    if result.empty_classes:
        shown = ", ".join(repr(c) for c in result.empty_classes[:5])
        print(f"note: {len(result.empty_classes)} classes have no selected item (first: {shown}); their folders or "
              "labels are kept so the others keep the payload's numbering"
              + (" (torchvision: ImageFolder(OUT, allow_empty=True))" if args.format == "imagefolder" else ""),
              file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(f"{result.path}: {result.count} items as {result.format} ({result.files} files"
              + (f"; {result.missing} missing items left out" if result.missing else "") + ")")
    return 0


def add_export_command(sub, epilog: str) -> None:
    """Register ``plada export`` on *sub*."""
    p = sub.add_parser("export", epilog=epilog,
                       help="write a payload's selected items with their labels as csv, jsonl, an image folder, "
                            "WebDataset shards or parquet")
    p.add_argument("payload", help="payload file, or - for standard input")
    p.add_argument("--reference", required=True, metavar="LOCAL",
                   help="the local copy: with --catalog any layout (folder tree, tar shards, parquet); without, "
                        "the reference set itself (a folder of images or tar shards)")
    p.add_argument("--catalog", metavar="C", help="catalog (plada catalog build) the payload's indices refer to")
    p.add_argument("--format", required=True, choices=FORMATS,
                   help="csv/jsonl: a file, one row an item (id, label, class name, where it is held); "
                        "imagefolder: OUT/<label>_<class>/<name>.<ext>; wds: WebDataset shards with .cls and .json; "
                        "parquet: image struct (bytes, path) and label, for datasets.load_dataset('parquet')")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="the new file (csv, jsonl) or folder (the others) to write; an existing one is refused")
    p.add_argument("--copy", action="store_true",
                   help="imagefolder: copy the images (default: symbolic links to the copy's files; members of "
                        "tar shards and parquet rows are always written as files)")
    p.add_argument("--max-missing", type=_fraction, default=DEFAULT_MAX_MISSING,
                   help="with --catalog: go on without the selected items LOCAL lacks when they are at most this "
                        "fraction of the selection (default %(default)s, as plada-train consume)")
    p.add_argument("--manifest", metavar="M",
                   help="without --catalog: verify the reference set by the cache of manifest M (plada ref-hash "
                        "--manifest-out) instead of hashing every file")
    p.add_argument("--id", dest="id_rule", default="stem", help=_ID_HELP)
    p.add_argument("--reference-kind", choices=["auto", *KINDS], default="auto",
                   help="layout of LOCAL (default: detected)")
    p.add_argument("--index", metavar="PATH",
                   help="with --catalog: where to cache LOCAL's resolution (default: beside the catalog)")
    p.add_argument("--shard-samples", type=int_at_least(1), default=DEFAULT_SHARD_SAMPLES,
                   help="wds: samples per shard (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="wds: which random subset of the items each shard holds")
    p.add_argument("--workers", type=int_at_least(1), default=None, help="threads hashing files (default: up to 8)")
    p.add_argument("--max-count", type=int_at_least(1), default=None, help="largest k accepted")
    p.add_argument("--json", action="store_true", help="one JSON object: path, format, count, files, missing")
    p.set_defaults(func=_cmd_export)
