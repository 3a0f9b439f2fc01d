"""``resolve_key``: the single place the CLI turns options into a ``BackupKey``.

Sources are tried in order; the first that yields a key wins (a wrong key is
then reported as such, not silently replaced by the next source):

1. ``--key-file`` / ``STRONGROOM_KEY_FILE``;
2. the key this device keeps for the repository (keyring or key file, see
   :mod:`strongroom.cli.keystore`);
3. ``STRONGROOM_KEY`` (the 64 digits; meant for automation, since an
   environment variable is visible to other processes of the same user);
4. on a terminal, a hidden prompt for the 64 digits.

Extension point: the vault adds its password source with
:func:`register_key_source` (e.g. ``before="environment"``), reading its own
options from ``request.app.extra`` and ``request.backend`` (``ext/vault.json``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import click

from ..crypto.keys import BackupKey
from ..errors import UsageError
from ..storage.base import Backend
from .context import AppContext, repository_id
from .keystore import DeviceKeyStore, read_key_file

ENV_KEY = "STRONGROOM_KEY"


@dataclass
class KeyRequest:
    """What a key source may look at: the options, the backend, the public config."""

    app: AppContext
    backend: Backend
    config: Mapping[str, Any]
    #: The name of the source that gave the key (set by ``resolve_key``).
    source: str | None = None

    @property
    def repo_id(self) -> str:
        """The repository id from the public config."""
        return repository_id(self.config)


#: A key source returns a key, or None to let the next source try.
KeySource = Callable[[KeyRequest], BackupKey | None]


def from_key_file(request: KeyRequest) -> BackupKey | None:
    """The key in ``--key-file`` / ``STRONGROOM_KEY_FILE``."""
    path = request.app.key_file
    return read_key_file(path) if path else None


def from_device(request: KeyRequest) -> BackupKey | None:
    """The key this device stored for the repository (at ``init``)."""
    return DeviceKeyStore.from_environment(request.app.env).load(request.repo_id)


def from_environment(request: KeyRequest) -> BackupKey | None:
    """The 64 digits in ``STRONGROOM_KEY``."""
    text = request.app.env.get(ENV_KEY)
    return BackupKey.parse(text) if text else None


def from_prompt(request: KeyRequest) -> BackupKey | None:
    """Ask for the 64 digits on the terminal, without echoing them."""
    if not request.app.stdin_is_tty():
        return None
    text = click.prompt("64-digit backup key", hide_input=True, err=True)
    return BackupKey.parse(text)


KEY_SOURCES: list[tuple[str, KeySource]] = [
    ("key-file", from_key_file),
    ("device", from_device),
    ("environment", from_environment),
    ("prompt", from_prompt),
]


#: What to check when a source's key does not open the repository.
WRONG_KEY_HINTS = {
    "key-file": "the key file (--key-file / STRONGROOM_KEY_FILE) holds the key of another backup",
    "device": "the key this device keeps for this repository is wrong; "
              "remove it with 'strongroom key forget'",
    "environment": f"{ENV_KEY} holds the key of another backup, or a digit is mistyped",
    "prompt": "check every digit: the key is 64 digits 0-9 and a-f, as shown at 'init'",
}


def register_key_source(name: str, source: KeySource, *, before: str | None = None) -> None:
    """Add a key source, before the named one (or last); re-registering replaces it."""
    KEY_SOURCES[:] = [(n, s) for n, s in KEY_SOURCES if n != name]
    names = [n for n, _ in KEY_SOURCES]
    index = names.index(before) if before in names else len(KEY_SOURCES)
    KEY_SOURCES.insert(index, (name, source))


def resolve_key(request: KeyRequest) -> BackupKey:
    """The key for the repository in ``request``, from the first source that has one."""
    for _name, source in KEY_SOURCES:
        key = source(request)
        if key is not None:
            request.source = _name
            return key
    raise UsageError(
        "no key for this repository",
        hint=f"pass --key-file PATH, set {ENV_KEY}, or run on a terminal to type the 64-digit key",
    )


__all__ = ["ENV_KEY", "KEY_SOURCES", "WRONG_KEY_HINTS", "KeyRequest", "KeySource", "from_device",
           "from_environment", "from_key_file", "from_prompt", "register_key_source",
           "resolve_key"]
