"""``strongroom prune``: delete data no snapshot needs."""

from __future__ import annotations

import click

from ..results import PruneSummary
from .context import AppContext
from .options import global_options, pass_app
from .output import human_bytes

EPILOG = """\b
Examples:
  strongroom --repo /mnt/backup forget --keep-daily 7
  strongroom --repo /mnt/backup prune

Deletes packs that no remaining snapshot refers to and repacks partly-used
ones.  Safe to interrupt: nothing a snapshot needs is deleted before its
replacement is stored."""


@click.command("prune", epilog=EPILOG)
@global_options
@pass_app
def command(app: AppContext) -> None:
    """Free the space of data that no snapshot refers to any more."""
    repository = app.open_repository()
    with app.interruptible() as cancel:
        summary = repository.prune(progress=app.progress(), cancel=cancel)
    if app.json:
        app.emit_json(summary.to_json())
    else:
        app.echo(describe(summary))


def describe(summary: PruneSummary) -> str:
    """One line saying what prune did."""
    line = (f"pruned: {summary.packs_deleted} pack(s) deleted, {summary.packs_repacked} "
            f"repacked, {human_bytes(summary.bytes_freed)} freed")
    if summary.packs_condemned:
        # Two-phase deletion (spec §12): what no snapshot uses now goes at the next prune.
        line += (f"; {summary.packs_condemned} unused pack(s) will be deleted by the next "
                 "prune")
    return line
