"""Where the CLI gets the vault account's token: never from the command line.

An argument is visible to every local user (``ps``, ``/proc/PID/cmdline``)
and lands in shell history, so the token comes from, in this order:

1. ``--vault-token-file PATH`` / ``STRONGROOM_VAULT_TOKEN_FILE``: a file that
   only its owner can read (refused when group or others have any access);
   ``-`` reads standard input (a hidden prompt when that is a terminal).
2. ``STRONGROOM_VAULT_TOKEN``.

``--vault-token VALUE`` is refused with a pointer to both, without echoing
the value.  The token read is kept in ``AppContext.extra["vault_token"]``, so
standard input is read once per command.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from typing import Any

import click

from ..errors import UsageError
from .context import AppContext

ENV_TOKEN = "STRONGROOM_VAULT_TOKEN"
ENV_TOKEN_FILE = "STRONGROOM_VAULT_TOKEN_FILE"
MAX_TOKEN_BYTES = 16 * 1024  # a JWT with many claims fits; a wrong file is not read whole
# One HTTP header value: printable ASCII, no space (a newline would split the header).
_TOKEN = re.compile(r"[\x21-\x7e]+")
HINT = (f"set {ENV_TOKEN}, or pass --vault-token-file PATH (mode 0600) or "
        "--vault-token-file - (standard input)")


def _refuse_token_argument(_ctx: click.Context, _p: click.Parameter, value: Any) -> Any:
    if value is not None:
        # The value is not repeated: it is the secret that should not have been there.
        raise UsageError("--vault-token is not accepted: a token in the arguments is visible "
                         "to other users of this machine (ps)", hint=HINT)
    return value


def _store_file(ctx: click.Context, _p: click.Parameter, value: Any) -> Any:
    files = tuple(value or ())
    if files:
        # One file is the account's token everywhere; several are one per realm
        # (docs/spec/realms.md), in the order of --vault.
        ctx.ensure_object(AppContext).extra["vault_token_file"] = files[0]
        ctx.ensure_object(AppContext).extra["vault_token_files"] = files
    return value


def token_option_specs() -> list[tuple[list[str], dict[str, Any]]]:
    """The token options, as ``(declarations, click keyword arguments)``."""
    return [
        (["--vault-token-file"], {
            "metavar": "PATH", "envvar": ENV_TOKEN_FILE, "expose_value": False,
            "callback": _store_file, "multiple": True,
            # A path type: the variable splits at os.pathsep (':'), never at spaces.
            "type": click.Path(allow_dash=True, dir_okay=False),
            "help": f"Read this account's vault token or JWT from PATH (- = standard input) "
                    f"[env {ENV_TOKEN_FILE}; or the token itself in {ENV_TOKEN}]."}),
        (["--vault-token"], {"metavar": "TOKEN", "expose_value": False, "hidden": True,
                             "callback": _refuse_token_argument}),
    ]


def vault_token(app: AppContext) -> str | None:
    """The account's token from ``--vault-token-file`` or the environment; None if neither."""
    cached = app.extra.get("vault_token")
    if cached:
        return str(cached)
    path = app.extra.get("vault_token_file")
    if path:
        token = _from_stdin(app) if path == "-" else _from_file(str(path))
        where = "standard input" if path == "-" else f"the vault token file {path}"
    else:
        value, where = app.env.get(ENV_TOKEN), ENV_TOKEN
        if not value:
            return None
        token = value.strip()
    if not token:
        raise UsageError(f"{where} is empty", hint=HINT)
    if not _TOKEN.fullmatch(token):
        raise UsageError(f"{where} does not hold one token (spaces, several lines or "
                         "non-ASCII characters)", hint="a token file holds the token on one line")
    app.extra["vault_token"] = token
    return token


def token_from_file(app: AppContext, path: str) -> str:
    """The token in one file (``-``: standard input), checked like :func:`vault_token`'s."""
    token = _from_stdin(app) if path == "-" else _from_file(path)
    where = "standard input" if path == "-" else f"the vault token file {path}"
    if not token or not _TOKEN.fullmatch(token):
        raise UsageError(f"{where} does not hold one token", hint=HINT)
    return token


def _from_stdin(app: AppContext) -> str:
    if app.stdin_is_tty():
        return str(click.prompt("Vault token", hide_input=True, err=True)).strip()
    return _decode(sys.stdin.buffer.read(MAX_TOKEN_BYTES + 1), "standard input")


def _from_file(path: str) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise UsageError(f"cannot read the vault token file {path}: {exc.strerror}",
                         hint=HINT) from None
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(fd).st_mode  # of what was opened, not of what the name points at later
        if stat.S_ISREG(mode) and mode & 0o077:
            raise UsageError(f"the vault token file {path} is open to other users "
                             f"(mode {stat.S_IMODE(mode):04o})", hint=f"chmod 600 {path}")
        return _decode(f.read(MAX_TOKEN_BYTES + 1), f"the vault token file {path}")


def _decode(raw: bytes, where: str) -> str:
    if len(raw) > MAX_TOKEN_BYTES:
        raise UsageError(f"{where} holds more than {MAX_TOKEN_BYTES} bytes; not a vault token")
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise UsageError(f"{where} does not hold one token (non-ASCII bytes)") from None


__all__ = ["ENV_TOKEN", "ENV_TOKEN_FILE", "MAX_TOKEN_BYTES", "token_from_file", "token_option_specs",
           "vault_token"]
