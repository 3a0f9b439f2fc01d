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
    # Plain strings, and scandir's file types: no Path object per file and no lstat per
    # folder.  A source nested in another one is counted with the outer one only.
    sources = sorted({str(p): a for a, p in roots}.items())
    outer: list[tuple[str, str]] = []
    for path, arch in sources:
        if not any(path == o or path.startswith(o.rstrip("/") + "/") for o, _ in outer):
            outer.append((path, arch))
    for source, arch in outer:
        if exclude and exclude.matches(tuple(arch.split("/"))):
            continue
        try:
            st = os.lstat(source)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            files += 1
            nbytes += st.st_size
            unreported += 1
            continue
        if not stat.S_ISDIR(st.st_mode):
            continue
        stack = [(arch, source)]
        while stack:
            folder_arch, folder = stack.pop()
            cancel.check()
            prefix = folder_arch + "/" if folder_arch else ""
            try:
                with os.scandir(folder) as it:
                    entries = list(it)
            except OSError:
                continue  # unreadable: counts as empty (the backup reports it)
            for e in entries:
                name = prefix + e.name
                if exclude and exclude.matches(tuple(name.split("/"))):
                    continue
                try:
                    if e.is_dir(follow_symlinks=False):
                        stack.append((name, e.path))
                        continue
                    if not e.is_file(follow_symlinks=False):
                        continue
                    size = e.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
                files += 1
                nbytes += size
                unreported += 1
                if unreported >= _REPORT_EVERY:
                    progress.advance(unreported)
                    unreported = 0
                    cancel.check()
    progress.advance(unreported)
    progress.finish()
    return files, nbytes


__all__ = ["scan"]
