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

from .crypto.keys import BackupKey
from .errors import UsageError
from .progress import NullProgress, Progress
from .storage.base import Backend

if TYPE_CHECKING:
    from .client.rollback import HeadGuard
    from .password import VaultAccess
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


class _Lister:
    """The engine's own snapshot listing, for the rollback guard (which must not recurse)."""

    def __init__(self, engine: Engine) -> None:
        self._engine, self.id = engine, engine.repo_id_hex

    def snapshots(self) -> list[SnapshotInfo]:
        return self._engine.snapshots()


class Repository:
    """An open Strongroom repository.  Use :meth:`create` or :meth:`open`; a context manager.

    Opened with ``vault=`` (a :class:`strongroom.password.VaultAccess`), a
    password-protected repository keeps rollback detection on: the vault's
    backup head is verified before snapshots are listed, restored or checked,
    and advanced after every backup and forget (``RollbackDetected``).
    """

    def __init__(self, engine: Engine, key: BackupKey | None = None) -> None:  # use create()/open()
        self._engine = engine
        self.id: str = engine.repo_id_hex
        self._key = key
        self._guard: HeadGuard | None = None
        self._verified = False
        self._on_skip: Callable[[str], None] | None = None

    @classmethod
    def create(cls, backend: Backend, key: BackupKey, *, clock: Clock = time.time,
               rng: Rng = os.urandom) -> Repository:
        """Create a new, empty repository; ``RepositoryExists`` if one is there."""
        from .repo.engine import Engine

        return cls(Engine.create(backend, key, clock=clock, rng=rng), key)

    @classmethod
    def open(cls, backend: Backend, key: BackupKey, *, vault: VaultAccess | None = None,
             clock: Clock = time.time, rng: Rng = os.urandom) -> Repository:
        """Open a repository: ``RepositoryNotFound``, ``WrongKey``, ``UnsupportedVersion``.

        With ``vault``, rollback detection is on for a password-protected
        repository (and for one this device saw protected: ``RollbackDetected``
        if its locator vanished).
        """
        from .repo.engine import Engine

        repo = cls(Engine.open(backend, key, clock=clock, rng=rng), key)
        if vault is not None:
            from .password import head_guard

            try:
                repo._on_skip = vault.on_skip
                repo.attach_guard(head_guard(repo, vault))
            except BaseException:
                repo.close()
                raise
        return repo

    # -- rollback detection (password mode) ----------------------------------------------

    @property
    def backend(self) -> Backend:
        """The storage backend this repository lives on."""
        return self._engine.backend

    @property
    def backup_key(self) -> BackupKey:
        """K, the key this repository was opened with (handle with care)."""
        if self._key is None:
            raise UsageError("this repository was opened without its backup key")
        return self._key

    def lister(self) -> _Lister:
        """The raw snapshot listing (no rollback check), for :class:`HeadGuard`."""
        return _Lister(self._engine)

    def attach_guard(self, guard: HeadGuard | None) -> None:
        """Use ``guard`` for rollback detection from now on (None: none)."""
        self._guard, self._verified = guard, False

    @property
    def rollback_protected(self) -> bool:
        """Whether the vault's backup head guards this repository."""
        return self._guard is not None

    def verify_head(self) -> None:
        """Check the snapshot list against the vault's backup head (once per open).

        ``RollbackDetected`` names hidden snapshots.  An unreachable vault raises
        ``VaultError``, or only warns when the access has ``on_skip``.
        """
        from .errors import RollbackDetected, VaultError

        if self._guard is None or self._verified:
            return
        try:
            self._guard.verify()
        except RollbackDetected:
            raise
        except VaultError as exc:
            if self._on_skip is None:
                raise
            self._on_skip(f"rollback check skipped: {exc.message}")
            return
        self._verified = True

    def advance_head(self, *, what: str = "backup") -> None:
        """Move the vault's backup head to the current snapshot list (after a change)."""
        from .errors import RollbackDetected, VaultError

        if self._guard is None:
            return
        try:
            self._guard.advance()
        except RollbackDetected as exc:
            raise RollbackDetected(f"{what} saved, but {exc.message}", hint=exc.hint) from None
        except VaultError as exc:
            if self._on_skip is None:
                raise
            self._on_skip(f"the vault's backup head was not advanced ({exc.message}); rollback "
                          "detection covers this snapshot from the next successful backup")
        self._verified = True

    @staticmethod
    def public_config(backend: Backend) -> dict[str, Any]:
        """The plaintext config (no key needed); ``RepositoryNotFound`` if absent."""
        from .repo.config import read_config

        return read_config(backend).to_public()

    def backup(self, sources: Sequence[str | Path], *, progress: Progress | None = None,
               hostname: str | None = None) -> BackupSummary:
        """Back up files and directories into a new snapshot (then advance the head)."""
        summary = self._engine.backup(sources, progress=progress or NullProgress(),
                                      hostname=hostname)
        self.advance_head()
        return summary

    def snapshots(self) -> list[SnapshotInfo]:
        """Every snapshot, oldest first (after the rollback check in password mode)."""
        self.verify_head()
        return self._engine.snapshots()

    def find_snapshot(self, ref: str) -> SnapshotInfo:
        """``latest`` or a unique id prefix; ``SnapshotNotFound`` otherwise."""
        self.verify_head()
        return self._engine.find_snapshot(ref)

    def restore(self, ref: str, target: str | Path, *, include: Sequence[str] = (),
                allow_damaged: bool = False, overwrite: str = "if-newer",
                dry_run: bool = False, restore_special_bits: bool = False,
                on_item: Callable[[str, str, str], None] | None = None,
                progress: Progress | None = None) -> RestoreSummary:
        """Restore a snapshot (or the paths under ``include``) into ``target``.

        Nothing is written outside ``target``.  ``overwrite`` decides about files
        that exist: ``always``, ``if-changed`` (same size and mtime: kept),
        ``if-newer`` (the default: replaced only by a newer copy), ``never``.
        ``dry_run`` writes nothing.  Setuid, setgid and sticky bits are dropped
        unless ``restore_special_bits``.  ``on_item(action, path, reason)`` hears
        every file and link: ``write``, ``replace`` or ``skip``.
        """
        from .repo.restore import RestoreOptions

        self.verify_head()
        options = RestoreOptions(allow_damaged, overwrite, dry_run, restore_special_bits,
                                 on_item)
        return self._engine.restore(ref, target, include=include, options=options,
                                    progress=progress or NullProgress())

    def check(self, *, read_data: bool = False, progress: Progress | None = None) -> CheckReport:
        """Verify the repository's structure, and with ``read_data`` every blob."""
        self.verify_head()
        return self._engine.check(read_data=read_data, progress=progress or NullProgress())

    def forget(self, *, keep_last: int | None = None, keep_daily: int | None = None,
               keep_weekly: int | None = None, dry_run: bool = False) -> ForgetResult:
        """Remove snapshots not kept by the policy (restic semantics).

        In password mode the head moves to the remaining snapshots before any is
        deleted (``HeadGuard.forget``)."""
        def run(**policy: Any) -> ForgetResult:
            return self._engine.forget(**policy)

        policy: dict[str, Any] = {"keep_last": keep_last, "keep_daily": keep_daily,
                                  "keep_weekly": keep_weekly, "dry_run": dry_run}
        if self._guard is None:
            return run(**policy)
        result: ForgetResult = self._guard.forget(run, **policy)
        self._verified = True
        return result

    def prune(self, *, progress: Progress | None = None) -> PruneSummary:
        """Delete data no snapshot refers to any more."""
        return self._engine.prune(progress=progress or NullProgress())

    def close(self) -> None:
        """Release the repository (idempotent)."""
        self._engine.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Repository {self.id[:8]}>"


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
