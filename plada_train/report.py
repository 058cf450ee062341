"""``plada-train report OUT``: what each payload in a produce folder holds.

Per payload: its bytes, keep rate and mode (from its metadata), k, the kept
images per pseudo-class (with the class names the payload carries) and the
student accuracy where one is known (``OUT/../baselines.json`` points of a
``plada-train baselines`` run, the ``payload-x.result.json`` a ``plada-train
consume`` leaves beside its payload, or ``OUT/accuracy.json`` entries
``{"payload file name": accuracy}`` written by hand or by a script). Written
as a table (stdout and ``OUT/report.md``), ``OUT/report.json`` and
``OUT/report.png`` (kept images per class, one bar group per payload).

A payload is untrusted input: the cost of a report is bounded by what the
payloads hold, not by what they declare. Classes with no kept image are
listed only for a task of at most ``LISTED_CLASSES`` classes (a 138-byte
payload may declare 2^24 of them); the plot shows the ``PLOTTED_CLASSES``
classes with the most kept images; anything that is not a regular file (a
FIFO would block the read) is refused.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

import plada_codec

from .errors import DataError
from .reporting import figure, markdown_table

__all__ = ["report", "table", "LISTED_CLASSES", "PLOTTED_CLASSES"]

LISTED_CLASSES = 100  # up to this many classes, the empty ones are listed too
PLOTTED_CLASSES = 40


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
    for result in sorted(out.glob("payload-*.result.json")):  # left by plada-train consume
        try:
            record = json.loads(result.read_text(encoding="utf-8"))
            accuracy = record["accuracy"]
            if isinstance(accuracy, (int, float)) and not isinstance(accuracy, bool):
                known[result.name[: -len(".result.json")] + ".plada"] = float(accuracy)
        except (OSError, ValueError, TypeError, KeyError):
            pass  # an unreadable result only costs the accuracy column
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
        if not path.is_file():
            raise DataError(f"{path} is not a regular file (a FIFO, a device or a folder): remove it or rename it; "
                            "report reads payload-*.plada files only")
        try:
            data = plada_codec.read_payload(str(path))
            payload = plada_codec.decode(data)
        except plada_codec.PayloadError as exc:  # say which of the folder's payloads
            raise type(exc)(f"{path}: {exc}") from None
        meta = payload.metadata if isinstance(payload.metadata, dict) else {}
        keep = meta.get("keep_fraction", meta.get("keep"))
        rows.append({"payload": path.name, "bytes": len(data), "k": len(payload), "n_ref": payload.n_ref,
                     "keep": _number(keep), "mode": _text(meta.get("mode")),
                     "safety_share": _number(_safety_share(meta)),
                     "per_class": _per_class(payload), "accuracy": known.get(path.name)})
    text = table(rows)
    write_atomically(out / "report.md", lambda fh: fh.write((text + "\n").encode()))
    write_atomically(out / "report.json", lambda fh: fh.write(json.dumps(rows, indent=1).encode()))
    if plot:
        _plot(rows, out / "report.png")
    return rows


def _safety_share(meta: dict):
    """The Safety-Net share: ``safety_net.share`` as produce writes it, else a flat ``safety_share``."""
    net = meta.get("safety_net")
    return net.get("share") if isinstance(net, dict) else meta.get("safety_share")


def _number(value):
    """A metadata number, or None for anything else (the metadata is the payload maker's to fill)."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _text(value):
    return value if isinstance(value, str) else None


def _per_class(payload) -> dict[str, int]:
    """Kept images per class name, in label order: every class of a small task, else the kept ones.
    Costs O(k) whatever n_classes the payload declares; a repeated class name gets its label
    appended, so two classes never merge into one count."""
    labels, counts = np.unique(payload.labels.astype(np.int64), return_counts=True)
    if payload.n_classes <= LISTED_CLASSES:
        full = np.zeros(payload.n_classes, np.int64)
        full[labels] = counts
        labels, counts = np.arange(payload.n_classes), full
    names = payload.class_names
    shown = [str(names[c]) if names else str(c) for c in labels.tolist()]
    uses = Counter(str(name) for name in names) if names else Counter()
    return {(f"{name} (label {c})" if uses[name] > 1 else name): int(n)
            for name, c, n in zip(shown, labels.tolist(), counts.tolist())}


def table(rows: list[dict]) -> str:
    cells = []
    for row in rows:
        per_class = ", ".join(f"{name}: {n}" for name, n in row["per_class"].items())
        accuracy = "-" if row["accuracy"] is None else f"{row['accuracy']:.4f}"
        keep = "-" if _number(row["keep"]) is None else f"{row['keep']:g}"
        cells.append([row["payload"], f"{row['bytes']:,}", keep, f"{row['k']:,}", per_class, accuracy])
    return markdown_table(["payload", "bytes:", "keep:", "k:", "kept per pseudo-class", "student accuracy:"], cells)


def _plot(rows: list[dict], path: Path) -> None:
    totals: dict[str, int] = {}
    for row in rows:
        for name, n in row["per_class"].items():
            totals[name] = totals.get(name, 0) + n
    most = set(sorted(totals, key=lambda name: -totals[name])[:PLOTTED_CLASSES])  # the classes with most kept images
    names = [name for name in totals if name in most]
    width = 0.8 / len(rows)
    with figure(path, size=(max(6, len(names) * 0.6), 4), dpi=110) as ax:
        for i, row in enumerate(rows):
            ax.bar(np.arange(len(names)) + i * width, [row["per_class"].get(n, 0) for n in names], width,
                   label=f"{row['payload']} ({row['bytes']:,} B)")
        ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("kept images")
        ax.legend(fontsize=7)
