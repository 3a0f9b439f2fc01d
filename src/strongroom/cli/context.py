"""The state one CLI invocation carries: global options and how to act on them.

Every command receives an :class:`AppContext` (``click.pass_obj``).  It knows
the repository location, the key options and the output mode, and it is the
only place commands get a backend, a repository or a progress display from.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from ..cancel import Cancel
from ..crypto.keys import BackupKey
from ..errors import FormatError, UsageError, WrongKey

if TYPE_CHECKING:
    # Imported where used: a command that never opens a repository (help, init's
    # checks, a bad option) does not pay for the library's import.
    from ..api import Repository
    from ..progress import Progress
    from ..storage.base import Backend

#: Environment variables the CLI reads (also listed in ``docs/spec/cli.md``).
ENV_REPO = "STRONGROOM_REPO"
ENV_KEY_FILE = "STRONGROOM_KEY_FILE"


def open_backend(location: str, *, create: bool = False) -> Backend:
    """Open the storage backend for ``location`` through the storage registry."""
    import inspect

    from ..storage import registry

    opener = registry.open_backend
    # The registry may or may not take ``create`` (it decides whether a missing
    # local folder is made); pass it only when it is understood.
    if "create" in inspect.signature(opener).parameters:
        return opener(location, create=create)
    return opener(location)


@dataclass
class AppContext:
    """Global options of one invocation, plus helpers every command uses."""

    repo: str | None = None
    key_file: str | None = None
    json: bool = False
    quiet: bool = False
    no_progress: bool = False
    #: Options added by extensions (e.g. the vault's ``--password-file``), by name.
    extra: dict[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    #: Whether stdin is a terminal we may prompt on (a parameter so tests can be exact).
    stdin_is_tty: Callable[[], bool] = field(default=lambda: sys.stdin.isatty())
    #: The key ``open_repository`` resolved (for ``key show``); never printed by repr.
    key: BackupKey | None = field(default=None, repr=False)
    #: Set once a command has written its JSON document (an error then adds none).
    json_emitted: bool = False
    #: The token of the command's long operation; Ctrl-C sets it (:meth:`interruptible`).
    cancel: Cancel = field(default_factory=Cancel, repr=False)
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def require_repo(self) -> str:
        """The repository location, or a usage error saying how to give one."""
        if not self.repo:
            raise UsageError("no repository given",
                             hint=f"pass --repo PATH|URL or set {ENV_REPO}")
        return self.repo

    def backend(self, *, create: bool = False) -> Backend:
        """Open the backend of ``--repo``; closed when the command ends."""
        backend = open_backend(self.require_repo(), create=create)
        self._closers.append(backend.close)
        return backend

    def open_repository(self) -> Repository:
        """Open ``--repo`` with the key ``resolve_key`` finds; closed when the command ends."""
        from ..api import Repository
        from .keysource import WRONG_KEY_HINTS, KeyRequest, resolve_key

        backend = self.backend()
        config = Repository.public_config(backend)  # RepositoryNotFound before any key prompt
        request = KeyRequest(app=self, backend=backend, config=config)
        key = resolve_key(request)
        from .vault_support import access

        try:
            # Password mode: the library keeps rollback detection on (spec §10).
            repository = Repository.open(backend, key, vault=access(self, backend))
        except WrongKey as exc:
            # Say which key was wrong: the user may not know the device had one.
            hint = WRONG_KEY_HINTS.get(request.source or "")
            if hint is None:
                raise
            raise WrongKey(exc.message, hint=hint) from None
        self.key = key
        self._closers.insert(0, repository.close)
        return repository

    @contextmanager
    def interruptible(self) -> Iterator[Cancel]:
        """Ctrl-C during the block cancels the operation through :attr:`cancel`.

        The first SIGINT only sets the token: the operation stops at its next
        check (within a fraction of a second) exactly as the library's
        cancellation does (``docs/sdk.md`` §5: the repository as a kill would
        leave it, the lock released, a restore's temporary files removed), and
        raises ``Cancelled``, which the error boundary reports with exit 130.
        A second Ctrl-C raises ``KeyboardInterrupt`` at once.  Outside these
        blocks (a key prompt) Ctrl-C interrupts at once, as before.  A SIGINT
        the parent told us to ignore stays ignored.
        """
        if threading.current_thread() is not threading.main_thread():
            yield self.cancel  # signals reach the main thread only (an embedding app)
            return
        previous = signal.getsignal(signal.SIGINT)
        if previous in (signal.SIG_IGN, None):
            yield self.cancel
            return
        token = self.cancel

        def on_sigint(signum: int, frame: FrameType | None) -> None:
            if token.cancelled:
                raise KeyboardInterrupt
            token.cancel("interrupted (Ctrl-C)")

        signal.signal(signal.SIGINT, on_sigint)
        try:
            yield token
        finally:
            signal.signal(signal.SIGINT, previous)

    def progress(self) -> Progress:
        """Bars when stderr is a terminal, JSON status lines there with ``--json``, else silent."""
        from .progress import make_progress

        progress = make_progress(enabled=not (self.quiet or self.no_progress),
                                 json_lines=self.json)
        # A command that fails mid-phase must still take its bar off the screen, without
        # filling it (finish() would claim the phase complete: a false 100 %).
        self._closers.insert(0, getattr(progress, "close", progress.finish))
        return progress

    def emit_json(self, document: Any) -> None:
        """Write one JSON document on stdout (the only thing ``--json`` puts there)."""
        click.echo(json.dumps(document, indent=2, sort_keys=True))
        self.json_emitted = True

    def echo(self, text: str = "") -> None:
        """Human output on stdout, suppressed by ``--quiet`` and ``--json``."""
        if not (self.quiet or self.json):
            click.echo(text)

    def on_close(self, close: Callable[[], None]) -> None:
        """Run ``close`` when the command ends (before what was registered earlier)."""
        self._closers.insert(0, close)

    def close(self) -> None:
        """Close what this invocation opened (repository first, then backends)."""
        closers, self._closers = self._closers, []
        failure: Exception | None = None
        for close in closers:
            try:
                close()
            except Exception as exc:  # noqa: BLE001 - close the rest, then report the first
                failure = failure or exc
        if failure is not None:
            raise failure


def repository_id(config: Mapping[str, Any]) -> str:
    """The repository id (hex) from a public config."""
    value = config.get("id")
    if not isinstance(value, str) or not value:
        raise FormatError("config: no repository id")
    return value


__all__ = ["ENV_KEY_FILE", "ENV_REPO", "AppContext", "BackupKey", "open_backend",
           "repository_id"]
