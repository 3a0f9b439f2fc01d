"""``strongroom dump SNAPSHOT PATH``: one file to stdout, or a folder as a tar stream."""

from __future__ import annotations

import itertools
import os
import sys

import click

from ..api import Repository
from ..errors import LocalWriteError, UsageError
from .context import AppContext
from .filters import filter_options, snapshot_filter
from .options import global_options, pass_app
from .vault_support import vault_options

EPILOG = """\b
Examples:
  strongroom dump latest /home/me/chats/notes.txt | less
  strongroom dump latest /home/me/chats > chats.tar
  strongroom dump 1a2b3c4d /home/me/chats/Media -o media.tar
  strongroom dump latest / | tar -tvf -

A file is written as it is; a folder (or / for the whole snapshot) as a tar
stream whose names start at the folder's own name ('chats/...'), never
absolute, never with '..'; setuid, setgid and sticky bits and owners are
not stored.  Data is streamed, one chunk at a time, and each chunk is
checked: if stored data is damaged the dump stops with exit 12 and the
output is incomplete.  -o never replaces an existing file.  A tar stream is
not written to a terminal."""


@click.command("dump", epilog=EPILOG)
@click.argument("ref", metavar="SNAPSHOT")
@click.argument("path", metavar="PATH")
@click.option("--output", "-o", metavar="FILE", type=click.Path(dir_okay=False, path_type=str),
              help="Write to FILE (created; never replaced) instead of stdout.")
@filter_options
@vault_options
@global_options
@pass_app
def command(app: AppContext, ref: str, path: str, output: str | None) -> None:
    """Write one file of a snapshot to stdout, or a folder as a tar stream."""
    if app.json and output is None:
        raise UsageError("dump --json needs --output FILE", hint="stdout carries the data")
    repository = app.open_repository()
    info = repository.find_snapshot(ref, snapshot_filter(app))
    if output is None:
        stdout = sys.stdout.buffer
        if sys.stdout.isatty() and not _is_file(repository, info.id, path):
            raise UsageError("refusing to write a tar stream to a terminal",
                             hint="redirect it (> file.tar, | tar -tvf -) or use --output FILE")
        result = repository.dump(info.id, path, stdout)
        stdout.flush()
    else:
        try:
            fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            raise UsageError(f"{output} exists; dump never replaces a file",
                             hint="remove it or choose another name") from None
        except OSError as exc:
            raise LocalWriteError(f"cannot create {output}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "wb") as out:
                result = repository.dump(info.id, path, out)
        except BaseException:
            # An incomplete file must not look like a dump: remove it (ours, just created).
            os.unlink(output)
            raise
    if app.json:
        app.emit_json({"snapshot": info.id, "path": result.path, "kind": result.kind,
                       "files": result.files, "bytes": result.bytes, "output": output})
    elif output is not None:
        app.echo(f"wrote {result.path} of snapshot {info.short_id} to {output} "
                 f"({'tar, ' + str(result.files) + ' file(s)' if result.kind == 'tar' else 'file'})")


def _is_file(repository: Repository, snap: str, path: str) -> bool:
    """Whether ``path`` is a file (a listing of a file is the file alone)."""
    entries = list(itertools.islice(repository.ls(snap, path), 2))
    return len(entries) == 1 and entries[0].type == "file"


__all__ = ["command"]
