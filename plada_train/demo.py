"""The demo: the whole PLADA pipeline on the built-in miniature.

Target task MNIST; reference pool = MNIST valid (10k, in-domain) + Fashion-MNIST
(70k) + Animal-MNIST (10k), labels dropped. It runs exactly what the README's
``plada-train produce`` / ``consume`` commands run (the same functions and
default recipes): one teacher, one scoring pass, payloads at several keep
rates in low-energy (with and without the Safety-Net), high-energy and random
selection plus no filtering, each decoded by a client against its own copy of
the pool and used to train a fresh student, evaluated on MNIST test.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

import plada_codec

from . import reporting
from .client import consume
from .data import load_miniature
from .recipes import StudentRecipe, TeacherRecipe
from .requests import ProduceRequest
from .server import produce

SAFETY = {"share": 0.5, "alpha": -0.2}


def _quick_data(out: Path) -> tuple[str, str, np.ndarray]:
    """A few hundred images per part, written as .npz target and reference."""
    mini = load_miniature(limit=300)
    target, pool = out / "quick-target.npz", out / "quick-pool.npz"
    np.savez(target, x_train=mini.target_train.images, y_train=mini.target_train.labels,
             x_test=mini.target_test.images, y_test=mini.target_test.labels)
    np.savez(pool, x=mini.pool.images)
    return str(target), str(pool), mini.pool_truth


def run_demo(out: Path, *, rates=(0.01, 0.05, 0.10), device: str = "auto", quick: bool = False,
             progress: bool = True, teacher_recipe: TeacherRecipe | None = None,
             student_recipe: StudentRecipe | None = None) -> dict:
    """Run the demo into *out*; returns (and writes) the report."""
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    teacher_recipe = teacher_recipe or TeacherRecipe()
    student_recipe = student_recipe or StudentRecipe()
    if quick:
        target, pool, truth = _quick_data(out)
        rates = (0.1,)
        teacher_recipe = teacher_recipe.with_(epochs=1, batch_size=64)
        student_recipe = student_recipe.with_(steps=30, batch_size=32)
    else:
        target, pool, truth = "builtin:mnist", "builtin:pool", load_miniature().pool_truth
    server = out / "server"
    base = ProduceRequest(target=target, reference=pool, out=str(server), keep=tuple(rates), device=device,
                          teacher_recipe=teacher_recipe, progress=progress)
    runs = [("low", {}), ("low", SAFETY), ("high", {}), ("random", {})]
    payloads = []  # (selection name, safety, keep, Produced)
    teacher_accuracy = None
    for mode, net in runs:
        # the first call trains the teacher and scores the pool; the others reuse both
        result = produce(request=base, mode=mode, safety_share=net.get("share", 0.0),
                         alpha=net.get("alpha", base.alpha))
        teacher_accuracy = result.teacher_accuracy
        payloads += [(f"{mode}-energy" if mode != "random" else "random", net, p.keep, p) for p in result.payloads]
    none = produce(request=base, keep=(1.0,))
    payloads.append(("no filter", {}, 1.0, none.payloads[0]))
    rows = []
    for name, net, keep, produced in payloads:
        result = consume(str(produced.path), pool, test=target, device=device, student_recipe=student_recipe,
                         progress=progress)
        indices = produced.selection.indices
        labels = plada_codec.decode(produced.payload).labels
        known = truth[indices] >= 0
        rows.append({
            "selection": name, "safety_net": dict(net) or None, "keep": keep, "count": result.count,
            "payload_bytes": len(produced.payload), "payload": str(produced.path.relative_to(out)),
            "in_domain": float(known.mean()) if len(indices) else 0.0,
            "pseudo_label_accuracy": float((labels[known] == truth[indices][known]).mean()) if known.any() else None,
            "student_accuracy": result.accuracy,
        })
        print(_row_text(rows[-1]), flush=True)
    report = {
        "setting": "target MNIST; reference pool MNIST-valid 10k + Fashion-MNIST 70k + Animal-MNIST 10k"
                   + (" (quick: 300 per part)" if quick else ""),
        "teacher_accuracy": teacher_accuracy, "quick": quick, "runs": rows,
        "teacher_recipe": teacher_recipe.to_metadata(), "student_recipe": student_recipe.to_metadata(),
        "seconds": round(time.perf_counter() - started, 1), "codec_backend": plada_codec.backend,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown_table(report)
    (out / "table.md").write_text(table + "\n")
    plot(report, out / "accuracy_vs_size.png")
    print("\n" + table)
    print(f"\nwrote {out}/report.json, table.md, accuracy_vs_size.png, server/ ({report['seconds']} s)")
    return report


def _row_text(row: dict) -> str:
    pla = "-" if row["pseudo_label_accuracy"] is None else f"{row['pseudo_label_accuracy']:.3f}"
    net = " +safety-net" if row["safety_net"] else ""
    return (f"{row['selection'] + net:<26} keep {row['keep']:>5.0%}  k={row['count']:>6}  "
            f"{row['payload_bytes']:>7} B  in-domain {row['in_domain']:.3f}  pseudo-label acc {pla}  "
            f"student {row['student_accuracy']:.4f}")


def markdown_table(report: dict) -> str:
    rows = []
    for r in report["runs"]:
        sel = r["selection"] + (f" + Safety-Net (s={r['safety_net']['share']}, α={r['safety_net']['alpha']})"
                                if r["safety_net"] else "")
        pla = "–" if r["pseudo_label_accuracy"] is None else f"{r['pseudo_label_accuracy']:.3f}"
        rows.append([sel, f"{r['keep']:.0%}", r["count"], r["payload_bytes"], f"{r['in_domain']:.3f}", pla,
                     f"{r['student_accuracy']:.4f}"])
    table = reporting.markdown_table(["selection", "keep:", "kept images:", "payload bytes:", "digits among kept:",
                                      "pseudo-label acc. (digits):", "student acc.:"], rows)
    return f"Teacher accuracy (MNIST test): {report['teacher_accuracy']:.4f}\n\n{table}"


def plot(report: dict, path: Path) -> None:
    from matplotlib.ticker import FuncFormatter, NullFormatter

    with reporting.figure(path, size=(6.4, 4.2), dpi=120) as ax:
        styles = {"low-energy": ("tab:red", "o"), "high-energy": ("tab:blue", "s"), "random": ("tab:gray", "^")}
        for name, (color, marker) in styles.items():
            pts = sorted((r["payload_bytes"], r["student_accuracy"]) for r in report["runs"]
                         if r["selection"] == name and not r["safety_net"])
            if pts:
                ax.plot(*zip(*pts), marker=marker, color=color, label=name)
        net = sorted((r["payload_bytes"], r["student_accuracy"]) for r in report["runs"] if r["safety_net"])
        if net:
            ax.plot(*zip(*net), marker="*", markersize=10, color="tab:orange", label="low-energy + Safety-Net")
        for r in report["runs"]:
            if r["selection"] == "no filter":
                ax.scatter(r["payload_bytes"], r["student_accuracy"], marker="D", color="black", label="no filter",
                           zorder=3)
        if report["teacher_accuracy"] is not None:
            ax.axhline(report["teacher_accuracy"], color="green", linestyle="--", linewidth=1, label="teacher")
        ax.set_xscale("log")
        sizes = [r["payload_bytes"] for r in report["runs"]]
        ticks = [t for t in (200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000)
                 if min(sizes) / 2 <= t <= max(sizes) * 2]
        ax.set_xticks(ticks)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:g} KB"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("payload size (log scale)")
        ax.set_ylabel("student accuracy on MNIST test")
        ax.set_title("PLADA on the MNIST miniature: accuracy vs payload size")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
