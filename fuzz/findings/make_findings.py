#!/usr/bin/env python3
"""Writes the minimized inputs of the campaign's findings (see README.md here).

    python fuzz/findings/make_findings.py      # writes the .bin files beside this script

Each input is the smallest payload we found that shows the finding. It is
built from the unbound empty payload (N = 1, C = 1, k = 0) plus one section,
so every byte that matters is obvious. The CRCs and lengths are computed as
spec/FORMAT.md sections 4 and 5.1 say.
"""

from __future__ import annotations

import sys
from pathlib import Path

import zstandard

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from payload_mutator import INDEX, LABELS, METADATA, Model, Section, serialize  # noqa: E402


def payload(extra: list[Section], *, n_ref: int = 1, n_classes: int = 1, count: int = 0,
            index: Section | None = None) -> bytes:
    sections = [index or Section(INDEX, 0, 0, 0, 0, 0, b""), Section(LABELS, 0, 0, 0, 0, 0, b"")]
    return serialize(Model(n_ref=n_ref, n_classes=n_classes, count=count, sections=sections + extra))


def zstd_section(stype: int, codec: int, raw: bytes) -> Section:
    body = zstandard.ZstdCompressor(level=19, write_content_size=True).compress(raw)
    return Section(stype, codec, 1, 0, len(raw), len(body), body)


def metadata(raw: bytes, compress: bool = False) -> Section:
    if compress:
        return zstd_section(METADATA, 0, raw)
    return Section(METADATA, 0, 0, 0, len(raw), len(raw), raw)


FINDINGS = {
    # decode raises a bare ValueError (Python's 4300-digit int limit), not a PayloadError
    "metadata-int-4301-digits": payload([metadata(b'{"a":' + b"9" * 4301 + b"}", compress=True)]),
    # decode accepts the number 1e999 and returns float('inf'); strict JSON cannot write it
    "metadata-1e999-inf": payload([metadata(b'{"a":1e999}')]),
    # decode accepts the escape of a lone surrogate; the string cannot be encoded as UTF-8
    "metadata-lone-surrogate": payload([metadata(b'{"a":"\\ud800"}')]),
    # 2^22-byte metadata [0,0,...] behind a small zstd frame: decode memory about 36x its size
    "metadata-4mib-zeros": payload([metadata(b'{"a":[' + b"0," * (1 << 21) + b"0]}", compress=True)]),
    # bitmap over N = 2^25 (4 MiB, all zero), k = 0: the pure path peaks at about 9x the raw size
    "bitmap-4mib-python": payload([], n_ref=1 << 25, index=zstd_section(INDEX, 1, bytes(1 << 22))),
}


def main() -> int:
    for name, data in FINDINGS.items():
        (HERE / f"{name}.bin").write_bytes(data)
        print(f"{name}.bin: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
