"""Prune removes temporary files of interrupted writes, but only old ones (DEFECT-5)."""

from __future__ import annotations

import os
from pathlib import Path

from repo_helpers import Clock, Rng, make_tree, restored_root, tree_state

from strongroom import BackupKey, Repository
from strongroom.repo.maintenance import STALE_TEMP_AGE
from strongroom.storage import local
from strongroom.storage.local import LocalBackend
from strongroom.storage.readahead import ReadAheadBackend
from strongroom.storage.retry import RetryBackend


def _temp(folder: Path, name: str, mtime: float) -> Path:
    path = folder / f"{local._TEMP_MARK}{name}#{'ab' * 16}"
    path.write_bytes(os.urandom(1000))
    os.utime(path, (mtime, mtime))
    return path


def test_prune_removes_only_stale_temporary_files(tmp_path: Path, key: BackupKey) -> None:
    root = tmp_path / "repo"
    clock = Clock()
    # Wrapped as the registry wraps it: the hook is found through ``inner``.
    backend = ReadAheadBackend(RetryBackend(LocalBackend(root, create=True)))
    repo = Repository.create(backend, key, clock=clock, rng=Rng(3))
    tree = make_tree(tmp_path / "src")
    snap = repo.backup([tree]).snapshot_id
    pack_dir = next(p for p in (root / "data").iterdir() if p.is_dir())
    # Ages by the repository's clock, not the wall clock: time is a parameter.
    now = clock.now  # prune reads the clock only a few more times (1 s per reading)
    stale = _temp(pack_dir, "0000000000000001", now - STALE_TEMP_AGE - 60)
    stale_lock = _temp(root / "locks", "0000000000000002", now - 3 * STALE_TEMP_AGE)
    young = _temp(pack_dir, "0000000000000003", now - STALE_TEMP_AGE + 600)
    repo.prune()
    assert not stale.exists() and not stale_lock.exists()
    assert young.exists()  # possibly a write still in flight
    # Nothing else was touched: the snapshot restores intact.
    repo.restore(snap, tmp_path / "out")
    assert tree_state(restored_root(tmp_path / "out", tree)) == tree_state(tree)
