"""``plada-train report OUT``: what each payload in a produce folder holds.

Per payload: its bytes, keep rate and mode (from its metadata), k, the kept
images per pseudo-class (with the class names the payload carries) and the
student accuracy where one is known (``OUT/../baselines.json`` points of a
``plada-train baselines`` run, or ``OUT/accuracy.json`` entries
``{"payload file name": accuracy}`` written by hand or by a script). Written
as a table (stdout and ``OUT/report.md``), ``OUT/report.json`` and
``OUT/report.png`` (kept images per class, one bar group per payload).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import plada_codec

from .errors import DataError

__all__ = ["report"]


def _accuracies(out: Path) -> dict[str, float]:
    known: dict[str, float] = {}
    curves = out.parent / "baselines.json"  # produce's folder inside a baselines run
    if curves.exists():
        try:
            points = json.loads(curves.read_text()).get("points", [])
            known.update({p["details"]["payload"]: float(p["accuracy"]) for p in points
                          if p.get("method") == "plada" and "payload" in p.get("details", {})})
        except (ValueError, AttributeError, TypeError, KeyError):
            pass  # an unreadable curve file only costs the accuracy column
    extra = out / "accuracy.json"
    if extra.exists():
        try:
            known.update({str(k): float(v) for k, v in json.loads(extra.read_text()).items()})
        except (ValueError, AttributeError, TypeError) as exc:
            raise DataError(f"{extra}: expected a JSON object of payload name -> accuracy ({exc})") from None
    return known


def report(out: str | Path, *, plot: bool = True) -> list[dict]:
    """One row per ``payload-*.plada`` in *out* (see the module docstring)."""
    from plada_codec import write_atomically

    out = Path(out)
    if out.is_file():
        raise DataError(f"{out}: a file, not the --out folder of plada-train produce (give the folder "
                        f"{out.parent}, or inspect one payload with plada inspect)")
    if not out.is_dir():
        raise DataError(f"{out}: no such folder; give the --out folder of plada-train produce")
    paths = sorted(out.glob("payload-*.plada"))
    if not paths:
        raise DataError(f"{out}: holds no payload-*.plada files; run plada-train produce --out {out} first")
    known = _accuracies(out)
    rows = []
    for path in paths:
        try:
            data = plada_codec.read_payload(str(path))
            payload = plada_codec.decode(data)
        except plada_codec.PayloadError as exc:  # say which of the folder's payloads
            raise type(exc)(f"{path}: {exc}") from None
        meta = payload.metadata if isinstance(payload.metadata, dict) else {}
        counts = np.bincount(payload.labels.astype(np.int64), minlength=payload.n_classes)
        names = list(payload.class_names) if payload.class_names else [str(c) for c in range(payload.n_classes)]
        rows.append({"payload": path.name, "bytes": len(data), "k": len(payload), "n_ref": payload.n_ref,
                     "keep": meta.get("keep"), "mode": meta.get("mode"), "safety_share": meta.get("safety_share"),
                     "per_class": {name: int(n) for name, n in zip(names, counts.tolist())},
                     "accuracy": known.get(path.name)})
    text = table(rows)
    write_atomically(out / "report.md", lambda fh: fh.write((text + "\n").encode()))
    write_atomically(out / "report.json", lambda fh: fh.write(json.dumps(rows, indent=1).encode()))
    if plot:
        _plot(rows, out / "report.png")
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| payload | bytes | keep | k | kept per pseudo-class | student accuracy |",
             "|---|---:|---:|---:|---|---:|"]
    for row in rows:
        per_class = ", ".join(f"{name}: {n}" for name, n in row["per_class"].items())
        accuracy = "-" if row["accuracy"] is None else f"{row['accuracy']:.4f}"
        keep = "-" if row["keep"] is None else f"{row['keep']:g}"
        lines.append(f"| {row['payload']} | {row['bytes']:,} | {keep} | {row['k']:,} | {per_class} | {accuracy} |")
    return "\n".join(lines)


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows[0]["per_class"])
    fig, ax = plt.subplots(figsize=(max(6, len(names) * 0.6), 4))
    width = 0.8 / len(rows)
    for i, row in enumerate(rows):
        ax.bar(np.arange(len(names)) + i * width, [row["per_class"].get(n, 0) for n in names], width,
               label=f"{row['payload']} ({row['bytes']:,} B)")
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("kept images")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
