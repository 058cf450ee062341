"""``plada catalog build|resolve|show``, and the ``--catalog`` option of the
payload commands (``plada_codec.cli`` registers both)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from .._catalog import Catalog, Resolution
from .._errors import ReferenceSetError
from ..kinds import KINDS
from ._run import EXIT_OK

_ID_HELP = ("id rule: stem (a file's or tar member's base name up to its first '.', the default), key (the same "
            "with its folders kept) or column:NAME (a parquet column)")


def add_catalog_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", metavar="C",
                        help="catalog (plada catalog build) the payload's indices refer to; with --reference LOCAL, "
                             "LOCAL is a copy of any layout resolved against it")
    parser.add_argument("--id", dest="id_rule", default="stem", help=_ID_HELP)


def open_catalog(path: str) -> Catalog:
    if not os.path.lexists(path):
        raise ReferenceSetError(f"{path}: no such catalog file")
    return Catalog.open(path)  # refuses a folder, a FIFO or a device in one line


def int_at_least(minimum: int):
    """An argparse type: an integer >= *minimum* (a negative --head would slice from the end)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value}")
        return value

    return parse


def resolve_local(catalog: Catalog, args) -> Resolution:
    """Resolve ``--reference LOCAL`` against the catalog (content checked only
    when asked: a payload command needs positions, not bytes)."""
    kind = getattr(args, "reference_kind", "auto")
    return catalog.resolve(args.reference, kind=kind, id=args.id_rule, content=False,
                           workers=getattr(args, "workers", None))


def report_selected(resolution: Resolution, indices, stream=None, content: bool = False,
                    workers: int | None = None) -> tuple[int, int]:
    """One line on how many of the selected items the local copy lacks; with
    *content*, one more on how many it holds with other bytes than the catalog's.
    Returns (missing, differing) counts (differing 0 without *content*)."""
    stream = sys.stderr if stream is None else stream  # read at call time: the shell may have closed it
    missing = resolution.missing_positions(indices)
    root = resolution.listing.root
    if len(missing):
        shown = ", ".join(repr(resolution.catalog.ids[int(p)]) for p in missing[:5])
        print(f"note: {len(missing)} of {len(indices)} selected items ({len(missing) / max(1, len(indices)):.2%}) "
              f"are missing from {root}; first: {shown}", file=stream)
    else:
        print(f"note: all {len(indices)} selected items are present in {root}", file=stream)
    differ = np.zeros(0, np.int64)
    if content:
        differ = resolution.differing_positions(indices, workers)
        if len(differ):
            shown = ", ".join(repr(resolution.catalog.ids[int(p)]) for p in differ[:5])
            print(f"note: {len(differ)} of the {len(indices) - len(missing)} selected items {root} holds differ in "
                  f"content from the catalog (a re-encoded copy differs everywhere); first: {shown}", file=stream)
        else:
            print(f"note: the {len(indices) - len(missing)} selected items {root} holds have the catalog's bytes",
                  file=stream)
    return len(missing), len(differ)


def _cmd_build(args) -> int:
    catalog = Catalog.build(args.path, args.output, id=args.id_rule, group=args.group, content=not args.no_content,
                            kind=args.kind, workers=args.workers, progress=True)
    size = Path(args.output).stat().st_size
    if args.json:
        print(json.dumps({"n": len(catalog), "fingerprint": catalog.hex, "fields": list(catalog.fields),
                          "bytes": size, "output": args.output}))
    else:
        print(f"{catalog.hex}  {len(catalog)} items  fields {' '.join(catalog.fields)}  {args.output} ({size} bytes)")
    return EXIT_OK


def _cmd_resolve(args) -> int:
    catalog = open_catalog(args.catalog)
    content = False if args.no_content else None
    resolution = catalog.resolve(args.local, kind=args.kind, id=args.id_rule, content=content, index=args.index,
                                 workers=args.workers, rebuild=args.rebuild, progress=True)
    if args.json:
        print(json.dumps(resolution.to_dict()))
    else:
        print(resolution.summary())
    return EXIT_OK


def _cmd_show(args) -> int:
    catalog = open_catalog(args.catalog)
    shown = list(catalog.ids[: args.head])
    if args.json:
        print(json.dumps({"n": len(catalog), "fingerprint": catalog.hex, "fields": list(catalog.fields),
                          "first_ids": shown}))
    else:
        print(f"catalog {args.catalog}: {len(catalog)} items, fingerprint {catalog.hex}, "
              f"fields {' '.join(catalog.fields)}")
        for position, item_id in enumerate(shown):
            print(f"  {position:>8}  {item_id}")
    return EXIT_OK


def add_catalog_command(sub, epilog: str) -> None:
    """Register ``plada catalog`` and its three sub-commands on *sub*."""
    positive_int = int_at_least(1)
    p = sub.add_parser("catalog", help="build a catalog of a reference set, or resolve a local copy against one",
                       epilog=epilog)
    commands = p.add_subparsers(dest="catalog_command", required=True, parser_class=type(p))
    kinds = ["auto", *KINDS]

    b = commands.add_parser("build", help="list a copy (folder, tar shards, parquet, .npz) as a catalog",
                            epilog=epilog)
    b.add_argument("path", help="a folder tree, a .tar shard or folder of shards, a .parquet file or folder, an .npz")
    b.add_argument("-o", "--output", required=True, metavar="CATALOG",
                   help="catalog file to write (a name ending in .zst is Zstandard-compressed for transport)")
    b.add_argument("--id", dest="id_rule", default="stem", help=_ID_HELP)
    b.add_argument("--group", default="none",
                   help="group field: none (default), parent (the item's folder name) or prefix:SEP (the id up to "
                        "its first SEP, e.g. prefix:_ for ImageNet synsets)")
    b.add_argument("--no-content", action="store_true", help="ids only, no per-item SHA-256")
    b.add_argument("--kind", choices=kinds, default="auto", help="layout of PATH (default: detected)")
    b.add_argument("--workers", type=positive_int, default=None, help="threads hashing files (default: up to 8)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=_cmd_build)

    r = commands.add_parser("resolve", help="map a local copy of any layout onto a catalog: present, missing, extra",
                            epilog=epilog)
    r.add_argument("local", help="the local copy: folder tree, tar shards, parquet files or .npz")
    r.add_argument("--catalog", required=True, metavar="CATALOG")
    r.add_argument("--id", dest="id_rule", default="stem", help=_ID_HELP)
    r.add_argument("--kind", choices=kinds, default="auto", help="layout of LOCAL (default: detected)")
    r.add_argument("--no-content", action="store_true",
                   help="do not hash the local items against the catalog's digests")
    r.add_argument("--index", metavar="PATH", help="where to cache the resolution (default: beside the catalog)")
    r.add_argument("--rebuild", action="store_true", help="ignore a cached resolution and list the copy again")
    r.add_argument("--workers", type=positive_int, default=None, help="threads hashing files (default: up to 8)")
    r.add_argument("--json", action="store_true",
                   help="one JSON object: present, missing, extra (counts), missing_ids, extra_ids, differ, ...")
    r.set_defaults(func=_cmd_resolve)

    s = commands.add_parser("show", help="a catalog's size, fingerprint and first ids", epilog=epilog)
    s.add_argument("catalog", metavar="CATALOG")
    s.add_argument("--head", type=int_at_least(0), default=10, help="ids to show (default 10)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_show)
