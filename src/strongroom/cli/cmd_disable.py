"""``strongroom disable --password``: delete the vault record; only the 64-digit key remains."""

from __future__ import annotations

import click

from ..errors import UsageError
from .context import AppContext
from .errors import say
from .options import global_options, pass_app
from .vault_support import access, has_password, vault_options


@click.command("disable")
@click.option("--password", "use_password", is_flag=True, required=True,
              help="Turn off password protection (deletes the key from the vault).")
@click.option("--yes", "-y", is_flag=True,
              help="Do not ask for confirmation (needed without a terminal).")
@vault_options
@global_options
@pass_app
def command(app: AppContext, use_password: bool, yes: bool) -> None:
    """Delete this backup's key from the vault for good.

    The repository is opened first (with the key kept on this device, the
    64-digit key or the password): the vault deletes a record only for a
    caller that proves it holds the backup key.
    """
    from .. import password as pw
    from ..client import flows

    backend = app.backend()
    if not has_password(backend):
        raise UsageError("this repository has no password set up")
    if not yes:
        if not app.stdin_is_tty():
            raise UsageError("disable deletes the backup key from the vault for good",
                             hint="pass --yes to confirm without a terminal")
        if not click.confirm("Delete the password protection? Afterwards only the 64-digit "
                             "key opens this backup.", default=False, err=True):
            raise UsageError("nothing was changed")
    repository = app.open_repository()  # K gives the record proof the vault asks for
    # The library checks the locator and the head first, deletes only this backup's slot,
    # and forgets the head on this device (a missing locator is no alarm here any more).
    existed = pw.disable(repository, access(app, backend, need_vault=True))
    if app.json:
        app.emit_json({"deleted": existed, "password_enabled": False})
        return
    app.echo("password protection off" + ("" if existed else " (the vault had no record)"))
    say("warning", flows.DISABLED_NOTE)
