"""``strongroom find PATTERN...``: search the file lists of snapshots."""

from __future__ import annotations

import click

from .context import AppContext
from .filters import filter_options, snapshot_filter
from .listing import entry_line
from .options import global_options, pass_app
from .output import local_time
from .vault_support import vault_options

EPILOG = """\b
Examples:
  strongroom find '*.db'
  strongroom find 'Media/**/IMG-2024*' --host phone
  strongroom find /home/me/chats/msgstore.db --json | jq -r '.matches[].snapshot'

Searches every snapshot (or those --host/--path/--tag/--snapshot select),
oldest first.  Patterns: '*', '?' and '[...]' match within a name, a '**'
component any number of folders; a pattern without '/' matches a name at any
depth; one starting with '/' is matched against the path as backed up; any
other is relative to the snapshot's paths.  Only file lists are read.  No
match is not an error (exit 0, an empty list with --json); a bad pattern
exits 2."""


@click.command("find", epilog=EPILOG)
@click.argument("patterns", nargs=-1, required=True, metavar="PATTERN...")
@click.option("--snapshot", "-s", "refs", multiple=True, metavar="SNAPSHOT",
              help="Search only this snapshot (repeatable).")
@click.option("--long", "-l", "long_format", is_flag=True,
              help="Long format: permissions, size, modification time, path.")
@filter_options
@vault_options
@global_options
@pass_app
def command(app: AppContext, patterns: tuple[str, ...], refs: tuple[str, ...],
            long_format: bool) -> None:
    """Find files and folders by name or path pattern across snapshots."""
    from ..repo.patterns import PatternSet

    PatternSet.of(patterns)  # a bad pattern is a usage error before the key is asked for
    repository = app.open_repository()
    matches = list(repository.find(patterns, refs=refs, where=snapshot_filter(app)))
    if app.json:
        app.emit_json({"patterns": list(patterns), "matches": [m.to_json() for m in matches]})
        return
    current = None
    for m in matches:
        if m.snapshot_id != current:
            current = m.snapshot_id
            app.echo(f"snapshot {m.snapshot_id[:8]} of {local_time(m.snapshot_time)} "
                     f"on {m.hostname}:")
        app.echo("  " + entry_line(m.entry, long=long_format))
    if not matches:
        app.echo("no matches")
