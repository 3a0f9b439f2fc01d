"""``strongroom check``: verify the repository."""

from __future__ import annotations

import click

from ..errors import DataDamaged
from ..results import CheckReport
from .context import AppContext
from .options import global_options, pass_app
from .vault_support import vault_options

EPILOG = """\b
Examples:
  strongroom --repo /mnt/backup check
  strongroom check --read-data
  strongroom check --read-data --json | jq '.problems[].object'

Without --read-data, check verifies that every snapshot, index and pack the
repository refers to is there with the right size; with it, every stored
byte is downloaded and authenticated.  Problems are listed with the object
at fault and the files it affects; the exit code is then 12."""


@click.command("check", epilog=EPILOG)
@click.option("--read-data", is_flag=True, help="Download and verify every stored byte.")
@vault_options
@global_options
@pass_app
def command(app: AppContext, read_data: bool) -> None:
    """Check the repository for missing or damaged data."""
    repository = app.open_repository()
    with app.interruptible() as cancel:
        report = repository.check(read_data=read_data, progress=app.progress(), cancel=cancel)
    _show(app, report)
    if not report.ok:
        raise DataDamaged(f"check found {len(report.problems)} problem(s)")


def _show(app: AppContext, report: CheckReport) -> None:
    if app.json:
        app.emit_json(report.to_json())
        return
    scope = ("all data read" if report.read_data
             else "structure only; add --read-data to read all data")
    counts = f"{report.snapshots} snapshot(s), {report.packs} pack(s), {report.blobs} blob(s)"
    if report.ok:
        app.echo(f"no problems found in {counts} ({scope})")
        return
    # Problems are the point of check: print them even with --quiet.
    click.echo(f"{len(report.problems)} problem(s) found in {counts} ({scope}):")
    for problem in report.problems:
        click.echo(f"  {problem.object}: {problem.what}")
        for path in problem.files:
            click.echo(f"    affects {path}")
