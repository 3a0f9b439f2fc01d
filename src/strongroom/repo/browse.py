"""Looking inside snapshots: list, find, and repository statistics.

Everything here reads only snapshot file lists (and, for ``stats``, the
index); no file data is downloaded.  A file list is in walk order (spec §7),
so listing one folder stops reading as soon as the walk has passed it.

Paths are shown as they were backed up (``/home/me/chats/notes.txt``) and
taken with the leading ``/`` optional.  Folders above a snapshot's paths
(``/home`` for a backup of ``/home/me/chats``) have no record of their own;
a listing shows them as folders without metadata (``recorded`` false).
"""

from __future__ import annotations

import dataclasses
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import PathNotFound, UsageError
from .manifest import KIND_DIR, KIND_FILE, KIND_SYMLINK, Entry
from .patterns import Parts, PatternSet, split

if TYPE_CHECKING:
    from .engine import Engine
    from .manifest import SnapshotDoc

KIND_NAMES = {KIND_FILE: "file", KIND_DIR: "dir", KIND_SYMLINK: "symlink"}


@dataclass(frozen=True)
class ListEntry:
    """One file, folder or symlink of a snapshot (``mtime`` in seconds since the epoch)."""

    path: str
    type: str
    mode: int
    size: int
    mtime: float
    link: str | None = None
    #: False for a folder above the snapshot's paths, which has no record (no metadata).
    recorded: bool = True

    @classmethod
    def of(cls, entry: Entry) -> ListEntry:
        """From a file-list record."""
        return cls("/" + entry.path, KIND_NAMES[entry.kind], entry.mode,
                   entry.size if entry.kind == KIND_FILE else 0, entry.mtime_ns / 1e9,
                   entry.link if entry.kind == KIND_SYMLINK else None)

    @classmethod
    def folder(cls, parts: Parts) -> ListEntry:
        """A folder that has no record (it lies above the snapshot's paths)."""
        return cls("/" + "/".join(parts), "dir", stat.S_IFDIR, 0, 0.0, None, False)

    @property
    def permissions(self) -> str:
        """``drwxr-xr-x`` style, as ``ls -l`` shows it."""
        return stat.filemode(self.mode) if self.recorded else "d?????????"

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (with ``permissions``)."""
        return {**dataclasses.asdict(self), "permissions": self.permissions}


def snapshot_path(path: str) -> Parts:
    """A path as backed up (leading ``/`` optional) as components; ``UsageError`` if unsafe."""
    parts = tuple(p for p in path.strip().split("/") if p)
    if any(p in (".", "..") for p in parts) or "\x00" in path:
        raise UsageError(f"bad path {path!r}: '.' and '..' are not allowed",
                         hint="name the path as it was backed up, e.g. /home/me/chats")
    return parts


def not_found(doc: SnapshotDoc, parts: Parts) -> PathNotFound:
    """The error for a path that is not in ``doc`` (names the snapshot's paths)."""
    return PathNotFound(f"/{'/'.join(parts)} is not in snapshot {doc.id[:8]}",
                        hint=f"the snapshot holds {', '.join(doc.paths) or 'nothing'}; "
                             "see 'strongroom ls " + doc.id[:8] + "'")


def subtree(engine: Engine, doc: SnapshotDoc, parts: Parts) -> Iterator[tuple[Parts, Entry]]:
    """The records at and below ``parts`` with their split paths; ``PathNotFound`` if none.

    Stops reading the file list once the walk has passed ``parts``.
    """
    n, found = len(parts), False
    for e in engine.entries(doc):
        key = tuple(e.path.split("/"))
        if key[:n] == parts:
            found = True
            yield key, e
        elif key > parts:
            break  # walk order: nothing below ``parts`` can follow
    if not found and parts:
        raise not_found(doc, parts)


def list_entries(engine: Engine, doc: SnapshotDoc, path: str = "", *,
                 recursive: bool = False) -> Iterator[ListEntry]:
    """``path`` and what is directly in it (everything below it with ``recursive``).

    Without ``path`` the whole snapshot is listed.
    """
    parts = snapshot_path(path)
    recursive = recursive or not parts
    n, last_child = len(parts), None
    for key, e in subtree(engine, doc, parts):
        if recursive or len(key) <= n + 1:
            last_child = key[: n + 1]
            yield ListEntry.of(e)
        elif key[: n + 1] != last_child:  # a child folder with no record of its own
            last_child = key[: n + 1]
            yield ListEntry.folder(last_child)


@dataclass(frozen=True)
class FindMatch:
    """A path that matched, and the snapshot it is in."""

    snapshot_id: str
    snapshot_time: float
    hostname: str
    entry: ListEntry

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {"snapshot": self.snapshot_id, "snapshot_time": self.snapshot_time,
                "hostname": self.hostname, **self.entry.to_json()}


def find(engine: Engine, docs: Sequence[SnapshotDoc], patterns: Sequence[str]
         ) -> Iterator[FindMatch]:
    """Every record of ``docs`` whose path matches one of ``patterns`` (``patterns`` rules).

    The patterns are checked (``UsageError``) before any snapshot is read.
    """
    if not patterns:
        raise UsageError("find needs a pattern", hint="give a pattern such as '*.db'")
    compiled = PatternSet.of(patterns)
    for doc in docs:
        ps = dataclasses.replace(compiled, roots=tuple(split(r) for r in doc.paths))
        for e in engine.entries(doc):
            if ps.matches(tuple(e.path.split("/"))):
                yield FindMatch(doc.id, doc.time, doc.hostname, ListEntry.of(e))


@dataclass(frozen=True)
class RepoStats:
    """Sizes of a set of snapshots.

    ``restore_size``: bytes a restore of every one of them would write.
    ``unique_size``: bytes of the distinct chunks they use (after deduplication,
    before compression).  ``stored_size``: bytes of the stored frames holding
    those chunks and the file lists (compressed, encrypted, padded).
    ``dedup_ratio`` is ``restore_size / unique_size``.  ``repository_size``
    is every pack the index lists, whichever snapshots use it.
    """

    snapshots: int
    files: int
    restore_size: int
    unique_blobs: int
    unique_size: int
    stored_size: int
    dedup_ratio: float | None
    repository_size: int
    #: Chunks the index does not know (damage; ``check`` says more).
    missing_blobs: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return dataclasses.asdict(self)


def stats(engine: Engine, docs: Sequence[SnapshotDoc]) -> RepoStats:
    """Restore size, deduplicated size and stored size of ``docs``."""
    index = engine.index()
    seen: set[bytes] = set()
    frames: set[tuple[bytes, int]] = set()
    totals = {"stored": 0, "missing": 0}

    def count(bid: bytes) -> int:
        """The blob's length if not counted before (and its frame's stored bytes)."""
        if bid in seen:
            return 0
        seen.add(bid)
        where = index.blobs.get(bid)
        if where is None:
            totals["missing"] += 1
            return 0
        pid, loc = where
        if (pid, loc.frame_offset) not in frames:
            frames.add((pid, loc.frame_offset))
            totals["stored"] += loc.frame_len
        return loc.length

    unique = 0
    for doc in docs:
        for seg in doc.segments:
            count(seg)  # file lists are stored, but are not restored data
        for e in engine.entries(doc):
            unique += sum(count(cid) for cid in e.chunks)
    restore = sum(d.size for d in docs)
    ratio = round(restore / unique, 3) if unique > 0 else None
    return RepoStats(len(docs), sum(d.files for d in docs), restore, len(seen), unique,
                     totals["stored"], ratio, sum(p.size for p in index.packs.values()),
                     totals["missing"])


__all__ = ["FindMatch", "ListEntry", "RepoStats", "find", "list_entries", "not_found",
           "snapshot_path", "stats", "subtree"]
