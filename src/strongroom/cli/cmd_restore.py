"""``strongroom restore SNAPSHOT --target DIR``: bring files back."""

from __future__ import annotations

import click

from ..errors import DataDamaged, UsageError
from ..repo.subset import Subset
from ..repo.target import DEFAULT_OVERWRITE, OVERWRITE_MODES
from ..results import RestoreSummary
from .allocator import collect_less, keep_freed_memory
from .context import AppContext
from .errors import say
from .filters import filter_options, snapshot_filter
from .options import global_options, pass_app
from .output import human_bytes
from .vault_support import vault_options

EPILOG = """\b
Examples:
  strongroom --repo /mnt/backup restore latest --target ~/restored
  strongroom restore 1a2b3c4d --target /tmp/r --include /home/me/chats/msgstore.db
  strongroom restore latest:/home/me/chats/Media --target ~/Media
  strongroom restore latest --target /tmp/r --include 'Media/**/*.jpg' --exclude 'PTT-*'
  strongroom restore latest --host phone --tag weekly --target /tmp/r
  strongroom restore latest --target /tmp/r --allow-damaged
  strongroom restore latest --target / --dry-run
  strongroom restore latest --target ~/restored --overwrite always
  strongroom restore latest --chat "climbing club" --target ~/restored
  strongroom restore latest --target ~/chats --strip /home/olduser/chats

SNAPSHOT:SUBPATH restores only SUBPATH (as backed up) and without its
leading path: a folder's contents land directly in DIR.  --include and
--exclude take patterns (see 'strongroom find --help'); those without a
leading / are relative to the snapshot's paths (or to SUBPATH).  An
--include that matches nothing, or a SUBPATH not in the snapshot, exits 10
and names the snapshot's paths.

--chat restores one chat's files only: its export or message store and the
attachment files found with it ('strongroom chats' lists the chats; a name
that matches several chats lists them and exits 2).
On a new device, give the key with --key-file, STRONGROOM_KEY, or type it
when asked, and --strip the old device's folder: what was under it lands
directly in the target (--strip /home/olduser/chats puts
/home/olduser/chats/msgstore.db at TARGET/msgstore.db; anything outside the
prefix is not restored).  If stored data is damaged the restore stops (exit 12); with
--allow-damaged every file that can be restored is, the damaged ones are
listed, and the exit code is still 12: damaged output is never presented
as complete.  In password mode the snapshot list is first checked against
the vault's backup head: a storage provider hiding snapshots or serving an
older list stops the restore with exit 17.

Existing files are replaced only by a newer copy unless --overwrite says
otherwise (always, if-changed: same size and time are kept, if-newer, never);
each replaced or kept file is listed on stderr.  --dry-run lists what would
be written, replaced or kept and writes nothing.  Nothing is ever written
outside the target, and setuid, setgid and sticky bits are dropped unless
--restore-special-bits is given."""


@click.command("restore", epilog=EPILOG)
@click.argument("snapshot", metavar="SNAPSHOT[:SUBPATH]")
@click.option("--target", "-t", required=True, metavar="DIR",
              type=click.Path(file_okay=False, path_type=str),
              help="Folder to restore into (created if missing).")
@click.option("--include", "-i", "include", multiple=True, metavar="PATTERN",
              help="Restore only what matches (a path as backed up, e.g. "
                   "/home/me/chats/msgstore.db, or a pattern) and what is under it; repeatable.")
@click.option("--exclude", "-e", "exclude", multiple=True, metavar="PATTERN",
              help="Leave out what matches and what is under it; repeatable.")
@click.option("--chat", "chat", metavar="CHAT",
              help="Restore only this chat's files (a case-insensitive part of its name, "
                   "or #N as 'strongroom chats' numbers them).")
@click.option("--allow-damaged", is_flag=True,
              help="Restore what is intact even if some data is damaged; list the rest.")
@click.option("--overwrite", type=click.Choice(OVERWRITE_MODES), default=DEFAULT_OVERWRITE,
              show_default=True,
              help="When to replace a file that exists in the target.")
@click.option("--dry-run", "-n", is_flag=True,
              help="List what would be written, replaced or kept; write nothing.")
@click.option("--restore-special-bits", is_flag=True,
              help="Also restore setuid, setgid and sticky bits (dropped otherwise).")
@filter_options
@click.option("--strip", "strip", metavar="PREFIX",
              help="Drop this path prefix (as backed up, e.g. /home/me/chats): what lies "
                   "under it is written directly into the target; the rest is skipped.")
@vault_options
@global_options
@pass_app
def command(app: AppContext, snapshot: str, target: str, include: tuple[str, ...],
            exclude: tuple[str, ...], chat: str | None, allow_damaged: bool, overwrite: str,
            dry_run: bool, restore_special_bits: bool, strip: str | None) -> None:
    """Restore a snapshot (or some of its paths, or one chat) into a folder."""
    ref, colon, subpath = snapshot.partition(":")
    if chat is not None and (include or subpath):
        raise UsageError("--chat cannot be combined with --include or SNAPSHOT:SUBPATH",
                         hint="restore the chat, then the other paths")
    Subset.of(subpath, include, exclude)  # bad paths and patterns: exit 2 before the key prompt
    keep_freed_memory()  # frames and ranged reads: far fewer page faults
    collect_less()  # young collections held the GIL while the index loads
    repository = app.open_repository()
    snapshot = repository.find_snapshot(ref, snapshot_filter(app)).id + colon + subpath
    if chat is not None:
        entry = repository.chat_entry(snapshot, chat)
        include = tuple("/" + f for f in entry.files)
    items: list[dict[str, str]] = []

    def on_item(action: str, path: str, why: str) -> None:
        # As backed up (absolute); with --strip, relative to the target.
        shown = path if strip else "/" + path
        if app.json:
            if dry_run:
                items.append({"action": action, "path": shown, "reason": why})
        elif dry_run:
            app.echo(f"{_VERB[action]:<12} {shown}" + (f" ({why})" if why else ""))
        elif action != "write":
            say("warning" if action == "skip" else "note",
                f"{_VERB[action]} {shown}" + (f": {why}" if why else ""))

    with app.interruptible() as cancel:
        summary = repository.restore(snapshot, target, include=include, exclude=exclude,
                                     allow_damaged=allow_damaged, overwrite=overwrite,
                                     dry_run=dry_run,
                                     restore_special_bits=restore_special_bits,
                                     on_item=on_item, progress=app.progress(), strip=strip,
                                     cancel=cancel)
    _show(app, summary, target, items)
    if summary.damaged:
        raise DataDamaged(f"restore incomplete: {len(summary.damaged)} file(s) damaged "
                          "and not restored in full")


_VERB = {"write": "write", "replace": "replace", "skip": "keep"}


def _show(app: AppContext, summary: RestoreSummary, target: str,
          items: list[dict[str, str]]) -> None:
    if app.json:
        doc = {**summary.to_json(), "target": target, "complete": not summary.damaged}
        if summary.dry_run:
            doc["items"] = items
        app.emit_json(doc)
    else:
        verb = "would restore" if summary.dry_run else "restored"
        app.echo(f"{verb} snapshot {summary.snapshot_id[:8]} to {target}: "
                 f"{summary.files} file(s), {human_bytes(summary.bytes)}; "
                 f"{summary.replaced} replaced, {summary.skipped} kept as they were")
    if summary.damaged:
        say("warning", "these files were not restored or are incomplete:")
        for path in summary.damaged:
            click.echo(f"  {path}", err=True)
