"""Progress reporting: the protocol the CLI implements, a silent default, and
:class:`StatusReporter`, which turns the engine's calls into :class:`Status`
snapshots (percentage, ETA, files done, current file) for an app's UI.

The engine calls ``start`` once per phase (e.g. "scan", "backup", "restore",
"check"), ``advance`` with the number of units done, ``finish`` at the end of
the phase, and ``warn`` for non-fatal problems (a vanished source file).  Two
optional methods carry more, when a sink has them: ``totals(files, bytes)``
once the work is known (a backup scans its sources first), and
``item(path)`` when a file begins (the "current file").  The engine never
prints; whatever it wants a user to see goes through this protocol.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Progress(Protocol):
    """What the engine reports while it works (the CLI renders it with rich)."""

    def start(self, task: str, total: int | None, unit: str) -> None:
        """A phase named ``task`` begins; ``total`` units expected (None: unknown)."""

    def advance(self, n: int) -> None:
        """``n`` more units of the current phase are done."""

    def finish(self) -> None:
        """The current phase is over."""

    def warn(self, message: str) -> None:
        """A non-fatal problem the user should see (never contains a secret)."""


class NullProgress:
    """A progress sink that ignores everything: the default."""

    def start(self, task: str, total: int | None, unit: str) -> None:
        """Ignore the start of a phase."""

    def advance(self, n: int) -> None:
        """Ignore progress."""

    def finish(self) -> None:
        """Ignore the end of a phase."""

    def warn(self, message: str) -> None:
        """Ignore a warning (it is still listed in the summary)."""


class RecordingProgress:
    """A progress sink that records every call, for tests and scripts."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.warnings: list[str] = []

    def start(self, task: str, total: int | None, unit: str) -> None:
        """Record the start of a phase."""
        self.events.append(("start", (task, total, unit)))

    def advance(self, n: int) -> None:
        """Record progress."""
        self.events.append(("advance", n))

    def finish(self) -> None:
        """Record the end of a phase."""
        self.events.append(("finish", None))

    def warn(self, message: str) -> None:
        """Record a warning."""
        self.warnings.append(message)
        self.events.append(("warn", message))


def report_totals(progress: Progress, files: int, nbytes: int) -> None:
    """Tell ``progress`` the work ahead, if it listens (optional ``totals`` method)."""
    totals = getattr(progress, "totals", None)
    if totals is not None:
        totals(files, nbytes)


def report_item(progress: Progress, path: str) -> None:
    """Tell ``progress`` that the file ``path`` begins, if it listens (optional ``item``)."""
    item = getattr(progress, "item", None)
    if item is not None:
        item(path)


@dataclass(frozen=True)
class Status:
    """Where a long operation stands: what :class:`StatusReporter` hands an app.

    ``done``/``total`` count ``unit`` (``bytes`` for backup and restore, ``packs``
    for check and prune, ``files`` for the backup's scan); ``total`` is None while
    unknown.  ``files_done``/``files_total`` count files started (backup, restore).
    """

    phase: str
    unit: str
    done: int
    total: int | None
    files_done: int
    files_total: int | None
    current: str | None
    elapsed: float
    finished: bool = False

    @property
    def fraction(self) -> float | None:
        """Done as a fraction 0..1 of the total (None while the total is unknown)."""
        if self.total is None:
            return None
        return 1.0 if self.total <= 0 else min(1.0, self.done / self.total)

    @property
    def percent(self) -> float | None:
        """Done as a percentage 0..100 (None while the total is unknown)."""
        f = self.fraction
        return None if f is None else round(100.0 * f, 1)

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far (None while unknown or nothing is done yet)."""
        f = self.fraction
        if self.finished:
            return 0.0
        if f is None or f <= 0.0 or self.elapsed <= 0.0:
            return None
        return max(0.0, self.elapsed * (1.0 - f) / f)

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (also the CLI's ``--json`` status line, without its type)."""
        eta = self.eta
        return {"phase": self.phase, "unit": self.unit, "done": self.done,
                "total": self.total, "percent": self.percent, "files_done": self.files_done,
                "files_total": self.files_total, "current": self.current,
                "elapsed_seconds": round(self.elapsed, 3),
                "eta_seconds": None if eta is None else round(eta, 1),
                "finished": self.finished}


class StatusReporter:
    """A :class:`Progress` that calls ``on_status(Status)``: at each phase's start and
    end, and at most every ``interval`` seconds in between.

    ``on_status`` runs on the thread doing the work: keep it quick (post the
    status to the UI thread; :mod:`strongroom.aio` does this for asyncio).
    ``on_warning(message)`` hears warnings (they are in the summary too).
    """

    def __init__(self, on_status: Callable[[Status], None], *,
                 on_warning: Callable[[str], None] | None = None, interval: float = 0.25,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._on_status, self._on_warning = on_status, on_warning
        self.interval, self._clock = interval, clock
        self._phase, self._unit = "", ""
        self._total: int | None = None
        self._done = self._files_done = 0
        self._files_total: int | None = None
        self._current: str | None = None
        self._started = self._last = 0.0
        self._active = False

    def status(self, *, finished: bool = False) -> Status:
        """The current status."""
        return Status(self._phase, self._unit, self._done, self._total, self._files_done,
                      self._files_total, self._current, self._clock() - self._started, finished)

    def _emit(self, force: bool = False) -> None:
        now = self._clock()
        if force or now - self._last >= self.interval:
            self._last = now
            self._on_status(self.status())

    def start(self, task: str, total: int | None, unit: str) -> None:
        """A phase begins."""
        if self._active:
            self.finish()
        self._phase, self._total, self._unit = task, total, unit
        self._done, self._current, self._active = 0, None, True
        if task not in ("backup", "restore"):
            self._files_done, self._files_total = 0, None
        self._started = self._clock()
        self._emit(force=True)

    def totals(self, files: int, nbytes: int) -> None:
        """The work ahead: ``files`` files, ``nbytes`` bytes."""
        self._files_total, self._files_done = files, 0
        if not self._active:  # between phases: the next start reports them
            return
        if self._unit == "bytes":
            self._total = nbytes
        self._emit(force=True)

    def item(self, path: str) -> None:
        """A file begins."""
        self._current = path
        self._files_done += 1
        self._emit()

    def advance(self, n: int) -> None:
        """``n`` more units are done."""
        self._done += n
        self._emit()

    def finish(self) -> None:
        """The phase is over (a final status with ``finished=True``)."""
        if not self._active:
            return
        self._active = False
        if self._total is not None:
            self._done = max(self._done, self._total)
        self._current = None
        self._last = self._clock()
        self._on_status(self.status(finished=True))

    def close(self) -> None:
        """The operation stopped before the phase ended (an error, a cancel): no final
        status is sent, so the last one sent stays the last (never a false 100 %)."""
        self._active = False

    def warn(self, message: str) -> None:
        """A non-fatal problem."""
        if self._on_warning is not None:
            self._on_warning(message)


__all__ = ["NullProgress", "Progress", "RecordingProgress", "Status", "StatusReporter",
           "report_item", "report_totals"]
