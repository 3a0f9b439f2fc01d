"""``strongroom enable --password`` (and ``init --password``): deposit K in the vault."""

from __future__ import annotations

from typing import Any

import click

from ..errors import UsageError
from .context import AppContext
from .errors import say
from .options import global_options, pass_app
from .vault_support import access, read_password, vault_options

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
    repository = app.open_repository()  # proves the key before anything is deposited
    _enable(app, repository)


def repository_key(app: AppContext) -> Any:
    """The key ``open_repository`` resolved."""
    if app.key is None:
        raise UsageError("no key for this repository")
    return app.key


def enable_inputs(app: AppContext, backend: Any) -> tuple[Any, str]:
    """The vault access and the new password, checked before anything is changed."""
    from ..password import RealmAccess

    vault = access(app, backend, need_vault=True)
    if isinstance(vault, RealmAccess):
        for c in vault.clients():  # each realm's token, asked now: fails before any write
            c.whoami()
    else:
        vault.client()  # the token's account, asked now: a bad token fails before any write
    password = read_password(app, prompt="New backup password", confirm=True)
    return vault, password


def _enable(app: AppContext, repository: Any, inputs: tuple[Any, str] | None = None) -> None:
    from .. import password as pw

    vault, password = inputs or enable_inputs(app, repository.backend)
    from ..realms.locator import RealmLocator

    loc = pw.enable(repository, vault, password)
    if isinstance(loc, RealmLocator):
        urls = [r.url for r in loc.realms]
        if app.json:
            app.emit_json({"realms": urls, "threshold": loc.threshold, "account": loc.account,
                           "password_enabled": True})
            return
        app.echo(f"password protection on: the key is shared over {len(urls)} realms, any "
                 f"{loc.threshold} of which recover it: {', '.join(urls)} (account {loc.account})")
    else:
        if app.json:
            app.emit_json({"vault": loc.url, "account": loc.account, "password_enabled": True})
            return
        app.echo(f"password protection on: the key is deposited in the vault at {loc.url} "
                 f"(account {loc.account})")
    say("note", "keep the 64-digit key too: it still opens the backup if the vault is gone "
                "or locked after too many wrong passwords")
