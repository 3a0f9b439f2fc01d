"""``strongroom enable --password`` (and ``init --password``): deposit K in the vault."""

from __future__ import annotations

from typing import Any

import click

from ..errors import UsageError
from .context import AppContext
from .errors import say
from .keysource import KeyRequest, from_device, from_key_file
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


def _enable(app: AppContext, backend: Any, key: Any) -> None:
    from ..client import flows

    client = vault_client(app)
    password = read_password(app, prompt="New backup password", confirm=True)
    loc = flows.enable(backend, key, client, password, pinned_key=pinned_key(app))
    if app.json:
        app.emit_json({"vault": loc.url, "account": loc.account, "password_enabled": True})
        return
    app.echo(f"password protection on: the key is deposited in the vault at {loc.url} "
             f"(account {loc.account})")
    say("note", "keep the 64-digit key too: it still opens the backup if the vault is gone "
                "or locked after too many wrong passwords")


def extend_init(init: click.Command) -> None:
    """Give ``init`` a ``--password`` flag that enables the vault right after creating."""
    from .vault_support import add_vault_options

    if any(p.name == "use_password" for p in init.params):
        return
    init.params.append(click.Option(["--password", "use_password"], is_flag=True,
                                    help="Also protect the key with a password (Backup Key Vault)."))
    add_vault_options(init)
    original = init.callback
    assert original is not None

    def callback(*args: Any, use_password: bool = False, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if use_password:
            app = click.get_current_context().find_object(AppContext)
            assert app is not None
            backend = app.backend()
            from ..api import Repository

            req = KeyRequest(app=app, backend=backend, config=Repository.public_config(backend))
            key = from_key_file(req) or from_device(req)
            if key is None:
                raise UsageError("init --password needs the key kept on this device or --key-file",
                                 hint="run 'strongroom enable --password' and type the 64 digits")
            _enable(app, backend, key)
        return result

    init.callback = callback
