"""Choosing snapshots: by host, path and tag, and what ``latest`` means under a filter.

restic's rules: a snapshot passes ``hosts`` if its host is one of them,
``paths`` if each given path is one of its paths, and ``tags`` if it carries
every tag of at least one of the given tag sets (``--tag a,b --tag c`` is
"a and b, or c").  An empty criterion passes everything.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..errors import SnapshotNotFound, UsageError
from .manifest import TAG_MAX_LEN, TAGS_MAX

if TYPE_CHECKING:
    from .engine import Engine
    from .manifest import SnapshotDoc


def check_tag(tag: str) -> str:
    """``tag`` if it is a valid tag, else ``UsageError`` (the spec's §7 rules)."""
    if (not tag or len(tag) > TAG_MAX_LEN or "," in tag or tag != tag.strip()
            or any(ord(c) < 32 or ord(c) == 127 for c in tag)):
        raise UsageError(f"bad tag {tag!r}: 1-{TAG_MAX_LEN} characters, no comma, no control "
                         "characters, no leading or trailing space")
    return tag


def normalize_tags(tags: Iterable[str]) -> list[str]:
    """Tags as a snapshot stores them: checked, unique, sorted."""
    out = sorted({check_tag(t) for t in tags})
    if len(out) > TAGS_MAX:
        raise UsageError(f"at most {TAGS_MAX} tags per snapshot")
    return out


def tag_sets(options: Iterable[str]) -> tuple[frozenset[str], ...]:
    """``["a,b", "c"]`` -> ``({a, b}, {c})`` (each option one set, comma-separated)."""
    return tuple(frozenset(check_tag(t) for t in o.split(",")) for o in options)


class Described(Protocol):
    """What a filter looks at (a ``SnapshotDoc`` or an API ``SnapshotInfo``)."""

    @property
    def hostname(self) -> str: ...
    @property
    def paths(self) -> list[str]: ...
    @property
    def tags(self) -> list[str]: ...


@dataclass(frozen=True)
class SnapshotFilter:
    """Which snapshots a command considers (empty: all)."""

    hosts: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    tags: tuple[frozenset[str], ...] = ()

    @classmethod
    def of(cls, hosts: Sequence[str] = (), paths: Sequence[str] = (),
           tags: Sequence[str] = ()) -> SnapshotFilter:
        """From option values; paths are made absolute as ``backup`` records them."""
        return cls(tuple(hosts), tuple(os.path.abspath(p) for p in paths), tag_sets(tags))

    def __bool__(self) -> bool:
        return bool(self.hosts or self.paths or self.tags)

    def matches(self, doc: Described) -> bool:
        """Whether ``doc`` passes every criterion."""
        if self.hosts and doc.hostname not in self.hosts:
            return False
        if self.paths and not set(self.paths) <= set(doc.paths):
            return False
        return not self.tags or any(t <= set(doc.tags) for t in self.tags)

    def describe(self) -> str:
        """The criteria for a message: ``host h1, path /p, tags a,b``."""
        bits = [f"host {h}" for h in self.hosts] + [f"path {p}" for p in self.paths]
        bits += ["tags " + ",".join(sorted(t)) for t in self.tags]
        return ", ".join(bits) or "no filter"


def select_docs(engine: Engine, where: SnapshotFilter | None = None) -> list[SnapshotDoc]:
    """The snapshots passing ``where``, oldest first."""
    docs = engine.snapshot_docs()
    return [d for d in docs if where is None or where.matches(d)]


def find_doc(engine: Engine, ref: str, where: SnapshotFilter | None = None) -> SnapshotDoc:
    """``latest`` (the newest passing ``where``) or a unique id prefix.

    An id names one snapshot whatever the filter says; a prefix that fits
    several is refused (``SnapshotNotFound``), never resolved by guessing.
    """
    if ref == "latest" and where:
        docs = select_docs(engine, where)
        if not docs:
            raise SnapshotNotFound(f"no snapshot matches {where.describe()}",
                                   hint="the snapshot list shows each snapshot's host, paths and tags")
        return docs[-1]
    return engine.find_doc(ref)


__all__ = ["SnapshotFilter", "check_tag", "find_doc", "normalize_tags", "select_docs",
           "tag_sets"]
