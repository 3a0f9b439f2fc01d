"""``strongroom backup SOURCE...``: save files and folders as a new snapshot."""

from __future__ import annotations

import os
import time
from typing import TextIO

import click

from ..errors import EXIT_PARTIAL, UsageError
from ..repo.patterns import PatternSet, read_pattern_file
from ..repo.selection import normalize_tags
from ..results import BackupSummary
from .context import AppContext
from .errors import say
from .options import global_options, pass_app
from .output import human_bytes
from .vault_support import vault_options

EPILOG = """\b
Examples:
  strongroom --repo /mnt/backup backup ~/chats
  STRONGROOM_REPO=/mnt/backup strongroom backup ~/chats/msgstore.db ~/chats/Media
  strongroom backup --json ~/chats | jq .bytes_added
  strongroom backup --tag weekly --exclude '*.tmp' --exclude 'Media/Video' ~/chats
  strongroom backup --exclude-file ~/.strongroom-exclude ~/chats

Only what changed since the last snapshot is stored again: SQLite databases
by their pages, other files by content-defined chunks.  A snapshot appears
only when complete; an interrupted backup leaves the last one intact and the
next run reuses what was already uploaded.  Files that vanish or cannot be
read are skipped, listed, and make the exit code 3.

--exclude patterns (see 'strongroom find --help'; those without a leading /
are relative to the SOURCE paths) leave out what they match and everything
below it; --exclude-file reads one pattern a line ('#' starts a comment).
--tag labels the snapshot for snapshots/forget/restore --tag."""


@click.command("backup", epilog=EPILOG)
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--host", "hostname", metavar="NAME",
              help="Host name recorded in the snapshot (default: this machine's).")
@click.option("--tag", "tags", multiple=True, metavar="TAG[,TAG]",
              help="Label the snapshot (repeatable, or comma-separated).")
@click.option("--exclude", "-e", "exclude", multiple=True, metavar="PATTERN",
              help="Leave out paths matching PATTERN and what is below them (repeatable).")
@click.option("--exclude-file", "exclude_files", multiple=True, metavar="FILE",
              type=click.File("r", encoding="utf-8"),
              help="Read --exclude patterns from FILE, one a line (repeatable).")
@click.option("--no-chats", is_flag=True,
              help="Do not recognise chat data: the snapshot gets no chat catalogue.")
@vault_options
@global_options
@pass_app
def command(app: AppContext, sources: tuple[str, ...], hostname: str | None,
            tags: tuple[str, ...], exclude: tuple[str, ...],
            exclude_files: tuple[TextIO, ...], no_chats: bool) -> None:
    """Back up files and folders into a new encrypted snapshot."""
    patterns = list(exclude)
    for f in exclude_files:
        patterns += read_pattern_file(f, f.name)
    tag_list = normalize_tags(t for option in tags for t in option.split(","))
    PatternSet.of(patterns)  # a bad pattern is exit 2 before the key is asked for
    if not any(os.path.lexists(s) for s in sources):
        # A typo, not a vanished file: refuse rather than save an empty snapshot.
        raise UsageError(f"nothing to back up: {', '.join(sources)} not found",
                         hint="check the SOURCE paths")
    repository = app.open_repository()
    started = time.monotonic()
    with app.interruptible() as cancel:  # Ctrl-C: Cancelled, exit 130
        summary = repository.backup(list(sources), progress=app.progress(),
                                    hostname=hostname, tags=tag_list, exclude=patterns,
                                    cancel=cancel, chats=not no_chats)
    duration = time.monotonic() - started
    _show(app, summary, duration)
    if summary.warnings:
        click.get_current_context().exit(EXIT_PARTIAL)


def _show(app: AppContext, summary: BackupSummary, duration: float) -> None:
    if app.json:
        app.emit_json({**summary.to_json(), "duration_seconds": round(duration, 3),
                       "complete": not summary.warnings})
    else:
        app.echo(f"snapshot {summary.snapshot_id[:8]} saved")
        app.echo(f"  files:        {summary.files} ({summary.files_unchanged} unchanged)")
        app.echo(f"  bytes read:   {human_bytes(summary.bytes_read)}")
        app.echo(f"  bytes added:  {human_bytes(summary.bytes_added)}")
        app.echo(f"  chats:        {summary.chats} ('strongroom chats' lists them)")
        app.echo(f"  duration:     {duration:.2f} s")
    if not app.json:  # with --json they are in the document (and were status lines)
        for warning in summary.chat_warnings:  # backed up, but not in the chat catalogue
            say("warning", f"chat data not catalogued: {warning}")
    if summary.warnings:
        # Warnings go to stderr even with --json/--quiet: skipped files matter.
        say("warning", f"{len(summary.warnings)} source file(s) could not be backed up:")
        for warning in summary.warnings:
            click.echo(f"  {warning}", err=True)
