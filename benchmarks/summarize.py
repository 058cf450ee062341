"""Turn a pytest-benchmark JSON file into the markdown table of benchmarks/README.md.

    python benchmarks/summarize.py benchmarks/latest.json
"""

import json
import sys
from collections import defaultdict


def main(path: str) -> None:
    data = json.load(open(path))
    groups = defaultdict(dict)
    extra = {}
    for bench in data["benchmarks"]:
        contender = bench["params"]["contender"]
        groups[bench["group"]][contender] = bench["stats"]["median"]
        extra[bench["group"]] = bench.get("extra_info", {})
    print(f"Machine: {data['machine_info'].get('cpu', {}).get('brand_raw', '?')}, "
          f"Python {data['machine_info']['python_version']}; medians.\n")
    print("| group | c | python | baseline | python / c | throughput (c) |")
    print("|---|---:|---:|---:|---:|---:|")
    for group in sorted(groups):
        times = groups[group]
        c, py = times.get("c"), times.get("python")
        base = [(k, v) for k, v in times.items() if k not in ("c", "python")]
        info = extra[group]
        count = info.get("values") or info.get("count")
        through = f"{count / c / 1e9:.2f} G int/s" if c and count else ""
        print(f"| {group} | {fmt(c)} | {fmt(py)} | {', '.join(f'{k} {fmt(v)}' for k, v in base)} | "
              f"{py / c:.1f}x | {through} |" if c and py else f"| {group} | {fmt(c)} | {fmt(py)} | | | |")


def fmt(seconds):
    if seconds is None:
        return ""
    return f"{seconds * 1e3:.3f} ms" if seconds < 1 else f"{seconds:.2f} s"


if __name__ == "__main__":
    main(sys.argv[1])
