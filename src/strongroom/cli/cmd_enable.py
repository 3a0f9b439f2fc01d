"""``strongroom enable --password`` (and ``init --password``): deposit K in the vault."""

from __future__ import annotations

from typing import Any

import click

from ..errors import UsageError
from .context import AppContext
from .errors import say
from .options import global_options, pass_app
from .vault_support import pinned_key, read_password, vault_client, vault_options

EPILOG = """\b
Examples:
  strongroom --repo /mnt/backup enable --password --vault https://vault.example \\
      --vault-token-file ~/.vault-token
  strongroom enable --password --password-file pw.txt

The vault checks the password with OPAQUE and never sees it.  After
10 wrong guesses it destroys the key for good; the 64-digit key still works."""


@click.command("enable", epilog=EPILOG)
@click.option("--password", "use_password", is_flag=True, required=True,
              help="Protect the key with a password held by the Backup Key Vault.")
@vault_options
@global_options
@pass_app
def command(app: AppContext, use_password: bool) -> None:
    """Let a password (through the Backup Key Vault) open this backup."""
    app.open_repository()  # proves the key before anything is deposited
    _enable(app, app.backend(), repository_key(app))


def repository_key(app: AppContext) -> Any:
    """The key ``open_repository`` resolved."""
    if app.key is None:
        raise UsageError("no key for this repository")
    return app.key


def enable_inputs(app: AppContext) -> tuple[Any, str]:
    """The vault client and the new password, checked before anything is changed."""
    client = vault_client(app)
    password = read_password(app, prompt="New backup password", confirm=True)
    return client, password


def _enable(app: AppContext, backend: Any, key: Any,
            inputs: tuple[Any, str] | None = None) -> None:
    from ..client import flows

    client, password = inputs or enable_inputs(app)
    loc = flows.enable(backend, key, client, password, pinned_key=pinned_key(app))
    if app.json:
        app.emit_json({"vault": loc.url, "account": loc.account, "password_enabled": True})
        return
    app.echo(f"password protection on: the key is deposited in the vault at {loc.url} "
             f"(account {loc.account})")
    say("note", "keep the 64-digit key too: it still opens the backup if the vault is gone "
                "or locked after too many wrong passwords")
