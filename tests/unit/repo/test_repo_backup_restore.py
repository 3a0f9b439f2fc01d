"""Backup then restore gives back the same tree, byte for byte, with modes and times."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from repo_helpers import Clock, Rng, SpyBackend, restored_root, tree_state

from strongroom import BackupKey, Repository
from strongroom.errors import RepositoryExists, RepositoryNotFound, SnapshotNotFound
from strongroom.storage.memory import MemoryBackend


def test_round_trip_is_identical(repo: Repository, tree: Path, tmp_path: Path) -> None:
    summary = repo.backup([tree])
    assert summary.warnings == []
    assert summary.files == 6 and summary.dirs == 5
    res = repo.restore("latest", tmp_path / "out")
    assert res.damaged == [] and res.files == 6
    assert tree_state(restored_root(tmp_path / "out", tree)) == tree_state(tree)


def test_restore_include_selects_a_subtree(repo: Repository, tree: Path, tmp_path: Path) -> None:
    repo.backup([tree])
    inc = os.path.abspath(tree / "chats" / "media")
    res = repo.restore("latest", tmp_path / "out", include=[inc])
    root = restored_root(tmp_path / "out", tree)
    assert res.files == 2
    assert (root / "chats/media/p1.jpg").read_bytes() == (tree / "chats/media/p1.jpg").read_bytes()
    assert not (root / "chats" / "notes.txt").exists()


def test_restore_overwrites_and_leaves_no_temp_files(repo: Repository, tree: Path,
                                                     tmp_path: Path) -> None:
    repo.backup([tree])
    out = tmp_path / "out"
    repo.restore("latest", out)
    root = restored_root(out, tree)
    (root / "chats" / "notes.txt").write_text("changed")
    kept = repo.restore("latest", out)  # the default keeps the newer local file
    assert (root / "chats" / "notes.txt").read_text() == "changed"
    assert (kept.files, kept.replaced) == (0, 0) and kept.skipped > 0
    again = repo.restore("latest", out, overwrite="always")
    assert again.replaced == again.files + 2 > 2  # two symlinks too
    assert tree_state(root) == tree_state(tree)
    assert not [p for p in out.rglob("*") if "strongroom-" in p.name]


def test_snapshots_and_find(repo: Repository, tree: Path) -> None:
    a = repo.backup([tree], hostname="phone")
    b = repo.backup([tree], hostname="phone")
    snaps = repo.snapshots()
    assert [s.id for s in snaps] == [a.snapshot_id, b.snapshot_id]
    assert snaps[1].parent == a.snapshot_id and snaps[0].hostname == "phone"
    assert repo.find_snapshot("latest").id == b.snapshot_id
    assert repo.find_snapshot(a.snapshot_id[:8]).id == a.snapshot_id
    with pytest.raises(SnapshotNotFound):
        repo.find_snapshot("ffffffffffff")
    assert b.files_unchanged == 6 and b.blobs_added <= 1


def test_open_create_and_public_config(backend: SpyBackend, key: BackupKey) -> None:
    with pytest.raises(RepositoryNotFound):
        Repository.open(backend, key)
    with pytest.raises(RepositoryNotFound):
        Repository.public_config(backend)
    repo = Repository.create(backend, key, clock=Clock(), rng=Rng())
    with pytest.raises(RepositoryExists):
        Repository.create(backend, key)
    cfg = Repository.public_config(backend)
    assert cfg["version"] == 2 and cfg["id"] == repo.id
    with Repository.open(backend, key) as again:
        assert again.id == repo.id


def test_no_plaintext_names_or_content_in_storage(tree: Path, key: BackupKey) -> None:
    mem = MemoryBackend()
    repo = Repository.create(mem, key, rng=Rng(3), clock=Clock())
    repo.backup([tree])
    blob = b"".join(mem.get(n) for n in mem.list("") if n != "config")
    for secret in (b"msgstore", b"notes.txt", b"hello\nhello", b"SQLite format 3", b"chats"):
        assert secret not in blob
    assert all(n == "config" or n.split("/")[0] in {"data", "index", "snapshots"}
               for n in mem.list(""))


def test_same_inputs_same_repository_bytes(tree: Path, key: BackupKey) -> None:
    # rng and clock are parameters: two runs with the same seeds store the same bytes.
    stores = []
    for _ in range(2):
        mem = MemoryBackend()
        Repository.create(mem, key, rng=Rng(5), clock=Clock()).backup([tree], hostname="h")
        stores.append({n: mem.get(n) for n in mem.list("")})
    assert stores[0] == stores[1]


def test_backup_of_a_single_file_and_two_sources(repo: Repository, tree: Path,
                                                 tmp_path: Path) -> None:
    other = tmp_path / "other.txt"
    other.write_text("x")
    s = repo.backup([tree / "chats" / "notes.txt", other])
    assert s.files == 2
    repo.restore("latest", tmp_path / "out")
    assert restored_root(tmp_path / "out", other).read_text() == "x"
