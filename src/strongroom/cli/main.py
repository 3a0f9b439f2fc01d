"""The ``strongroom`` command: the group, its commands, and the error boundary.

Commands live one per module (``cmd_<verb>.py``), each exposing ``command``;
to add one, add its name and module to :data:`COMMANDS`.  A command's module is
imported only when that command runs (or help lists them all), so ``strongroom
ls`` does not import what ``backup`` or the vault server need.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, MutableMapping, Sequence
from typing import Any

import click

from .. import __version__
from .context import AppContext
from .errors import report
from .options import group_options

#: Command name -> its module under ``strongroom.cli`` (which defines ``command``).
#: Extensions (the vault's ``cmd_vault``, ``cmd_enable``, …) are listed here too.
COMMANDS: dict[str, str] = {
    "init": "cmd_init",
    "backup": "cmd_backup",
    "snapshots": "cmd_snapshots",
    "restore": "cmd_restore",
    "ls": "cmd_ls",
    "find": "cmd_find",
    "diff": "cmd_diff",
    "dump": "cmd_dump",
    "stats": "cmd_stats",
    "check": "cmd_check",
    "forget": "cmd_forget",
    "prune": "cmd_prune",
    "key": "cmd_key",
    "chats": "cmd_chats",
    # Vault area (password-protected backups):
    "enable": "cmd_enable",
    "change-password": "cmd_change_password",
    "disable": "cmd_disable",
    "vault": "cmd_vault",
}
#: The command modules, in :data:`COMMANDS` order.
COMMAND_MODULES: list[str] = list(COMMANDS.values())


class LazyCommands(MutableMapping[str, click.Command]):
    """The group's commands by name; a command's module is imported on first lookup."""

    def __init__(self, modules: dict[str, str]) -> None:
        self._modules = dict(modules)
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        command = self._loaded.get(name)
        if command is None:
            module = self._modules[name]  # KeyError: no such command
            command = importlib.import_module(f"{__package__}.{module}").command
            self._loaded[name] = command
        return command

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command
        self._modules.setdefault(name, "")

    def __delitem__(self, name: str) -> None:
        del self._modules[name]
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)

    def get(self, name: str, default: Any = None) -> Any:
        """The command *name*, or *default* (an import error is not "no such command")."""
        return self[name] if name in self._modules else default


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
    cli.commands = LazyCommands(COMMANDS)


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
