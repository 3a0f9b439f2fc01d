"""The result types of the library's operations (what ``strongroom.api`` returns).

They live apart from :mod:`strongroom.api` so that the engine (``strongroom.repo``)
can build them without importing the API layer: imports go one way, API → repo →
results (``docs/architecture.md``).  ``strongroom`` and ``strongroom.api``
re-export every one of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .chats.catalogue import CatalogueEntry
    from .repo.retention import ForgetGroup


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
    #: Chats catalogued (spec §17); chat-looking files that could not be parsed (they are
    #: backed up all the same; not a failure); the chat files parsed in this run (an
    #: unchanged one keeps the parent snapshot's catalogue part unparsed).
    chats: int = 0
    chat_warnings: list[str] = field(default_factory=list)
    chat_files_parsed: list[str] = field(default_factory=list)


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
    tags: list[str] = field(default_factory=list)

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
class ChatList:
    """A snapshot's chat catalogue (``catalogued`` False: written before catalogues)."""

    snapshot_id: str
    catalogued: bool
    entries: list[CatalogueEntry]


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
    #: Per group (host, paths, tags): what is kept, by which rule, and what goes.
    groups: list[ForgetGroup] = field(default_factory=list)


@dataclass(frozen=True)
class PruneSummary(_Jsonable):
    """What prune deleted and rewrote."""

    packs_deleted: int
    packs_repacked: int
    bytes_freed: int
    indexes_written: int
    #: Packs no snapshot uses, condemned now and deleted by the next prune (spec §12).
    packs_condemned: int = 0


__all__ = ["BackupSummary", "ChatList", "CheckReport", "ForgetResult", "Problem", "PruneSummary",
           "RestoreSummary", "SnapshotInfo"]
