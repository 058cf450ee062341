"""One table and one figure for every report plada-train writes (``report``,
``baselines``, ``demo``): a Markdown table from column specs and rows, and a
matplotlib figure saved and closed in one place (Agg: no display needed)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["markdown_table", "figure"]


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table. A column name ending in ``:`` is right-aligned (numbers), e.g.
    ``["payload", "bytes:"]``; cells are written with ``str``."""
    names = [c[:-1] if c.endswith(":") else c for c in columns]
    rules = ["---:" if c.endswith(":") else "---" for c in columns]
    lines = ["| " + " | ".join(names) + " |", "|" + "|".join(rules) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


@contextmanager
def figure(path: Path, *, size: tuple[float, float] = (7, 4.5), dpi: int = 120) -> Iterator:
    """``with figure(path) as ax:`` draw on *ax*; the figure is laid out, saved to *path* and closed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    try:
        yield ax
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)
