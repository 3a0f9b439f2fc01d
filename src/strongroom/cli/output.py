"""Formatting helpers for human output (sizes, times, tables, the 64-digit key)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence

from ..crypto.keys import BackupKey


def human_bytes(n: int) -> str:
    """``1536`` -> ``1.5 KiB`` (binary units, as restic prints them)."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def local_time(epoch: float) -> str:
    """A snapshot time as local ``YYYY-MM-DD HH:MM:SS``."""
    return _dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain left-aligned text table (stable for scripts that grep it)."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def key_block(key: BackupKey, indent: str = "    ") -> str:
    """The 64 digits as four lines of four groups, easy to copy onto paper."""
    groups = key.digits().split()
    return "\n".join(indent + " ".join(groups[i : i + 4]) for i in range(0, len(groups), 4))


__all__ = ["human_bytes", "key_block", "local_time", "table"]
