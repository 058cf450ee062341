"""Decoding the critical sections entry by entry, a chunk at a time.

The index and label sections are decoded together, ``CHUNK`` entries of each
per step, so a decoder stops at the first entry that breaks a rule in either
body: a bad label at entry 0 costs one chunk, not the decode of a body that
declares 2**27 indices. The output arrays grow with the entries decoded
(doubling, by ``ndarray.resize``), so a refused payload holds only what it
decoded before its first bad entry (spec/FORMAT.md 9, step 8b, and 13).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

# Entries decoded per step: a multiple of 128 (the index-delta block) and of 8
# (so packed labels of any width start on a byte). The step's buffers, a few
# MiB, are the working set beyond the output arrays.
CHUNK = 1 << 16

__all__ = ["CHUNK", "EntryReader", "Growing", "read_entries"]


class EntryReader(Protocol):
    """The entries of one critical section body, read in order."""

    def take(self, count: int, first: int) -> np.ndarray:
        """The next *count* entries; *first* is the number of entries already
        taken (a multiple of CHUNK), for error messages."""
        ...

    def finish(self) -> None:
        """After all k entries: check what follows them in the body."""
        ...


class Growing:
    """An output array of *total* entries, allocated as the entries arrive."""

    def __init__(self, dtype, total: int) -> None:
        self.total = total
        self.filled = 0
        self._array = np.empty(min(total, CHUNK), dtype=dtype)

    def append(self, values: np.ndarray) -> None:
        end = self.filled + values.size
        if end > self._array.size:
            # No view of the array exists outside this object, so resizing in
            # place (realloc) is safe; doubling keeps the copies linear.
            self._array.resize(min(self.total, max(end, 2 * self._array.size)), refcheck=False)
        self._array[self.filled : end] = values
        self.filled = end

    def result(self) -> np.ndarray:
        assert self.filled == self.total
        return self._array


def read_entries(readers: list[tuple[EntryReader, type]], count: int) -> list[np.ndarray]:
    """Decode *count* entries from each reader, CHUNK at a time, all readers in
    step; then let each check the rest of its body. Returns one array per reader."""
    outputs = [Growing(dtype, count) for _, dtype in readers]
    for first in range(0, count, CHUNK):
        n = min(CHUNK, count - first)
        for (reader, _), output in zip(readers, outputs):
            output.append(reader.take(n, first))
    for reader, _ in readers:
        reader.finish()
    return [output.result() for output in outputs]
