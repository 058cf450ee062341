"""``plada ref-hash``, and the options naming a reference set (``--reference``, ``--manifest``,
``--catalog``, ...) that the payload commands share."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .._reference import ReferenceSet
from . import catalog as _catalog
from ._io import print_line
from ._run import EXIT_OK, UsageError

_positive_int = _catalog.int_at_least(1)


def add_hashing(parser: argparse.ArgumentParser) -> None:
    """The options on how a reference set is read and hashed (and ``--catalog``)."""
    parser.add_argument("--workers", type=_positive_int, default=None,
                        help="threads hashing files (default: up to 8)")
    parser.add_argument("--no-content", action="store_true",
                        help="fingerprint item names only, not file contents")
    parser.add_argument("--reference-kind", choices=["auto", "folder", "tar"], default="auto",
                        help="how to read PATH: a folder of files, or tar shards (auto: a .tar file, or a "
                             "folder holding only .tar files, is a tar set)")
    _catalog.add_catalog_option(parser)


def add_reference_options(parser: argparse.ArgumentParser) -> None:
    """``--reference``, ``--manifest``, ``--rehash`` and the hashing options, read by :func:`reference_from`."""
    parser.add_argument("--reference", metavar="PATH",
                        help="reference set to check the binding against: a folder, tar shards or a manifest file")
    parser.add_argument("--manifest", metavar="M",
                        help="manifest written by 'plada ref-hash PATH --manifest-out M': verify the set "
                             "against its cache (sizes, mtimes) instead of reading every file; if M does not "
                             "exist yet, the set is hashed and M written")
    parser.add_argument("--rehash", action="store_true",
                        help="with --manifest: read every file again and rewrite the manifest and its cache")
    add_hashing(parser)


def reference_from(args) -> ReferenceSet | None:
    """The set named by --catalog (a copy named by --reference is resolved
    against it), or by --reference, verified through --manifest's cache."""
    if getattr(args, "catalog", None):
        if getattr(args, "manifest", None) or getattr(args, "rehash", False):
            raise UsageError("--manifest and --rehash describe a reference set's layout; with --catalog, "
                             "--reference LOCAL is resolved against the catalog instead")
        catalog = _catalog.open_catalog(args.catalog)
        if getattr(args, "reference", None):
            args.resolution = _catalog.resolve_local(catalog, args)
        return catalog.reference
    if not getattr(args, "reference", None):
        if getattr(args, "manifest", None) or getattr(args, "rehash", False):
            raise UsageError("--manifest and --rehash need --reference PATH (the reference set they describe)")
        return None
    path = Path(args.reference)
    if not path.exists():
        raise UsageError(f"{path}: no such folder, tar shard or manifest")
    return ReferenceSet.open(path, manifest=args.manifest, rehash=args.rehash, workers=args.workers,
                             content=not args.no_content, kind=args.reference_kind)


def _cmd_ref_hash(args) -> int:
    path = Path(args.path)
    if not path.exists():
        raise UsageError(f"{path}: no such folder, tar shard or manifest")
    if args.manifest_out and args.manifest:
        raise UsageError("give --manifest-out (hash and write) or --manifest (check against), not both")
    if args.rehash and not args.manifest:
        raise UsageError("--rehash rewrites the manifest given with --manifest M; without one every file is "
                         "read anyway")
    kwargs = dict(content=not args.no_content, workers=args.workers, kind=args.reference_kind,
                  progress=not args.quiet)
    if args.manifest_out:
        reference = ReferenceSet.record(path, args.manifest_out, **kwargs)
    else:
        reference = ReferenceSet.open(path, manifest=args.manifest, rehash=args.rehash, **kwargs)
    if args.json:
        print_line(json.dumps({"n_ref": reference.n_ref, "fingerprint": reference.hex}))
    else:
        print_line(f"{reference.hex}  {reference.n_ref} items  {path}")
    return EXIT_OK


def add_ref_hash_command(sub, epilog: str) -> None:
    """Register ``plada ref-hash`` on *sub*."""
    p = sub.add_parser("ref-hash", help="fingerprint a reference folder, tar shards or manifest", epilog=epilog)
    p.add_argument("path", help="folder, .tar shard, folder of .tar shards, or manifest file")
    p.add_argument("--manifest-out", metavar="M",
                   help="hash everything and write the manifest to M and its cache to M.cache")
    p.add_argument("--manifest", metavar="M",
                   help="check PATH against M's cache (sizes, mtimes) without reading files; "
                        "if M does not exist yet, PATH is hashed and M written (with its cache)")
    p.add_argument("--rehash", action="store_true", help="with --manifest: read every file again, rewrite M")
    add_hashing(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bars (they are shown on standard error when it is a terminal)")
    p.set_defaults(func=_cmd_ref_hash)
