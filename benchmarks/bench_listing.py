"""Memory of listing and checking a folder reference, per rank and in total (issue 15).

    python benchmarks/bench_listing.py                      # 200,000 and 1,000,000 files
    python benchmarks/bench_listing.py --sizes 50000 --ranks 1 2
    python benchmarks/bench_listing.py --baseline /path/to/old/checkout   # the same, before, in one run

Makes an ImageNet-shaped folder tree (``nXXXXXXXX/nXXXXXXXX_NNNNN.JPEG``,
1,000 files a folder, 30-byte ids; the first file a real JPEG, the rest empty:
listing reads no pixels), records its manifest once, then opens it as
``plada-train produce`` does: the data set (the listing) and its fingerprint
checked against the manifest cache, in a fresh process, or in 2 processes
under torchrun. Each process reports its peak RSS above what it held before
opening (imports done) and its PSS at the end (shared pages split between the
processes that map them); "total" sums the ranks. ``--baseline DIR`` runs the
same in another checkout (``git worktree add DIR <commit>``) in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# One process: what produce does on each rank before scoring. Prints one JSON line.
PROBE = textwrap.dedent("""
    import inspect, json, os, resource, sys
    sys.path.insert(0, sys.argv[1])
    import plada_codec, plada_train.distributed as distributed
    try:
        from plada_train.inputs import open_run_reference
    except ImportError:  # a checkout before the pipeline split
        from plada_train.pipeline import _open_reference as open_run_reference
    from plada_train.data import open_reference

    def rss_kib():
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))

    def pss_kib():
        with open("/proc/self/smaps_rollup") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("Pss:"))

    context = distributed.setup("cpu")
    warm = open_reference(sys.argv[4])  # imports and the image decoder's set-up, outside the figures
    warm.reference_set()
    before, pss_before = rss_kib(), pss_kib()
    if "context" in inspect.signature(open_run_reference).parameters:
        refs = open_run_reference(sys.argv[2], sys.argv[3], False, context=context)
        fingerprint = context.per_node(refs.reference_set)
    else:  # a checkout before the per-machine listing: every rank lists and checks
        refs = open_reference(sys.argv[2], manifest=sys.argv[3])
        fingerprint = refs.reference_set()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pss = pss_kib()
    print("PROBE " + json.dumps({"rank": context.rank, "n": len(refs), "fingerprint": fingerprint.hex,
                                 "peak_kib": peak - before, "pss_kib": pss - pss_before,
                                 "code": plada_codec.__file__}), flush=True)
    distributed.teardown(context)
""")


def make_tree(root: Path, n: int) -> None:
    from PIL import Image

    per_folder = 1000
    for start in range(0, n, per_folder):
        folder = root / f"n{start // per_folder:08d}"
        folder.mkdir(parents=True)
        for i in range(start, min(n, start + per_folder)):
            (folder / f"{folder.name}_{i % per_folder:05d}.JPEG").touch()
    first = root / "n00000000" / "n00000000_00000.JPEG"
    Image.new("RGB", (32, 32), (120, 30, 200)).save(first, quality=90)


def probe(checkout: Path, tree: Path, manifest: Path, warm: Path, ranks: int) -> list[dict]:
    script = Path(tempfile.mkdtemp()) / "probe.py"
    script.write_text(PROBE)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(checkout)}
    if ranks == 1:
        command = [sys.executable, str(script), str(checkout), str(tree), str(manifest), str(warm)]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
                   str(script), str(checkout), str(tree), str(manifest), str(warm)]
    run = subprocess.run(command, env=env, capture_output=True, text=True, cwd=checkout)
    if run.returncode:
        raise SystemExit(f"probe failed ({checkout}, {ranks} ranks):\n{run.stderr[-3000:]}")
    # Two ranks may write into one line: pick the (flat) JSON objects out of the text.
    return [json.loads(m.group(1)) for m in re.finditer(r"PROBE (\{[^{}]*\})", run.stdout)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--baseline", type=Path, help="another checkout, measured in the same run")
    parser.add_argument("--workdir", type=Path, help="where to make the trees (default: a temporary folder)")
    args = parser.parse_args()
    checkouts = [("this", ROOT)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
    work = args.workdir or Path(tempfile.mkdtemp(prefix="plada-bench-listing-"))
    sys.path.insert(0, str(ROOT))
    import plada_codec

    warm = work / "warm"
    if not warm.exists():
        make_tree(warm, 1)
    rows = []
    for n in args.sizes:
        tree, manifest = work / f"tree-{n}", work / f"tree-{n}.manifest"
        if not tree.exists():
            make_tree(tree, n)
        if not manifest.exists():
            plada_codec.ReferenceSet.record(tree, manifest, content=False)
        for ranks in args.ranks:
            for name, checkout in checkouts:
                results = probe(checkout, tree, manifest, warm, ranks)
                assert len(results) == ranks and all(r["n"] == n for r in results), results
                assert all(r["code"].startswith(str(checkout)) for r in results), results
                peak = [r["peak_kib"] * 1024 / n for r in results]
                pss = [r["pss_kib"] * 1024 / n for r in results]
                rows.append((n, ranks, name, max(peak), sum(peak), sum(pss)))
    print("| files | ranks | code | peak RSS per rank, B/file | peak RSS all ranks, B/file | PSS all ranks, B/file |")
    print("|---:|---:|---|---:|---:|---:|")
    for n, ranks, name, per_rank, total, pss in rows:
        print(f"| {n:,} | {ranks} | {name} | {per_rank:.1f} | {total:.1f} | {pss:.1f} |")


if __name__ == "__main__":
    main()
