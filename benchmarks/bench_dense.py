"""Dense selections: how far the context model is from what the selection's source allows.

    python benchmarks/bench_dense.py            # every clustered case (about two minutes)
    python benchmarks/bench_dense.py --quick    # IN-21K 5% and IN-1K 10% only

For each clustered selection (``synthetic.clustered_selection``: the project's
ImageNet-shaped selections, seed 5 as in bandwidth.py) it prints, in bytes:

- *paper*: the paper's best Zstandard-19 layout (bandwidth.paper_sizes);
- *cm*: the smaller context-model body of the two presets (FORMAT.md 15), split
  into the part that codes the indices (the body of the same indices with
  C = 1, where no label decision is coded: the gap models never look at
  labels, 15.5) and the rest, the labels;
- *source*: the size of a two-part code that is **told the synset boundaries**
  (``synthetic.synset_bounds``), which a payload is not: per synset the number
  m of kept items (empirical entropy of the m over all synsets) and which m of
  its items they are, log2 C(size, m); for the labels, log2 C per synset that
  has kept items, for its most frequent label, then -log2 P(label) under the
  generator's law (that label with probability purity + (1 - purity) / C,
  any other (1 - purity) / C). This is an estimate of the source's entropy,
  not a proof of a bound: a code without the boundaries cannot do better
  than one that has them except by the slack of this two-part code, which is
  small here (the placement of m items in a synset is uniform given m, and
  whole synsets cost nothing);
- the two "only" columns: what the payload would reach if the index part, or
  the label part, were coded at the source's size and the other stayed as it
  is. A run mode for consecutive indices can only shrink the index part, so
  "indices at source" bounds what any run mode can give on these selections.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from plada_codec._backend import get_kernels
from plada_codec.synthetic import clustered_selection, synset_bounds

try:
    from .bandwidth import IN1K, IN21K, paper_sizes
except ImportError:  # run as a script
    from bandwidth import IN1K, IN21K, paper_sizes  # type: ignore[no-redef]

PURITY = 0.85  # clustered_selection's label_purity, passed explicitly so the source model matches
SEED = 5
CASES = [  # (name, n_ref, count, n_classes)
    ("IN-21K 0.5%", IN21K, 70_986, 200),
    ("IN-21K 1%", IN21K, 141_971, 200),
    ("IN-21K 2%", IN21K, 283_942, 200),
    ("IN-21K 5%", IN21K, 709_856, 200),
    ("IN-21K 10%", IN21K, 1_419_712, 200),
    ("IN-1K 1%", IN1K, 12_811, 200),
    ("IN-1K 10%", IN1K, 128_117, 200),
    ("IN-1K 10%, C = 37", IN1K, 128_117, 37),
]
QUICK = [CASES[3], CASES[6]]


def _log2_choose(n: np.ndarray, k: np.ndarray) -> np.ndarray:
    lgamma = np.vectorize(math.lgamma, otypes=[float])
    return (lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1)) / math.log(2)


def source_bytes(indices: np.ndarray, labels: np.ndarray, n_ref: int, n_classes: int) -> tuple[float, float]:
    """(index bytes, label bytes) of the two-part code told the synset boundaries."""
    bounds = synset_bounds(n_ref)
    sizes = np.diff(bounds)
    synset = np.searchsorted(bounds, indices, side="right") - 1
    kept = np.bincount(synset, minlength=sizes.size)
    _, count_freq = np.unique(kept, return_counts=True)
    p = count_freq / sizes.size
    index_bits = float(_log2_choose(sizes, kept).sum()) - sizes.size * float(np.sum(p * np.log2(p)))
    pair_counts = np.unique(synset * n_classes + labels, return_counts=True)[1]
    pair_synset = np.unique(synset * n_classes + labels) // n_classes
    most = np.zeros(sizes.size, dtype=np.int64)
    np.maximum.at(most, pair_synset, pair_counts)
    n_most = int(most.sum())
    p_most = PURITY + (1 - PURITY) / n_classes
    p_other = (1 - PURITY) / n_classes
    label_bits = (-n_most * math.log2(p_most) - (indices.size - n_most) * math.log2(p_other)
                  + int(np.count_nonzero(kept)) * math.log2(n_classes))
    return index_bits / 8, label_bits / 8


def row(name: str, n_ref: int, count: int, n_classes: int) -> dict:
    kernels = get_kernels("c")
    indices, labels = clustered_selection(n_ref, count, n_classes, SEED, label_purity=PURITY)
    paper = min(paper_sizes(indices, labels, n_ref)[key] for key in ("zstd_idx", "zstd_bmp"))
    bodies = {preset: len(kernels.cm_encode(indices, labels, n_ref, n_classes, preset)) for preset in (0, 1)}
    preset = min(bodies, key=lambda p: (bodies[p], p))
    cm = bodies[preset]
    cm_index = len(kernels.cm_encode(indices, np.zeros_like(labels), n_ref, 1, preset))
    src_index, src_labels = source_bytes(indices, labels, n_ref, n_classes)
    return {"name": name, "k": count, "C": n_classes, "paper": paper, "cm": cm, "preset": preset,
            "cm_index": cm_index, "cm_labels": cm - cm_index, "source_index": src_index,
            "source_labels": src_labels}


def table(rows: list[dict]) -> str:
    out = ["| selection | k | paper | cm (index + labels) | cm / paper | source (index + labels) | source / paper "
           "| cm / source | indices at source only / paper | labels at source only / paper |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        source = r["source_index"] + r["source_labels"]
        out.append(
            f"| {r['name']} | {r['k']:,} | {r['paper']:,} | {r['cm']:,} ({r['cm_index']:,} + {r['cm_labels']:,}) | "
            f"{r['cm'] / r['paper']:.3f} | {source:,.0f} ({r['source_index']:,.0f} + {r['source_labels']:,.0f}) | "
            f"{source / r['paper']:.3f} | {r['cm'] / source:.3f} | "
            f"{(r['source_index'] + r['cm_labels']) / r['paper']:.3f} | "
            f"{(r['cm_index'] + r['source_labels']) / r['paper']:.3f} |")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    cases = QUICK if "--quick" in argv else CASES
    rows = []
    for case in cases:
        rows.append(row(*case))
        print(f"{case[0]} done", file=sys.stderr, flush=True)
    print(table(rows))
    ratios = sorted(r["cm"] / r["paper"] for r in rows)
    sources = sorted((r["source_index"] + r["source_labels"]) / r["paper"] for r in rows)
    print(f"\nmedian cm / paper {float(np.median(ratios)):.3f} (largest {ratios[-1]:.3f}); "
          f"median source / paper {float(np.median(sources)):.3f} (largest {sources[-1]:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
