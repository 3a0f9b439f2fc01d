"""Progress reporting: the protocol the CLI implements, and a silent default.

The engine calls ``start`` once per phase (e.g. "backup", "restore", "check"),
``advance`` with the number of units done, ``finish`` at the end of the phase,
and ``warn`` for non-fatal problems (a vanished source file).  The engine
never prints; whatever it wants a user to see goes through this protocol.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


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


__all__ = ["NullProgress", "Progress", "RecordingProgress"]
