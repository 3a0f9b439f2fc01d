"""``strongroom diff SNAPSHOT SNAPSHOT``: what changed between two snapshots."""

from __future__ import annotations

import dataclasses
from typing import Any

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
Then the counts, then one line per chat whose messages changed (from the
snapshots' chat catalogues; a changed chat log or message store is read from
both snapshots to count them; --no-chats skips that).  Otherwise only file
lists are read.  With --json the document's 'chats' key is an array of
{name, kind, status, messages_before, messages_after, added, changed}, or
null with --no-chats."""

_MARK = {ADDED: "+", REMOVED: "-", METADATA: "U"}


@click.command("diff", epilog=EPILOG)
@click.argument("before", metavar="SNAPSHOT")
@click.argument("after", metavar="SNAPSHOT")
@click.option("--metadata", is_flag=True, help="Also list paths whose mode or time alone changed.")
@click.option("--no-chats", is_flag=True,
              help="Do not count per-chat message changes (reads no chat data).")
@filter_options
@vault_options
@global_options
@pass_app
def command(app: AppContext, before: str, after: str, metadata: bool, no_chats: bool) -> None:
    """Show the files added, removed and modified between two snapshots, and per chat the
    messages added or changed."""
    repository = app.open_repository()
    result = repository.diff(before, after, where=snapshot_filter(app),
                             chats=None if no_chats else _chat_changes)
    if app.json:
        app.emit_json(result.to_json())
        return
    for c in result.changes:
        if c.change != METADATA or metadata:
            app.echo(_line(c))
    _summary(app, result)
    for chat in result.chats or ():
        if chat["status"] != "unchanged":
            app.echo(f"chat {chat['name']!r} ({chat['kind']}): {chat['status']}, "
                     f"{chat['added']} message(s) added, {chat['changed']} changed")


def _chat_changes(engine: Any, before: Any, after: Any) -> list[dict[str, Any]]:
    """The diff's chat hook: ``chat_changes`` as JSON-ready dicts (spec §17)."""
    from ..repo.chatcat import chat_changes

    return [dataclasses.asdict(c) for c in chat_changes(engine, before, after)]


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
