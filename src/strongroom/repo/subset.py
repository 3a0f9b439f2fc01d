"""The part of a snapshot a restore takes: ``SNAPSHOT:SUBPATH``, ``--include``, ``--exclude``.

* ``subpath`` (``latest:/home/me/chats/Media``): only what is at and below
  it, and *without the leading path*: the folder's contents land directly in
  the target (a file lands as ``TARGET/<its name>``).
* ``include`` patterns (:mod:`.patterns`): a record is taken if a pattern
  matches it or one of its folders; the folders above a taken record are
  taken too (so their modes and times are restored).  Relative patterns are
  relative to the snapshot's paths, or to ``subpath`` when one is given.
* ``exclude`` patterns: a record they match (or that lies in a folder they
  match) is left out, whatever ``include`` says.

An ``include`` that matches nothing, or a ``subpath`` that is not in the
snapshot, raises ``PathNotFound`` naming the snapshot's paths, so a typo
never "restores" zero files and exits 0.  Memory: the folders above the
current record that are not yet taken (bounded by the depth).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import PathNotFound
from .browse import not_found, snapshot_path
from .manifest import KIND_DIR, Entry
from .patterns import Parts, PatternSet

if TYPE_CHECKING:
    from .manifest import SnapshotDoc


@dataclass(frozen=True)
class Subset:
    """Which records of a snapshot to restore, and under which names (see the module doc)."""

    subpath: Parts = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @classmethod
    def of(cls, subpath: str = "", include: Sequence[str] = (),
           exclude: Sequence[str] = ()) -> Subset:
        """Checked (``UsageError`` for a bad path or pattern) before anything is read."""
        PatternSet.of(include)
        PatternSet.of(exclude)
        return cls(snapshot_path(subpath), tuple(include), tuple(exclude))

    def select(self, doc: SnapshotDoc, entries: Iterator[Entry]) -> Iterator[Entry]:
        """The records to restore, renamed below ``subpath``; ``PathNotFound`` as above."""
        roots = ["/" + "/".join(self.subpath)] if self.subpath else list(doc.paths)
        include = PatternSet.of(self.include, roots)
        exclude = PatternSet.of(self.exclude, roots)
        n, seen, matched = len(self.subpath), False, False
        pending: list[Entry] = []  # folders above the current record, not yet taken
        for e in entries:
            key = tuple(e.path.split("/"))
            if key[:n] != self.subpath:
                if key > self.subpath:
                    break  # walk order: nothing below the subpath follows
                continue
            seen = True
            while pending and not _below(key, pending[-1]):
                pending.pop()
            if exclude and exclude.covers(key):
                continue
            if include and not include.covers(key):
                if e.kind == KIND_DIR:
                    pending.append(e)
                continue
            matched = True
            for folder in pending:
                yield from self._renamed(folder)
            pending.clear()
            yield from self._renamed(e)
        if self.subpath and not seen:
            raise not_found(doc, self.subpath)
        if include and not matched:
            raise PathNotFound(
                f"--include {include.describe()} matches nothing in snapshot {doc.id[:8]}",
                hint=f"its paths are {', '.join(roots)}; patterns "
                     "without a leading / are relative to them")

    def _renamed(self, e: Entry) -> Iterator[Entry]:
        if not self.subpath:
            yield e
            return
        parts = e.path.split("/")
        n = len(self.subpath)
        rest = parts[n:] if e.kind == KIND_DIR or len(parts) > n else parts[-1:]
        if rest:  # the subpath folder itself is the target: no record of its own
            yield dataclasses.replace(e, path="/".join(rest))


def _below(key: Parts, folder: Entry) -> bool:
    parts = tuple(folder.path.split("/"))
    return key[: len(parts)] == parts


__all__ = ["Subset"]
