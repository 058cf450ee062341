"""``plada encode``, ``decode``, ``inspect``, ``verify`` and ``compare``: the commands on one payload."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .. import codecs, paper_layouts
from .._constants import (
    COMPRESSION_NAMES,
    DEFAULT_EFFORT,
    DEFAULT_MAX_ANCILLARY_BYTES,
    DEFAULT_MAX_COUNT,
    DEFAULT_MAX_SECTION_BYTES,
    EFFORTS,
)
from .._decode import decode, inspect, verify
from .._encode import encode
from .._errors import PayloadError
from .._read import DEFAULT_MAX_TOTAL_LENGTH
from .._reference import ReferenceSet
from .._results import Payload, PayloadInfo
from . import catalog as _catalog
from ._io import print_line, read_payload_arg, read_selection, read_text, write_output, write_stdout
from ._run import EXIT_INVALID, EXIT_OK, UsageError, error
from .reference import add_reference_options, reference_from

# Commands whose input is a payload: an unexpected ValueError there means the payload is bad.
PAYLOAD_COMMANDS = ("decode", "inspect", "verify", "compare")
_positive_int = _catalog.int_at_least(1)


def _cmd_encode(args) -> int:
    selection = read_selection(Path(args.input))
    n_classes = args.n_classes if args.n_classes is not None else selection.get("n_classes")
    if n_classes is None:
        raise UsageError("the number of classes is needed: pass --n-classes C (or store 'n_classes' in the .npz)")
    reference: ReferenceSet | bytes | None = reference_from(args)
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
        class_names = read_text(Path(args.class_names), "the class-names file",
                                 DEFAULT_MAX_ANCILLARY_BYTES).splitlines()
    metadata: dict[str, Any] = {}
    if args.metadata_json:
        path = Path(args.metadata_json)
        try:
            loaded = json.loads(read_text(path, "the metadata file", DEFAULT_MAX_ANCILLARY_BYTES))
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
    write_output(args.output, data)
    where = "standard output" if args.output == "-" else args.output
    status = f"wrote {where}: {len(data)} bytes, {len(selection['indices'])} entries"
    if args.output == "-":  # the status line goes to stderr when stdout carries the payload
        print(status, file=sys.stderr)
    else:
        print_line(status)
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
    data = read_payload_arg(args)
    payload = _decode(args, data, reference_from(args))
    if getattr(args, "resolution", None) is not None:
        _catalog.report_selected(args.resolution, payload.indices)
    fmt = args.format or (Path(args.output).suffix.lstrip(".").lower() if args.output != "-" else "json")
    if fmt == "npz":
        archive = io.BytesIO()  # a file object, so the file is named exactly -o (np.savez would append ".npz")
        np.savez(archive, indices=payload.indices, labels=payload.labels,
                 n_ref=payload.n_ref, n_classes=payload.n_classes)
        write_output(args.output, archive.getvalue())
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
    write_output(args.output, text)
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
    data = read_payload_arg(args)
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
        write_stdout(_json_text(out))
    else:
        print_line(_format_table(info, payload))
    if problem is not None:
        return error("plada inspect", f"{type(problem).__name__}: {problem}", EXIT_INVALID)
    return EXIT_OK


def _cmd_verify(args) -> int:
    reference = reference_from(args)
    data = read_payload_arg(args)  # once: standard input cannot be read twice
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
        missing, differ = _catalog.report_selected(
            resolution, indices, stream=sys.stdout, content=resolution.catalog.has_digests and not args.no_content,
            workers=args.workers)
        if args.strict and (missing or differ):
            return error("plada verify", f"{args.payload}: of the {len(indices)} selected items, {missing} are "
                         f"missing from {args.reference} and {differ} differ in content (--strict)", EXIT_INVALID)
    print_line(f"OK: {args.payload}: {count} entries, {len(data)} bytes; {checked} verified")
    return EXIT_OK


def _cmd_compare(args) -> int:
    data = read_payload_arg(args)
    payload = _decode(args, data)
    parts = paper_layouts.PayloadParts.from_sections(inspect(data).sections)
    result = paper_layouts.report(payload.indices, payload.labels, payload.n_ref, payload.n_classes, len(data), parts)
    if args.json:
        write_stdout(_json_text(result.to_dict()))
        return EXIT_OK
    k = result.count
    pairs = float(parts.pairs_bytes)
    version = f"format {payload.version[0]}.{payload.version[1]}"
    bodies = " + ".join(f"{name} {size:,}" for name, size in parts.critical.items())
    rows: list[tuple[str, float | None]] = [(f"this payload's pairs ({version})", pairs),
                                            ("  its index + label bodies alone (no framing)",
                                             float(parts.pairs_body_bytes))]
    rows += [(f"paper Zstd-{paper_layouts.ZSTD_LEVEL}, {name}", size) for name, size in result.layouts.items()]
    rows.append(("information limit log2 C(N,k) + k*H(labels)", result.information_limit_bits / 8))
    lines = [f"{args.payload}: k = {k} pairs over N = {payload.n_ref} items, C = {payload.n_classes} classes",
             "pairs against pairs: the paper's layouts count only the (index, label) pairs; so does the first "
             "row, the payload's",
             f"index and label sections ({bodies} B of bodies) and their framing ({parts.pairs_framing_bytes} B: "
             f"the {paper_layouts.HEADER_BYTES}-byte header, {paper_layouts.SECTION_FRAMING_BYTES} B a section)",
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
    print_line("\n".join(lines))
    return EXIT_OK


def _add_limits(parser) -> None:
    parser.add_argument("--max-count", type=_positive_int, default=DEFAULT_MAX_COUNT,
                        help="largest k accepted (default %(default)s)")
    parser.add_argument("--max-section-bytes", type=_positive_int, default=DEFAULT_MAX_SECTION_BYTES,
                        help="largest decompressed section accepted (default %(default)s)")
    parser.add_argument("--max-total-length", type=_positive_int, default=DEFAULT_MAX_TOTAL_LENGTH,
                        help="largest payload file accepted, checked from its header before reading "
                             "the rest (default %(default)s)")


def add_payload_commands(sub, epilog: str) -> None:
    """Register ``plada encode``, ``decode``, ``inspect``, ``verify`` and ``compare`` on *sub*."""
    p = sub.add_parser("encode", help="encode an (index, label) selection from .npz or .csv", epilog=epilog)
    p.add_argument("input", help=".npz (arrays indices, labels; optional n_ref, n_classes) or .csv (index,label)")
    p.add_argument("-o", "--output", required=True, help="payload file, or - for standard output")
    p.add_argument("--n-ref", type=_positive_int)
    p.add_argument("--n-classes", type=_positive_int)
    add_reference_options(p)
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

    p = sub.add_parser("decode", help="decode a payload to .npz, .csv or .json", epilog=epilog)
    p.add_argument("payload", help="payload file, or - for standard input")
    p.add_argument("-o", "--output", default="-", help="output file (default: JSON on standard output)")
    p.add_argument("--format", choices=["npz", "csv", "json"])
    add_reference_options(p)
    _add_limits(p)
    p.set_defaults(func=_cmd_decode)

    p = sub.add_parser("inspect", help="show header, metadata and sections with bits per pair", epilog=epilog)
    p.add_argument("payload", help="payload file, or - for standard input")
    p.add_argument("--json", action="store_true")
    _add_limits(p)
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("verify", help="check checksums, content and (optionally) the reference binding",
                       epilog=epilog)
    p.add_argument("payload", help="payload file, or - for standard input")
    add_reference_options(p)
    _add_limits(p)
    p.add_argument("--strict", action="store_true",
                   help="with --catalog and --reference LOCAL: exit 1 when LOCAL lacks a selected item or holds "
                        "one with other bytes than the catalog's (default: a note; a re-encoded copy differs "
                        "everywhere)")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("compare", help="payload size next to the paper's Zstd-19 layouts and the information limit",
                       epilog=epilog)
    p.add_argument("payload", help="payload file, or - for standard input")
    p.add_argument("--json", action="store_true")
    _add_limits(p)
    p.set_defaults(func=_cmd_compare)

