"""Strongroom: end-to-end encrypted, incremental chat backups."""

__version__ = "0.1.0"
