"""The console the commands print to: rich in a terminal, plain complete lines anywhere else.

Rich lays text out for a width: 80 columns when stdout is not a terminal (CI, ``nohup``, ``| tee``,
a log file), or the width of a terminal on stdin while stdout goes to a file. Round lines then wrap
(breaking ``grep``) and tables cut cells to "tra…". When stdout is not a terminal this console lays
out for a width no line reaches, so every line and table row comes out whole, without colour.
"""

from __future__ import annotations

from rich.console import Console, ConsoleDimensions

PLAIN_WIDTH = 10_000  # wider than any line a command prints: nothing wraps or is cut


class CliConsole(Console):
    """A :class:`rich.console.Console` that never wraps or truncates when stdout is not a terminal."""

    @property
    def size(self) -> ConsoleDimensions:
        dims = super().size
        if self._width is None and not self.is_terminal:  # an explicit width (tests) still wins
            return ConsoleDimensions(PLAIN_WIDTH, dims.height)
        return dims

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


def make_console() -> CliConsole:
    """The console of a command (stdout is looked up at print time, so test runners can swap it)."""
    return CliConsole()
