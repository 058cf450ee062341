"""A Hugging Face ``datasets`` copy as ``Dataset.save_to_disk`` writes it.

The folder holds ``state.json``, ``dataset_info.json`` and the data files
(``data-00000-of-00002.arrow``, ...), each an Arrow IPC *stream*. Items are
every row of the data files, in the order ``state.json`` lists them under
``_data_files`` (the order ``datasets.load_from_disk`` reads), then row order.
The image column ``image`` is read as the parquet kind reads it: a struct of
``bytes`` and ``path`` (the ``Image`` feature) or plain binary; names are
``image.path``, and ``column:NAME`` takes ids from another column.

The files are memory-mapped and listed once, message by message: an item's
location is the byte offset and length of its image bytes inside the file, so
reading one item is one positional read, with no Arrow decoding and nothing
shared between threads. That needs the bytes stored in place: compressed
bodies and dictionary batches (which ``datasets`` never writes) are refused
before anything is decompressed. Needs ``pyarrow`` (``pip install 'plada[parquet]'``).
"""

from __future__ import annotations

import errno
import json
import mmap
import os
import stat
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import NotARegularFileError, open_for_reading
from .._errors import ReferenceSetError
from ._base import Listing, PackedStrings, RowsKind, file_signature

IMAGE_COLUMN = "image"
STATE_FILE = "state.json"
INFO_FILE = "dataset_info.json"
DATASET_DICT_FILE = "dataset_dict.json"
#: state.json lists one short entry per data file; anything larger is not one.
MAX_STATE_BYTES = 16 << 20
#: the end-of-stream marker that closes every complete IPC stream
END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"


def _pyarrow() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.ipc  # noqa: F401  (pa.ipc is a submodule)
    except ImportError:
        raise ReferenceSetError(
            "reading a datasets (arrow) copy needs pyarrow: pip install 'plada[parquet]' (or pip install pyarrow)"
        ) from None
    return pa


def _open_regular(file: str) -> int:
    """A read-only descriptor of the regular file *file*; never blocks on a FIFO or follows a link."""
    try:
        return open_for_reading(file, follow=False)
    except NotARegularFileError:
        raise ReferenceSetError(f"{file}: not a regular file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ReferenceSetError(f"{file}: a symbolic link; a datasets copy's files are read only "
                                    "as regular files") from None
        raise ReferenceSetError(f"{file}: cannot be read ({exc.strerror or exc})") from None


# ----------------------------------------------------------------------------- state.json


def _read_state(folder: str) -> dict:
    path = os.path.join(folder, STATE_FILE)
    fd = _open_regular(path)
    try:
        with os.fdopen(fd, "rb") as fh:
            text = fh.read(MAX_STATE_BYTES + 1)
    except OSError as exc:
        raise ReferenceSetError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(text) > MAX_STATE_BYTES:
        raise ReferenceSetError(f"{path}: larger than {MAX_STATE_BYTES} bytes; not a datasets state file")
    try:
        state = json.loads(text.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ReferenceSetError(f"{path}: not valid JSON ({str(exc)[:200]})") from None
    if not isinstance(state, dict):
        raise ReferenceSetError(f"{path}: not a JSON object")
    return state


def _data_files(folder: str) -> list[str]:
    """The data files in ``state.json``'s ``_data_files`` order, each checked to be a
    regular file directly in *folder*."""
    where = os.path.join(folder, STATE_FILE)
    state = _read_state(folder)
    if state.get("_indices_data_files"):
        # datasets 1.x could save a row order apart from the files'; the files alone would mislead.
        raise ReferenceSetError(f"{where}: lists an indices mapping (_indices_data_files); save the copy again "
                                "with dataset.flatten_indices().save_to_disk(...)")
    entries = state.get("_data_files")
    if not isinstance(entries, list) or not entries:
        raise ReferenceSetError(f"{where}: '_data_files' is not a non-empty list of {{\"filename\": ...}}")
    files, seen = [], set()
    for number, entry in enumerate(entries):
        name = entry.get("filename") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            raise ReferenceSetError(f"{where}: _data_files[{number}] has no 'filename' string")
        # A plain name inside the folder: state.json must not point the reader anywhere else.
        if (not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name
                or os.path.isabs(name)):
            raise ReferenceSetError(f"{where}: _data_files[{number}] {name[:200]!r} is not a plain file name "
                                    "inside the folder")
        if name in seen:
            raise ReferenceSetError(f"{where}: _data_files lists {name!r} twice")
        seen.add(name)
        file = os.path.join(folder, name)
        try:
            mode = os.lstat(file).st_mode
        except OSError as exc:
            raise ReferenceSetError(f"{file}: listed in {STATE_FILE} but cannot be read "
                                    f"({exc.strerror or exc})") from None
        except ValueError:  # a name no file system can hold (a lone surrogate): quoted, printable
            raise ReferenceSetError(f"{where}: _data_files[{number}] {name[:200]!r} cannot be read "
                                    "(not a valid file name)") from None
        if not stat.S_ISREG(mode):
            raise ReferenceSetError(f"{file}: listed in {STATE_FILE} but not a regular file")
        files.append(file)
    return files


# ----------------------------------------------------------------------------- IPC stream


def _u32(buf: bytes, pos: int) -> int:
    return struct.unpack_from("<I", buf, pos)[0]


def _field(buf: bytes, table: int, index: int) -> int | None:
    """Where field *index* of the flatbuffer table at *table* is stored, or None when absent."""
    vtable = table - struct.unpack_from("<i", buf, table)[0]
    vtable_size = struct.unpack_from("<H", buf, vtable)[0]
    if 4 + 2 * index >= vtable_size:
        return None
    offset = struct.unpack_from("<H", buf, vtable + 4 + 2 * index)[0]
    return table + offset if offset else None


def _compressed(metadata: bytes) -> bool:
    """Whether a record-batch message says its body is compressed.

    The flag is the ``compression`` field (index 3) of the ``RecordBatch`` table in the
    message's flatbuffer (Arrow ``format/Message.fbs``): read before the body is decoded,
    because decompression would allocate whatever size the file declares.
    """
    message = _u32(metadata, 0)
    header = _field(metadata, message, 2)  # Message.header (slot 1 is its union type)
    if header is None:
        raise ValueError("record batch message has no header")
    return _field(metadata, header + _u32(metadata, header), 3) is not None


def _check_field_names(schema: Any) -> None:
    """Decode every field name, nested ones included: a name that is not UTF-8 raises
    UnicodeDecodeError here, not later in a message that quotes it."""
    pending = [(field.name, field.type) for field in schema]
    while pending:
        _, kind = pending.pop()
        pending.extend((child.name, child.type) for child in map(kind.field, range(kind.num_fields)))


class _Stream:
    """One memory-mapped ``.arrow`` data file, read as an IPC stream of record batches."""

    def __init__(self, file: str) -> None:
        self.pa = _pyarrow()
        self.file = file
        fd = _open_regular(file)
        try:
            self.size = os.fstat(fd).st_size
            if self.size == 0:
                raise ReferenceSetError(f"{file}: empty; not an Arrow IPC stream")
            self.map = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        except OSError as exc:
            raise ReferenceSetError(f"{file}: cannot be mapped ({exc.strerror or exc})") from None
        finally:
            os.close(fd)
        self.buffer = self.pa.py_buffer(self.map)
        self.base = self.buffer.address

    def batches(self) -> Iterator[tuple[Any, Any]]:
        """(schema, record batch) for each batch, in stream order."""
        pa = self.pa
        source = pa.BufferReader(self.buffer)
        try:
            reader = pa.ipc.MessageReader.open_stream(source)
            schema = None
            while True:
                try:
                    message = reader.read_next_message()
                except StopIteration:
                    break
                if schema is None:
                    if message.type != "schema":
                        raise ReferenceSetError(f"{self.file}: the stream does not start with a schema")
                    schema = pa.ipc.read_schema(message)
                    _check_field_names(schema)
                    continue
                if message.type == "dictionary":
                    raise ReferenceSetError(f"{self.file}: holds dictionary batches, which a datasets copy "
                                            "never does; refused")
                if message.type != "record batch":
                    raise ReferenceSetError(f"{self.file}: holds a {message.type!r} message; only record "
                                            "batches are read")
                if _compressed(message.metadata.to_pybytes()):
                    raise ReferenceSetError(f"{self.file}: holds compressed record batches, which a datasets "
                                            "copy never does; refused (items are read in place)")
                yield schema, pa.ipc.read_record_batch(message, schema)
        except ReferenceSetError:
            raise
        except (OSError, ValueError, TypeError, NotImplementedError, MemoryError, struct.error,
                pa.lib.ArrowException) as exc:
            raise ReferenceSetError(f"{self.file}: not a readable Arrow IPC stream ({str(exc)[:200]})") from None
        if schema is None:
            raise ReferenceSetError(f"{self.file}: not an Arrow IPC stream (no schema message)")
        # A stream cut at a batch boundary still parses: only its end marker shows it is whole.
        if source.tell() != self.size or self.map[-len(END_OF_STREAM):] != END_OF_STREAM:
            raise ReferenceSetError(f"{self.file}: truncated or followed by other bytes (the Arrow stream "
                                    "does not end with its end-of-stream marker at the end of the file)")

    def checked(self, array: Any, column: str) -> Any:
        """*array* after full validation (offsets inside their buffers, UTF-8 strings)."""
        try:
            array.validate(full=True)
        except (ValueError, self.pa.lib.ArrowException) as exc:
            raise ReferenceSetError(f"{self.file}: column {column!r} is corrupt ({str(exc)[:200]})") from None
        return array

    def positions(self, values: Any) -> tuple[np.ndarray, np.ndarray]:
        """(file offset, size) of each value of the binary array *values*; size -1 for a null."""
        n = len(values)
        if not n:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        _, offsets_buffer, data = values.buffers()
        bounds = _bounds(offsets_buffer, values, self.pa.types.is_large_binary(values.type))
        sizes = np.diff(bounds)
        start = 0
        if data is not None and data.size:
            start = data.address - self.base
            if not 0 <= start <= self.size - data.size:  # a copy, not the file's bytes
                raise ReferenceSetError(f"{self.file}: image bytes are not stored in place in the file")
        if values.null_count:
            sizes[~np.asarray(values.is_valid())] = -1
        return start + bounds[:-1], sizes


def _image_arrays(stream: _Stream, schema: Any, batch: Any) -> tuple[Any, Any]:
    """(bytes array, path array or None) of the image column, each with the row's nulls."""
    pa = stream.pa
    file = stream.file
    if IMAGE_COLUMN not in schema.names:
        raise ReferenceSetError(
            f"{file}: no {IMAGE_COLUMN!r} column (columns: {', '.join(schema.names)}); a datasets copy holds "
            f"its images in an {IMAGE_COLUMN!r} column (struct of bytes and path, or binary)"
        )
    image = stream.checked(batch.column(IMAGE_COLUMN), IMAGE_COLUMN)
    kind = image.type
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return image, None
    if not pa.types.is_struct(kind) or kind.get_field_index("bytes") < 0:
        raise ReferenceSetError(f"{file}: column {IMAGE_COLUMN!r} is {kind}, not a struct of bytes and path "
                                "or binary")
    children = dict(zip((kind.field(i).name for i in range(kind.num_fields)), image.flatten()))
    data, path = children["bytes"], children.get("path")
    if not (pa.types.is_binary(data.type) or pa.types.is_large_binary(data.type)):
        raise ReferenceSetError(f"{file}: column '{IMAGE_COLUMN}.bytes' is {data.type}, not binary")
    if path is not None and not (pa.types.is_string(path.type) or pa.types.is_large_string(path.type)
                                 or pa.types.is_null(path.type)):
        raise ReferenceSetError(f"{file}: column '{IMAGE_COLUMN}.path' is {path.type}, not a string")
    return data, path


def _bounds(offsets_buffer: Any, values: Any, large: bool) -> np.ndarray:
    """The N + 1 value offsets of a (validated) binary or string array, as int64."""
    width = np.dtype(np.int64 if large else np.int32)
    # The buffer may be longer than the array needs (and of any length): read only its part.
    return np.frombuffer(offsets_buffer, width, count=len(values) + 1,
                         offset=values.offset * width.itemsize).astype(np.int64)


def _packed(pa: Any, strings: Any) -> PackedStrings:
    """A string array as PackedStrings, nulls as empty names, without a Python object per row."""
    n = len(strings)
    if pa.types.is_null(strings.type):
        return PackedStrings(b"", np.zeros(n + 1, np.int64))
    if strings.null_count:
        strings = strings.fill_null("")
    _, offsets_buffer, data = strings.buffers()
    bounds = _bounds(offsets_buffer, strings, pa.types.is_large_string(strings.type))
    blob = data.slice(int(bounds[0]), int(bounds[-1] - bounds[0])).to_pybytes() if data is not None else b""
    return PackedStrings(blob, bounds - bounds[0])


class ArrowKind(RowsKind):
    name = "arrow"

    @classmethod
    def detect(cls, path: Path) -> bool:
        if not path.is_dir():
            return False
        try:
            if (path / DATASET_DICT_FILE).is_file() and not (path / STATE_FILE).exists():
                with os.scandir(path) as entries:
                    splits = [e.name for e in entries if e.is_dir() and (Path(e.path) / STATE_FILE).is_file()]
                if splits:  # DatasetDict.save_to_disk: one Dataset folder per split
                    raise ReferenceSetError(f"{path}: a datasets DatasetDict; give one split's folder "
                                            f"({', '.join(sorted(splits)[:5])})")
            if not ((path / STATE_FILE).is_file() and (path / INFO_FILE).is_file()):
                return False
            with os.scandir(path) as entries:
                return any(e.name.endswith(".arrow") for e in entries)
        except OSError as exc:
            raise ReferenceSetError(f"{path}: cannot list ({exc.strerror or exc})") from None

    @classmethod
    def scan(cls, path: str, workers: int | None = None, progress: Callable[[int], None] | None = None,
             previous: Listing | None = None) -> Listing:
        files = _data_files(path)
        names, sources, offsets, sizes = [], [], [], []
        for number, file in enumerate(files):
            stream = _Stream(file)
            for schema, batch in stream.batches():
                data, path_column = _image_arrays(stream, schema, batch)
                names.append(_packed(stream.pa, path_column) if path_column is not None
                             else PackedStrings(b"", np.zeros(batch.num_rows + 1, np.int64)))
                where, size = stream.positions(data)
                offsets.append(where)
                sizes.append(size)
                sources.append(np.full(batch.num_rows, number, np.int32))
        packed = PackedStrings.concatenate(names)
        if not len(packed):
            raise ReferenceSetError(f"{path}: the data files hold no rows")
        return Listing(cls, path, files, packed, np.concatenate(sources), np.concatenate(offsets),
                       np.concatenate(sizes), cls._signature(path, files))

    @classmethod
    def _signature(cls, path: str, files: list[str]) -> list[tuple[str, int, int]]:
        # state.json decides the order of the items: a rewritten one is a changed copy.
        return file_signature([os.path.join(path, STATE_FILE), *files])

    @classmethod
    def signature(cls, path: str) -> list[tuple[str, int, int]]:
        return cls._signature(path, _data_files(path))

    @classmethod
    def _column(cls, listing: Listing, column: str) -> Iterator[str]:
        for file in listing.sources:
            stream = _Stream(file)
            pa = stream.pa
            for schema, batch in stream.batches():
                if column not in schema.names:
                    raise ReferenceSetError(f"{file}: no column {column!r} (columns: {', '.join(schema.names)})")
                values = batch.column(column)
                kind = values.type
                # Integers and strings read the same in every tool; bytes, floats and lists do not.
                if not (pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)):
                    raise ReferenceSetError(f"{file}: column {column!r} is {kind}; an id column holds strings "
                                            "or integers")
                for value in stream.checked(values, column).to_pylist():
                    yield "" if value is None else str(value)

    @classmethod
    def read(cls, listing: Listing, i: int) -> bytes:
        size = int(listing.size[i])
        if size < 0:
            raise ReferenceSetError(f"{cls.where(listing, i)}: the row holds no image bytes")
        handles = listing.handles()
        number = int(listing.source[i])
        fh = handles.get(number)
        if fh is None:
            fh = handles[number] = os.fdopen(_open_regular(listing.sources[number]), "rb", buffering=0)
        offset = int(listing.offset[i])
        # Checked against the file before reading: a size from a damaged cache allocates nothing.
        if offset < 0 or offset + size > os.fstat(fh.fileno()).st_size:
            raise ReferenceSetError(f"{cls.where(listing, i)}: {size} bytes at offset {offset} lie past the end "
                                    "of the file; it changed since it was listed")
        # Positional reads: threads sharing one listing never move a shared file position.
        chunks, done = [], 0
        while done < size:
            chunk = os.pread(fh.fileno(), size - done, offset + done)
            if not chunk:
                raise ReferenceSetError(f"{cls.where(listing, i)}: truncated ({done} of {size} bytes at offset "
                                        f"{offset}); the file changed since it was listed")
            chunks.append(chunk)
            done += len(chunk)
        return b"".join(chunks)

    @classmethod
    def where(cls, listing: Listing, i: int) -> str:
        # Rows of one file are adjacent in the listing: the row is the distance from its first.
        number = listing.source[i]
        row = i - int(np.searchsorted(listing.source, number, side="left"))
        name = listing.names[i]
        return f"{listing.sources[number]} row {row}" + (f" ({name})" if name else "")


__all__ = ["ArrowKind"]
