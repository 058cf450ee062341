"""Hugging Face-style parquet files: rows with an ``image`` column.

The image column is a struct of ``bytes`` and ``path`` (the hub's image
feature) or plain binary. Item names are ``image.path`` (the original file
name), so the ``stem`` rule gives the same ids as the folder tree the files
were made from; ``column:NAME`` takes the ids from another column instead.
Rows are read a row group at a time (the last one decoded is kept per file),
so memory stays flat in N. Needs ``pyarrow`` (``pip install 'plada[parquet]'``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import ReferenceSetError
from ._base import Listing, PackedStrings, RowsKind, file_signature, holds_only, stem_of

IMAGE_COLUMN = "image"


def _pyarrow() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ReferenceSetError(
            "reading parquet needs pyarrow: pip install 'plada[parquet]' (or pip install pyarrow)"
        ) from None
    return pq


def _parquet_files(path: Path) -> list[str]:
    if path.is_file():
        return [str(path)]
    try:
        names = sorted(e.name for e in os.scandir(path) if e.name.endswith(".parquet")
                       and not e.name.startswith(".") and e.is_file(follow_symlinks=False))
    except OSError as exc:
        raise ReferenceSetError(f"{path}: cannot list ({exc.strerror or exc})") from exc
    if not names:
        raise ReferenceSetError(f"{path}: holds no .parquet files")
    return [os.path.join(path, n) for n in names]


def _open(file: str) -> Any:
    pq = _pyarrow()
    try:
        return pq.ParquetFile(file)
    except (OSError, ValueError) as exc:  # pyarrow.ArrowInvalid is a ValueError
        raise ReferenceSetError(f"{file}: not a readable parquet file ({exc})") from None


def _is_binary(kind: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind) \
        or (hasattr(pa.types, "is_binary_view") and pa.types.is_binary_view(kind))


def _is_text(kind: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_string(kind) or pa.types.is_large_string(kind) \
        or (hasattr(pa.types, "is_string_view") and pa.types.is_string_view(kind))


def _image_layout(pf: Any, file: str) -> str:
    """``struct`` or ``binary``: how *file* stores its images. Every other type is refused
    naming the column: an int read as image bytes would be a size to allocate, a list of
    ints would hash as bytes (spec/REFERENCE.md 8.2)."""
    import pyarrow as pa

    schema = pf.schema_arrow
    if IMAGE_COLUMN not in schema.names:
        raise ReferenceSetError(
            f"{file}: no {IMAGE_COLUMN!r} column (columns: {', '.join(schema.names)}); a parquet reference "
            f"holds its images in an {IMAGE_COLUMN!r} column (struct of bytes and path, or binary)"
        )
    kind = schema.field(IMAGE_COLUMN).type
    if _is_binary(kind):
        return "binary"
    if not pa.types.is_struct(kind) or kind.get_field_index("bytes") < 0:
        raise ReferenceSetError(f"{file}: column {IMAGE_COLUMN!r} is {kind}, not a struct of bytes and path or "
                                "binary")
    image_bytes = kind.field(kind.get_field_index("bytes")).type
    if not _is_binary(image_bytes):
        raise ReferenceSetError(f"{file}: column {IMAGE_COLUMN}.bytes is {image_bytes}, not binary")
    if kind.get_field_index("path") >= 0:
        path = kind.field(kind.get_field_index("path")).type
        if not _is_text(path):
            raise ReferenceSetError(f"{file}: column {IMAGE_COLUMN}.path is {path}, not a string")
    return "struct"


def _read(pf: Any, file: str, column: str, row_group: int | None = None) -> Any:
    """One column of *file* (of one row group), or ReferenceSetError naming the file and column
    (a damaged page, a wrong compression, a truncated file)."""
    try:
        if row_group is None:
            return pf.read(columns=[column]).column(0).combine_chunks()
        return pf.read_row_group(row_group, columns=[column]).column(0).combine_chunks()
    except (OSError, ValueError, TypeError, NotImplementedError) as exc:  # ArrowInvalid is a ValueError
        where = f"row group {row_group} of " if row_group is not None else ""
        raise ReferenceSetError(f"{file}: {where}column {column!r} cannot be read ({exc})") from None


def _row_group_bounds(pf: Any) -> np.ndarray:
    """The first row of each row group, then the row count."""
    counts = [pf.metadata.row_group(g).num_rows for g in range(pf.metadata.num_row_groups)]
    return np.cumsum([0, *counts])


class ParquetKind(RowsKind):
    name = "parquet"

    @classmethod
    def detect(cls, path: Path) -> bool:
        if path.is_file():
            return path.name.endswith(".parquet")
        return holds_only(path, ".parquet")

    @classmethod
    def scan(cls, path: str, workers: int | None = None, progress: Callable[[int], None] | None = None,
             previous: Listing | None = None) -> Listing:
        files = _parquet_files(Path(path))
        names, sources, offsets, layouts, row_groups = [], [], [], [], []
        for number, file in enumerate(files):
            pf = _open(file)
            layout = _image_layout(pf, file)
            layouts.append(layout)
            rows = pf.metadata.num_rows
            if layout == "struct" and pf.schema_arrow.field(IMAGE_COLUMN).type.get_field_index("path") >= 0:
                paths = _read(pf, file, f"{IMAGE_COLUMN}.path")
                values = paths.field("path").to_pylist() if hasattr(paths, "field") else paths.to_pylist()
                names.append(PackedStrings.pack(v or "" for v in values))
            else:
                names.append(PackedStrings.pack("" for _ in range(rows)))
            sources.append(np.full(rows, number, np.int32))
            offsets.append(np.arange(rows, dtype=np.int64))
            row_groups.append(_row_group_bounds(pf))
        packed = PackedStrings.concatenate(names)
        if not len(packed):
            raise ReferenceSetError(f"{path}: the parquet files hold no rows")
        offset = np.concatenate(offsets)
        return Listing(cls, path, files, packed, np.concatenate(sources), offset,
                       np.full(len(offset), -1, np.int64), file_signature(files),
                       extra={"layouts": layouts, "row_groups": row_groups})

    @classmethod
    def signature(cls, path: str) -> list[tuple[str, int, int]]:
        return file_signature(_parquet_files(Path(path)))

    @classmethod
    def restore(cls, listing: Listing) -> None:
        # The layouts are read again too: a cached listing's word is not trusted for how bytes are read.
        layouts, row_groups = [], []
        for file in listing.sources:  # one open file at a time
            pf = _open(file)
            layouts.append(_image_layout(pf, file))
            row_groups.append(_row_group_bounds(pf))
        listing.extra["layouts"], listing.extra["row_groups"] = layouts, row_groups
        rows = np.array([int(bounds[-1]) for bounds in row_groups], np.int64)
        if len(listing) and (np.any(listing.source >= len(rows)) or np.any(listing.offset >= rows[listing.source])):
            raise ReferenceSetError(f"{listing.root}: a cached listing names rows the parquet files do not hold")

    @classmethod
    def _column(cls, listing: Listing, column: str) -> Iterator[str]:
        """The ids in column *column*: text as it is, integers in decimal (the one portable
        text of a number); bytes, floats, booleans, lists and the rest are refused (spec 8.2)."""
        import pyarrow as pa

        for file in listing.sources:
            pf = _open(file)
            if column not in pf.schema_arrow.names:
                raise ReferenceSetError(f"{file}: no column {column!r} (columns: {', '.join(pf.schema_arrow.names)})")
            kind = pf.schema_arrow.field(column).type
            values = kind.value_type if pa.types.is_dictionary(kind) else kind
            if not (_is_text(values) or pa.types.is_integer(values)):
                raise ReferenceSetError(f"{file}: id column {column!r} is {kind}; ids are read from a column of "
                                        "strings or integers")
            for value in _read(pf, file, column).to_pylist():
                yield "" if value is None else str(value)

    @classmethod
    def read(cls, listing: Listing, i: int) -> bytes:
        handles = listing.handles()
        number, row = int(listing.source[i]), int(listing.offset[i])
        bounds = listing.extra["row_groups"][number]
        if not 0 <= row < int(bounds[-1]):
            raise ReferenceSetError(f"{listing.sources[number]}: no row {row} (it holds {int(bounds[-1])})")
        group = int(np.searchsorted(bounds, row, side="right")) - 1
        cached = handles.get(number)
        if cached is None or cached[1] != group:
            pf = cached[0] if cached is not None else _open(listing.sources[number])
            column = IMAGE_COLUMN + (".bytes" if listing.extra["layouts"][number] == "struct" else "")
            values = _read(pf, listing.sources[number], column, group)
            if hasattr(values, "field"):
                values = values.field("bytes")
            cached = handles[number] = (pf, group, values)
        value = cached[2][row - int(bounds[group])].as_py()
        if not isinstance(value, bytes):
            raise ReferenceSetError(f"{cls.where(listing, i)}: the row holds no image bytes")
        return value

    @classmethod
    def where(cls, listing: Listing, i: int) -> str:
        name = listing.names[i]
        return f"{listing.sources[listing.source[i]]} row {int(listing.offset[i])}" + (f" ({name})" if name else "")


__all__ = ["ParquetKind", "stem_of"]
