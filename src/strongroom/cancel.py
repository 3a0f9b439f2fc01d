"""Cancellation: a token an app (or the CLI) sets to stop a long operation.

Pass a :class:`Cancel` to ``Repository.backup``, ``restore``, ``check`` or
``prune``; calling :meth:`Cancel.cancel` from any thread (a UI's "Stop"
button, a signal handler, an asyncio task being cancelled) makes the
operation raise :class:`~strongroom.errors.Cancelled` at its next check.  The
loops check the token at least once per file, per chunk (about 1 MiB read or
written) and per pack, so the operation stops within a fraction of a second.

A cancelled operation leaves the repository exactly as a killed process
would, which the format already makes safe (``docs/spec/backup-format.md``,
commit protocol): a backup has written no snapshot, the packs it uploaded
are found again by the next backup, earlier snapshots are untouched; a
restore has renamed into place only files that were complete, and removed
its temporary files; check and prune stop between objects.  Unlike a kill,
the repository lock is released at once.
"""

from __future__ import annotations

import threading

from .errors import Cancelled


class Cancel:
    """A cancellation token: :meth:`cancel` once, any thread; operations call :meth:`check`."""

    __slots__ = ("_event", "_reason")

    def __init__(self) -> None:
        self._event = threading.Event()
        self._reason = ""

    def cancel(self, reason: str = "") -> None:
        """Ask every operation holding this token to stop (idempotent, thread-safe)."""
        if not self._event.is_set():
            self._reason = reason
            self._event.set()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._event.is_set()

    @property
    def reason(self) -> str:
        """The text given to :meth:`cancel` (empty if none)."""
        return self._reason

    def check(self) -> None:
        """Raise :class:`~strongroom.errors.Cancelled` if cancelled; else return at once."""
        if self._event.is_set():
            raise Cancelled(reason=self._reason)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled or ``timeout`` seconds pass; True if cancelled."""
        return self._event.wait(timeout)

    def __repr__(self) -> str:
        return f"<Cancel {'cancelled' if self.cancelled else 'active'}>"


class _Never(Cancel):
    """The default token: never cancelled, and :meth:`cancel` is refused."""

    __slots__ = ()

    def cancel(self, reason: str = "") -> None:
        raise TypeError("the default token cannot be cancelled; pass your own Cancel()")

    def check(self) -> None:
        return None


#: Used when the caller passes no token.
NEVER: Cancel = _Never()


def token(cancel: Cancel | None) -> Cancel:
    """``cancel`` itself, or :data:`NEVER` for None."""
    return NEVER if cancel is None else cancel


__all__ = ["NEVER", "Cancel", "token"]
