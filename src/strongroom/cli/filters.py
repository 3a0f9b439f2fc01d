"""``--host``, ``--path``, ``--tag``: which snapshots a command considers.

Shared by the commands that list snapshots or take a snapshot argument
(``latest`` then means the newest snapshot that passes).  The values are
kept on the :class:`AppContext` and turned into a library
:class:`~strongroom.repo.selection.SnapshotFilter` by :func:`snapshot_filter`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..repo.selection import SnapshotFilter
from .context import AppContext

F = TypeVar("F", bound=Callable[..., Any])
_KEY = "snapshot_filter"


def _store(name: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        ctx.ensure_object(AppContext).extra.setdefault(_KEY, {})[name] = tuple(value)
        return value

    return callback


def filter_options(f: F) -> F:
    """Add ``--host``, ``--path`` and ``--tag`` (each repeatable) to a command."""
    specs = [
        click.option("--host", "hosts", multiple=True, metavar="HOST", expose_value=False,
                     callback=_store("hosts"),
                     help="Only snapshots of this host (repeatable: any of them)."),
        click.option("--path", "paths", multiple=True, metavar="PATH", expose_value=False,
                     callback=_store("paths"),
                     help="Only snapshots that include this backed-up path (repeatable: all "
                          "of them)."),
        click.option("--tag", "tags", multiple=True, metavar="TAG[,TAG]", expose_value=False,
                     callback=_store("tags"),
                     help="Only snapshots with all these tags (repeatable: any of the lists)."),
    ]
    for option in reversed(specs):
        f = option(f)
    return f


def snapshot_filter(app: AppContext) -> SnapshotFilter | None:
    """The filter the options give, or ``None`` when none was given."""
    given = app.extra.get(_KEY, {})
    where = SnapshotFilter.of(given.get("hosts", ()), given.get("paths", ()),
                              given.get("tags", ()))
    return where or None


__all__ = ["filter_options", "snapshot_filter"]
