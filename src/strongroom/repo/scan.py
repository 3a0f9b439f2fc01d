"""The backup's first pass: count the files and bytes under the sources.

A backup walks its sources twice: this quick pass (``lstat`` and
``listdir`` only, nothing opened) gives the totals a progress display needs
for a percentage and an ETA; the second pass reads.  What changes between the
passes only makes the totals approximate, never the snapshot wrong.  Symlinks
are not followed, exactly as in the backup itself; unreadable folders count
as empty (the backup reports them).  ``--exclude`` patterns are applied
exactly as the backup applies them (to the path as it is named in the
snapshot), so an excluded folder counts nothing and a backup with excludes
ends at 100%.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from ..cancel import Cancel
from ..progress import Progress
from .patterns import PatternSet

#: Files between two progress reports (and cancellation checks) while scanning.
_REPORT_EVERY = 256


def scan(roots: Iterable[tuple[str, Path]], progress: Progress, cancel: Cancel,
         exclude: PatternSet | None = None) -> tuple[int, int]:
    """(regular files, their bytes) under ``roots``; reports phase ``scan`` in files.

    ``roots`` are (name in the snapshot, path on disk) pairs, as the backup walks
    them; a path whose snapshot name ``exclude`` matches is left out with all
    below it.
    """
    files = nbytes = unreported = 0
    progress.start("scan", None, "files")
    stack = list(roots)
    seen: set[Path] = set()
    while stack:
        arch, path = stack.pop()
        if path in seen:  # a source nested in another one
            continue
        seen.add(path)
        if exclude and exclude.matches(tuple(arch.split("/"))):
            continue
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            cancel.check()
            try:
                with os.scandir(path) as it:
                    stack.extend((f"{arch}/{e.name}" if arch else e.name, Path(e.path))
                                 for e in it)
            except OSError:
                continue
        elif stat.S_ISREG(st.st_mode):
            files += 1
            nbytes += st.st_size
            unreported += 1
            if unreported >= _REPORT_EVERY:
                progress.advance(unreported)
                unreported = 0
                cancel.check()
    progress.advance(unreported)
    progress.finish()
    return files, nbytes


__all__ = ["scan"]
