"""``plada``: encode, decode, inspect, verify and compare PLADA payloads; hash reference sets;
build and resolve catalogs; export a payload's selection for other training code (``plada export``);
check another decoder (``plada conformance``).

Exit status: 0 success; 1 the payload is invalid, exceeds a limit or does not
match the reference set; 2 bad usage: a bad option or input file, an invalid
selection to encode, an unreadable or unwritable file, or a reference set that
cannot be fingerprinted or changed since its manifest was written; 141 the
reader of standard output went away (``plada decode p -o - | head``), silently,
as for a program SIGPIPE ended; 130 interrupted (Ctrl-C: one line, no output
file left half-written). ``inspect`` still prints the header and sections
of a payload whose body does not decode, then exits 1.
Every error is one line on standard error: ``plada <command>: error: ...``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from . import _cli_catalog, _cli_conformance, _cli_export, bandwidth, codecs
from ._atomic import write_atomically
from ._cli_errors import UsageError
from ._constants import (
    COMPRESSION_NAMES,
    DEFAULT_EFFORT,
    DEFAULT_MAX_ANCILLARY_BYTES,
    DEFAULT_MAX_COUNT,
    DEFAULT_MAX_SECTION_BYTES,
    EFFORTS,
)
from ._decode import decode, inspect, verify
from ._encode import encode
from ._errors import EncodeError, PayloadError, ReferenceSetError
from ._read import DEFAULT_MAX_TOTAL_LENGTH, read_payload
from ._reference import ReferenceSet
from ._results import Payload, PayloadInfo

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE
EXIT_INTERRUPTED = 130  # 128 + SIGINT
_EPILOG = (
    "exit status: 0 success; 1 invalid payload, limit exceeded or reference mismatch; "
    "2 usage error, bad input file, invalid selection, or a reference set that cannot be "
    "hashed or changed since its manifest; 130 interrupted (Ctrl-C); 141 the output pipe closed early "
    "(as after SIGPIPE)"
)
# Commands whose input is a payload: an unexpected ValueError there means the payload is bad.
_PAYLOAD_COMMANDS = ("decode", "inspect", "verify", "compare")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (``plada <cmd>: error: ...``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


_positive_int = _cli_catalog.int_at_least(1)


def _read_text(path: Path, what: str, limit: int | None = None) -> str:
    """The UTF-8 text of *path*; with *limit*, refused past that many bytes
    without reading more (``--class-names /dev/zero`` stops after *limit* + 1)."""
    with open(path, "rb") as fh:
        data = fh.read() if limit is None else fh.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise UsageError(f"{path}: {what} is over {limit} bytes, more than a payload's ancillary section "
                         f"may hold by default (max_ancillary_bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start]
        raise UsageError(f"{path}: {what} is not UTF-8 text (byte 0x{bad:02x} at offset {exc.start})") from None
    # A byte-order mark (Windows editors write one) is not part of the first line's text.
    return text[1:] if text.startswith("\ufeff") else text


# A CSV field: a decimal integer, optionally signed and padded with spaces; not
# Python's int() syntax, which also reads "1_0" as 10 and "١" as 1.
_CSV_INTEGER = re.compile(r"[ \t]*-?[0-9]+[ \t]*")


def _scalar(path: Path, data: Any, key: str) -> int | None:
    if key not in data:
        return None
    value = data[key]
    if value.shape != () or value.dtype.kind not in "iu":
        raise UsageError(
            f"{path}: {key!r} must be a single integer, got an array of shape {value.shape} and dtype {value.dtype}"
        )
    return int(value)


def _read_selection(path: Path) -> dict:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                if "indices" not in data or "labels" not in data:
                    raise UsageError(f"{path}: an .npz input needs arrays 'indices' and 'labels'")
                out = {"indices": data["indices"], "labels": data["labels"]}
                for key in ("n_ref", "n_classes"):
                    out[key] = _scalar(path, data, key)
                return out
        except (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error, KeyError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise UsageError(f"{path}: cannot read .npz ({exc})") from None
    if suffix == ".csv":
        text = _read_text(path, "the CSV file")
        text = text[1:] if text.startswith("\ufeff") else text  # a byte-order mark (Excel's UTF-8 CSV)
        indices, labels = [], []
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != ["index", "label"]:
            raise UsageError(f"{path}:1: a CSV input starts with the header 'index,label' (two columns), "
                             f"got {header!r}")
        for row in reader:
            if not row:
                continue
            if len(row) != 2 or not all(_CSV_INTEGER.fullmatch(field) for field in row):
                raise UsageError(f"{path}:{reader.line_num}: expected two decimal integers 'index,label', "
                                 f"got {row!r}")
            indices.append(int(row[0]))
            labels.append(int(row[1]))
        try:
            return {"indices": np.array(indices, dtype=np.int64), "labels": np.array(labels, dtype=np.int64)}
        except OverflowError:
            raise UsageError(f"{path}: an index or label does not fit a 64-bit integer") from None
    raise UsageError(f"{path}: input must be .npz or .csv")


def _reference_from(args) -> ReferenceSet | None:
    """The set named by --catalog (a copy named by --reference is resolved
    against it), or by --reference, verified through --manifest's cache."""
    if getattr(args, "catalog", None):
        if getattr(args, "manifest", None) or getattr(args, "rehash", False):
            raise UsageError("--manifest and --rehash describe a reference set's layout; with --catalog, "
                             "--reference LOCAL is resolved against the catalog instead")
        catalog = _cli_catalog.open_catalog(args.catalog)
        if getattr(args, "reference", None):
            args.resolution = _cli_catalog.resolve_local(catalog, args)
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


def _write_stdout(data: bytes) -> None:
    """All of *data* to standard output. A large write to a pipe can return
    short when the reader goes away (``| head -c 1``): write the rest until
    the pipe says so (BrokenPipeError, exit 141), never drop it silently."""
    sys.stdout.flush()
    out = sys.stdout.buffer
    view = memoryview(data)
    while view:
        written = out.write(view)
        view = view[written if written is not None else 0 :]
    out.flush()


def _print(text: str) -> None:
    _write_stdout((text + "\n").encode("utf-8"))


def _write_output(target: str, data: bytes) -> None:
    if target == "-":
        _write_stdout(data)
    else:  # a temporary file beside it, then a rename; a FIFO, device or link is refused
        write_atomically(target, lambda fh: fh.write(data))


def _read(args) -> bytes:
    return read_payload(args.payload, max_total_length=args.max_total_length)


def _cmd_encode(args) -> int:
    selection = _read_selection(Path(args.input))
    n_classes = args.n_classes if args.n_classes is not None else selection.get("n_classes")
    if n_classes is None:
        raise UsageError("the number of classes is needed: pass --n-classes C (or store 'n_classes' in the .npz)")
    reference: ReferenceSet | bytes | None = _reference_from(args)
    if args.fingerprint:
        if reference is not None:
            given = "--catalog" if getattr(args, "catalog", None) else "--reference"
            raise UsageError(f"give {given} or --fingerprint, not both")
        try:
            reference = bytes.fromhex(args.fingerprint)
        except ValueError:
            raise UsageError("--fingerprint takes 64 hex digits") from None
        if not any(reference):
            raise UsageError("an all-zero --fingerprint means 'unbound': leave --fingerprint out")
    n_ref = args.n_ref if args.n_ref is not None else selection.get("n_ref")
    if isinstance(reference, ReferenceSet) and n_ref is None:
        n_ref = reference.n_ref
    if n_ref is None:
        raise UsageError("the reference set's size is needed: give --n-ref N (or --reference / --catalog, "
                         "or an n_ref field in the .npz)")
    class_names = None
    if args.class_names:
        class_names = _read_text(Path(args.class_names), "the class-names file",
                                 DEFAULT_MAX_ANCILLARY_BYTES).splitlines()
    metadata: dict[str, Any] = {}
    if args.metadata_json:
        path = Path(args.metadata_json)
        try:
            loaded = json.loads(_read_text(path, "the metadata file", DEFAULT_MAX_ANCILLARY_BYTES))
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(loaded, dict):
            raise UsageError(f"{path}: --metadata-json must hold a JSON object {{...}}, not a {type(loaded).__name__}")
        metadata.update(loaded)
    for item in args.meta or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--meta takes KEY=VALUE, got {item!r}")
        try:
            metadata[key] = json.loads(value)
        except json.JSONDecodeError:
            metadata[key] = value
    if args.level is not None and args.compression == "none":
        raise UsageError("--level sets the Zstandard level; with --compression none nothing is compressed")
    data = encode(
        selection["indices"], selection["labels"], n_ref=n_ref, n_classes=n_classes,
        reference=reference, class_names=class_names, task_name=args.task_name,
        metadata=metadata or None, index_codec=args.index_codec, label_codec=args.label_codec,
        compression=args.compression, zstd_level=args.level, effort=args.effort,
    )
    _write_output(args.output, data)
    where = "standard output" if args.output == "-" else args.output
    status = f"wrote {where}: {len(data)} bytes, {len(selection['indices'])} entries"
    if args.output == "-":  # the status line goes to stderr when stdout carries the payload
        print(status, file=sys.stderr)
    else:
        _print(status)
    return EXIT_OK


def _decode(args, data: bytes, reference: ReferenceSet | None = None) -> Payload:
    return decode(data, reference=reference, max_count=args.max_count,
                          max_section_bytes=args.max_section_bytes)


def _strict_json(value: Any) -> str:
    """*value* as strict JSON text that encodes to UTF-8, or a PayloadError:
    never ``Infinity`` or a lone surrogate, which no JSON reader accepts."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
    except ValueError as exc:  # inf/nan numbers, lone surrogates
        raise PayloadError(f"the payload holds a value JSON cannot represent ({exc})") from None
    return text


def _json_text(value: Any) -> bytes:
    return (_strict_json(value) + "\n").encode("utf-8")


def _cmd_decode(args) -> int:
    data = _read(args)
    payload = _decode(args, data, _reference_from(args))
    if getattr(args, "resolution", None) is not None:
        _cli_catalog.report_selected(args.resolution, payload.indices)
    fmt = args.format or (Path(args.output).suffix.lstrip(".").lower() if args.output != "-" else "json")
    if fmt == "npz":
        archive = io.BytesIO()  # a file object, so the file is named exactly -o (np.savez would append ".npz")
        np.savez(archive, indices=payload.indices, labels=payload.labels,
                 n_ref=payload.n_ref, n_classes=payload.n_classes)
        _write_output(args.output, archive.getvalue())
        return EXIT_OK
    if fmt == "csv":
        buffer = io.StringIO()
        buffer.write("index,label\n")
        for index, label in zip(payload.indices.tolist(), payload.labels.tolist()):
            buffer.write(f"{index},{label}\n")
        text = buffer.getvalue().encode("utf-8")
    elif fmt == "json":
        text = _json_text(payload.to_dict())
    else:
        raise UsageError(f"unknown output format {fmt!r}; use --format npz, csv or json")
    _write_output(args.output, text)
    return EXIT_OK


def _bits(nbytes: float, count: int) -> str:
    return "-" if count == 0 else f"{8 * nbytes / count:.2f}"


def _format_table(info: PayloadInfo, payload: Payload | None) -> str:
    """The inspect table; *payload* is None when a body did not decode (the
    header and section framing, which ``inspect`` checks, are still shown)."""
    k = info.count
    lines = [
        f"PLADA payload, format {info.version[0]}.{info.version[1]}, {info.total_length} bytes, "
        f"{_bits(info.total_length, k)} bits per (index, label) pair",
        f"  reference   n_ref = {info.n_ref}, fingerprint = "
        + (info.fingerprint.hex() if info.fingerprint else "(unbound)"),
        f"  selection   k = {k} entries, C = {info.n_classes} classes",
    ]
    if payload is None:
        lines.append("  contents    not shown: the payload does not decode (error below)")
    elif payload.task_name is not None:
        lines.append(f"  task        {_strict_json(payload.task_name)}")
    if payload is not None and payload.class_names is not None:
        more = ", ..." if len(payload.class_names) > 8 else ""
        shown = ", ".join(_strict_json(n) for n in payload.class_names[:8]) + more
        lines.append(f"  classes     {shown}")
    if payload is not None and payload.metadata:
        lines.append("  metadata")
        for key, value in payload.metadata.items():
            lines.append(f"    {_strict_json(key)} = {_strict_json(value)}")
    lines += [
        "",
        f"  {'section':<14}{'codec':<15}{'compr.':<7}{'raw B':>11}{'stored B':>11}{'offset':>9}{'bits/pair':>11}",
    ]
    for s in info.sections:
        name = s.name + ("" if s.understood else " (skipped)")
        lines.append(
            f"  {name:<14}{s.codec_name:<14} {s.compression_name:<7}{s.raw_length:>11}"
            f"{s.stored_length:>11}{s.offset:>9}{_bits(s.stored_length, k):>11}"
        )
    lines.append("  (bits/pair: a section's stored body bytes x 8 / k; framing not included)")
    return "\n".join(lines)


def _cmd_inspect(args) -> int:
    data = _read(args)
    info = inspect(data)
    try:
        payload: Payload | None = _decode(args, data)  # for metadata, class names and task name
        problem = None
    except PayloadError as exc:  # a damaged body or a decode limit: still show what inspect has checked
        payload, problem = None, exc
    if args.json:
        out = info.to_dict()
        k = info.count
        out["bits_per_pair"] = None if k == 0 else 8 * info.total_length / k
        for section in out["sections"]:
            section["bits_per_pair"] = None if k == 0 else 8 * section["stored_length"] / k
        if payload is not None:
            out.update(class_names=None if payload.class_names is None else list(payload.class_names),
                       task_name=payload.task_name, metadata=payload.metadata)
        else:
            out.update(class_names=None, task_name=None, metadata=None,
                       error=f"{type(problem).__name__}: {problem}")
        _write_stdout(_json_text(out))
    else:
        _print(_format_table(info, payload))
    if problem is not None:
        return _error("inspect", f"{type(problem).__name__}: {problem}", EXIT_INVALID)
    return EXIT_OK


def _cmd_verify(args) -> int:
    reference = _reference_from(args)
    data = _read(args)  # once: standard input cannot be read twice
    checked = "checksums and content" + (" and reference fingerprint" if reference else "")
    if getattr(args, "catalog", None):
        checked = "checksums and content and the catalog's fingerprint"
    resolution = getattr(args, "resolution", None)
    if resolution is None:
        if args.strict:
            raise UsageError("--strict checks a local copy: give --catalog C --reference LOCAL")
        info = verify(data, reference=reference, max_count=args.max_count, max_section_bytes=args.max_section_bytes)
        count = info.count
    else:
        # decode() checks what verify() does and returns the selection too: one pass, not two.
        indices = _decode(args, data, reference).indices
        count = len(indices)
        # The fingerprint binds the payload to the catalog, not to this copy: say what the copy
        # holds of the selection (and, with digests, whether its bytes are the catalog's).
        missing, differ = _cli_catalog.report_selected(
            resolution, indices, stream=sys.stdout, content=resolution.catalog.has_digests and not args.no_content,
            workers=args.workers)
        if args.strict and (missing or differ):
            return _error("verify", f"{args.payload}: of the {len(indices)} selected items, {missing} are missing "
                          f"from {args.reference} and {differ} differ in content (--strict)", EXIT_INVALID)
    _print(f"OK: {args.payload}: {count} entries, {len(data)} bytes; {checked} verified")
    return EXIT_OK


def _cmd_compare(args) -> int:
    data = _read(args)
    payload = _decode(args, data)
    parts = bandwidth.PayloadParts.from_sections(inspect(data).sections)
    result = bandwidth.report(payload.indices, payload.labels, payload.n_ref, payload.n_classes, len(data), parts)
    if args.json:
        _write_stdout(_json_text(result.to_dict()))
        return EXIT_OK
    k = result.count
    pairs = float(parts.pairs_bytes)
    version = f"format {payload.version[0]}.{payload.version[1]}"
    bodies = " + ".join(f"{name} {size:,}" for name, size in parts.critical.items())
    rows: list[tuple[str, float | None]] = [(f"this payload's pairs ({version})", pairs),
                                            ("  its index + label bodies alone (no framing)",
                                             float(parts.pairs_body_bytes))]
    rows += [(f"paper Zstd-{bandwidth.ZSTD_LEVEL}, {name}", size) for name, size in result.layouts.items()]
    rows.append(("information limit log2 C(N,k) + k*H(labels)", result.information_limit_bits / 8))
    lines = [f"{args.payload}: k = {k} pairs over N = {payload.n_ref} items, C = {payload.n_classes} classes",
             "pairs against pairs: the paper's layouts count only the (index, label) pairs; so does the first "
             "row, the payload's",
             f"index and label sections ({bodies} B of bodies) and their framing ({parts.pairs_framing_bytes} B: "
             f"the {bandwidth.HEADER_BYTES}-byte header, {bandwidth.SECTION_FRAMING_BYTES} B a section)",
             f"  {'layout':<48}{'bytes':>12}{'bits/pair':>11}{'pairs / this':>14}"]
    for name, size in rows:
        if size is None:
            lines.append(f"  {name:<48}{'(bitmap over N items not computed: too large)':>37}")
            continue
        ratio = f"{pairs / size:.3f}" if size > 0 else "-"
        lines.append(f"  {name:<48}{size:>12,.1f}{_bits(size, k):>11}{ratio:>14}")
    if parts.ancillary:
        extra = ", ".join(f"{name} {size:,}" for name, size in parts.ancillary_framed().items())
        lines.append(f"whole payload: {len(data):,} B = the pairs' {parts.pairs_bytes:,} B + ancillary sections "
                     f"{parts.ancillary_bytes:,} B ({extra}; framing included), which the layouts do not carry")
    else:
        lines.append(f"whole payload: {len(data):,} B, the pairs alone (no ancillary sections)")
    _print("\n".join(lines))
    return EXIT_OK


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
        _print(json.dumps({"n_ref": reference.n_ref, "fingerprint": reference.hex}))
    else:
        _print(f"{reference.hex}  {reference.n_ref} items  {path}")
    return EXIT_OK


def _add_limits(parser) -> None:
    parser.add_argument("--max-count", type=_positive_int, default=DEFAULT_MAX_COUNT,
                        help="largest k accepted (default %(default)s)")
    parser.add_argument("--max-section-bytes", type=_positive_int, default=DEFAULT_MAX_SECTION_BYTES,
                        help="largest decompressed section accepted (default %(default)s)")
    parser.add_argument("--max-total-length", type=_positive_int, default=DEFAULT_MAX_TOTAL_LENGTH,
                        help="largest payload file accepted, checked from its header before reading "
                             "the rest (default %(default)s)")


def _add_hashing(parser) -> None:
    parser.add_argument("--workers", type=_positive_int, default=None,
                        help="threads hashing files (default: up to 8)")
    parser.add_argument("--no-content", action="store_true",
                        help="fingerprint item names only, not file contents")
    parser.add_argument("--reference-kind", choices=["auto", "folder", "tar"], default="auto",
                        help="how to read PATH: a folder of files, or tar shards (auto: a .tar file, or a "
                             "folder holding only .tar files, is a tar set)")
    _cli_catalog.add_catalog_option(parser)


def _add_reference(parser) -> None:
    parser.add_argument("--reference", metavar="PATH",
                        help="reference set to check the binding against: a folder, tar shards or a manifest file")
    parser.add_argument("--manifest", metavar="M",
                        help="manifest written by 'plada ref-hash PATH --manifest-out M': verify the set "
                             "against its cache (sizes, mtimes) instead of reading every file; if M does not "
                             "exist yet, the set is hashed and M written")
    parser.add_argument("--rehash", action="store_true",
                        help="with --manifest: read every file again and rewrite the manifest and its cache")
    _add_hashing(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="plada", description=__doc__.split("\n")[0].replace("``", ""), epilog=_EPILOG)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("encode", help="encode an (index, label) selection from .npz or .csv", epilog=_EPILOG)
    p.add_argument("input", help=".npz (arrays indices, labels; optional n_ref, n_classes) or .csv (index,label)")
    p.add_argument("-o", "--output", required=True, help="payload file, or - for standard output")
    p.add_argument("--n-ref", type=_positive_int)
    p.add_argument("--n-classes", type=_positive_int)
    _add_reference(p)
    p.add_argument("--fingerprint", help="bind to this fingerprint (64 hex digits)")
    p.add_argument("--class-names", metavar="FILE", help="UTF-8 text file, one class name a line")
    p.add_argument("--task-name")
    p.add_argument("--meta", action="append", metavar="KEY=VALUE", help="metadata entry (JSON value or string)")
    p.add_argument("--metadata-json", metavar="FILE", help="a JSON object of metadata entries")
    # Choices come from the codec registry, so a new codec is a new CLI choice.
    p.add_argument("--index-codec", default="auto", choices=["auto", *codecs.names("index")],
                   help="index codec (default: auto, the smallest of all)")
    p.add_argument("--label-codec", default="auto", choices=["auto", *codecs.names("labels")],
                   help="label codec (default: auto, the smallest of all)")
    p.add_argument("--compression", default="auto", choices=["auto", *COMPRESSION_NAMES.values()])
    p.add_argument("--level", type=int, default=None,
                   help="zstd level 1..22 of every frame (default: the levels --effort names)")
    p.add_argument("--effort", type=int, choices=EFFORTS, default=DEFAULT_EFFORT,
                   help="how hard to look for the last bytes, as zstd's levels: 1 fastest; 2 (default) "
                        "milliseconds (class names as format 1.2's text codec at level 7); 3 Zstandard "
                        "level 19 where a bound says it might win (seconds on uniform selections); 4 level "
                        "19 on every candidate")
    p.set_defaults(func=_cmd_encode)

    p = sub.add_parser("decode", help="decode a payload to .npz, .csv or .json", epilog=_EPILOG)
    p.add_argument("payload", help="payload file, or - for standard input")
    p.add_argument("-o", "--output", default="-", help="output file (default: JSON on standard output)")
    p.add_argument("--format", choices=["npz", "csv", "json"])
    _add_reference(p)
    _add_limits(p)
    p.set_defaults(func=_cmd_decode)

    p = sub.add_parser("inspect", help="show header, metadata and sections with bits per pair", epilog=_EPILOG)
    p.add_argument("payload", help="payload file, or - for standard input")
    p.add_argument("--json", action="store_true")
    _add_limits(p)
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("verify", help="check checksums, content and (optionally) the reference binding",
                       epilog=_EPILOG)
    p.add_argument("payload", help="payload file, or - for standard input")
    _add_reference(p)
    _add_limits(p)
    p.add_argument("--strict", action="store_true",
                   help="with --catalog and --reference LOCAL: exit 1 when LOCAL lacks a selected item or holds "
                        "one with other bytes than the catalog's (default: a note; a re-encoded copy differs "
                        "everywhere)")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("compare", help="payload size next to the paper's Zstd-19 layouts and the information limit",
                       epilog=_EPILOG)
    p.add_argument("payload", help="payload file, or - for standard input")
    p.add_argument("--json", action="store_true")
    _add_limits(p)
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("ref-hash", help="fingerprint a reference folder, tar shards or manifest", epilog=_EPILOG)
    p.add_argument("path", help="folder, .tar shard, folder of .tar shards, or manifest file")
    p.add_argument("--manifest-out", metavar="M",
                   help="hash everything and write the manifest to M and its cache to M.cache")
    p.add_argument("--manifest", metavar="M",
                   help="check PATH against M's cache (sizes, mtimes) without reading files; "
                        "if M does not exist yet, PATH is hashed and M written (with its cache)")
    p.add_argument("--rehash", action="store_true", help="with --manifest: read every file again, rewrite M")
    _add_hashing(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bars (they are shown on standard error when it is a terminal)")
    p.set_defaults(func=_cmd_ref_hash)

    _cli_catalog.add_catalog_command(sub, _EPILOG)
    _cli_conformance.add_conformance_command(sub, _EPILOG)
    _cli_export.add_export_command(sub, _EPILOG)
    return parser


def _error(command: str, message: str, code: int) -> int:
    print(f"plada{' ' if command else ''}{command}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return code


class _ClosedStream:
    """Stands for a standard stream the shell closed (``<&-``, ``>&-``: Python
    then holds None): any use is a usage error, not an AttributeError."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str):
        raise UsageError(f"standard {self._name} is closed")


# The one exception-to-exit map of both CLIs (plada_train.cli extends it with its DataError):
# (exception classes, exit status, whether the message names the exception class); first match
# wins. The input to encode or the reference set is a usage error (2), a payload's own fault 1.
EXIT_MAP: tuple[tuple[tuple[type[BaseException], ...], int, bool], ...] = (
    ((UsageError,), EXIT_USAGE, False),
    ((EncodeError, ReferenceSetError), EXIT_USAGE, True),
    ((PayloadError,), EXIT_INVALID, True),  # before ValueError: some payload errors are ValueErrors too
)


def exit_status(exc: BaseException, table: tuple = EXIT_MAP) -> tuple[int, str]:
    """(exit status, one-line message) of an error *table* knows; ValueError for one it does not."""
    for kinds, status, named in table:
        if isinstance(exc, kinds):
            return status, f"{type(exc).__name__}: {exc}" if named else str(exc)
    raise ValueError(f"no exit status for {type(exc).__name__}")


def main(argv: list[str] | None = None) -> int:
    if sys.stderr is None:  # nowhere to say anything: the exit status alone
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
    closed = {name: _ClosedStream(text) for name, text in (("stdin", "input"), ("stdout", "output"))
              if getattr(sys, name) is None}
    for name, stream in closed.items():
        setattr(sys, name, stream)
    try:
        return _main(argv)
    finally:
        for name in closed:
            setattr(sys, name, None)


def _main(argv: list[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:  # --help or a usage message into a closed stream
        return _error("", str(exc), EXIT_USAGE)
    command = args.command
    try:
        return args.func(args)
    except (UsageError, PayloadError) as exc:  # every error of the codec's tree, and bad usage
        status, message = exit_status(exc)
        return _error(command, message, status)
    except KeyboardInterrupt:
        # Ctrl-C: hashing threads stop within a chunk (_ordered_map), outputs are written
        # atomically, so there is nothing half-done to report beyond this line.
        print(f"plada {command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``plada decode p | head``): no message, and stdout
        # must not be flushed again at exit. 141 = 128 + SIGPIPE, the status of a
        # program the signal ended, so `set -o pipefail` scripts see what they expect.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _error(command, f"{where}{exc.strerror or exc}", EXIT_USAGE)
    except (ValueError, TypeError, RecursionError, MemoryError, OverflowError) as exc:
        # Last resort, so that no input gives a traceback: a payload command
        # failing here met a payload the decoder should have refused.
        code = EXIT_INVALID if command in _PAYLOAD_COMMANDS else EXIT_USAGE
        what = "invalid payload" if code == EXIT_INVALID else "invalid input"
        return _error(command, f"{what} ({type(exc).__name__}: {exc})", code)


if __name__ == "__main__":
    sys.exit(main())
