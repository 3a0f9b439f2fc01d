"""Restore for a new device: drop the old absolute prefix from restored paths.

A snapshot names files by their absolute path on the device that made it
(``home/alice/chats/msgstore.db``).  A restore normally recreates that path
under the target; with a *strip prefix* it writes what lies under the prefix
directly into the target instead (``docs/spec/cli.md``, "restore --strip"):

* ``/home/alice/chats/msgstore.db`` with prefix ``/home/alice`` is written to
  ``TARGET/chats/msgstore.db``;
* a record outside the prefix is not restored;
* the directory named by the prefix is the target itself: its mode and time
  are not applied to the target;
* a file or symlink named by the prefix itself keeps its last path component
  (``--strip /home/alice/chats/msgstore.db`` writes ``TARGET/msgstore.db``).

Stripping runs after the file list's safety checks and keeps the remaining
path components unchanged, so every property of :mod:`.target` (nothing
written outside the target, no symlink followed) holds as before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

from ..errors import UsageError
from .manifest import KIND_DIR, Entry


def strip_prefix(prefix: str) -> str:
    """``prefix`` in snapshot form (no leading or trailing '/'); ``UsageError`` if unsafe."""
    if not isinstance(prefix, str):
        raise TypeError("the strip prefix must be a string")
    rel = prefix.strip().strip("/")
    parts = rel.split("/")
    if not rel or any(p in ("", ".", "..") for p in parts):
        raise UsageError(f"invalid strip prefix {prefix!r}",
                         hint="give a folder as it was backed up, e.g. /home/me/chats")
    return rel


class Strip:
    """Strips one prefix from a stream of entries, counting the entries it kept."""

    def __init__(self, prefix: str) -> None:
        self.prefix = strip_prefix(prefix)
        #: Records found under the prefix so far (0 after a run: nothing matched).
        self.matched = 0

    def __call__(self, entries: Iterable[Entry]) -> Iterator[Entry]:
        """``entries`` under the prefix, with the prefix removed; walk order is kept
        (removing a common prefix does not reorder paths)."""
        prefix, cut = self.prefix, len(self.prefix) + 1
        for e in entries:
            if e.path == prefix:
                self.matched += 1
                if e.kind != KIND_DIR:
                    yield dataclasses.replace(e, path=prefix.rsplit("/", 1)[-1])
            elif e.path.startswith(prefix + "/"):
                self.matched += 1
                yield dataclasses.replace(e, path=e.path[cut:])


__all__ = ["Strip", "strip_prefix"]
