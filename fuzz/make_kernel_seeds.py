#!/usr/bin/env python3
"""Seed corpora for the kernel harnesses.

    python fuzz/make_kernel_seeds.py kernels OUT_DIR   # fuzz/libfuzzer/fuzz_kernels
    python fuzz/make_kernel_seeds.py range OUT_DIR     # fuzz/libfuzzer/fuzz_range
    python fuzz/make_kernel_seeds.py cm OUT_DIR        # fuzz/fuzz_cm.py

kernels: for every valid spec vector, its decompressed index and label
bodies in fuzz_kernels' input layout (a kernel byte, a width byte, count
(u16), n_ref or n_classes (u64), then the body); counts above 65535 are
skipped. range / cm: format 1.1 context-model streams of small selections
(clustered, uniform, runs of labels, N and C at their bounds) made with the
codec's encoder, in the layouts of fuzz_range.c and fuzz_cm.py.
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


def cm_selections() -> list[tuple[list[int], list[int], int, int]]:
    """(indices, labels, n_ref, n_classes) covering the model's corners."""
    import random

    rng = random.Random(11)
    out = [([], [], 1, 1), ([0], [0], 1, 1), ([5], [2], 1 << 48, 1 << 24)]
    for n_ref, n_classes, k in ((100, 2, 30), (5000, 10, 200), (1 << 20, 1000, 300),
                                (1 << 48, 3, 50), (300, 1, 299), (64, 1 << 24, 64)):
        indices = sorted(rng.sample(range(min(n_ref, 1 << 30)), k))
        labels = [rng.randrange(n_classes) for _ in range(k)]
        out.append((indices, labels, n_ref, n_classes))
        runs = [labels[0] if labels else 0] * k  # one long run of a label
        out.append((indices, runs, n_ref, n_classes))
    start = rng.randrange(1000)
    out.append((list(range(start, start + 400)), [i % 3 for i in range(400)], 5000, 3))
    return out


def cm_seeds(kind: str) -> list[bytes]:
    from plada_codec import _cm_py

    seeds = []
    for indices, labels, n_ref, n_classes in cm_selections():
        for preset_id, preset in _cm_py.PRESETS.items():
            body = _cm_py.encode(indices, labels, n_ref, n_classes, preset_id)
            head = struct.pack("<HQI", len(indices), n_ref, n_classes)
            if kind == "cm":
                seeds.append(head + body)
            else:
                params = bytes([preset.slots, preset.mantissa_bits, preset.average_shift,
                                preset.rate_limit])
                seeds.append(params + head + body[1:])
    return seeds


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ("kernels", "range", "cm"):
        print("usage: make_kernel_seeds.py kernels|range|cm OUT_DIR", file=sys.stderr)
        return 2
    kind, target = argv[1], Path(argv[2])
    target.mkdir(parents=True, exist_ok=True)
    written = 0
    if kind == "kernels":
        for path in sorted((HERE.parent / "spec" / "vectors").glob("v1.*/*.bin")):
            for number, seed in enumerate(seeds_of(path.read_bytes())):
                (target / f"{path.parent.name}-{path.stem}-{number}").write_bytes(seed)
                written += 1
    else:
        for number, seed in enumerate(cm_seeds(kind)):
            (target / f"{kind}-{number:03d}").write_bytes(seed)
            written += 1
    print(f"make_kernel_seeds: {written} {kind} seeds in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
