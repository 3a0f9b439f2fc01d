"""``strongroom restore SNAPSHOT --target DIR``: bring files back."""

from __future__ import annotations

import click

from ..api import RestoreSummary
from ..errors import DataDamaged
from .context import AppContext
from .errors import say
from .options import global_options, pass_app
from .output import human_bytes
from .vault_support import verify_head

EPILOG = """\b
Examples:
  strongroom --repo /mnt/backup restore latest --target ~/restored
  strongroom restore 1a2b3c4d --target /tmp/r --include /home/me/chats/msgstore.db
  strongroom restore latest --target /tmp/r --allow-damaged

On a new device, give the key with --key-file, STRONGROOM_KEY, or type it
when asked.  If stored data is damaged the restore stops (exit 12); with
--allow-damaged every file that can be restored is, the damaged ones are
listed, and the exit code is still 12: damaged output is never presented
as complete.  In password mode the snapshot list is first checked against
the vault's backup head: a storage provider hiding snapshots or serving an
older list stops the restore with exit 17."""


@click.command("restore", epilog=EPILOG)
@click.argument("snapshot", metavar="SNAPSHOT|latest")
@click.option("--target", "-t", required=True, metavar="DIR",
              type=click.Path(file_okay=False, path_type=str),
              help="Folder to restore into (created if missing).")
@click.option("--include", "-i", "include", multiple=True, metavar="PATH",
              help="Restore only this path as it was backed up (absolute, e.g. "
                   "/home/me/chats/msgstore.db) and what is under it; repeatable.")
@click.option("--allow-damaged", is_flag=True,
              help="Restore what is intact even if some data is damaged; list the rest.")
@global_options
@pass_app
def command(app: AppContext, snapshot: str, target: str, include: tuple[str, ...],
            allow_damaged: bool) -> None:
    """Restore a snapshot (or some of its paths) into a folder."""
    repository = app.open_repository()
    verify_head(app, repository)  # password mode: RollbackDetected if snapshots are hidden
    summary = repository.restore(snapshot, target, include=list(include),
                                 allow_damaged=allow_damaged, progress=app.progress())
    _show(app, summary, target)
    if summary.damaged:
        raise DataDamaged(f"restore incomplete: {len(summary.damaged)} file(s) damaged "
                          "and not restored in full")


def _show(app: AppContext, summary: RestoreSummary, target: str) -> None:
    if app.json:
        app.emit_json({**summary.to_json(), "target": target, "complete": not summary.damaged})
    else:
        app.echo(f"restored snapshot {summary.snapshot_id[:8]} to {target}: "
                 f"{summary.files} file(s), {human_bytes(summary.bytes)}")
    if summary.damaged:
        say("warning", "these files were not restored or are incomplete:")
        for path in summary.damaged:
            click.echo(f"  {path}", err=True)
