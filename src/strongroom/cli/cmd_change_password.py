"""``strongroom change-password``: re-register the same K under a new password."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import UsageError
from .context import AppContext
from .options import global_options, pass_app
from .vault_support import access, has_password, vault_options

ENV_NEW = "STRONGROOM_NEW_PASSWORD"


@click.command("change-password")
@click.option("--new-password-file", metavar="PATH",
              help=f"Read the new password from this file [or env {ENV_NEW}].")
@vault_options
@global_options
@pass_app
def command(app: AppContext, new_password_file: str | None) -> None:
    """Change the backup password (nothing is re-uploaded; the key K stays the same)."""
    from .. import password as pw

    backend = app.backend()
    if not has_password(backend):
        raise UsageError("this repository has no password", hint="use 'strongroom enable --password'")
    repository = app.open_repository()  # the current password or the 64-digit key opens it
    new = _new_password(app, new_password_file)
    pw.change_password(repository, access(app, backend, need_vault=True), new)
    app.echo("password changed; the backup itself was not touched")


def _new_password(app: AppContext, path: str | None) -> str:
    if path:
        text = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    elif app.env.get(ENV_NEW):
        text = app.env[ENV_NEW]
    elif app.stdin_is_tty():
        text = click.prompt("New backup password", hide_input=True, confirmation_prompt=True,
                            err=True)
    else:
        raise UsageError("no new password given", hint=f"pass --new-password-file or set {ENV_NEW}")
    if not text:
        raise UsageError("the new password is empty")
    return text
