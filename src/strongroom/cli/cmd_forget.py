"""``strongroom forget``: remove snapshots by a retention policy."""

from __future__ import annotations

import click

from ..errors import UsageError
from ..repo.retention import Duration, ForgetGroup, RetentionPolicy, parse_group_by
from ..repo.selection import tag_sets
from ..results import ForgetResult
from .context import AppContext
from .filters import filter_options, snapshot_filter
from .options import global_options, pass_app
from .output import local_time, table
from .vault_support import vault_options

EPILOG = """\b
Examples:
  strongroom forget --keep-last 7 --dry-run
  strongroom forget --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --prune
  strongroom forget --keep-within 30d --keep-tag important
  strongroom forget --keep-last 1 --group-by host

Snapshots are first grouped, by default by host and set of backed-up paths
(--group-by host,paths; also tags; '' puts all in one group), and the policy
is applied to each group separately: --keep-last 1 keeps one snapshot *per
group*, so with three groups it keeps three.  The output lists each group
and, for every kept snapshot, the rules that keep it.

A snapshot is kept if any rule keeps it (restic's semantics): --keep-last N
keeps the N newest; --keep-hourly/daily/weekly/monthly/yearly N the newest
snapshot of each of the N most recent hours (days, ISO weeks, months, years)
that have one, in this device's local time; --keep-within 1y2m3d4h every
snapshot newer than the group's newest minus that long; --keep-tag TAG[,TAG]
every snapshot with all those tags.  Only snapshots that --host/--path/--tag
select are considered.  Forgetting removes the snapshot records only; run
prune (or pass --prune) to free the space.  Try --dry-run first."""

_COUNTS = ("last", "hourly", "daily", "weekly", "monthly", "yearly")
_HELP = {"last": "Keep the N newest snapshots.",
         "hourly": "Keep the newest of each of the last N hours that have one.",
         "daily": "Keep the newest of each of the last N days that have one.",
         "weekly": "Keep the newest of each of the last N ISO weeks that have one.",
         "monthly": "Keep the newest of each of the last N months that have one.",
         "yearly": "Keep the newest of each of the last N years that have one."}


def _policy_options(f: click.decorators.FC) -> click.decorators.FC:
    for name in reversed(_COUNTS):
        f = click.option(f"--keep-{name}", name, type=click.IntRange(min=1), metavar="N",
                         help=_HELP[name])(f)
    return f


@click.command("forget", epilog=EPILOG)
@_policy_options
@click.option("--keep-within", "within", metavar="DURATION",
              help="Keep every snapshot within DURATION (e.g. 14d, 6m, 1y) of the newest.")
@click.option("--keep-tag", "keep_tags", multiple=True, metavar="TAG[,TAG]",
              help="Keep every snapshot with all these tags (repeatable).")
@click.option("--group-by", default="host,paths", show_default=True, metavar="FIELDS",
              help="Group snapshots by host, paths and/or tags before applying the policy.")
@click.option("--dry-run", "-n", is_flag=True, help="Only show what would be kept and removed.")
@click.option("--prune", "and_prune", is_flag=True, help="Run prune afterwards.")
@filter_options
@vault_options
@global_options
@pass_app
def command(app: AppContext, /, within: str | None, keep_tags: tuple[str, ...], group_by: str,
            dry_run: bool, and_prune: bool, **counts: int | None) -> None:
    """Remove snapshots that a retention policy does not keep."""
    policy = RetentionPolicy(**{k: v or 0 for k, v in counts.items()},
                             within=Duration.parse(within) if within else Duration(),
                             tags=tag_sets(keep_tags))
    if not policy:
        # Refuse rather than guess: forgetting without a policy would remove everything.
        raise UsageError("forget needs a policy", hint="give at least one --keep-* option")
    fields = parse_group_by(group_by)
    repository = app.open_repository()
    # Password mode: the library moves the backup head to the remaining set first.
    result = repository.forget(policy, dry_run=dry_run, group_by=fields,
                               where=snapshot_filter(app), tz=None)  # None: local time, DST
    pruned = None
    if and_prune and not dry_run:
        with app.interruptible() as cancel:
            pruned = repository.prune(progress=app.progress(), cancel=cancel)
    if app.json:
        app.emit_json({**result.to_json(), "prune": pruned.to_json() if pruned else None})
        return
    _show(app, result)
    if pruned is not None:
        from .cmd_prune import describe

        app.echo(describe(pruned))


def _group_title(g: ForgetGroup) -> str:
    bits = []
    if g.host is not None:
        bits.append(f"host {g.host}")
    if g.paths is not None:
        bits.append(f"paths {', '.join(g.paths) or '-'}")
    if g.tags is not None:
        bits.append(f"tags {', '.join(g.tags) or '-'}")
    return "snapshots of " + ("; ".join(bits) if bits else "all groups together")


def _show(app: AppContext, result: ForgetResult) -> None:
    verb = "would remove" if result.dry_run else "removed"
    for g in result.groups:
        app.echo(_group_title(g) + ":")
        rows = [[k.id[:8], local_time(k.time), ", ".join(k.reasons)] for k in g.keep]
        app.echo(f"keep {len(g.keep)}:")
        if rows:
            app.echo(table(["ID", "Time", "Kept because"], rows))
        app.echo(f"{verb} {len(g.remove)}: {' '.join(s[:8] for s in g.remove) or '-'}")
        app.echo()
    app.echo(f"in all: keep {len(result.keep)} snapshot(s), {verb} {len(result.remove)} "
             f"snapshot(s), in {len(result.groups)} group(s)")
