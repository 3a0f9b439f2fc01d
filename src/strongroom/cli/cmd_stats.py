"""``strongroom stats [SNAPSHOT...]``: how big the backup is, and how well it deduplicates."""

from __future__ import annotations

import click

from .context import AppContext
from .filters import filter_options, snapshot_filter
from .options import global_options, pass_app
from .output import human_bytes
from .vault_support import vault_options

EPILOG = """\b
Examples:
  strongroom stats
  strongroom stats latest
  strongroom stats --host phone --json

\b
For the snapshots given (default: all, or those --host/--path/--tag select):
  restore size    what restoring each of them would write, added up
  unique size     the distinct chunks they use (after deduplication)
  stored size     what those chunks and file lists take in storage
                  (compressed, encrypted, padded)
  dedup ratio     restore size / unique size
  repository      every pack in the repository, used or not (prune frees
                  what no snapshot uses)
Reads the file lists and the index, no file data."""


@click.command("stats", epilog=EPILOG)
@click.argument("refs", nargs=-1, metavar="[SNAPSHOT...]")
@filter_options
@vault_options
@global_options
@pass_app
def command(app: AppContext, refs: tuple[str, ...]) -> None:
    """Show restore size, stored size and deduplication of snapshots."""
    repository = app.open_repository()
    s = repository.stats(refs, where=snapshot_filter(app))
    if app.json:
        app.emit_json(s.to_json())
        return
    ratio = f"{s.dedup_ratio:.2f}x" if s.dedup_ratio is not None else "-"
    app.echo(f"snapshots:     {s.snapshots}")
    app.echo(f"files:         {s.files}")
    app.echo(f"restore size:  {human_bytes(s.restore_size)}")
    app.echo(f"unique size:   {human_bytes(s.unique_size)} in {s.unique_blobs} blobs")
    app.echo(f"stored size:   {human_bytes(s.stored_size)}")
    app.echo(f"dedup ratio:   {ratio}")
    app.echo(f"repository:    {human_bytes(s.repository_size)}")
    if s.missing_blobs:
        app.echo(f"missing:       {s.missing_blobs} blob(s) not in the index (run check)")
