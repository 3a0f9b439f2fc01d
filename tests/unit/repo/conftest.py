"""Fixtures for the repository engine tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from repo_helpers import Clock, Rng, SpyBackend, make_tree

from strongroom import BackupKey, Repository


@pytest.fixture
def key() -> BackupKey:
    return BackupKey.from_bytes(bytes(range(32)))


@pytest.fixture
def backend() -> SpyBackend:
    return SpyBackend()


@pytest.fixture
def repo(backend: SpyBackend, key: BackupKey) -> Repository:
    return Repository.create(backend, key, clock=Clock(), rng=Rng(7))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "src")
