"""``strongroom init``: create a repository and its key K."""

from __future__ import annotations

import os

import click

from ..api import BackupKey, Repository
from ..errors import StrongroomError, UsageError
from .cmd_enable import _enable, enable_inputs
from .context import AppContext
from .errors import say
from .keystore import DeviceKeyStore, write_key_file
from .options import global_options, pass_app
from .output import key_block
from .vault_support import vault_options

WARNING = """\
This 64-digit key is the only way to open this backup without a password.
Write it down or print it, and keep it somewhere safe, away from this device.
Strongroom cannot recover it: it is not stored anywhere else{device}.
Without it (or a password set up with the Backup Key Vault) nobody,
including you, can restore this backup."""

EPILOG = """\b
Examples:
  strongroom --repo /mnt/backup init
  strongroom --repo /mnt/backup init --key-file ~/strongroom.key
  strongroom --repo s3:https://s3.example.com/bucket/chats init --no-store

The key is shown once.  With --key-file it is written to that file instead
(mode 0600; an existing file is never overwritten), for automation.  Unless
--no-store is given, this device also keeps the key (OS keyring, or a 0600
file under ~/.config/strongroom/keys/) so daily backups need no typing."""


@click.command("init", epilog=EPILOG)
@click.option("--no-store", is_flag=True,
              help="Do not keep the key on this device (type it or use --key-file each time).")
@click.option("--password", "use_password", is_flag=True,
              help="Also protect the key with a password (Backup Key Vault).")
@vault_options
@global_options
@pass_app
def command(app: AppContext, no_store: bool, use_password: bool) -> None:
    """Create a new encrypted repository and its 64-digit backup key."""
    if app.json and not app.key_file:
        raise UsageError("init --json needs --key-file",
                         hint="the key is never written into machine-readable output")
    location = app.require_repo()
    # With --password: the vault, the token and the password are checked (and the
    # password read) before anything is created.
    inputs = enable_inputs(app, None) if use_password else None
    key = BackupKey.generate()
    # The key file comes first, so a repository never exists without its key
    # having been saved somewhere; if creating the repository fails, it goes.
    if app.key_file:
        write_key_file(app.key_file, key, comment="Strongroom backup key (keep it secret)")
    try:
        repository = Repository.create(app.backend(create=True), key)
    except BaseException:
        if app.key_file:
            os.unlink(app.key_file)
        raise
    app.on_close(repository.close)
    repo_id = repository.id
    stored = None if no_store else _store_on_device(app, repo_id, key)
    # The key is shown first: if enabling fails now, the backup still has its key.
    _show(app, location, repo_id, key, stored)
    if inputs is not None:
        _enable(app, repository, inputs)


def _store_on_device(app: AppContext, repo_id: str, key: BackupKey) -> str | None:
    """Keep K on this device; a failure here must not stop the key from being shown."""
    try:
        return DeviceKeyStore.from_environment(app.env).save(repo_id, key)
    except StrongroomError as exc:
        say("warning", f"could not keep the key on this device ({exc.message}); "
                       "you will need the 64-digit key or --key-file for every backup")
        return None


def _show(app: AppContext, location: str, repo_id: str, key: BackupKey,
          stored: str | None) -> None:
    if app.json:
        app.emit_json({"repository_id": repo_id, "location": location,
                       "key_file": app.key_file, "stored_on_device": stored})
        return
    app.echo(f"created repository {repo_id[:8]} at {location}")
    if stored:
        app.echo(f"this device keeps the key in {stored}")
    if app.key_file:
        app.echo(f"the 64-digit key is in {app.key_file} (mode 0600)")
        say("warning", "copy that key file somewhere safe: without it the backup cannot "
                       "be opened on another device")
        return
    # Shown even with --quiet: a key nobody saw is a backup nobody can restore.
    device = "\nexcept on this device, which you may lose along with its chats" if stored else ""
    click.echo("\nYour backup key:\n")
    click.echo(key_block(key))
    click.echo("\n" + WARNING.format(device=device))
