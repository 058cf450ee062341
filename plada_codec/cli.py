"""``plada``: encode, decode, inspect and verify PLADA payloads; hash reference sets.

Exit status: 0 success; 1 the payload is invalid, exceeds a limit or does not
match the reference set (a PayloadError); 2 bad usage or an unreadable or
unwritable file.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

import numpy as np

from . import _format
from ._errors import PayloadError
from ._reference import ReferenceSet

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A CLI input problem that is not about the payload format."""


def _read_selection(path: Path) -> dict:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                if "indices" not in data or "labels" not in data:
                    raise UsageError(f"{path}: an .npz input needs arrays 'indices' and 'labels'")
                out = {"indices": data["indices"], "labels": data["labels"]}
                for key in ("n_ref", "n_classes"):
                    if key in data:
                        out[key] = int(data[key])
                return out
        except (ValueError, OSError) as exc:
            raise UsageError(f"{path}: cannot read .npz ({exc})") from None
    if suffix == ".csv":
        indices, labels = [], []
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:2]] != ["index", "label"]:
                raise UsageError(f"{path}: a CSV input starts with the header 'index,label'")
            for lineno, row in enumerate(reader, start=2):
                if not row:
                    continue
                try:
                    indices.append(int(row[0]))
                    labels.append(int(row[1]))
                except (ValueError, IndexError):
                    raise UsageError(f"{path}:{lineno}: expected two integers, got {row!r}") from None
        return {"indices": np.array(indices, dtype=np.int64), "labels": np.array(labels, dtype=np.int64)}
    raise UsageError(f"{path}: input must be .npz or .csv")


def _reference_from(args) -> ReferenceSet | None:
    if getattr(args, "reference", None):
        path = Path(args.reference)
        if not path.exists():
            raise UsageError(f"{path}: no such folder or manifest")
        return ReferenceSet.from_path(path, content=not args.no_content)
    return None


def _cmd_encode(args) -> int:
    selection = _read_selection(Path(args.input))
    n_classes = args.n_classes or selection.get("n_classes")
    if n_classes is None:
        raise UsageError("--n-classes is required (or an 'n_classes' array in the .npz)")
    reference = _reference_from(args)
    if args.fingerprint:
        try:
            reference = bytes.fromhex(args.fingerprint)
        except ValueError:
            raise UsageError("--fingerprint takes 64 hex digits") from None
    n_ref = args.n_ref or selection.get("n_ref")
    if isinstance(reference, ReferenceSet):
        n_ref = n_ref or reference.n_ref
    class_names = None
    if args.class_names:
        class_names = Path(args.class_names).read_text(encoding="utf-8").splitlines()
    metadata = {}
    if args.metadata_json:
        metadata.update(json.loads(Path(args.metadata_json).read_text(encoding="utf-8")))
    for item in args.meta or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--meta takes KEY=VALUE, got {item!r}")
        try:
            metadata[key] = json.loads(value)
        except json.JSONDecodeError:
            metadata[key] = value
    data = _format.encode(
        selection["indices"], selection["labels"], n_ref=n_ref, n_classes=n_classes,
        reference=reference, class_names=class_names, task_name=args.task_name,
        metadata=metadata or None, index_codec=args.index_codec, label_codec=args.label_codec,
        compression=args.compression, zstd_level=args.level,
    )
    Path(args.output).write_bytes(data)
    print(f"wrote {args.output}: {len(data)} bytes, {len(selection['indices'])} entries")
    return EXIT_OK


def _read_payload(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


def _cmd_decode(args) -> int:
    payload = _format.decode(
        _read_payload(args.payload), reference=_reference_from(args),
        max_count=args.max_count, max_section_bytes=args.max_section_bytes,
    )
    fmt = args.format or (Path(args.output).suffix.lstrip(".").lower() if args.output != "-" else "json")
    if fmt == "npz":
        if args.output == "-":
            raise UsageError("npz output needs a file name")
        np.savez(args.output, indices=payload.indices, labels=payload.labels,
                 n_ref=payload.n_ref, n_classes=payload.n_classes)
        return EXIT_OK
    if fmt == "csv":
        buffer = io.StringIO()
        buffer.write("index,label\n")
        for index, label in zip(payload.indices.tolist(), payload.labels.tolist()):
            buffer.write(f"{index},{label}\n")
        text = buffer.getvalue()
    elif fmt == "json":
        text = json.dumps(payload.to_dict(), ensure_ascii=False) + "\n"
    else:
        raise UsageError(f"unknown output format {fmt!r}; use npz, csv or json")
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    return EXIT_OK


def _format_table(info: _format.PayloadInfo) -> str:
    lines = [
        f"PLADA payload, format {info.version[0]}.{info.version[1]}, {info.total_length} bytes",
        f"  reference   n_ref = {info.n_ref}, fingerprint = "
        + (info.fingerprint.hex() if info.fingerprint else "(unbound)"),
        f"  selection   k = {info.count} entries, C = {info.n_classes} classes",
        "",
        f"  {'section':<14}{'codec':<9}{'compr.':<7}{'raw B':>11}{'stored B':>11}{'offset':>9}",
    ]
    for s in info.sections:
        name = s.name + ("" if s.understood else " (skipped)")
        lines.append(
            f"  {name:<14}{s.codec_name:<9}{s.compression_name:<7}{s.raw_length:>11}"
            f"{s.stored_length:>11}{s.offset:>9}"
        )
    return "\n".join(lines)


def _cmd_inspect(args) -> int:
    info = _format.inspect(_read_payload(args.payload))
    print(json.dumps(info.to_dict(), indent=2) if args.json else _format_table(info))
    return EXIT_OK


def _cmd_verify(args) -> int:
    reference = _reference_from(args)
    info = _format.verify(
        _read_payload(args.payload), reference=reference,
        max_count=args.max_count, max_section_bytes=args.max_section_bytes,
    )
    checked = "checksums and content" + (" and reference fingerprint" if reference else "")
    print(f"OK: {args.payload}: {info.count} entries, {info.total_length} bytes; {checked} verified")
    return EXIT_OK


def _cmd_ref_hash(args) -> int:
    path = Path(args.path)
    if not path.exists():
        raise UsageError(f"{path}: no such folder or manifest")
    if path.is_dir() and args.manifest_out:
        with open(args.manifest_out, "wb") as out:
            reference = ReferenceSet.from_folder(path, content=not args.no_content, manifest_out=out)
    else:
        reference = ReferenceSet.from_path(path, content=not args.no_content)
    if args.json:
        print(json.dumps({"n_ref": reference.n_ref, "fingerprint": reference.hex}))
    else:
        print(f"{reference.hex}  {reference.n_ref} items  {path}")
    return EXIT_OK


def _add_limits(parser) -> None:
    parser.add_argument("--max-count", type=int, default=_format.DEFAULT_MAX_COUNT,
                        help="largest k accepted (default %(default)s)")
    parser.add_argument("--max-section-bytes", type=int, default=_format.DEFAULT_MAX_SECTION_BYTES,
                        help="largest decompressed section accepted (default %(default)s)")


def _add_reference(parser) -> None:
    parser.add_argument("--reference", metavar="PATH",
                        help="reference folder (hashed) or manifest file to check the binding against")
    parser.add_argument("--no-content", action="store_true",
                        help="hash a folder by file names only, not contents")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plada", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("encode", help="encode an (index, label) selection from .npz or .csv")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--n-ref", type=int)
    p.add_argument("--n-classes", type=int)
    _add_reference(p)
    p.add_argument("--fingerprint", help="bind to this fingerprint (64 hex digits)")
    p.add_argument("--class-names", metavar="FILE", help="UTF-8 text file, one class name a line")
    p.add_argument("--task-name")
    p.add_argument("--meta", action="append", metavar="KEY=VALUE", help="metadata entry (JSON value or string)")
    p.add_argument("--metadata-json", metavar="FILE")
    p.add_argument("--index-codec", default="auto", choices=["auto", "delta", "bitmap"])
    p.add_argument("--label-codec", default="auto", choices=["auto", "packed", "bytes"])
    p.add_argument("--compression", default="auto", choices=["auto", "none", "zstd"])
    p.add_argument("--level", type=int, default=_format.DEFAULT_ZSTD_LEVEL, help="zstd level 1..22")
    p.set_defaults(func=_cmd_encode)

    p = sub.add_parser("decode", help="decode a payload to .npz, .csv or .json")
    p.add_argument("payload", help="payload file, or - for standard input")
    p.add_argument("-o", "--output", default="-", help="output file (default: JSON on stdout)")
    p.add_argument("--format", choices=["npz", "csv", "json"])
    _add_reference(p)
    _add_limits(p)
    p.set_defaults(func=_cmd_decode)

    p = sub.add_parser("inspect", help="show header and sections without decoding")
    p.add_argument("payload")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("verify", help="check checksums, content and (optionally) the reference binding")
    p.add_argument("payload")
    _add_reference(p)
    _add_limits(p)
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("ref-hash", help="fingerprint a reference folder or manifest")
    p.add_argument("path")
    p.add_argument("--no-content", action="store_true", help="hash file names only")
    p.add_argument("--manifest-out", metavar="FILE", help="also write the canonical manifest")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_ref_hash)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except PayloadError as exc:
        print(f"plada {args.command}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except (UsageError, OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        print(f"plada {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
