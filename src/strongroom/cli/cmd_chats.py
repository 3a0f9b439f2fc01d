"""``strongroom chats``: the chats a snapshot holds, their export, search and changes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from ..chats.model import KIND_BENCH_MSGSTORE, KIND_WHATSAPP_MSGSTORE
from ..errors import LocalWriteError, UsageError
from .context import AppContext
from .errors import say
from .options import global_options, pass_app
from .output import table
from .vault_support import vault_options

EPILOG = """\b
Examples:
  strongroom chats                       # the chats of the latest snapshot
  strongroom chats 1a2b3c4d --json
  strongroom chats export latest alice --format html --output alice.html
  strongroom chats search "dinner" --json
  strongroom chats diff 1a2b3c4d latest
  strongroom restore latest --chat alice --target ~/restored

\b
At backup time Strongroom recognises WhatsApp exports (.txt, .zip "with
media"), Telegram Desktop exports (result.json) and message stores
(msgstore.db) and keeps, inside the snapshot's encrypted metadata, a
catalogue: name, kind, message count, first and last message time,
attachments and the files of each chat.  The storage provider sees none of it.

\b
CHAT names a chat by a case-insensitive part of its name; a whole-name match
wins; #N is the N-th chat of this list.  If several chats match, they are
listed and the exit code is 2; if none does, 10.  A snapshot made before catalogues existed lists no chats
(back up again).  Exit codes: 0 ok, 2 usage or ambiguous chat, 10 no such
snapshot or chat, 12 damaged data; see 'strongroom --help'."""


class _ChatsGroup(click.Group):
    """``chats [SNAPSHOT]`` lists; ``chats export|search|diff ...`` are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # The first word that is not an option (or an option's value) is a subcommand or
        # the SNAPSHOT to list; snapshot ids and "latest" never name a subcommand.
        valued = {o for p in self.params if isinstance(p, click.Option) and not p.is_flag
                  for o in p.opts}
        i = 0
        while i < len(args) and args[i].startswith("-") and args[i] != "--":
            i += 2 if args[i] in valued else 1
        if i < len(args) and args[i] != "--" and args[i] not in self.commands:
            args = [*args[:i], "--snapshot", args[i], *args[i + 1:]]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[SNAPSHOT|latest] [--json] | COMMAND ARGS...")


@click.group("chats", cls=_ChatsGroup, epilog=EPILOG, invoke_without_command=True)
@click.option("--snapshot", "snapshot", default="latest", hidden=True)
@vault_options
@global_options
@pass_app
@click.pass_context
def command(ctx: click.Context, app: AppContext, snapshot: str) -> None:
    """List the chats of a snapshot (default: the latest)."""
    if ctx.invoked_subcommand is not None:
        return
    repository = app.open_repository()
    listing = repository.chats(snapshot)
    if app.json:
        app.emit_json([e.as_dict() for e in listing.entries])
    if not listing.catalogued:
        say("note", f"snapshot {listing.snapshot_id[:8]} has no chat catalogue (made before "
                    "catalogues existed, or with 'backup --no-chats'); back up again to "
                    "catalogue its chats")
        return
    if app.json:
        return
    if not listing.entries:
        app.echo(f"no chats in snapshot {listing.snapshot_id[:8]}")
        return
    rows = [[f"#{i}", e.name, e.kind, str(e.messages), _when(e.first), _when(e.last),
             str(e.attachments), "/" + e.source] for i, e in enumerate(listing.entries, 1)]
    app.echo(table(["#", "Chat", "Kind", "Messages", "First", "Last", "Attachments", "Source"],
                   rows))
    app.echo(f"{len(rows)} chat(s) in snapshot {listing.snapshot_id[:8]}")


def _when(t: str | None) -> str:
    return "-" if t is None else t.replace("T", " ")


EXPORT_EPILOG = """\b
Examples:
  strongroom chats export latest alice --format txt
  strongroom chats export 1a2b3c4d "climbing club" --format html --output club.html

\b
json: an array of {time, author, text, attachments}; time is ISO 8601 to the
second as the source wrote it (with Z when the source keeps UTC), author is
null for system and service messages, text keeps its line breaks.
txt: one "[time] author: text" block per message.
html: one self-contained page that reads like the chat app, images inline.
Without --output the export goes to stdout; an existing FILE is not replaced
unless --force is given."""


@command.command("export", epilog=EXPORT_EPILOG)
@click.argument("snapshot", metavar="SNAPSHOT|latest")
@click.argument("chat", metavar="CHAT")
@click.option("--format", "fmt", type=click.Choice(["json", "txt", "html"]), required=True,
              help="Export format.")
@click.option("--output", "-o", metavar="FILE", type=click.Path(dir_okay=False, path_type=str),
              help="Write the export to FILE instead of stdout.")
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@vault_options
@global_options
@pass_app
def export_command(app: AppContext, snapshot: str, chat: str, fmt: str, output: str | None,
                   force: bool) -> None:
    """Export one chat's messages as json, txt or html."""
    from ..chats.export import to_json, to_txt
    from ..chats.html import to_html

    if output is not None and os.path.lexists(output) and not force:
        raise UsageError(f"{output} exists; not replaced", hint="use --force to replace it")
    repository = app.open_repository()
    opened = repository.chat(snapshot, chat)
    if fmt == "json":
        text = to_json(opened.chat.messages)
    elif fmt == "txt":
        text = to_txt(opened.chat.messages)
    else:
        me = "me" if opened.chat.kind in (KIND_WHATSAPP_MSGSTORE, KIND_BENCH_MSGSTORE) else None
        text = to_html(opened.chat, opened.read_attachment, me=me)
    if output is None:
        click.echo(text, nl=False)
        return
    _write_new(Path(output), text.encode("utf-8"))
    say("note", f"exported {opened.chat.name!r} ({opened.chat.message_count} messages) "
                f"to {output}")


def _write_new(path: Path, data: bytes) -> None:
    """Write *data* to *path* atomically (a partial export never takes a file's place)."""
    import tempfile

    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".strongroom-export-", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        raise LocalWriteError(f"cannot write {path}: {exc.strerror}") from None


SEARCH_EPILOG = """\b
Examples:
  strongroom chats search dinner
  strongroom chats search "see you" 1a2b3c4d --json

Case-insensitive; matches message text and attachment names.  --json prints
an array of {chat, kind, index, time, author, text, attachments} (index: the
message's position in its chat, from 0)."""


@command.command("search", epilog=SEARCH_EPILOG)
@click.argument("text")
@click.argument("snapshot", metavar="[SNAPSHOT|latest]", default="latest")
@vault_options
@global_options
@pass_app
def search_command(app: AppContext, text: str, snapshot: str) -> None:
    """Find the chats and messages that contain TEXT."""
    from ..chats.export import message_dict

    if not text.strip():
        raise UsageError("the search text is empty")
    repository = app.open_repository()
    hits = repository.search_messages(text, snapshot)
    if app.json:
        app.emit_json([{"chat": h.chat.name, "kind": h.chat.kind, "index": h.index,
                        **message_dict(h.message)} for h in hits])
        return
    if not hits:
        app.echo(f"no message contains {text!r}")
        return
    chats: dict[tuple[str, str], int] = {}
    for h in hits:
        key = (h.chat.name, h.chat.kind)
        if key not in chats:
            app.echo(f"== {h.chat.name} ({h.chat.kind})")
        chats[key] = chats.get(key, 0) + 1
        who = h.message.author or "(system)"
        body = h.message.text.replace("\n", "\n    ")
        app.echo(f"  [{h.message.time.replace('T', ' ')}] {who}: {body}")
    app.echo(f"{len(hits)} message(s) in {len(chats)} chat(s)")


DIFF_EPILOG = """\b
Examples:
  strongroom chats diff 1a2b3c4d latest
  strongroom chats diff 1a2b3c4d 5e6f7a8b --json

For each chat: added (only in the second snapshot), removed, changed or
unchanged, with the messages added and changed from the first to the second.
A chat whose entry and source file are the same in both is not read."""


@command.command("diff", epilog=DIFF_EPILOG)
@click.argument("first", metavar="SNAPSHOT")
@click.argument("second", metavar="SNAPSHOT")
@vault_options
@global_options
@pass_app
def diff_command(app: AppContext, first: str, second: str) -> None:
    """Per chat, how many messages were added or changed between two snapshots."""
    repository = app.open_repository()
    changes = repository.chat_changes(first, second)
    if app.json:
        app.emit_json([c.to_json() for c in changes])
        return
    if not changes:
        app.echo("no chats in either snapshot")
        return
    rows: list[list[Any]] = [[c.name, c.kind, c.status, str(c.messages_before),
                              str(c.messages_after), str(c.added), str(c.changed)]
                             for c in changes]
    app.echo(table(["Chat", "Kind", "Status", "Before", "After", "Added", "Changed"], rows))
