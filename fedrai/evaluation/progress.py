"""Progress of an evaluation: prompts done of all, rate and ETA.

A rich progress bar in a terminal; otherwise plain, unwrapped lines (at most one every
``every_s`` seconds, and the last one always) that a log file or CI keeps readable.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{s:02d}s"
    hours, m = divmod(minutes, 60)
    return f"{hours}h{m:02d}m"


class EvalProgress:
    """Call :meth:`start` with the number of prompts, :meth:`advance` after each batch, :meth:`stop`."""

    def __init__(
        self, stream: IO[str] | None = None, *, rich: bool | None = None, every_s: float = 10.0
    ) -> None:
        self.stream = stream or sys.stderr
        self.rich = self.stream.isatty() if rich is None else rich
        self.every_s = every_s
        self.total = 0
        self.done = 0
        self._t0 = 0.0
        self._last_line = 0.0
        self._bar: Any = None
        self._task: Any = None

    def start(self, total: int, description: str = "generating") -> None:
        self.total, self.done = total, 0
        self._t0 = self._last_line = time.perf_counter()
        if self.rich and total:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("prompts"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                refresh_per_second=2,
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(description, total=total)

    def advance(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task, advance=n)
            return
        now = time.perf_counter()
        if self.done >= self.total or now - self._last_line >= self.every_s:
            self._last_line = now
            print(self.line(now - self._t0), file=self.stream, flush=True)

    def line(self, elapsed: float) -> str:
        """``[eval] 32/104 prompts (31%)  elapsed 12s  ETA 27s``"""
        share = self.done / self.total if self.total else 1.0
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        eta_text = format_duration(eta) if self.done else "?"
        return (
            f"[eval] {self.done}/{self.total} prompts ({share:.0%})  "
            f"elapsed {format_duration(elapsed)}  ETA {eta_text}"
        )

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
