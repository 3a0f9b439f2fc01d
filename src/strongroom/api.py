"""The library API of Strongroom: what the CLI and a chat app call.

Open or create a repository on any :class:`~strongroom.storage.base.Backend`
with a :class:`BackupKey`, back up directories, list snapshots, restore,
check, forget and prune.  The contract is ``docs/dev/team-contract.md``;
the on-storage format is ``docs/spec/backup-format.md``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from .cancel import Cancel, token
from .crypto.keys import BackupKey
from .progress import NullProgress, Progress
from .storage.base import Backend

if TYPE_CHECKING:
    from .repo.engine import Engine

Clock = Callable[[], float]
Rng = Callable[[int], bytes]


class _Jsonable:
    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict of this result."""
        return asdict(self)  # type: ignore[call-overload, no-any-return]


@dataclass(frozen=True)
class BackupSummary(_Jsonable):
    """What a backup did.  ``warnings`` non-empty means some source files were skipped.

    ``changed`` lists files that changed while they were read: each was stored as
    read (the next backup picks up the rest); it is not a warning.
    """

    snapshot_id: str
    files: int
    dirs: int
    bytes_read: int
    bytes_added: int
    files_unchanged: int = 0
    blobs_added: int = 0
    warnings: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SnapshotInfo(_Jsonable):
    """One snapshot as listed (the manifest itself is read only when needed)."""

    id: str
    time: float
    hostname: str
    paths: list[str]
    files: int
    bytes: int
    parent: str | None = None

    @property
    def short_id(self) -> str:
        """The first 8 hex digits of the id."""
        return self.id[:8]


@dataclass(frozen=True)
class RestoreSummary(_Jsonable):
    """What a restore wrote.  ``damaged`` lists files not restored because of damage.

    ``files`` and ``bytes`` count the files written (new or replacing one).
    """

    snapshot_id: str
    files: int
    bytes: int
    damaged: list[str] = field(default_factory=list)
    #: Existing files (and links) replaced, and kept by the overwrite policy.
    replaced: int = 0
    skipped: int = 0
    #: True: nothing was written; the counts say what a restore would do.
    dry_run: bool = False


@dataclass(frozen=True)
class Problem(_Jsonable):
    """One thing ``check`` found wrong: the object, what is wrong, the files affected."""

    object: str
    what: str
    files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CheckReport(_Jsonable):
    """The result of ``check``: ``ok`` is True only when ``problems`` is empty."""

    ok: bool
    problems: list[Problem] = field(default_factory=list)
    snapshots: int = 0
    packs: int = 0
    blobs: int = 0
    read_data: bool = False


@dataclass(frozen=True)
class ForgetResult(_Jsonable):
    """Which snapshots a retention policy keeps and removes (ids, oldest first)."""

    keep: list[str]
    remove: list[str]
    dry_run: bool = False


@dataclass(frozen=True)
class PruneSummary(_Jsonable):
    """What prune deleted and rewrote."""

    packs_deleted: int
    packs_repacked: int
    bytes_freed: int
    indexes_written: int
    #: Packs no snapshot uses, condemned now and deleted by the next prune (spec §12).
    packs_condemned: int = 0


class Repository:
    """An open Strongroom repository.  Use :meth:`create` or :meth:`open`; a context manager."""

    def __init__(self, engine: Engine) -> None:  # use create()/open()
        self._engine = engine
        self.id: str = engine.repo_id_hex

    @classmethod
    def create(cls, backend: Backend | str, key: BackupKey, *, clock: Clock = time.time,
               rng: Rng = os.urandom) -> Repository:
        """Create a new, empty repository; ``RepositoryExists`` if one is there.

        ``backend`` is a backend (``strongroom.storage_s3(...)`` and friends) or a
        location string (``/path``, ``s3:https://HOST/BUCKET``, ``rclone:REMOTE:PATH``;
        a missing folder or bucket is created).
        """
        from .repo.engine import Engine

        return cls(Engine.create(_backend(backend, create=True), key, clock=clock, rng=rng))

    @classmethod
    def open(cls, backend: Backend | str, key: BackupKey, *, clock: Clock = time.time,
             rng: Rng = os.urandom) -> Repository:
        """Open a repository: ``RepositoryNotFound``, ``WrongKey``, ``UnsupportedVersion``.

        ``backend`` is a backend or a location string, as for :meth:`create`.
        """
        from .repo.engine import Engine

        return cls(Engine.open(_backend(backend, create=False), key, clock=clock, rng=rng))

    @staticmethod
    def public_config(backend: Backend | str) -> dict[str, Any]:
        """The plaintext config (no key needed); ``RepositoryNotFound`` if absent."""
        from .repo.config import read_config

        return read_config(_backend(backend, create=False)).to_public()

    @property
    def backend(self) -> Backend:
        """The storage this repository is on."""
        return self._engine.backend

    def backup(self, sources: Sequence[str | Path], *, progress: Progress | None = None,
               hostname: str | None = None, cancel: Cancel | None = None) -> BackupSummary:
        """Back up files and directories into a new snapshot.

        The sources are scanned first, so ``progress`` gets totals (files, bytes)
        before the phase ``backup`` starts.  ``cancel.cancel()`` from any thread
        stops the backup with ``Cancelled``; no snapshot is written.
        """
        return self._engine.backup(sources, progress=progress or NullProgress(),
                                   hostname=hostname, cancel=token(cancel))

    def snapshots(self) -> list[SnapshotInfo]:
        """Every snapshot, oldest first."""
        return self._engine.snapshots()

    def find_snapshot(self, ref: str) -> SnapshotInfo:
        """``latest`` or a unique id prefix; ``SnapshotNotFound`` otherwise."""
        return self._engine.find_snapshot(ref)

    def restore(self, ref: str, target: str | Path, *, include: Sequence[str] = (),
                allow_damaged: bool = False, overwrite: str = "if-newer",
                dry_run: bool = False, restore_special_bits: bool = False,
                on_item: Callable[[str, str, str], None] | None = None,
                progress: Progress | None = None, strip: str | None = None,
                cancel: Cancel | None = None) -> RestoreSummary:
        """Restore a snapshot (or the paths under ``include``) into ``target``.

        Nothing is written outside ``target``.  ``overwrite`` decides about files
        that exist: ``always``, ``if-changed`` (same size and mtime: kept),
        ``if-newer`` (the default: replaced only by a newer copy), ``never``.
        ``dry_run`` writes nothing.  Setuid, setgid and sticky bits are dropped
        unless ``restore_special_bits``.  ``on_item(action, path, reason)`` hears
        every file and link: ``write``, ``replace`` or ``skip``.

        ``strip`` restores on a new device: the path prefix (as backed up, e.g.
        ``/home/alice/chats``) is dropped, so what lay under it lands directly in
        ``target``; records outside it are not restored (``UsageError`` if none
        lies under it).  ``include`` paths are still written as backed up.
        ``cancel.cancel()`` stops the restore with ``Cancelled``: files completed
        so far stay, the file being written is discarded.
        """
        from .repo.restore import RestoreOptions

        options = RestoreOptions(allow_damaged, overwrite, dry_run, restore_special_bits,
                                 on_item, strip or "")
        return self._engine.restore(ref, target, include=include, options=options,
                                    progress=progress or NullProgress(), cancel=token(cancel))

    def check(self, *, read_data: bool = False, progress: Progress | None = None,
              cancel: Cancel | None = None) -> CheckReport:
        """Verify the repository's structure, and with ``read_data`` every blob."""
        return self._engine.check(read_data=read_data, progress=progress or NullProgress(),
                                  cancel=token(cancel))

    def forget(self, *, keep_last: int | None = None, keep_daily: int | None = None,
               keep_weekly: int | None = None, dry_run: bool = False) -> ForgetResult:
        """Remove snapshots not kept by the policy (restic semantics)."""
        return self._engine.forget(keep_last=keep_last, keep_daily=keep_daily,
                                   keep_weekly=keep_weekly, dry_run=dry_run)

    def prune(self, *, progress: Progress | None = None,
              cancel: Cancel | None = None) -> PruneSummary:
        """Delete data no snapshot refers to any more (``cancel``: see :mod:`strongroom.cancel`)."""
        return self._engine.prune(progress=progress or NullProgress(), cancel=token(cancel))

    def close(self) -> None:
        """Release the repository (idempotent)."""
        self._engine.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Repository {self.id[:8]}>"


def _backend(backend: Backend | str, *, create: bool) -> Backend:
    if isinstance(backend, str):
        from .storage.registry import open_backend

        return open_backend(backend, create=create)
    return backend


__all__ = [
    "BackupKey",
    "BackupSummary",
    "CheckReport",
    "ForgetResult",
    "Problem",
    "PruneSummary",
    "Repository",
    "RestoreSummary",
    "SnapshotInfo",
]
