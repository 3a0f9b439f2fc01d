"""Path patterns for ``backup --exclude``, ``restore --include/--exclude`` and ``find``.

A pattern is a glob over path components (``docs/spec/cli.md`` §6.1):

* ``*``, ``?`` and ``[...]`` match within one component, never across ``/``;
  a component that is exactly ``**`` matches any number of components (zero
  included).
* A pattern starting with ``/`` is *anchored*: it is matched against the path
  as backed up (``/home/me/chats/Media``).
* A pattern without any ``/`` (``*.db``) matches a name at any depth.
* Any other pattern (``Media/*.jpg``) is *relative to the snapshot's paths*:
  it is matched against the part of a path below one of the roots it was
  given (the sources of a backup, the paths of a snapshot, or the sub-path a
  restore starts from).

Paths are handled as tuples of components (a record's path split at ``/``),
so matching never builds strings of a whole path list.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import UsageError

Parts = tuple[str, ...]
#: Longest pattern accepted (a pattern file is read line by line; this bounds one line).
MAX_PATTERN = 4096


@dataclass(frozen=True)
class Pattern:
    """One compiled pattern; build with :meth:`parse` (``UsageError`` on a bad one)."""

    text: str
    anchored: bool
    anywhere: bool
    parts: tuple[str, ...]
    _regexes: tuple[re.Pattern[str] | None, ...] = field(repr=False, compare=False)

    @classmethod
    def parse(cls, text: str) -> Pattern:
        """Compile ``text``; refuse empty patterns, ``.``/``..`` and stray ``**``."""
        if not text or not text.strip("/"):
            raise UsageError(f"empty pattern {text!r}", hint="give a name or path glob")
        if len(text) > MAX_PATTERN or "\x00" in text:
            raise UsageError("pattern too long or holding a NUL byte")
        anchored = text.startswith("/")
        parts = tuple(text.strip("/").split("/"))
        for part in parts:
            if part in ("", ".", ".."):
                raise UsageError(f"bad pattern {text!r}: empty, '.' or '..' component",
                                 hint="patterns name paths inside the snapshot")
            if "**" in part and part != "**":
                raise UsageError(f"bad pattern {text!r}: '**' must be a whole component",
                                 hint="write 'a/**/b', not 'a**b'")
        regexes = tuple(None if p == "**" else re.compile(fnmatch.translate(p))
                        for p in parts)
        anywhere = not anchored and len(parts) == 1 and parts[0] != "**"
        return cls(text, anchored, anywhere, parts, regexes)

    def _match(self, path: Parts, i: int = 0, j: int = 0) -> bool:
        regexes = self._regexes
        while i < len(regexes):
            rx = regexes[i]
            if rx is None:  # '**': try every split, shortest first
                return any(self._match(path, i + 1, k) for k in range(j, len(path) + 1))
            if j >= len(path) or rx.fullmatch(path[j]) is None:
                return False
            i, j = i + 1, j + 1
        return j == len(path)

    def matches(self, path: Parts, roots: Sequence[Parts] = ()) -> bool:
        """Whether the path itself matches (not counting its ancestors)."""
        if not path:
            return False
        name = self._regexes[0]
        if self.anywhere and name is not None:
            return name.fullmatch(path[-1]) is not None
        if self.anchored:
            return self._match(path)
        return any(path[: len(r)] == r and self._match(path[len(r):]) for r in roots)

    def covers(self, path: Parts, roots: Sequence[Parts] = ()) -> bool:
        """Whether the path or one of its ancestors matches (a matched folder covers its files)."""
        return any(self.matches(path[:n], roots) for n in range(1, len(path) + 1))


@dataclass(frozen=True)
class PatternSet:
    """Several patterns with the roots relative ones are matched from."""

    patterns: tuple[Pattern, ...] = ()
    roots: tuple[Parts, ...] = ()

    @classmethod
    def of(cls, texts: Iterable[str], roots: Iterable[str] = ()) -> PatternSet:
        """Compile ``texts``; ``roots`` are absolute paths (``/home/me/chats``) or ``''``."""
        return cls(tuple(Pattern.parse(t) for t in texts), tuple(split(r) for r in roots))

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches(self, path: Parts) -> bool:
        """Any pattern matches the path itself."""
        return any(p.matches(path, self.roots) for p in self.patterns)

    def covers(self, path: Parts) -> bool:
        """Any pattern matches the path or one of its ancestors."""
        return any(p.covers(path, self.roots) for p in self.patterns)

    def describe(self) -> str:
        """The patterns as the user typed them, for messages."""
        return ", ".join(p.text for p in self.patterns)


def split(path: str) -> Parts:
    """``/home/me`` or ``home/me`` -> ``('home', 'me')``; ``/`` -> ``()``."""
    return tuple(p for p in path.strip("/").split("/") if p)


def read_pattern_file(lines: Iterable[str], name: str) -> list[str]:
    """Patterns from an ``--exclude-file``: one a line; blank lines and ``#`` comments skipped."""
    out = []
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n").strip()
        if not line or line.startswith("#"):
            continue
        if len(line) > MAX_PATTERN:
            raise UsageError(f"{name} line {number}: pattern longer than {MAX_PATTERN} characters")
        out.append(line)
    return out


__all__ = ["Parts", "Pattern", "PatternSet", "read_pattern_file", "split"]
