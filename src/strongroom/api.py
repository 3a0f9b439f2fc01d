"""The library API of Strongroom: what the CLI and a chat app call.

Open or create a repository on any :class:`~strongroom.storage.base.Backend`
with a :class:`BackupKey`, back up directories, list snapshots, restore,
check, forget and prune; password mode is :mod:`strongroom.password`.  The
guide is ``docs/sdk.md``; the on-storage format is ``docs/spec/backup-format.md``.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Self

from .cancel import Cancel, token
from .crypto.keys import BackupKey
from .errors import UsageError
from .progress import NullProgress, Progress
from .repo import browse, selection
from .repo.browse import FindMatch, ListEntry, RepoStats
from .repo.retention import DEFAULT_GROUP_BY, ForgetGroup, RetentionPolicy
from .repo.selection import SnapshotFilter
from .results import (
    BackupSummary,
    ChatList,
    CheckReport,
    ForgetResult,
    Problem,
    PruneSummary,
    RestoreSummary,
    SnapshotInfo,
)
from .storage.base import Backend

if TYPE_CHECKING:
    from .chats.catalogue import CatalogueEntry
    from .chats.search import MessageHit, SearchHit
    from .client.rollback import HeadGuard
    from .password import RealmAccess, VaultAccess
    from .repo.chatcat import ChatChange, OpenedChat
    from .repo.diff import ChatDiff, SnapshotDiff
    from .repo.dump import DumpResult
    from .repo.engine import Engine
    from .repo.manifest import SnapshotDoc

Clock = Callable[[], float]
Rng = Callable[[int], bytes]


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
    def create(cls, backend: Backend | str, key: BackupKey, *, clock: Clock = time.time,
               rng: Rng = os.urandom) -> Repository:
        """Create a new, empty repository; ``RepositoryExists`` if one is there.

        ``backend`` is a backend (``strongroom.storage_s3(...)`` and friends) or a
        location string (``/path``, ``s3:https://HOST/BUCKET``, ``rclone:REMOTE:PATH``;
        a missing folder or bucket is created).
        """
        from .repo.engine import Engine

        return cls(Engine.create(_backend(backend, create=True), key, clock=clock, rng=rng),
                   key)

    @classmethod
    def open(cls, backend: Backend | str, key: BackupKey, *,
             vault: VaultAccess | RealmAccess | None = None,
             clock: Clock = time.time, rng: Rng = os.urandom) -> Repository:
        """Open a repository: ``RepositoryNotFound``, ``WrongKey``, ``UnsupportedVersion``.

        ``backend`` is a backend or a location string, as for :meth:`create`.  With ``vault``, rollback detection is on for a password-protected
        repository (and for one this device saw protected: ``RollbackDetected``
        if its locator vanished).
        """
        from .repo.engine import Engine

        repo = cls(Engine.open(_backend(backend, create=False), key, clock=clock, rng=rng),
                   key)
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
    def public_config(backend: Backend | str) -> dict[str, Any]:
        """The plaintext config (no key needed); ``RepositoryNotFound`` if absent."""
        from .repo.config import read_config

        return read_config(_backend(backend, create=False)).to_public()

    @property
    def backend(self) -> Backend:
        """The storage this repository is on."""
        return self._engine.backend

    def backup(self, sources: Sequence[str | Path], *, progress: Progress | None = None,
               hostname: str | None = None, tags: Sequence[str] = (),
               exclude: Sequence[str] = (), cancel: Cancel | None = None,
               chats: bool = True) -> BackupSummary:
        """Back up files and directories into a new snapshot (then advance the head).

        The sources are scanned first, so ``progress`` gets totals (files, bytes)
        before the phase ``backup`` starts.  ``cancel.cancel()`` from any thread
        stops the backup with ``Cancelled``; no snapshot is written.

        ``tags`` are stored in the snapshot; ``exclude`` patterns
        (:mod:`strongroom.repo.patterns`) leave paths out.  ``chats=False`` skips
        recognising chat data: the snapshot then has no chat catalogue (spec §17).
        """
        summary = self._engine.backup(sources, progress=progress or NullProgress(),
                                      hostname=hostname, tags=tags, exclude=exclude, chats=chats,
                                      cancel=token(cancel))
        self.advance_head()
        return summary

    def snapshots(self, where: SnapshotFilter | None = None) -> list[SnapshotInfo]:
        """Every snapshot (passing ``where``), oldest first (after the rollback check)."""
        self.verify_head()
        return [s for s in self._engine.snapshots() if where is None or where.matches(s)]

    def find_snapshot(self, ref: str, where: SnapshotFilter | None = None) -> SnapshotInfo:
        """``latest`` (the newest passing ``where``) or a unique id prefix; else ``SnapshotNotFound``."""
        self.verify_head()
        return self._engine.info(selection.find_doc(self._engine, ref, where))

    def restore(self, ref: str, target: str | Path, *, include: Sequence[str] = (),
                exclude: Sequence[str] = (),
                allow_damaged: bool = False, overwrite: str = "if-newer",
                dry_run: bool = False, restore_special_bits: bool = False,
                on_item: Callable[[str, str, str], None] | None = None,
                progress: Progress | None = None, strip: str | None = None,
                cancel: Cancel | None = None) -> RestoreSummary:
        """Restore a snapshot (or part of it) into ``target``.

        ``ref`` is ``latest`` or an id prefix, optionally with ``:SUBPATH``
        (restored without its leading path); ``include``/``exclude`` are
        patterns relative to the snapshot's paths (:mod:`strongroom.repo.subset`).
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
        from .repo.subset import Subset

        self.verify_head()
        options = RestoreOptions(allow_damaged, overwrite, dry_run, restore_special_bits,
                                 on_item, strip or "")
        ref, _, subpath = ref.partition(":")
        subset = Subset.of(subpath, include, exclude)
        return self._engine.restore(ref, target, subset=subset, options=options,
                                    progress=progress or NullProgress(), cancel=token(cancel))

    def check(self, *, read_data: bool = False, progress: Progress | None = None,
              cancel: Cancel | None = None) -> CheckReport:
        """Verify the repository's structure, and with ``read_data`` every blob."""
        self.verify_head()
        return self._engine.check(read_data=read_data, progress=progress or NullProgress(),
                                  cancel=token(cancel))

    def forget(self, policy: RetentionPolicy | None = None, *, dry_run: bool = False,
               group_by: Sequence[str] = DEFAULT_GROUP_BY, where: SnapshotFilter | None = None,
               tz: dt.tzinfo | None = dt.UTC, **keep: Any) -> ForgetResult:
        """Remove snapshots the retention policy does not keep (restic semantics).

        ``policy`` or its counts as ``keep_last=``, ``keep_daily=``, … (see
        :mod:`strongroom.repo.retention`); ``tz`` is the zone days are counted in.
        In password mode the head moves to the remaining snapshots before any is
        deleted (``HeadGuard.forget``).
        """
        if policy is None:
            counts: dict[str, Any] = {k.removeprefix("keep_"): v or 0 for k, v in keep.items()}
            policy = RetentionPolicy(**counts)

        def run(**options: Any) -> ForgetResult:
            return self._engine.forget(**options)

        options: dict[str, Any] = {"policy": policy, "dry_run": dry_run, "group_by": group_by,
                                   "where": where, "tz": tz}
        if self._guard is None:
            return run(**options)
        result: ForgetResult = self._guard.forget(run, **options)
        self._verified = True
        return result

    def prune(self, *, progress: Progress | None = None,
              cancel: Cancel | None = None) -> PruneSummary:
        """Delete data no snapshot refers to any more (``cancel``: see :mod:`strongroom.cancel`)."""
        return self._engine.prune(progress=progress or NullProgress(), cancel=token(cancel))

    # -- looking inside snapshots (strongroom.repo.browse, .diff, .dump) ----------------
    def ls(self, ref: str, path: str = "", *, recursive: bool = False,
           where: SnapshotFilter | None = None) -> Iterator[ListEntry]:
        """``path`` of snapshot ``ref`` and what is directly in it (all below: ``recursive``)."""
        self.verify_head()
        doc = selection.find_doc(self._engine, ref, where)
        return browse.list_entries(self._engine, doc, path, recursive=recursive)

    def find(self, patterns: Sequence[str], *, refs: Sequence[str] = (),
             where: SnapshotFilter | None = None) -> Iterator[FindMatch]:
        """Paths matching ``patterns`` in snapshots ``refs`` (default: all passing ``where``)."""
        self.verify_head()
        return browse.find(self._engine, self._docs(refs, where), patterns)

    def diff(self, before: str, after: str, *, chats: ChatDiff | None = None,
             where: SnapshotFilter | None = None) -> SnapshotDiff:
        """What changed from snapshot ``before`` to ``after``; ``chats`` adds chat-level changes."""
        from .repo.diff import diff as diff_snapshots

        self.verify_head()
        return diff_snapshots(self._engine, selection.find_doc(self._engine, before, where),
                              selection.find_doc(self._engine, after, where), chats=chats)

    def dump(self, ref: str, path: str, out: IO[bytes], *,
             where: SnapshotFilter | None = None) -> DumpResult:
        """Write the file at ``path`` to ``out``, or the folder as a tar stream."""
        from .repo.dump import dump as dump_path

        self.verify_head()
        return dump_path(self._engine, selection.find_doc(self._engine, ref, where), path, out)

    def stats(self, refs: Sequence[str] = (), *, where: SnapshotFilter | None = None
              ) -> RepoStats:
        """Restore, deduplicated and stored size of the snapshots ``refs`` (default: all)."""
        self.verify_head()
        return browse.stats(self._engine, self._docs(refs, where))

    def _docs(self, refs: Sequence[str], where: SnapshotFilter | None) -> list[SnapshotDoc]:
        if refs:
            return [selection.find_doc(self._engine, r, where) for r in refs]
        return selection.select_docs(self._engine, where)

    # -- chats (spec §17) -------------------------------------------------------------
    def chats(self, ref: str = "latest") -> ChatList:
        """The chat catalogue of snapshot *ref* (``catalogued`` False for a snapshot
        written before catalogues); ``DataDamaged`` if it is unreadable."""
        from .repo.chatcat import load_catalogue

        self.verify_head()  # password mode: the snapshot list is checked first
        doc = self._engine.find_doc(ref)
        cat = load_catalogue(self._engine, doc)
        return ChatList(doc.id, cat is not None, list(cat.entries) if cat else [])

    def chat_entry(self, ref: str, name: str) -> CatalogueEntry:
        """The catalogue entry of the one chat *name* names (see :meth:`chat`)."""
        from .repo.chatcat import find_chats

        return find_chats(self.chats(ref).entries, name)

    def chat(self, ref: str, name: str) -> OpenedChat:
        """The one chat of snapshot *ref* that *name* names (case-insensitive substring;
        a whole-name match wins), with its messages parsed from the snapshot.
        ``ChatNotFound``, ``AmbiguousChat`` (listing the candidates)."""
        from .repo.chatcat import find_chats, open_chat

        listing = self.chats(ref)
        entry = find_chats(listing.entries, name)
        return open_chat(self._engine, self._engine.find_doc(listing.snapshot_id), entry)

    def search_chats(self, text: str, ref: str = "latest") -> list[SearchHit]:
        """Messages of snapshot *ref* containing *text* (case-insensitive), chat by chat."""
        from .chats.search import search
        from .repo.chatcat import open_chats

        listing = self.chats(ref)
        doc = self._engine.find_doc(listing.snapshot_id)
        return list(search((o.chat for o in open_chats(self._engine, doc, listing.entries)),
                           text))

    def search_messages(self, text: str, ref: str = "latest") -> list[MessageHit]:
        """The messages of snapshot *ref* containing *text* (case-insensitive), as
        :meth:`search_chats` finds them and in its order, each with its chat's catalogue
        entry instead of the whole chat: a message store is searched in SQL, so only the
        matching messages are built (``strongroom chats search`` uses this)."""
        from .repo.chatcat import search_messages

        listing = self.chats(ref)
        return search_messages(self._engine, self._engine.find_doc(listing.snapshot_id),
                               listing.entries, text)

    def chat_changes(self, ref_a: str, ref_b: str) -> list[ChatChange]:
        """Per chat, messages added or changed from snapshot *ref_a* to *ref_b*."""
        from .repo.chatcat import chat_changes

        self.verify_head()
        return chat_changes(self._engine, self._engine.find_doc(ref_a),
                            self._engine.find_doc(ref_b))

    def close(self) -> None:
        """Release the repository (idempotent)."""
        self._engine.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Repository {self.id[:8]}>"


#: Names this module offers that live in modules only some operations need (PEP 562).
_LAZY = {"ChatDiff": "repo.diff", "SnapshotDiff": "repo.diff", "DumpResult": "repo.dump"}


def __getattr__(name: str) -> Any:
    import importlib

    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __package__), name)


def _backend(backend: Backend | str, *, create: bool) -> Backend:
    if isinstance(backend, str):
        from .storage.registry import open_backend

        return open_backend(backend, create=create)
    return backend


__all__ = [
    "BackupKey",
    "BackupSummary",
    "ChatDiff",
    "ChatList",
    "CheckReport",
    "DumpResult",
    "FindMatch",
    "ForgetGroup",
    "ForgetResult",
    "ListEntry",
    "Problem",
    "PruneSummary",
    "RepoStats",
    "Repository",
    "RestoreSummary",
    "RetentionPolicy",
    "SnapshotDiff",
    "SnapshotFilter",
    "SnapshotInfo",
]
