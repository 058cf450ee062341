"""Reading the CLI's inputs (a payload, a selection as .npz or .csv, UTF-8 text files) and writing
its outputs (all of them to standard output, or a file written atomically)."""

from __future__ import annotations

import csv
import io
import re
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import write_atomically
from .._read import read_payload
from ._run import UsageError


def read_text(path: Path, what: str, limit: int | None = None) -> str:
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


def read_payload_arg(args) -> bytes:
    """The payload named by ``args.payload`` (a file, or - for standard input), within --max-total-length."""
    return read_payload(args.payload, max_total_length=args.max_total_length)


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


def read_selection(path: Path) -> dict:
    """The selection to encode: indices and labels (and n_ref, n_classes from an .npz) of *path*."""
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
        text = read_text(path, "the CSV file")
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


def write_stdout(data: bytes) -> None:
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


def print_line(text: str) -> None:
    """*text* and a newline to standard output, as :func:`write_stdout` writes."""
    write_stdout((text + "\n").encode("utf-8"))


def write_output(target: str, data: bytes) -> None:
    """*data* to standard output (``-``) or to the file *target*."""
    if target == "-":
        write_stdout(data)
    else:  # a temporary file beside it, then a rename; a FIFO, device or link is refused
        write_atomically(target, lambda fh: fh.write(data))
