"""The one place the CLI turns an exception into a message and an exit code.

Rules (``docs/spec/cli.md``): one line ``strongroom: error: <message>`` and
optionally ``strongroom: hint: <hint>`` on stderr, lowercase, no trailing
period; the exit code is the exception's ``exit_code``.  A user mistake never
shows a traceback; a bug (``InternalError`` or anything unexpected) does, and
exits 70.  Ctrl-C exits 130.  With ``--json`` the same error is also written
to stdout as ``{"error": {...}}`` so scripts need not parse stderr.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

import click

from .. import errors as E
from ..errors import InternalError, StrongroomError

EXIT_INTERRUPTED = 130
EXIT_INTERNAL = InternalError.exit_code
EXIT_USAGE = 2
INTERRUPTED_MESSAGE = "interrupted; the last complete snapshot is intact"


#: The CLI's own advice: what the library's app-neutral hint means in flags, commands
#: and environment variables.  Used only when the raise site gave no hint of its own.
#: Keyed by class (most specific first in the MRO) or by (class, ``reason``).
CLI_HINTS: dict[type[StrongroomError] | tuple[type[StrongroomError], str], str] = {
    E.RepositoryNotFound: "check --repo, or create one with 'strongroom init'",
    E.SnapshotNotFound: "list snapshots with 'strongroom snapshots', or say 'latest'",
    E.DataDamaged: "run 'strongroom check --read-data' to see which objects and files "
                   "are affected",
    E.LocalWriteError: "free some space or choose another --target; files already "
                       "restored are kept",
    E.VaultUnreachable: "check --vault and your network connection, then try again; "
                        "no attempt was used",
    E.VaultAuthError: "check STRONGROOM_VAULT_TOKEN / --vault-token-file",
    E.ServerKeyMismatch: "this is not the vault the password was registered with; "
                         "check --vault",
    E.BackupHeadConflict: "run the command again; nothing was lost",
    (E.StorageError, "access-denied"): "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY "
                                       "and the bucket policy",
    (E.StorageError, "no-credentials"): "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                                        "or AWS_PROFILE",
    (E.StorageError, "wrong-region"): "set AWS_DEFAULT_REGION to the bucket's region and "
                                      "use its endpoint",
    (E.StorageError, "not-installed"): "pip install the extra named above, e.g. "
                                       "pip install 'strongroom[s3]'",
    (E.UsageError, "credentials-in-location"): "set AWS_ACCESS_KEY_ID and "
                                               "AWS_SECRET_ACCESS_KEY instead",
    (E.UsageError, "foreign-owner"): "set STRONGROOM_CONFIG_DIR to a directory of your own",
    (E.UsageError, "already-enabled"): "use 'strongroom change-password', or "
                                       "'strongroom disable' first",
    (E.UsageError, "no-password"): "use 'strongroom enable --password'",
    (E.UsageError, "no-retention-rule"): "use at least one --keep-* rule (see "
                                         "'strongroom forget --help')",
    E.ChatNotFound: "'strongroom chats SNAPSHOT' lists the chats",
    E.PathNotFound: "list the snapshot's files with 'strongroom ls SNAPSHOT'",
    (E.UsageError, "not-installed"): "pip install the extra named above, e.g. "
                                     "pip install 'strongroom[s3]'",
}


def cli_hint(exc: StrongroomError) -> str | None:
    """The hint the CLI prints for ``exc``.

    In order: the CLI's hint for the error's ``reason``, the raise site's own
    hint, the CLI's hint for the class, the class's app-neutral hint.
    """
    reason = getattr(exc, "reason", None)
    mro = [c for c in type(exc).__mro__ if isinstance(c, type) and issubclass(c, StrongroomError)]
    for cls in mro if isinstance(reason, str) else ():
        if (cls, reason) in CLI_HINTS:
            return CLI_HINTS[(cls, str(reason))]
    if "hint" in vars(exc):  # given where it was raised: it knows best
        return exc.hint
    for cls in mro:
        if cls in CLI_HINTS:
            return CLI_HINTS[cls]
    return exc.hint


def tidy(text: str) -> str:
    """One line, first letter lowercase (unless an acronym), no trailing period."""
    line = " ".join(str(text).split())
    first = line.split(" ", 1)[0].rstrip(":,;")
    # "This key ..." -> "this key ...", but "S3 ..." and "OPAQUE ..." stay as they are.
    if first[:1].isupper() and first.isalpha() and first[1:] == first[1:].lower():
        line = line[0].lower() + line[1:]
    return line.rstrip(".")


def say(kind: str, text: str) -> None:
    """Print ``strongroom: <kind>: <text>`` on stderr."""
    click.echo(f"strongroom: {kind}: {tidy(text)}", err=True)


def _json_error(kind: str, message: str, hint: str | None, code: int,
                fields: dict[str, object] | None = None) -> None:
    # The typed fields (``object``, ``path``, ``attempts_left``, ...) as the library gives them.
    doc = {"error": {**(fields or {}), "type": kind, "message": tidy(message),
                     "hint": hint and tidy(hint), "exit_code": code}}
    click.echo(json.dumps(doc))


def _describe(exc: BaseException) -> tuple[str, str, str | None, int, bool]:
    """(type name, message, hint, exit code, show traceback) for ``exc``."""
    if isinstance(exc, InternalError):
        return type(exc).__name__, exc.message, exc.hint, exc.exit_code, True
    if isinstance(exc, E.Cancelled):
        return "Interrupted", INTERRUPTED_MESSAGE, None, EXIT_INTERRUPTED, False
    if isinstance(exc, StrongroomError):
        return type(exc).__name__, exc.message, cli_hint(exc), exc.exit_code, False
    if isinstance(exc, click.UsageError):
        hint = "run 'strongroom --help' for the commands and options"
        if exc.ctx is not None and not isinstance(exc.ctx.command, click.Group):
            hint = f"run '{exc.ctx.command_path} --help' for its options"
        return "UsageError", exc.format_message(), hint, exc.exit_code, False
    if isinstance(exc, click.ClickException):
        return "UsageError", exc.format_message(), None, exc.exit_code, False
    if isinstance(exc, (click.Abort, KeyboardInterrupt)):
        return "Interrupted", INTERRUPTED_MESSAGE, None, EXIT_INTERRUPTED, False
    return type(exc).__name__, f"internal error ({type(exc).__name__})", \
        "this is a bug in Strongroom; please report it with the traceback above", \
        EXIT_INTERNAL, True


def report(exc: BaseException, *, json_output: bool = False) -> int:
    """Tell the user what went wrong; return the process exit code."""
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        click.echo(exc.format_message(), err=True)
        return EXIT_USAGE
    if isinstance(exc, BrokenPipeError):
        # The reader went away (``strongroom snapshots | head``): not an error to
        # report.  Point stdout at /dev/null so the interpreter's final flush is quiet.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1
    kind, message, hint, code, show_traceback = _describe(exc)
    if show_traceback:
        traceback.print_exception(exc, file=sys.stderr)
    if code == EXIT_INTERRUPTED:
        click.echo(f"strongroom: {INTERRUPTED_MESSAGE}", err=True)
    else:
        say("error", message)
        if hint:
            say("hint", hint)
    if json_output:
        fields = exc.to_dict() if isinstance(exc, StrongroomError) and code != EXIT_INTERRUPTED \
            else None
        _json_error(kind, message, hint, code, fields)
    return code


__all__ = ["CLI_HINTS", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "INTERRUPTED_MESSAGE", "cli_hint", "report", "say", "tidy"]
