"""The one exception tree of Strongroom.

Every error a user can meet is a :class:`StrongroomError`.  Each class's
docstring is its user-facing message (first line), ``hint`` is advice fit for
any app's UI (it never names a CLI flag, command or environment variable: the
CLI adds those in ``cli/errors.py``), and ``exit_code`` is the process exit
status the CLI returns (documented in the README and ``docs/spec/cli.md``).
Typed fields say what the error is about, so an app need not parse messages:
``object`` (the stored object, e.g. ``data/ab/…``), ``path`` (a local file),
``location`` (the repository), ``reason`` (a short code, e.g. ``access-denied``),
``attempts_left``; :meth:`StrongroomError.to_dict` gives all of them::

    StrongroomError                                  exit 1
    ├── UsageError            bad arguments / config                 exit 2
    │   ├── LocalSecretsUnsafe  device key/state directory not private exit 2
    │   ├── InvalidAccountId  account id breaks the rule (vault §7.1) exit 2
    │   └── AmbiguousChat     a chat name matches several chats       exit 2
    ├── RepositoryError
    │   ├── RepositoryNotFound                                       exit 10
    │   ├── RepositoryExists                                         exit 10
    │   ├── WrongKey          "this key does not open this backup"   exit 11
    │   ├── InvalidKeyFormat  mistyped 64-digit key                  exit 11
    │   ├── DataDamaged       tampering, truncation, missing object  exit 12
    │   ├── FormatError       unparsable object (never retried)      exit 12
    │   ├── RepositoryLocked                                         exit 13
    │   ├── UnsupportedVersion  written by a newer Strongroom        exit 14
    │   ├── SnapshotNotFound                                         exit 10
    │   │   └── PathNotFound  path or pattern not in the snapshot    exit 10
    │   ├── ChatNotFound      no chat of the snapshot matches          exit 10
    │   └── RollbackDetected  provider hides snapshots / old list     exit 17
    ├── StorageError                                                 exit 15
    │   ├── ObjectNotFound
    │   ├── TransientStorageError   (the retry wrapper may retry)
    │   └── PermanentStorageError
    ├── LocalWriteError       full disk / unwritable target          exit 16
    ├── VaultError                                                   exit 20
    │   ├── InvalidLogin      wrong password OR unknown account      exit 21
    │   ├── AttemptsExhausted record destroyed after the limit       exit 22
    │   ├── VaultUnreachable                                         exit 23
    │   │   └── RealmsUnavailable  fewer than k realms usable (realms)  exit 23
    │   ├── VaultProtocolError malformed message / pinned key mismatch exit 24
    │   │   └── RealmNotRegistered  a realm holds no record (realms)    exit 24
    │   ├── VaultAuthError    bad or foreign account token           exit 25
    │   ├── VaultStoreError   vault's database failed (server side)  exit 20
    │   └── BackupHeadConflict  backup head advanced by someone else exit 20
    │   (VaultSessionInvalid < VaultProtocolError: stale/replayed KE3)
    ├── ProtocolError         OPAQUE/OPRF message rejected           exit 24
    │   └── ServerKeyMismatch  vault key is not the pinned one        exit 24
    ├── Cancelled             the caller's Cancel token was set      exit 130
    └── InternalError         a bug; the CLI shows a traceback       exit 70

Warnings that do not stop a backup (a source file vanished or unreadable)
are not exceptions: they are listed in the backup summary and give exit 3.

Rules: third-party exceptions are translated only at the boundary modules
(``storage/``, ``crypto/``, ``vault/`` clients) with ``raise X(...) from exc``.
No message ever contains a secret (key, password, token, plaintext).
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_PARTIAL = 3  # backup finished but some source files could not be read


class StrongroomError(Exception):
    """Strongroom failed."""

    exit_code = 1
    hint: str | None = None

    def __init__(self, message: str | None = None, *, hint: str | None = None,
                 **fields: Any) -> None:
        if message is None:
            message = (self.__doc__ or type(self).__name__).strip().splitlines()[0]
        super().__init__(message)
        if hint is not None:
            self.hint = hint
        # Typed fields: declared (with their types) on the class, listed in ``_fields``.
        for name, value in fields.items():
            if name not in self._fields:
                raise TypeError(f"{type(self).__name__} has no field {name!r}")
            setattr(self, name, value)

    @property
    def message(self) -> str:
        """The message (first argument), without the hint."""
        return str(self.args[0]) if self.args else ""

    #: Typed fields set by subclasses (listed by :meth:`to_dict`).
    _fields: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """The error as a JSON-safe dict: type, message, hint, exit code and typed fields."""
        doc: dict[str, object] = {"type": type(self).__name__, "message": self.message,
                                  "hint": self.hint, "exit_code": self.exit_code}
        for name in self._fields:
            doc[name] = getattr(self, name, None)
        return doc


class UsageError(StrongroomError):
    """Invalid arguments or configuration."""

    exit_code = 2
    _fields = ("reason",)

    #: A short machine-readable cause (``not-installed``, ``foreign-owner``, ...), or None.
    reason: str | None = None


class LocalSecretsUnsafe(UsageError):
    """A local directory that holds Strongroom's secrets could be changed by someone else."""

    exit_code = 2


class AmbiguousChat(UsageError):
    """More than one chat matches that name."""

    exit_code = 2

    def __init__(self, message: str | None = None, *, candidates: list[str] | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.candidates = list(candidates or [])


class InvalidAccountId(UsageError):
    """That is not a valid account id."""

    exit_code = 2


class RepositoryError(StrongroomError):
    """The repository cannot be used."""


class _AtLocation(RepositoryError):
    _fields = ("location",)

    #: The repository location (as the backend names it; never a credential).
    location: str | None = None


class RepositoryNotFound(_AtLocation):
    """No Strongroom repository exists at this location."""

    exit_code = 10
    hint = "check the repository location, or create a repository there"


class RepositoryExists(_AtLocation):
    """A repository already exists at this location."""

    exit_code = 10


class SnapshotNotFound(RepositoryError):
    """No such snapshot."""

    exit_code = 10
    hint = "list the snapshots to see which exist"
    _fields = ("ref",)

    #: The snapshot reference that matched nothing (or more than one snapshot).
    ref: str | None = None


class PathNotFound(SnapshotNotFound):
    """That path is not in the snapshot."""

    exit_code = 10
    hint = "list the snapshot's files first"


class ChatNotFound(RepositoryError):
    """No chat of the snapshot matches that name."""

    exit_code = 10


class WrongKey(RepositoryError):
    """This key does not open this backup."""

    exit_code = 11
    hint = "check that you typed the 64-digit key of this backup, not another one"


class InvalidKeyFormat(RepositoryError):
    """That is not a valid 64-digit key."""

    exit_code = 11
    hint = "a key is 64 digits 0-9 and a-f, in 16 groups of 4; spaces and dashes are ignored"


class DataDamaged(RepositoryError):
    """The backup data is damaged or has been tampered with."""

    exit_code = 12
    hint = "a check that reads all data names the damaged objects and the files affected"
    _fields = ("object", "path")

    #: The stored object that is damaged or missing (``data/…``, ``index/…``), if known.
    object: str | None = None
    #: The snapshot path of a file affected, if known.
    path: str | None = None


class FormatError(DataDamaged):
    """A stored object could not be parsed."""

    exit_code = 12


class RepositoryLocked(RepositoryError):
    """The repository is locked by another operation."""

    exit_code = 13
    hint = "wait for the other operation to finish; a lock older than its expiry is removed automatically"


class UnsupportedVersion(RepositoryError):
    """This repository was written by a newer version of Strongroom."""

    exit_code = 14
    hint = "upgrade Strongroom to read it; nothing was changed"


class RollbackDetected(RepositoryError):
    """The storage provider is hiding snapshots or serving an older snapshot list."""

    exit_code = 17
    hint = ("the vault's backup head proves newer or more snapshots existed; do not trust "
            "this listing, and ask the storage provider (or restore from another copy)")


class StorageError(StrongroomError):
    """The storage provider failed."""

    exit_code = 15
    _fields = ("object", "location", "reason")

    #: The object name the request was about, if any.
    object: str | None = None
    #: The backend's location (never a credential).
    location: str | None = None
    #: A short machine-readable cause: ``access-denied``, ``no-credentials``,
    #: ``wrong-region``, ``no-bucket``, ``not-installed``, ``network``, or None.
    reason: str | None = None


class ObjectNotFound(StorageError):
    """The object does not exist in storage."""


class TransientStorageError(StorageError):
    """The storage provider had a temporary failure."""

    hint = "check the network and try again; nothing was lost"


class PermanentStorageError(StorageError):
    """The storage provider refused the request."""


class LocalWriteError(StrongroomError):
    """Could not write to the local disk."""

    exit_code = 16
    hint = "free some space or choose another target folder; files already restored are kept"
    _fields = ("path",)

    #: The local path that could not be written, if known.
    path: str | None = None


class VaultError(StrongroomError):
    """The Backup Key Vault failed."""

    exit_code = 20


class InvalidLogin(VaultError):
    """Wrong password."""

    exit_code = 21
    _fields = ("attempts_left",)

    def __init__(self, message: str | None = None, *, hint: str | None = None,
                 attempts_left: int | None = None) -> None:
        super().__init__(message, hint=hint)
        #: Guesses the vault still allows after this one (None when the vault did not say).
        self.attempts_left: int | None = attempts_left


class AttemptsExhausted(VaultError):
    """Too many wrong passwords: the vault has permanently destroyed this backup key."""

    exit_code = 22
    hint = "only the 64-digit key can open this backup now, if you kept one"
    _fields = ("attempts_left",)
    #: Always 0: no guess is left (a typed field, like ``InvalidLogin.attempts_left``).
    attempts_left: int = 0


class VaultUnreachable(VaultError):
    """The Backup Key Vault cannot be reached."""

    exit_code = 23
    hint = "check the vault address and the network connection, then try again; no attempt was used"


class VaultProtocolError(VaultError):
    """The Backup Key Vault sent an invalid answer."""

    exit_code = 24


class VaultAuthError(VaultError):
    """The vault did not accept this account's credentials."""

    exit_code = 25
    hint = "check this account's vault token"


class VaultSessionInvalid(VaultProtocolError):
    """This login session expired or was already used."""

    exit_code = 24
    hint = "start the login again; no attempt was used by this answer"


class VaultStoreError(VaultError):
    """The vault's record store failed; the outcome of the last change is unknown."""

    exit_code = 20
    hint = "try again later; a guess that may have been counted stays counted"


class BackupHeadConflict(VaultError):
    """Another device advanced the vault's backup head at the same time."""

    exit_code = 20
    hint = "try again; nothing was lost"
    _fields = ("current",)
    #: The counter the vault holds now (set by the vault client).
    current: int | None = None


class RealmNotRegistered(VaultProtocolError):
    """This realm holds no record for this backup (realms.md §5: 404 ``not_registered``)."""

    exit_code = 24
    hint = "the backup's realm set may have changed; open it with the 64-digit key"


class RealmsUnavailable(VaultUnreachable):
    """Fewer realms than the threshold gave a usable answer (realms.md §4.2)."""

    exit_code = 23
    hint = "try again when more realms are reachable; no further attempt was spent"
    _fields = ("failures",)
    #: One line per realm left out: its URL and why (never a secret).
    failures: list[str] | None = None


class ProtocolError(StrongroomError):
    """An OPAQUE protocol message was invalid."""

    exit_code = 24


class ServerKeyMismatch(ProtocolError):
    """The vault's public key is not the one this client pinned."""

    exit_code = 24
    hint = "this is not the vault the password was registered with; check the vault address"


class Cancelled(StrongroomError):
    """Cancelled; the last complete snapshot is intact."""

    exit_code = 130
    _fields = ("reason",)

    #: The text the app gave to ``Cancel.cancel`` (empty if none).
    reason: str = ""


class InternalError(StrongroomError):
    """Internal error (a bug in Strongroom)."""

    exit_code = 70


__all__ = [
    "EXIT_OK",
    "EXIT_PARTIAL",
    "AttemptsExhausted",
    "BackupHeadConflict",
    "Cancelled",
    "DataDamaged",
    "FormatError",
    "InternalError",
    "InvalidAccountId",
    "InvalidKeyFormat",
    "InvalidLogin",
    "LocalSecretsUnsafe",
    "LocalWriteError",
    "ObjectNotFound",
    "PathNotFound",
    "PermanentStorageError",
    "ProtocolError",
    "RealmNotRegistered",
    "RealmsUnavailable",
    "RepositoryError",
    "RepositoryExists",
    "RepositoryLocked",
    "RepositoryNotFound",
    "RollbackDetected",
    "ServerKeyMismatch",
    "SnapshotNotFound",
    "StorageError",
    "StrongroomError",
    "TransientStorageError",
    "UnsupportedVersion",
    "UsageError",
    "VaultAuthError",
    "VaultError",
    "VaultProtocolError",
    "VaultSessionInvalid",
    "VaultStoreError",
    "VaultUnreachable",
    "WrongKey",
]
