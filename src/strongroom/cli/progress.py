"""Progress on the terminal and as JSON lines: the CLI's ``strongroom.progress.Progress``.

Where it goes (``docs/spec/cli.md``, "Progress"):

* stderr is a terminal: one bar per phase with the percentage, the time left,
  files done of files total and the current file (a backup scans its sources
  first, so its bar has a total);
* ``--json`` and stderr is not a terminal: one JSON object per line on stderr,
  ``{"message_type": "status", ...}`` at most twice a second and at the end of
  each phase (restic's ``--json`` status messages are the model; the summary
  stays the one document on stdout);
* otherwise (pipes, CI, ``--quiet``, ``--no-progress``): nothing; the command's
  summary says what happened.

Warnings shown during a run are repeated in the summary, so nothing is lost
when progress is off.
"""

from __future__ import annotations

import json
import sys
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:  # rich is imported when a bar is drawn: a piped backup never loads it
    from rich.console import Console
    from rich.progress import Progress as RichBars
    from rich.progress import ProgressColumn, TaskID

from ..progress import NullProgress, Progress, Status, StatusReporter
from .errors import tidy

#: Longest current-file name shown (the start is cut: the end names the file).
_NAME_WIDTH = 40


def _short(path: str) -> str:
    return path if len(path) <= _NAME_WIDTH else "…" + path[-(_NAME_WIDTH - 1):]


class TerminalProgress:
    """One bar per phase (``start`` … ``finish``), drawn with rich on a console."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._bars: RichBars | None = None
        self._task: TaskID | None = None
        self._files_total: int | None = None
        self._files_done = 0

    def start(self, task: str, total: int | None, unit: str) -> None:
        """Begin a phase: a new bar, in bytes or in ``unit`` counts."""
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as RichBars

        self.finish()
        columns: tuple[ProgressColumn, ...] = (MofNCompleteColumn(),)
        if unit == "bytes":
            columns = (DownloadColumn(binary_units=True), TransferSpeedColumn())
        # Percentage and time left stay blank ("-:--:--") until a total is known.
        columns = (TaskProgressColumn(), *columns, TimeRemainingColumn())
        self._bars = RichBars(TextColumn("{task.description}"), BarColumn(), *columns,
                              TimeElapsedColumn(), TextColumn("{task.fields[files]}"),
                              TextColumn("{task.fields[current]}"), console=self.console,
                              transient=False)
        self._bars.start()
        self._task = self._bars.add_task(task, total=total, files="", current="")
        if task not in ("backup", "restore"):
            self._files_total, self._files_done = None, 0

    def totals(self, files: int, nbytes: int) -> None:
        """The work ahead is known: the bar gets its total and a files counter."""
        self._files_total, self._files_done = files, 0
        if self._bars is not None and self._task is not None:
            self._bars.update(self._task, total=nbytes, files=f"0/{files} files")

    def item(self, path: str) -> None:
        """A file begins: show it, and count it."""
        self._files_done += 1
        if self._bars is not None and self._task is not None:
            files = f"{self._files_done}/{self._files_total} files" \
                if self._files_total is not None else f"{self._files_done} files"
            self._bars.update(self._task, files=files, current=_short(path))

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
            self._bars.update(task.id, completed=task.total, current="")
        self._bars.stop()
        self._bars = self._task = None

    def close(self) -> None:
        """The command stopped (an error, Ctrl-C): take the bar down as it is, unfilled."""
        if self._bars is not None:
            self._bars.stop()
        self._bars = self._task = None

    def warn(self, message: str) -> None:
        """Print a warning above the bar."""
        self.console.print(f"strongroom: warning: {tidy(message)}", markup=False,
                           highlight=False)


class JsonLinesProgress(StatusReporter):
    """``--json`` progress: one ``{"message_type": "status", ...}`` line per update on ``stream``."""

    def __init__(self, stream: IO[str], *, interval: float = 0.5) -> None:
        self.stream = stream
        super().__init__(self._line, on_warning=self._warning, interval=interval)

    def _write(self, doc: dict[str, object]) -> None:
        self.stream.write(json.dumps(doc, sort_keys=True) + "\n")
        self.stream.flush()

    def _line(self, status: Status) -> None:
        self._write({"message_type": "status", **status.to_json()})

    def _warning(self, message: str) -> None:
        self._write({"message_type": "warning", "message": tidy(message)})


def make_progress(*, enabled: bool = True, json_lines: bool = False,
                  stream: IO[str] | None = None) -> Progress:
    """Bars on ``stream`` (stderr) when it is a terminal; JSON lines there when
    ``json_lines`` and it is not; else a silent sink.  ``enabled=False``: silent."""
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    terminal = isatty is not None and isatty()
    if not enabled:
        return NullProgress()
    if terminal:
        from rich.console import Console

        return TerminalProgress(Console(file=stream, force_terminal=True))
    if json_lines:
        return JsonLinesProgress(stream)
    return NullProgress()


__all__ = ["JsonLinesProgress", "TerminalProgress", "make_progress"]
