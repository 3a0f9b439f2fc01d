"""The ``strongroom`` command: the group, its commands, and the error boundary.

Commands live one per module (``cmd_<verb>.py``), each exposing ``command``;
to add one, append its module name to :data:`COMMAND_MODULES`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

import click

from .. import __version__
from .context import AppContext
from .errors import report
from .options import group_options

#: Command modules under ``strongroom.cli``; each defines ``command``.  Extensions
#: (the vault's ``cmd_vault``, ``cmd_enable``, …) are appended here.
COMMAND_MODULES: list[str] = [
    "cmd_init",
    "cmd_backup",
    "cmd_snapshots",
    "cmd_restore",
    "cmd_ls",
    "cmd_find",
    "cmd_diff",
    "cmd_dump",
    "cmd_stats",
    "cmd_check",
    "cmd_forget",
    "cmd_prune",
    "cmd_key",
    "cmd_chats",
    # Vault area (password-protected backups):
    "cmd_enable",
    "cmd_change_password",
    "cmd_disable",
    "cmd_vault",
]

EPILOG = """\b
Examples:
  strongroom --repo /mnt/backup init --key-file ~/strongroom.key
  export STRONGROOM_REPO=/mnt/backup
  strongroom backup ~/chats
  strongroom snapshots
  strongroom ls -l latest:/home/me/chats
  strongroom find '*.db'
  strongroom restore latest --target ~/restored
  strongroom chats
  strongroom check --read-data

\b
Exit codes: 0 ok, 2 usage, 3 backup skipped unreadable files, 10 no
repository/snapshot, 11 wrong or invalid key, 12 damaged data, 13 locked,
14 newer format, 15 storage, 16 local disk, 17 rollback detected, 20-25
vault, 70 bug, 130 interrupted.  See docs/spec/cli.md."""


class StrongroomGroup(click.Group):
    """A click group whose ``main`` maps every exception to a message and exit code.

    Doing it here (not only in :func:`main`) means ``CliRunner`` tests exercise
    exactly the same error handling as the installed command.
    """

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        app = extra.pop("obj", None) or AppContext()
        try:
            result = super().main(args, prog_name or "strongroom", complete_var,
                                  standalone_mode=False, obj=app, **extra)
            code = result if isinstance(result, int) else 0
        except Exception as exc:  # noqa: BLE001 - the one error boundary of the CLI
            code = report(exc, json_output=app.json and not app.json_emitted)
        except KeyboardInterrupt as exc:
            code = report(exc, json_output=app.json and not app.json_emitted)
        finally:
            _close_quietly(app)
        if standalone_mode:
            sys.exit(code)
        return code


def _close_quietly(app: AppContext) -> None:
    try:
        app.close()
    except Exception:  # noqa: BLE001, S110 - closing after an error must not hide it
        pass


@click.group("strongroom", cls=StrongroomGroup, epilog=EPILOG,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", "-V", prog_name="strongroom",
                      message="%(prog)s %(version)s")
@group_options
def cli() -> None:
    """Strongroom: end-to-end encrypted, incremental backups of chat history.

    Everything is encrypted on this device under a random 256-bit key before
    it reaches the storage provider.  The key is shown once as 64 digits at
    'init'; keep it safe: it is the only way to open the backup on a new
    device without a password.
    """


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"{__package__}.{name}")
        cli.add_command(module.command)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``strongroom`` console script."""
    cli.main(args=argv, prog_name="strongroom")


_register_commands()


def _install_vault() -> None:
    # Vault area hook: password key sources, ``init --password``, vault options.
    from .vault_support import install

    install()


_install_vault()

if __name__ == "__main__":
    main()
