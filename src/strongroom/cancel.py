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

While an operation runs, its token is also the *current* one
(:func:`current`, a context variable the operation sets, and which the
worker threads of its pools adopt): a wait deep in a lower layer that does
not get the token as an argument, such as the storage retry wrapper's
backoff (:func:`pause`), ends as soon as the token is cancelled.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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


_CURRENT: contextvars.ContextVar[Cancel] = contextvars.ContextVar("strongroom_cancel",
                                                                  default=NEVER)


def current() -> Cancel:
    """The token of the operation this thread works for (:data:`NEVER` outside one)."""
    return _CURRENT.get()


@contextmanager
def active(cancel: Cancel) -> Iterator[Cancel]:
    """Make ``cancel`` the current token of this thread for the ``with`` block."""
    reset = _CURRENT.set(cancel)
    try:
        yield cancel
    finally:
        _CURRENT.reset(reset)


def adopt(cancel: Cancel) -> None:
    """Make ``cancel`` current for the rest of this thread's life.

    A pool's ``initializer`` (``ThreadPoolExecutor(initializer=adopt,
    initargs=(current(),))``): worker threads do not inherit context variables.
    """
    _CURRENT.set(cancel)


def pause(seconds: float, sleep: Callable[[float], None] | None = None) -> None:
    """Wait ``seconds`` unless the current token is cancelled: then ``Cancelled`` at once.

    ``sleep`` (tests: a fake clock) replaces the wait; the token is checked
    before and after it.
    """
    cancel = current()
    cancel.check()
    if sleep is not None:
        sleep(seconds)
    elif cancel is NEVER:
        time.sleep(seconds)
    else:
        cancel.wait(seconds)
    cancel.check()


__all__ = ["NEVER", "Cancel", "active", "adopt", "current", "pause", "token"]
