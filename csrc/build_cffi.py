"""cffi build script for plada_codec._plada_core (out-of-line API mode).

Named in setup.py's ``cffi_modules``; the cdef is the block of plada_core.h
between the CDEF markers, read from the file. Run directly to build a copy
with sanitizers for CI:  python csrc/build_cffi.py --sanitize OUTDIR
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
HEADER = HERE / "plada_core.h"
SOURCES = [HERE / "plada_core.c", HERE / "plada_cm.c", HERE / "plada_tar.c"]
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-O1", "-g"]
# On every build of the C core (this one, scripts/sanitize.sh's, fuzz/build_libfuzzer.sh's).
WARNING_FLAGS = ["-Wall", "-Wextra", "-Wshadow"]


def warning_flags() -> list[str]:
    """WARNING_FLAGS, plus -Werror under PLADA_REQUIRE_C=1 (CI): a warning fails the build there.

    -Werror applies to csrc/ and to the cffi-generated wrapper alike; the
    wrapper's unused-parameter warnings are cffi's, not ours, so they stay off."""
    flags = list(WARNING_FLAGS)
    if os.environ.get("PLADA_REQUIRE_C") == "1":
        flags += ["-Werror", "-Wno-unused-parameter"]
    return flags


def read_cdef(header: Path = HEADER) -> str:
    text = header.read_text()
    begin, end = "/* CDEF BEGIN */", "/* CDEF END */"
    return text[text.index(begin) + len(begin) : text.index(end)]


def make_ffibuilder(sanitize: bool = False) -> FFI:
    ffi = FFI()
    ffi.cdef(read_cdef())
    flags = (SANITIZE_FLAGS if sanitize else ["-O3", "-std=c99"]) + warning_flags()
    ffi.set_source(
        "plada_codec._plada_core",
        '#include "plada_core.h"',
        # setuptools wants paths relative to setup.py; ffi.compile() changes directory.
        sources=[str(src) if sanitize else os.path.relpath(src) for src in SOURCES],
        include_dirs=[str(HERE) if sanitize else os.path.relpath(HERE)],
        extra_compile_args=flags,
        extra_link_args=SANITIZE_FLAGS[:1] if sanitize else [],
    )
    return ffi


ffibuilder = make_ffibuilder(sanitize=os.environ.get("PLADA_SANITIZE") == "1")

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--sanitize":
        make_ffibuilder(sanitize=True).compile(tmpdir=sys.argv[2], verbose=False)
    else:
        ffibuilder.compile(verbose=True)
