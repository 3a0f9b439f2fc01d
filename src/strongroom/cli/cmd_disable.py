"""``strongroom disable --password``: delete the vault record; only the 64-digit key remains."""

from __future__ import annotations

import click

from ..errors import UsageError
from .context import AppContext
from .errors import say
from .options import global_options, pass_app
from .vault_support import vault_client, vault_options


@click.command("disable")
@click.option("--password", "use_password", is_flag=True, required=True,
              help="Turn off password protection (deletes the key from the vault).")
@vault_options
@global_options
@pass_app
def command(app: AppContext, use_password: bool) -> None:
    """Delete this backup's key from the vault for good."""
    from ..client import flows

    backend = app.backend()
    loc = flows.read_locator(backend)
    if loc is None:
        raise UsageError("this repository has no password set up")
    client = vault_client(app, url=loc.url, account=loc.account)
    existed = flows.disable(backend, client)
    if app.json:
        app.emit_json({"deleted": existed, "password_enabled": False})
        return
    app.echo("password protection off" + ("" if existed else " (the vault had no record)"))
    say("warning", flows.DISABLED_NOTE)
