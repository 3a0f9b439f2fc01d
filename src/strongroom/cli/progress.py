"""Progress bars on the terminal: the CLI's implementation of ``strongroom.progress.Progress``.

Bars go to stderr and only when stderr is a terminal; otherwise (pipes, CI,
``--json``, ``--quiet``, ``--no-progress``) the engine gets a silent sink and
the command's summary says what happened.  Warnings shown during a run are
repeated in the summary, so nothing is lost when the bars are off.
"""

from __future__ import annotations

import sys
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.progress import (
    Progress as RichBars,
)

from ..progress import NullProgress, Progress
from .errors import tidy


class TerminalProgress:
    """One bar per phase (``start`` … ``finish``), drawn with rich on a console."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._bars: RichBars | None = None
        self._task: TaskID | None = None

    def start(self, task: str, total: int | None, unit: str) -> None:
        """Begin a phase: a new bar, in bytes or in ``unit`` counts."""
        self.finish()
        columns: tuple[ProgressColumn, ...] = (MofNCompleteColumn(),)
        if unit == "bytes":
            columns = (DownloadColumn(binary_units=True), TransferSpeedColumn())
        self._bars = RichBars(TextColumn("{task.description}"), BarColumn(), *columns,
                              TimeElapsedColumn(), console=self.console, transient=False)
        self._bars.start()
        self._task = self._bars.add_task(task, total=total)

    def advance(self, n: int) -> None:
        """Move the current bar on by ``n`` units."""
        if self._bars is not None and self._task is not None:
            self._bars.advance(self._task, n)

    def finish(self) -> None:
        """End the current phase (its bar stays on screen, filled)."""
        if self._bars is None:
            return
        task = self._bars.tasks[0]
        if task.total is not None:
            self._bars.update(task.id, completed=task.total)
        self._bars.stop()
        self._bars = self._task = None

    def warn(self, message: str) -> None:
        """Print a warning above the bar."""
        self.console.print(f"strongroom: warning: {tidy(message)}", markup=False,
                           highlight=False)


def make_progress(*, enabled: bool = True, stream: IO[str] | None = None) -> Progress:
    """Bars on ``stream`` (stderr) when enabled and it is a terminal; else a silent sink."""
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    if not enabled or isatty is None or not isatty():
        return NullProgress()
    return TerminalProgress(Console(file=stream, force_terminal=True))


__all__ = ["TerminalProgress", "make_progress"]
