"""The backup's first pass: count the files and bytes under the sources.

A backup walks its sources twice: this quick pass (``lstat`` and
``listdir`` only, nothing opened) gives the totals a progress display needs
for a percentage and an ETA; the second pass reads.  What changes between the
passes only makes the totals approximate, never the snapshot wrong.  Symlinks
are not followed, exactly as in the backup itself; unreadable folders count
as empty (the backup reports them).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from ..cancel import Cancel
from ..progress import Progress

#: Files between two progress reports (and cancellation checks) while scanning.
_REPORT_EVERY = 256


def scan(roots: Iterable[Path], progress: Progress, cancel: Cancel) -> tuple[int, int]:
    """(regular files, their bytes) under ``roots``; reports phase ``scan`` in files."""
    files = nbytes = unreported = 0
    progress.start("scan", None, "files")
    stack = list(roots)
    seen: set[Path] = set()
    while stack:
        path = stack.pop()
        if path in seen:  # a source nested in another one
            continue
        seen.add(path)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            cancel.check()
            try:
                with os.scandir(path) as it:
                    stack.extend(Path(e.path) for e in it)
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
