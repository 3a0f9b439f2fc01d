"""Strongroom: end-to-end encrypted, incremental chat backups."""

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
from .progress import NullProgress, Progress

__version__ = "0.1.0"

__all__ = [
    "BackupKey",
    "BackupSummary",
    "CheckReport",
    "ForgetResult",
    "NullProgress",
    "Problem",
    "Progress",
    "PruneSummary",
    "Repository",
    "RestoreSummary",
    "SnapshotInfo",
    "__version__",
]
