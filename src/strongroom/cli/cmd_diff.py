"""``strongroom diff SNAPSHOT SNAPSHOT``: what changed between two snapshots."""

from __future__ import annotations

import click

from ..repo.diff import ADDED, METADATA, REMOVED, Change, SnapshotDiff
from .context import AppContext
from .filters import filter_options, snapshot_filter
from .options import global_options, pass_app
from .output import human_bytes
from .vault_support import vault_options

EPILOG = """\b
Examples:
  strongroom diff 1a2b3c4d latest
  strongroom diff --metadata 1a2b3c4d 5e6f7a8b
  strongroom diff 1a2b3c4d latest --json | jq '.stats'

\b
One line per path, in path order:
  +  added        -  removed
  M  modified (content, size or link target; for a file, how many of its
     bytes are in chunks the older copy did not have)
  T  type changed (e.g. a file became a folder)
  U  only mode or modification time changed (shown with --metadata)
Then the counts.  Only file lists are read, never file data.  With --json
the document also has a 'chats' key for per-chat message changes (null
until chat diffs are computed)."""

_MARK = {ADDED: "+", REMOVED: "-", METADATA: "U"}


@click.command("diff", epilog=EPILOG)
@click.argument("before", metavar="SNAPSHOT")
@click.argument("after", metavar="SNAPSHOT")
@click.option("--metadata", is_flag=True, help="Also list paths whose mode or time alone changed.")
@filter_options
@vault_options
@global_options
@pass_app
def command(app: AppContext, before: str, after: str, metadata: bool) -> None:
    """Show the files added, removed and modified between two snapshots."""
    repository = app.open_repository()
    # The hook for chat-level changes (diff(chats=...)) is not wired here yet.
    result = repository.diff(before, after, where=snapshot_filter(app))
    if app.json:
        app.emit_json(result.to_json())
        return
    for c in result.changes:
        if c.change != METADATA or metadata:
            app.echo(_line(c))
    _summary(app, result)


def _line(c: Change) -> str:
    mark = _MARK.get(c.change) or ("T" if "type" in c.what else "M")
    extra = f"  ({human_bytes(c.bytes_changed)} changed)" if c.bytes_changed else ""
    return f"{mark}  {c.path}{extra}"


def _summary(app: AppContext, result: SnapshotDiff) -> None:
    s = result.stats
    app.echo(f"from {result.from_id[:8]} to {result.to_id[:8]}: {s.added} added "
             f"({human_bytes(s.bytes_added)}), {s.removed} removed "
             f"({human_bytes(s.bytes_removed)}), {s.modified} modified "
             f"({human_bytes(s.bytes_changed)} of new content), {s.metadata} metadata only")
