"""``strongroom snapshots``: list the snapshots in the repository."""

from __future__ import annotations

import click

from .context import AppContext
from .options import global_options, pass_app
from .output import human_bytes, local_time, table
from .vault_support import vault_options

EPILOG = """\b
Examples:
  strongroom --repo /mnt/backup snapshots
  strongroom snapshots --json | jq -r '.snapshots[-1].id'

Oldest first.  An id prefix (the 8-digit short id is enough) or 'latest'
names a snapshot for restore.  In password mode the list is checked against
the vault's backup head first (exit 17 if snapshots are hidden)."""


@click.command("snapshots", epilog=EPILOG)
@vault_options
@global_options
@pass_app
def command(app: AppContext) -> None:
    """List the snapshots, oldest first."""
    repository = app.open_repository()
    snapshots = repository.snapshots()
    if app.json:
        app.emit_json({"snapshots": [s.to_json() for s in snapshots]})
        return
    if not snapshots:
        app.echo("no snapshots yet")
        return
    rows = [[s.short_id, local_time(s.time), s.hostname, str(s.files), human_bytes(s.bytes),
             ", ".join(s.paths)] for s in snapshots]
    app.echo(table(["ID", "Time", "Host", "Files", "Size", "Paths"], rows))
    app.echo(f"{len(snapshots)} snapshot(s)")
