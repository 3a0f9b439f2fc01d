"""What changed between two snapshots: added, removed and modified paths.

Both file lists are in walk order (spec §7), so they are merged in one pass
holding one record of each.  A file is *modified* when its content (chunk
list) or size differs, a symlink when its target differs, any path when its
kind changes; a change of only mode or mtime is *metadata*.  Only file lists
are read, never file data.  ``bytes_changed`` of a modified file counts the
bytes of chunks its new version has that its old version lacks (for a
message store: the pages that changed).

Chat-level changes (messages added or changed per chat) are not computed
here: a caller passes ``chats``, a function of the engine and both snapshots,
and its result is carried in :attr:`SnapshotDiff.chats` unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .browse import ListEntry
from .manifest import KIND_FILE, KIND_SYMLINK, Entry
from .target import checked_entries

if TYPE_CHECKING:
    from .engine import Engine
    from .manifest import SnapshotDoc

#: The hook for chat-level differences: ``chats(engine, before, after)``.
ChatDiff = Callable[["Engine", "SnapshotDoc", "SnapshotDoc"], Any]
ADDED, REMOVED, MODIFIED, METADATA = "added", "removed", "modified", "metadata"


@dataclass(frozen=True)
class Change:
    """One path that differs.  ``what`` lists the fields: content, size, type, link, mode, mtime."""

    path: str
    change: str
    before: ListEntry | None
    after: ListEntry | None
    what: list[str] = field(default_factory=list)
    bytes_changed: int = 0


@dataclass
class DiffStats:
    """Counts over all changes; ``bytes_added``/``bytes_removed`` are sizes of added/removed files."""

    added: int = 0
    removed: int = 0
    modified: int = 0
    metadata: int = 0
    bytes_added: int = 0
    bytes_removed: int = 0
    bytes_changed: int = 0

    def count(self, c: Change) -> None:
        """Add one change to the counts."""
        setattr(self, c.change, getattr(self, c.change) + 1)
        if c.change == ADDED and c.after is not None:
            self.bytes_added += c.after.size
        elif c.change == REMOVED and c.before is not None:
            self.bytes_removed += c.before.size
        self.bytes_changed += c.bytes_changed


@dataclass(frozen=True)
class SnapshotDiff:
    """The changes from ``from_id`` to ``to_id``, in walk order, and their counts.

    ``chats`` is whatever the caller's chat hook returned (``None`` without one).
    """

    from_id: str
    to_id: str
    changes: list[Change]
    stats: DiffStats
    chats: Any = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (entries with ``permissions``)."""
        def side(e: ListEntry | None) -> dict[str, Any] | None:
            return e.to_json() if e is not None else None

        return {"from": self.from_id, "to": self.to_id,
                "changes": [{"path": c.path, "change": c.change, "what": c.what,
                             "bytes_changed": c.bytes_changed, "before": side(c.before),
                             "after": side(c.after)} for c in self.changes],
                "stats": dataclasses.asdict(self.stats), "chats": self.chats}


def _differences(a: Entry, b: Entry) -> list[str]:
    if a.kind != b.kind:
        return ["type"]
    what = []
    if a.kind == KIND_FILE:
        if a.size != b.size:
            what.append("size")
        if a.chunks != b.chunks:
            what.append("content")
    if a.kind == KIND_SYMLINK and a.link != b.link:
        what.append("link")
    if a.mode != b.mode:
        what.append("mode")
    if a.mtime_ns != b.mtime_ns:
        what.append("mtime")
    return what


def _changed_bytes(engine: Engine, a: Entry, b: Entry) -> int:
    old = set(a.chunks)
    blobs = engine.index().blobs
    total = 0
    for cid in b.chunks:
        if cid not in old:
            where = blobs.get(cid)
            total += where[1].length if where is not None else 0
    return total


def _compare(engine: Engine, a: Entry, b: Entry) -> Change | None:
    what = _differences(a, b)
    if not what:
        return None
    content = {"type", "size", "content", "link"} & set(what)
    changed = (_changed_bytes(engine, a, b)
               if a.kind == b.kind == KIND_FILE and "content" in what else 0)
    return Change("/" + b.path, MODIFIED if content else METADATA, ListEntry.of(a),
                  ListEntry.of(b), what, changed)


def iter_changes(engine: Engine, before: SnapshotDoc, after: SnapshotDoc) -> Iterator[Change]:
    """The changes from ``before`` to ``after``, in walk order, one record of each held."""
    ia = checked_entries(engine.entries(before), f"snapshots/{before.id}")
    ib = checked_entries(engine.entries(after), f"snapshots/{after.id}")
    a, b = next(ia, None), next(ib, None)
    while a is not None or b is not None:
        if a is not None and (b is None or _key(a) < _key(b)):
            yield Change("/" + a.path, REMOVED, ListEntry.of(a), None)
            a = next(ia, None)
        elif b is not None and (a is None or _key(b) < _key(a)):
            yield Change("/" + b.path, ADDED, None, ListEntry.of(b))
            b = next(ib, None)
        elif a is not None and b is not None:  # the same path in both
            change = _compare(engine, a, b)
            if change is not None:
                yield change
            a, b = next(ia, None), next(ib, None)


def _key(e: Entry) -> tuple[str, ...]:
    return tuple(e.path.split("/"))


def diff(engine: Engine, before: SnapshotDoc, after: SnapshotDoc, *,
         chats: ChatDiff | None = None) -> SnapshotDiff:
    """All changes from ``before`` to ``after`` with counts; ``chats`` adds chat-level ones."""
    changes, counts = [], DiffStats()
    for c in iter_changes(engine, before, after):
        changes.append(c)
        counts.count(c)
    return SnapshotDiff(before.id, after.id, changes, counts,
                        chats(engine, before, after) if chats is not None else None)


__all__ = ["ADDED", "METADATA", "MODIFIED", "REMOVED", "Change", "ChatDiff", "DiffStats",
           "SnapshotDiff", "diff", "iter_changes"]
