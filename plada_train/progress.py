"""Progress of the long phases (training, scoring, evaluating).

On a terminal, a tqdm bar. Elsewhere (``nohup``, a scheduler's log file), a
bar's carriage returns make an unreadable log, and tqdm's own answer is to
print nothing, which leaves an hours-long scoring pass silent. There, one
plain line every ``PLADA_PROGRESS_SECONDS`` seconds (default 60) instead::

    scoring the reference set: 12,288 / 90,000 images (13.7%), 410 images/s, about 3m10s left
"""

from __future__ import annotations

import os
import sys
import time

__all__ = ["progress_bar", "LineProgress"]

DEFAULT_SECONDS = 60.0


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get("PLADA_PROGRESS_SECONDS", DEFAULT_SECONDS)))
    except ValueError:
        return DEFAULT_SECONDS


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class LineProgress:
    """The tqdm calls the phases use (``update``, ``close``), as a line now and then on *stream*."""

    def __init__(self, total: int, desc: str, unit: str, initial: int = 0, stream=None,
                 interval: float | None = None) -> None:
        self.total, self.desc, self.unit, self.n = int(total), desc, unit, int(initial)
        self.stream = stream if stream is not None else sys.stderr
        self.interval = _interval() if interval is None else interval
        self._start_n = self.n
        self._start = self._last = time.monotonic()
        self._closed = False
        self._say()  # the first line says the phase has started and how big it is

    def update(self, n: int = 1) -> None:
        self.n += int(n)
        now = time.monotonic()
        if now - self._last >= self.interval and self.n < self.total:  # the last line is close()'s
            self._last = now
            self._say()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self.n != self._start_n or self.total == 0:
                self._say(done=True)

    def _say(self, done: bool = False) -> None:
        share = f" ({self.n / self.total:.1%})" if self.total else ""
        line = f"{self.desc}: {self.n:,} / {self.total:,} {self.unit}{share}"
        elapsed = time.monotonic() - self._start
        made = self.n - self._start_n
        if made > 0 and elapsed > 0:
            rate = made / elapsed
            line += f", {rate:,.0f} {self.unit}/s"
            if not done and self.n < self.total:
                line += f", about {_duration((self.total - self.n) / rate)} left"
        if done:
            line += f", done in {_duration(elapsed)}"
        print(line, file=self.stream, flush=True)


class _Both:
    """A tqdm bar (silent off a terminal) and the lines that stand in for it there."""

    def __init__(self, bar, lines: LineProgress) -> None:
        self.bar, self.lines = bar, lines

    def update(self, n: int = 1) -> None:
        self.bar.update(n)
        self.lines.update(n)

    def close(self) -> None:
        self.bar.close()
        self.lines.close()


def progress_bar(total: int, desc: str, *, enabled: bool, unit: str = "images", initial: int = 0,
                 bar: dict | None = None):
    """A tqdm bar, shown on a terminal only (``disable=None``; ``disable=True`` when not
    *enabled*), and where stderr is not a terminal a :class:`LineProgress` beside it.
    *bar*: more tqdm options (a shorter ``unit`` among them; *unit* names the lines')."""
    from tqdm.auto import tqdm

    progress = tqdm(total=total, initial=initial, desc=desc, leave=False, disable=None if enabled else True,
                    **{"unit": f" {unit}", **(bar or {})})
    if enabled and not sys.stderr.isatty():
        return _Both(progress, LineProgress(total, desc, unit, initial))
    return progress
