"""The asyncio form of the library: the same operations, awaited.

Every call runs the synchronous library in a worker thread (the loop's
default executor, as :func:`asyncio.to_thread`), so the event loop keeps
running: the
heavy parts release the GIL (file and network I/O, compression, hashing, and
the password stretching, which uses libsodium for that reason) or hold it
only briefly (``docs/sdk.md`` §6 has the probe and the measurements), and
``tests/unit/test_aio.py`` checks that a 5 ms heartbeat on the loop is never
made late by 50 ms or more by this process during a backup, a restore and a
password login (nor at all on a quiet machine).

Cancelling the awaiting task (``task.cancel()``, a timeout) cancels the
operation through its :class:`~strongroom.cancel.Cancel` token; the task's
``CancelledError`` is raised once the worker has stopped, so the repository
lock is already released and the repository is as a killed process would
leave it (see :mod:`strongroom.cancel`).  A request that arrives after the
operation's last check (the snapshot is being committed) cannot stop it: the
awaited call then returns the result, so an app never believes a snapshot
missing that exists.  Progress reaches the loop thread:
``on_status(Status)`` is called there, never on the worker.

    async with await aio.open(strongroom.storage_local(path), key) as repo:
        summary = await repo.backup([chats], on_status=show)
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self, TypeVar

from .api import (
    BackupSummary,
    CheckReport,
    ForgetResult,
    PruneSummary,
    Repository,
    RestoreSummary,
    SnapshotInfo,
)
from .cancel import Cancel
from .crypto.keys import BackupKey
from .progress import Progress, Status, StatusReporter
from .storage.base import Backend

T = TypeVar("T")
OnStatus = Callable[[Status], None]

async def call(fn: Callable[..., T], /, *args: Any, cancel: Cancel | None = None,
               **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a worker thread; task cancellation sets ``cancel``.

    When ``cancel`` is given it is also passed to ``fn`` as ``cancel=``.  If the
    awaiting task is cancelled, the token is cancelled and the worker awaited
    before ``CancelledError`` propagates.  If the request came too late (the
    operation had passed its last check, e.g. a backup committing its
    snapshot), the operation's result is returned instead: a finished backup is
    never reported as cancelled.  Without a token, ``CancelledError`` propagates
    at once and ``fn`` runs on to its end in the background (a thread cannot be
    stopped from outside).
    Use it for any library call without an ``aio`` form (the password mode).
    """
    loop = asyncio.get_running_loop()
    if cancel is not None:
        kwargs["cancel"] = cancel
    ctx = contextvars.copy_context()
    fut = loop.run_in_executor(None, functools.partial(ctx.run, fn, *args, **kwargs))
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        if cancel is None:
            raise
        cancel.cancel("the asyncio task was cancelled")
        while not fut.done():
            try:
                await asyncio.shield(fut)
            except asyncio.CancelledError:
                continue
            except BaseException:  # noqa: BLE001 - looked at below
                break
        if fut.cancelled() or fut.exception() is not None:
            raise
        # The request came after the operation's last check (a backup committing its
        # snapshot): it completed.  Say so instead of pretending it did not happen.
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        return fut.result()


def _reporter(on_status: OnStatus | None, progress: Progress | None,
              on_warning: Callable[[str], None] | None) -> Progress | None:
    """``progress``, or a StatusReporter that delivers statuses on the loop's thread."""
    if on_status is None:
        return progress
    if progress is not None:
        raise ValueError("give on_status or progress, not both")
    loop = asyncio.get_running_loop()

    def post(status: Status) -> None:
        loop.call_soon_threadsafe(on_status, status)

    def warn(message: str) -> None:
        if on_warning is not None:
            loop.call_soon_threadsafe(on_warning, message)

    return StatusReporter(post, on_warning=warn)


class AsyncRepository:
    """A :class:`~strongroom.api.Repository` driven from asyncio (use :func:`open`/:func:`create`)."""

    def __init__(self, repository: Repository) -> None:
        self.sync = repository
        self.id = repository.id

    async def backup(self, sources: Sequence[str | Path], *, on_status: OnStatus | None = None,
                     on_warning: Callable[[str], None] | None = None,
                     progress: Progress | None = None, hostname: str | None = None,
                     cancel: Cancel | None = None) -> BackupSummary:
        """:meth:`Repository.backup`; ``on_status`` hears :class:`Status` on the loop."""
        return await call(self.sync.backup, list(sources),
                          progress=_reporter(on_status, progress, on_warning),
                          hostname=hostname, cancel=cancel or Cancel())

    async def restore(self, ref: str, target: str | Path, *,
                      on_status: OnStatus | None = None,
                      on_warning: Callable[[str], None] | None = None,
                      progress: Progress | None = None, cancel: Cancel | None = None,
                      **options: Any) -> RestoreSummary:
        """:meth:`Repository.restore` (same keyword options: ``strip``, ``include``, ...)."""
        return await call(self.sync.restore, ref, target,
                          progress=_reporter(on_status, progress, on_warning),
                          cancel=cancel or Cancel(), **options)

    async def check(self, *, read_data: bool = False, on_status: OnStatus | None = None,
                    progress: Progress | None = None,
                    cancel: Cancel | None = None) -> CheckReport:
        """:meth:`Repository.check`."""
        return await call(self.sync.check, read_data=read_data,
                          progress=_reporter(on_status, progress, None),
                          cancel=cancel or Cancel())

    async def prune(self, *, on_status: OnStatus | None = None,
                    progress: Progress | None = None,
                    cancel: Cancel | None = None) -> PruneSummary:
        """:meth:`Repository.prune`."""
        return await call(self.sync.prune, progress=_reporter(on_status, progress, None),
                          cancel=cancel or Cancel())

    async def snapshots(self) -> list[SnapshotInfo]:
        """:meth:`Repository.snapshots`."""
        return await call(self.sync.snapshots)

    async def find_snapshot(self, ref: str) -> SnapshotInfo:
        """:meth:`Repository.find_snapshot`."""
        return await call(self.sync.find_snapshot, ref)

    async def forget(self, **policy: Any) -> ForgetResult:
        """:meth:`Repository.forget`."""
        return await call(self.sync.forget, **policy)

    async def close(self) -> None:
        """:meth:`Repository.close`."""
        self.sync.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<AsyncRepository {self.id[:8]}>"


async def open(backend: Backend | str, key: BackupKey) -> AsyncRepository:
    """:meth:`Repository.open` in a worker thread (it reads the config and checks the key)."""
    return AsyncRepository(await call(Repository.open, backend, key))


async def create(backend: Backend | str, key: BackupKey) -> AsyncRepository:
    """:meth:`Repository.create` in a worker thread."""
    return AsyncRepository(await call(Repository.create, backend, key))


__all__ = ["AsyncRepository", "call", "create", "open"]
