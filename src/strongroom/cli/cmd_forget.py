"""``strongroom forget``: remove snapshots by a retention policy."""

from __future__ import annotations

import click

from ..api import ForgetResult
from ..errors import UsageError
from .context import AppContext
from .options import global_options, pass_app
from .vault_support import vault_options

EPILOG = """\b
Examples:
  strongroom forget --keep-last 7 --dry-run
  strongroom forget --keep-daily 7 --keep-weekly 4 --prune

A snapshot is kept if any rule keeps it (restic's semantics): --keep-last N
keeps the N newest, --keep-daily N the newest of each of the last N days
that have one, --keep-weekly N likewise per ISO week.  Forgetting removes
the snapshot records only; run prune (or pass --prune) to free the space."""


@click.command("forget", epilog=EPILOG)
@click.option("--keep-last", type=click.IntRange(min=1), metavar="N", help="Keep the N newest.")
@click.option("--keep-daily", type=click.IntRange(min=1), metavar="N",
              help="Keep the newest of each of the last N days.")
@click.option("--keep-weekly", type=click.IntRange(min=1), metavar="N",
              help="Keep the newest of each of the last N weeks.")
@click.option("--dry-run", "-n", is_flag=True, help="Only show what would be removed.")
@click.option("--prune", "and_prune", is_flag=True, help="Run prune afterwards.")
@vault_options
@global_options
@pass_app
def command(app: AppContext, keep_last: int | None, keep_daily: int | None,
            keep_weekly: int | None, dry_run: bool, and_prune: bool) -> None:
    """Remove snapshots that a retention policy does not keep."""
    if keep_last is None and keep_daily is None and keep_weekly is None:
        # Refuse rather than guess: forgetting without a policy would remove everything.
        raise UsageError("forget needs a policy",
                         hint="give at least one of --keep-last, --keep-daily, --keep-weekly")
    repository = app.open_repository()
    # Password mode: the library moves the backup head to the remaining set first.
    result = repository.forget(keep_last=keep_last, keep_daily=keep_daily,
                               keep_weekly=keep_weekly, dry_run=dry_run)
    pruned = None
    if and_prune and not dry_run:
        pruned = repository.prune(progress=app.progress())
    if app.json:
        app.emit_json({**result.to_json(), "prune": pruned.to_json() if pruned else None})
        return
    _show(app, result)
    if pruned is not None:
        from .cmd_prune import describe

        app.echo(describe(pruned))


def _show(app: AppContext, result: ForgetResult) -> None:
    verb = "would remove" if result.dry_run else "removed"
    app.echo(f"keep {len(result.keep)} snapshot(s): {' '.join(s[:8] for s in result.keep)}")
    app.echo(f"{verb} {len(result.remove)} snapshot(s): "
             f"{' '.join(s[:8] for s in result.remove) or '-'}")
