"""How ``ls``, ``find`` and ``diff`` print one path (short or long format)."""

from __future__ import annotations

from ..repo.browse import ListEntry
from .output import human_bytes, local_time


def entry_line(e: ListEntry, *, long: bool) -> str:
    """``/path`` or ``drwxr-xr-x  1.2 MiB  2026-01-02 10:00:00  /path -> target``."""
    name = e.path + ("/" if e.type == "dir" and e.path != "/" else "")
    if e.link is not None:
        name += f" -> {e.link}"
    if not long:
        return name
    when = local_time(e.mtime) if e.recorded else "-" * 19
    size = human_bytes(e.size) if e.type == "file" else "-"
    return f"{e.permissions}  {size:>10}  {when}  {name}"


__all__ = ["entry_line"]
