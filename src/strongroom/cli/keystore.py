"""Where the key K lives on this device between backups, and key files.

The device keeps K so daily backups need no typing: in the OS keyring
(service ``strongroom``, user = repository id) when a usable keyring backend
exists, otherwise in ``<config dir>/keys/<repository id>.key`` with mode 0600
in a 0700 directory (both directories are created 0700 whatever the umask,
and refused when another user could write to them: ``LocalSecretsUnsafe``).  The config dir is ``$STRONGROOM_CONFIG_DIR``, else
``$XDG_CONFIG_HOME/strongroom``, else ``~/.config/strongroom``.
``STRONGROOM_KEYRING=no`` turns the keyring off (tests, shared machines).

Key files (``--key-file``, and the device's own files) hold the 64 digits;
lines starting with ``#`` are comments.  They are written by
:func:`strongroom.securefile.write_secret_file` (a random temporary name,
``O_EXCL|O_NOFOLLOW``, mode 0600, renamed into place): a ``--key-file`` is
never overwritten, never written through a link, never world-readable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from ..crypto.keys import BackupKey
from ..errors import InvalidKeyFormat, LocalWriteError, UsageError
from ..securefile import check_private_dirs, ensure_private_dir, write_secret_file

KEYRING_SERVICE = "strongroom"
ENV_CONFIG_DIR = "STRONGROOM_CONFIG_DIR"
ENV_KEYRING = "STRONGROOM_KEYRING"
_REPO_ID = re.compile(r"^[0-9a-zA-Z_-]{1,128}$")
# keyring backends that mean "there is no keyring here".
_NO_KEYRING = {"keyring.backends.fail.Keyring", "keyring.backends.null.Keyring"}


def read_key_file(path: str | os.PathLike[str]) -> BackupKey:
    """Read a key file; ``UsageError`` if unreadable, ``InvalidKeyFormat`` if not a key."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"key file not found: {path}",
                         hint="check --key-file / STRONGROOM_KEY_FILE") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read key file {path}: {type(exc).__name__}") from None
    digits = " ".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    try:
        return BackupKey.parse(digits)
    except InvalidKeyFormat as exc:
        # Name the file: the user did not type this key and may not know where it came from.
        raise InvalidKeyFormat(f"the key file {path} does not hold a valid key: {exc.message}",
                               hint="a key file holds the 64 digits; lines starting with # "
                                    "are comments") from None


def write_key_file(path: str | os.PathLike[str], key: BackupKey, *, comment: str = "") -> None:
    """Create ``path`` holding ``key`` with mode 0600; refuse if it exists (even as a link)."""
    lines = [f"# {line}" for line in comment.splitlines()] + [key.digits(), ""]
    try:
        write_secret_file(path, "\n".join(lines).encode(), replace=False)
    except FileExistsError:
        raise UsageError(f"key file already exists: {path}",
                         hint="choose a new path; a key file is never overwritten") from None
    except OSError as exc:
        raise LocalWriteError(f"cannot create key file {path}: {exc.strerror}") from None


def config_dir(env: Mapping[str, str]) -> Path:
    """The directory Strongroom keeps device state in."""
    if env.get(ENV_CONFIG_DIR):
        return Path(env[ENV_CONFIG_DIR])
    if env.get("XDG_CONFIG_HOME"):
        return Path(env["XDG_CONFIG_HOME"]) / "strongroom"
    return Path(env.get("HOME") or Path.home()) / ".config" / "strongroom"


def _usable_keyring(env: Mapping[str, str]) -> object | None:
    if env.get(ENV_KEYRING, "").lower() in {"0", "no", "off", "false"}:
        return None
    try:
        import keyring

        backend = keyring.get_keyring()
    except Exception:  # noqa: BLE001 - a broken keyring install means: no keyring
        return None
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    return None if name in _NO_KEYRING else backend


class DeviceKeyStore:
    """The device's keys, by repository id: OS keyring if usable, else key files."""

    def __init__(self, directory: Path, keyring_backend: object | None = None, *,
                 top: Path | None = None) -> None:
        self.directory = directory
        self._keyring = keyring_backend
        # The private directories, outermost first: ``top`` (the config dir) down to ``directory``.
        self._top = top if top is not None else directory

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> DeviceKeyStore:
        """The store the environment points at (config dir, keyring on or off)."""
        return cls(config_dir(env) / "keys", _usable_keyring(env), top=config_dir(env))

    def _check_private(self) -> None:
        """``LocalSecretsUnsafe`` if another local user could change the key files."""
        check_private_dirs(self.directory, top=self._top)

    def path_for(self, repo_id: str) -> Path:
        """The key file for ``repo_id`` (used when there is no keyring)."""
        if not _REPO_ID.match(repo_id):
            raise UsageError("the repository id is not valid")
        return self.directory / f"{repo_id}.key"

    def load(self, repo_id: str) -> BackupKey | None:
        """The stored key of ``repo_id``, or None when this device has none."""
        if self._keyring is not None:
            try:
                text = self._keyring.get_password(KEYRING_SERVICE, repo_id)  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - keyring locked/unavailable: use the file
                text = None
            if text:
                return BackupKey.parse(text)
        path = self.path_for(repo_id)
        if not path.exists():
            return None
        self._check_private()  # a key planted by someone else must not be used
        return read_key_file(path)

    def save(self, repo_id: str, key: BackupKey) -> str:
        """Keep ``key`` for ``repo_id``; return where it went (for the user)."""
        if self._keyring is not None:
            try:
                self._keyring.set_password(KEYRING_SERVICE, repo_id, key.digits())  # type: ignore[attr-defined]
                return f"the system keyring (service '{KEYRING_SERVICE}')"
            except Exception:  # noqa: BLE001, S110 - keyring refused: the file is the fallback
                pass
        path = self.path_for(repo_id)
        try:
            ensure_private_dir(self.directory, top=self._top)
        except OSError as exc:
            raise LocalWriteError(f"cannot create {self.directory}: {exc.strerror}") from None
        if path.exists() and read_key_file(path) == key:
            return str(path)
        # Replaces a stale key of a re-created repository id in one rename.
        text = f"# Strongroom backup key of repository {repo_id}\n{key.digits()}\n"
        try:
            write_secret_file(path, text.encode())
        except OSError as exc:
            raise LocalWriteError(f"cannot write key file {path}: {exc.strerror}") from None
        return str(path)

    def forget(self, repo_id: str) -> bool:
        """Remove the stored key of ``repo_id``; True if there was one."""
        removed = False
        if self._keyring is not None:
            try:
                self._keyring.delete_password(KEYRING_SERVICE, repo_id)  # type: ignore[attr-defined]
                removed = True
            except Exception:  # noqa: BLE001, S110 - not stored there
                pass
        path = self.path_for(repo_id)
        if path.exists():
            path.unlink()
            removed = True
        return removed


__all__ = ["KEYRING_SERVICE", "DeviceKeyStore", "config_dir", "read_key_file", "write_key_file"]
