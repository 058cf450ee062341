"""Payload sizes: plada format 1.0 next to the paper's layouts and the information limit.

    python benchmarks/bandwidth.py            # prints markdown tables

The paper's layouts (PAPER.md section 3.4): Raw Idx = int32 index + int16 label;
Compact Idx = delta in the smallest of 1/2/4 bytes + label in the smallest
type; "Zstd" = Zstandard level 19 on the compact Idx bytes or on the Bmp
layout (packed mask + labels). The paper does not say whether indices and
labels are compressed together; the smaller of together/separately is shown.
Also prints decode peak memory against the size of the arrays returned.
"""

from __future__ import annotations

import sys
import time
import tracemalloc

import numpy as np
import zstandard

import plada_codec
from plada_codec.synthetic import clustered_selection, information_limit_bytes, uniform_selection

CASES = [
    ("IN-21K 1%", 14_197_122, 141_971),
    ("IN-21K 10%", 14_197_122, 1_419_712),
    ("IN-1K 1%", 1_281_167, 12_811),
]
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


def kib(n: float) -> str:
    return f"{n / 1024:,.1f}"


def size_table() -> str:
    rows = [
        "| selection | k | Raw Idx | Compact Idx | paper Zstd-19 Idx | paper Zstd-19 Bmp | plada (level 19) | plada / best paper | info. limit (uniform) | plada encode ms | plada decode ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, n_ref, count in CASES:
        for kind, make in (("clustered", clustered_selection), ("uniform", uniform_selection)):
            indices, labels = make(n_ref, count, N_CLASSES, seed=5)
            paper = paper_sizes(indices, labels, n_ref)
            t0 = time.perf_counter()
            data = plada_codec.encode(indices, labels, n_ref=n_ref, n_classes=N_CLASSES, zstd_level=19)
            t_enc = time.perf_counter() - t0
            t0 = time.perf_counter()
            for _ in range(5):
                plada_codec.decode(data)
            t_dec = (time.perf_counter() - t0) / 5
            best_paper = min(paper["zstd_idx"], paper["zstd_bmp"])
            limit = information_limit_bytes(n_ref, count, N_CLASSES)
            rows.append(
                f"| {label} {kind} | {count:,} | {kib(paper['raw_idx'])} | {kib(paper['compact_idx'])} | "
                f"{kib(paper['zstd_idx'])} | {kib(paper['zstd_bmp'])} | {kib(len(data))} | "
                f"{len(data) / best_paper:.3f} | {kib(limit)} | {t_enc * 1e3:,.0f} | {t_dec * 1e3:.1f} |"
            )
            print(rows[-1], file=sys.stderr, flush=True)
    return "\n".join(rows)


def memory_table() -> str:
    rows = ["| selection | backend | arrays returned | decode peak (tracemalloc) | ratio |", "|---|---|---:|---:|---:|"]
    for label, n_ref, count in CASES:
        indices, labels = clustered_selection(n_ref, count, N_CLASSES, seed=5)
        data = plada_codec.encode(indices, labels, n_ref=n_ref, n_classes=N_CLASSES, zstd_level=3)
        for backend in plada_codec.available_backends():
            plada_codec.decode(data, backend=backend)  # warm imports and caches
            tracemalloc.start()
            payload = plada_codec.decode(data, backend=backend)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            returned = payload.indices.nbytes + payload.labels.nbytes
            rows.append(f"| {label} | {backend} | {kib(returned)} KiB | {kib(peak)} KiB | {peak / returned:.2f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print("Sizes in KiB; all selections with C = 200 classes.\n")
    print(size_table())
    print("\nDecode peak memory (numpy buffers tracked by tracemalloc):\n")
    print(memory_table())
