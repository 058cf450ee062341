#!/usr/bin/env python3
"""Seed corpus for fuzz/libfuzzer/fuzz_kernels from the spec vectors.

    python fuzz/make_kernel_seeds.py OUT_DIR

For every valid vector, the decompressed index and label bodies are written
in fuzz_kernels' input layout (see fuzz/libfuzzer/fuzz_kernels.c): a kernel
byte, a width byte, count (u16), n_ref or n_classes (u64), then the body.
Counts above 65535 do not fit the layout and are skipped.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import payload_mutator as pm  # noqa: E402

UNPACK, DELTA, BITMAP, LABELS = 0, 1, 2, 3


def kernel_input(kernel: int, width_byte: int, count: int, param: int, body: bytes) -> bytes:
    return struct.pack("<BBHQ", kernel, width_byte, count, param) + body


def seeds_of(payload: bytes) -> list[bytes]:
    model = pm.parse(payload)
    if model is None or model.count > 0xFFFF:
        return []
    out = []
    width = (model.n_classes - 1).bit_length()
    for section in model.sections:
        raw = pm.raw_body(section)
        if raw is None:
            continue
        if section.type == pm.INDEX and section.codec == 0:
            out.append(kernel_input(DELTA, 0, model.count, model.n_ref, raw))
            blocks = -(-model.count // 128)
            if blocks and raw[:1]:  # the first block alone, for unpack_bits
                n = min(model.count, 128)
                out.append(kernel_input(UNPACK, raw[0], n, 0, raw[blocks:]))
        elif section.type == pm.INDEX and section.codec == 1:
            # bit 7 set: keep this n_ref instead of deriving it from the length
            out.append(kernel_input(BITMAP, 0x80, model.count, model.n_ref, raw))
        elif section.type == pm.LABELS and section.codec == 0:
            out.append(kernel_input(LABELS, 0x40, model.count, model.n_classes, raw))
            out.append(kernel_input(UNPACK, width, model.count, 0, raw))
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    target = Path(argv[1])
    target.mkdir(parents=True, exist_ok=True)
    written = 0
    for path in sorted((HERE.parent / "spec" / "vectors").glob("v1.*/*.bin")):
        for number, seed in enumerate(seeds_of(path.read_bytes())):
            (target / f"{path.parent.name}-{path.stem}-{number}").write_bytes(seed)
            written += 1
    print(f"make_kernel_seeds: {written} seeds in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
