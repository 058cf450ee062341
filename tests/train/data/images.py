"""Helpers shared by the tests of plada_train.data and plada_train.preprocess: tiny PNGs, the
file names of the generated folder, a counter of opened files and read bytes, the one-line check.

Imports no torch and no PIL at module level (PIL is imported by :func:`_png` when called), so that
collecting this folder in the codec environment (no torch, no PIL) still works.
"""

import builtins
import io
import os

import numpy as np
import pytest

N_IMAGES = 240
SIDE = 8


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


# Names chosen so that the canonical order (UTF-8 bytes of the relative path)
# differs from a case-insensitive, a locale or a "files before folders" order:
# "B" < "a" < "a.png" < "a/" < "a0" < "z" < "é" in UTF-8 bytes.
def _names(n: int) -> list[str]:
    stems = ["B", "a", "a0", "z", "\u00e9", "sub/x", "sub/Y", "a/inner", "sub2/deep/q"]
    return [f"{stems[i % len(stems)]}{i:04d}.png" for i in range(n)]


class OpenCounter:
    """Counts the files opened through builtins.open and the bytes read from them."""

    def __init__(self, monkeypatch):
        self.paths, self.bytes = [], 0
        real_open = builtins.open
        counter = self

        class Counting(io.BufferedReader):
            def read(self, size=-1):
                data = super().read(size)
                counter.bytes += len(data)
                return data

        def counting_open(path, mode="r", *args, **kwargs):
            handle = real_open(path, mode, *args, **kwargs)
            counter.paths.append(str(path))
            if mode == "rb" and isinstance(handle, io.BufferedReader):
                return Counting(handle.detach())
            return handle

        monkeypatch.setattr(builtins, "open", counting_open)
        # The codec's readers open a descriptor and read it by position (os.pread).
        real_os_open, real_pread = os.open, os.pread

        def counting_os_open(path, flags, *args, **kwargs):
            fd = real_os_open(path, flags, *args, **kwargs)
            counter.paths.append(os.fsdecode(path))
            return fd

        def counting_pread(fd, size, offset):
            data = real_pread(fd, size, offset)
            counter.bytes += len(data)
            return data

        monkeypatch.setattr(os, "open", counting_os_open)
        monkeypatch.setattr(os, "pread", counting_pread)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text
