"""``strongroom key``: show the 64-digit key, or keep/forget it on this device."""

from __future__ import annotations

import sys

import click

from ..crypto.keys import BackupKey
from ..errors import InternalError, UsageError
from .context import AppContext
from .errors import say
from .keystore import DeviceKeyStore
from .options import global_options, pass_app
from .output import key_block

EPILOG = """\b
Examples:
  strongroom key show
  strongroom key show --yes > /media/usb/strongroom.key
  strongroom --key-file ~/strongroom.key key remember
  strongroom key forget"""

SHOW_EPILOG = """\b
Examples:
  strongroom key show
  strongroom key show --json --yes

Prints the key of the opened repository (found as for any command: key
file, this device's store, STRONGROOM_KEY, or typed).  The key goes to
stdout only on a terminal; to write it to a pipe or file, or with --json,
confirm with --yes (so a key never lands in a log by accident)."""


@click.group("key", epilog=EPILOG)
@global_options
def command() -> None:
    """Show the 64-digit key, or keep or forget it on this device."""


@command.command("show", epilog=SHOW_EPILOG)
@click.option("--yes", "-y", is_flag=True, help="Print even when stdout is not a terminal.")
@global_options
@pass_app
def show(app: AppContext, yes: bool) -> None:
    """Print the 64-digit key of the repository."""
    if (app.json or not sys.stdout.isatty()) and not yes:
        raise UsageError("refusing to print the key to a non-terminal or as JSON",
                         hint="add --yes if you really want the key written there")
    with app.open_repository() as repository:
        repo_id, key = repository.id, _opened_key(app)
    say("warning", "anyone who sees this key can read every backup in this repository")
    if app.json:
        app.emit_json({"repository_id": repo_id, "key": key.digits()})
    else:
        click.echo(key_block(key, indent=""))


def _opened_key(app: AppContext) -> BackupKey:
    if app.key is None:
        raise InternalError("no key recorded for the opened repository")
    return app.key


REMEMBER_EPILOG = """\b
Examples:
  STRONGROOM_KEY='1a2b 3c4d ...' strongroom --repo /mnt/backup key remember
  strongroom --repo /mnt/backup --key-file ~/strongroom.key key remember

Stores the key in the OS keyring, or in a 0600 file under
~/.config/strongroom/keys/, so later commands on this device need no key."""

FORGET_EPILOG = """\b
Examples:
  strongroom --repo /mnt/backup key forget

Only this device's copy goes; the repository and its data are untouched, and
the 64-digit key (or a vault password) still opens it."""


@command.command("remember", epilog=REMEMBER_EPILOG)
@global_options
@pass_app
def remember(app: AppContext) -> None:
    """Keep the key on this device so backups need no typing (e.g. after a restore)."""
    with app.open_repository() as repository:
        where = DeviceKeyStore.from_environment(app.env).save(repository.id, _opened_key(app))
    app.echo(f"this device now keeps the key in {where}")


@command.command("forget", epilog=FORGET_EPILOG)
@global_options
@pass_app
def forget(app: AppContext) -> None:
    """Remove this device's copy of the key (the repository is untouched)."""
    from ..api import Repository
    from .context import repository_id

    repo_id = repository_id(Repository.public_config(app.backend()))
    removed = DeviceKeyStore.from_environment(app.env).forget(repo_id)
    app.echo("this device no longer keeps the key" if removed else "this device kept no key")
