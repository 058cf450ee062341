"""Payload sizes: plada formats 1.0 and 1.1 next to the paper's layouts and the information limit.

    python benchmarks/bandwidth.py            # prints markdown tables (a few minutes)
    python benchmarks/bandwidth.py --quick    # IN-1K and IN-21K 1% only

The paper's layouts ("A Dataset is Worth 1 MB", section 3.4): Raw Idx = int32 index + int16 label;
Compact Idx = delta in the smallest of 1/2/4 bytes + label in the smallest
type; "Zstd" = Zstandard level 19 on the compact Idx bytes or on the Bmp
layout (packed mask + labels). The paper does not say whether indices and
labels are compressed together; the smaller of together/separately is shown.
Format 1.0 = plada_codec with ``format_version="1.0"`` (level 19); format 1.1 =
the default encoder (every codec, including the context model of FORMAT.md 15).
The limit is log2 C(N, k) + k * H(labels) with H the selection's empirical
label entropy: what no code beats on a uniformly random selection. Also prints
decode peak memory against the size of the arrays returned.
"""

from __future__ import annotations

import math
import sys
import time
import tracemalloc
from functools import partial

import numpy as np
import zstandard

import plada_codec
from plada_codec.synthetic import clustered_selection, uniform_selection

IN21K, IN1K = 14_197_122, 1_281_167
CASES = [
    ("IN-21K 0.5%", IN21K, 70_986),
    ("IN-21K 1%", IN21K, 141_971),
    ("IN-21K 2%", IN21K, 283_942),
    ("IN-21K 5%", IN21K, 709_856),
    ("IN-21K 10%", IN21K, 1_419_712),
    ("IN-1K 1%", IN1K, 12_811),
]
QUICK = [CASES[1], CASES[5]]
N_CLASSES = 200


def _smallest(max_value: int) -> str:
    return "<u1" if max_value < 2**8 else "<u2" if max_value < 2**16 else "<u4"


def paper_sizes(indices: np.ndarray, labels: np.ndarray, n_ref: int) -> dict[str, int]:
    z = zstandard.ZstdCompressor(level=19)
    deltas = np.diff(indices, prepend=0)
    delta_bytes = deltas.astype(_smallest(int(deltas.max()))).tobytes()
    label_bytes = labels.astype(_smallest(int(labels.max()))).tobytes()
    mask = np.zeros(n_ref, bool)
    mask[indices] = True
    mask_bytes = np.packbits(mask).tobytes()

    def best(a: bytes, b: bytes) -> int:
        return min(len(z.compress(a + b)), len(z.compress(a)) + len(z.compress(b)))

    return {
        "raw_idx": 6 * indices.size,
        "compact_idx": len(delta_bytes) + len(label_bytes),
        "zstd_idx": best(delta_bytes, label_bytes),
        "zstd_bmp": best(mask_bytes, label_bytes),
    }


def limit_bytes(n_ref: int, labels: np.ndarray) -> float:
    """log2 C(N, k) + k * H(labels), in bytes."""
    count = labels.size
    log2_choose = (math.lgamma(n_ref + 1) - math.lgamma(count + 1) - math.lgamma(n_ref - count + 1)) / math.log(2)
    freq = np.bincount(labels) / count
    freq = freq[freq > 0]
    return (log2_choose - count * float(np.sum(freq * np.log2(freq)))) / 8


def kib(n: float) -> str:
    return f"{n / 1024:,.1f}"


def _timed(fn, repeat: int) -> tuple[object, float]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return result, best


def size_table(cases) -> str:
    rows = [
        "| selection | k | Raw Idx | Compact Idx | paper Zstd-19 Idx | paper Zstd-19 Bmp | format 1.0 | format 1.1 "
        "| 1.1 / 1.0 | 1.1 / best paper | limit | 1.1 / limit | 1.1 codec | 1.1 encode ms | 1.1 decode ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    v10 = plada_codec.PayloadEncoder(format_version="1.0", zstd_level=19)
    for label, n_ref, count in cases:
        for kind, make in (("clustered", clustered_selection), ("uniform", uniform_selection)):
            indices, labels = make(n_ref, count, N_CLASSES, seed=5)
            paper = paper_sizes(indices, labels, n_ref)
            old = v10.encode(indices, labels, n_ref=n_ref, n_classes=N_CLASSES)
            new, t_enc = _timed(partial(plada_codec.encode, indices, labels, n_ref=n_ref, n_classes=N_CLASSES), 3)
            _, t_dec = _timed(partial(plada_codec.decode, new), 5)
            section = plada_codec.inspect(new).sections[0]
            codec = section.codec_name + (f" ({('clustered', 'flat')[new[80 + 24]]})" if section.codec == 2 else "")
            best_paper = min(paper["zstd_idx"], paper["zstd_bmp"])
            limit = limit_bytes(n_ref, labels)
            rows.append(
                f"| {label} {kind} | {count:,} | {kib(paper['raw_idx'])} | {kib(paper['compact_idx'])} | "
                f"{kib(paper['zstd_idx'])} | {kib(paper['zstd_bmp'])} | {kib(len(old))} | {kib(len(new))} | "
                f"{len(new) / len(old):.3f} | {len(new) / best_paper:.3f} | {kib(limit)} | {len(new) / limit:.3f} | "
                f"{codec} | {t_enc * 1e3:,.0f} | {t_dec * 1e3:.1f} |"
            )
            print(rows[-1], file=sys.stderr, flush=True)
    return "\n".join(rows)


def memory_table(cases) -> str:
    rows = ["| selection | payload | backend | arrays returned | decode peak (tracemalloc) | ratio |",
            "|---|---|---|---:|---:|---:|"]
    for label, n_ref, count in cases:
        indices, labels = clustered_selection(n_ref, count, N_CLASSES, seed=5)
        payloads = {
            "1.0": plada_codec.PayloadEncoder(format_version="1.0", zstd_level=3).encode(
                indices, labels, n_ref=n_ref, n_classes=N_CLASSES),
            "1.1": plada_codec.encode(indices, labels, n_ref=n_ref, n_classes=N_CLASSES, zstd_level=3),
        }
        for name, data in payloads.items():
            for backend in plada_codec.available_backends():
                if backend == "python" and name == "1.1" and count > 200_000:
                    continue  # the pure coder takes seconds per 100k pairs
                plada_codec.decode(data, backend=backend)  # warm imports and caches
                tracemalloc.start()
                payload = plada_codec.decode(data, backend=backend)
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                returned = payload.indices.nbytes + payload.labels.nbytes
                rows.append(f"| {label} | {name} | {backend} | {kib(returned)} KiB | {kib(peak)} KiB | "
                            f"{peak / returned:.2f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    cases = QUICK if "--quick" in sys.argv else CASES
    print(f"Sizes in KiB; all selections with C = {N_CLASSES} classes.\n")
    print(size_table(cases))
    print("\nDecode peak memory, clustered selections (numpy buffers tracked by tracemalloc):\n")
    print(memory_table([c for c in cases if c[2] <= 1_500_000 and c[0] in ("IN-21K 1%", "IN-21K 10%", "IN-1K 1%")]))
