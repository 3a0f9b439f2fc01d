"""``strongroom ls SNAPSHOT[:PATH]``: list the files of a snapshot."""

from __future__ import annotations

import itertools

import click

from .context import AppContext
from .filters import filter_options, snapshot_filter
from .listing import entry_line
from .options import global_options, pass_app
from .vault_support import vault_options

EPILOG = """\b
Examples:
  strongroom ls latest
  strongroom ls -l latest:/home/me/chats
  strongroom ls --recursive 1a2b3c4d:/home/me/chats/Media
  strongroom ls --host phone latest --json | jq -r '.entries[].path'

Without PATH the whole snapshot is listed; with PATH (as it was backed up,
leading / optional) that path and what is directly in it, and with
--recursive everything below it.  Folders above the backed-up paths have no
metadata of their own and are shown with '?'.  Only the file list is read,
never file data.  A PATH not in the snapshot exits 10."""


@click.command("ls", epilog=EPILOG)
@click.argument("ref", metavar="SNAPSHOT[:PATH]")
@click.option("--long", "-l", "long_format", is_flag=True,
              help="Long format: permissions, size, modification time, path.")
@click.option("--recursive", "-R", is_flag=True, help="Everything below PATH, not only its contents.")
@filter_options
@vault_options
@global_options
@pass_app
def command(app: AppContext, ref: str, long_format: bool, recursive: bool) -> None:
    """List the files and folders of a snapshot."""
    snap, _, path = ref.partition(":")
    repository = app.open_repository()
    info = repository.find_snapshot(snap, snapshot_filter(app))
    listing = repository.ls(info.id, path, recursive=recursive)
    first = next(listing, None)  # a path not in the snapshot fails before any output
    entries = itertools.chain([first] if first is not None else [], listing)
    if app.json:
        app.emit_json({"snapshot": info.to_json(), "path": "/" + path.strip("/"),
                       "entries": [e.to_json() for e in entries]})
        return
    app.echo(f"snapshot {info.short_id} of {', '.join(info.paths)} on {info.hostname}:")
    for e in entries:
        app.echo(entry_line(e, long=long_format))
