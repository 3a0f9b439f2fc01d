"""Strongroom: end-to-end encrypted, incremental chat backups.

The one module an app imports: repositories (:class:`Repository`), keys
(:class:`BackupKey`), storage builders (:func:`storage_s3`,
:func:`storage_rclone`, :func:`storage_local`), cancellation (:class:`Cancel`),
progress (:class:`StatusReporter`, :class:`Status`) and every error class of
:mod:`strongroom.errors`.  The asyncio form is :mod:`strongroom.aio`.
``docs/sdk.md`` documents all of it in one place.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import errors
from .errors import (
    EXIT_OK,
    EXIT_PARTIAL,
    AmbiguousChat,
    AttemptsExhausted,
    BackupHeadConflict,
    Cancelled,
    ChatNotFound,
    DataDamaged,
    FormatError,
    InternalError,
    InvalidAccountId,
    InvalidKeyFormat,
    InvalidLogin,
    LocalSecretsUnsafe,
    LocalWriteError,
    ObjectNotFound,
    PathNotFound,
    PermanentStorageError,
    ProtocolError,
    RealmNotRegistered,
    RealmsUnavailable,
    RepositoryError,
    RepositoryExists,
    RepositoryLocked,
    RepositoryNotFound,
    RollbackDetected,
    ServerKeyMismatch,
    SnapshotNotFound,
    StorageError,
    StrongroomError,
    TransientStorageError,
    UnsupportedVersion,
    UsageError,
    VaultAuthError,
    VaultError,
    VaultProtocolError,
    VaultSessionInvalid,
    VaultStoreError,
    VaultUnreachable,
    WrongKey,
)

if TYPE_CHECKING:
    from .api import (
        BackupKey,
        BackupSummary,
        CheckReport,
        ForgetResult,
        Problem,
        PruneSummary,
        Repository,
        RestoreSummary,
        SnapshotInfo,
    )
    from .cancel import Cancel
    from .progress import NullProgress, Progress, Status, StatusReporter
    from .storage.base import Backend
    from .storage.build import (
        storage_from_location,
        storage_local,
        storage_memory,
        storage_rclone,
        storage_s3,
    )

#: Where each public name lives.  They are imported when first used (PEP 562), so a
#: program that needs one part (the ``strongroom`` command listing a snapshot, say)
#: does not pay for importing the rest: the vault client, S3, rich progress bars.
_LAZY: dict[str, str] = {
    **dict.fromkeys(("BackupKey", "BackupSummary", "CheckReport", "ForgetResult", "Problem",
                     "PruneSummary", "Repository", "RestoreSummary", "SnapshotInfo"), "api"),
    "Cancel": "cancel",
    **dict.fromkeys(("NullProgress", "Progress", "Status", "StatusReporter"), "progress"),
    "Backend": "storage.base",
    **dict.fromkeys(("storage_from_location", "storage_local", "storage_memory",
                     "storage_rclone", "storage_s3"), "storage.build"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__version__ = "0.1.0"

__all__ = [
    "EXIT_OK",
    "EXIT_PARTIAL",
    "AmbiguousChat",
    "AttemptsExhausted",
    "Backend",
    "BackupHeadConflict",
    "BackupKey",
    "BackupSummary",
    "Cancel",
    "Cancelled",
    "ChatNotFound",
    "CheckReport",
    "DataDamaged",
    "ForgetResult",
    "FormatError",
    "InternalError",
    "InvalidAccountId",
    "InvalidKeyFormat",
    "InvalidLogin",
    "LocalSecretsUnsafe",
    "LocalWriteError",
    "NullProgress",
    "ObjectNotFound",
    "PathNotFound",
    "PermanentStorageError",
    "Problem",
    "Progress",
    "ProtocolError",
    "PruneSummary",
    "RealmNotRegistered",
    "RealmsUnavailable",
    "Repository",
    "RepositoryError",
    "RepositoryExists",
    "RepositoryLocked",
    "RepositoryNotFound",
    "RestoreSummary",
    "RollbackDetected",
    "ServerKeyMismatch",
    "SnapshotInfo",
    "SnapshotNotFound",
    "Status",
    "StatusReporter",
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
    "__version__",
    "errors",
    "storage_from_location",
    "storage_local",
    "storage_memory",
    "storage_rclone",
    "storage_s3",
]
