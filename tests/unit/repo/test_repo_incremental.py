"""Incremental backups: unchanged files are not read, a changed SQLite db costs a few pages."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from repo_helpers import SpyBackend, make_db, restored_root

from strongroom import Repository


def test_changed_pages_of_a_sqlite_db_are_all_that_is_stored(
        repo: Repository, backend: SpyBackend, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    db_path = src / "msgstore.db"
    make_db(db_path, rows=20000)
    size = db_path.stat().st_size
    assert size > 1_500_000
    repo.backup([src])

    db = sqlite3.connect(db_path)
    db.executemany("update m set status = 2 where id = ?", [(i,) for i in (5, 7000, 19000)])
    db.commit()
    db.close()
    before = backend.put_bytes("data/")
    summary = repo.backup([src])
    added = backend.put_bytes("data/") - before
    # A few 4 KiB pages (changed rows + header page), compressed, in one padded pack:
    # far below the db size and below what 1 MiB content-defined chunks would cost.
    assert summary.blobs_added <= 8
    assert added < 64 * 1024, added
    repo.restore("latest", tmp_path / "out")
    assert (restored_root(tmp_path / "out", src) / "msgstore.db").read_bytes() == \
        db_path.read_bytes()


def test_unchanged_files_are_not_read(repo: Repository, tree: Path) -> None:
    repo.backup([tree])
    (tree / "chats" / "new.txt").write_text("new")
    summary = repo.backup([tree])
    assert summary.files_unchanged == 6 and summary.bytes_read == 3
    assert summary.blobs_added == 2  # the new file and the new file list segment


def test_identical_content_is_stored_once(repo: Repository, backend: SpyBackend,
                                          tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    data = bytes(range(256)) * 4000
    (src / "a.bin").write_bytes(data)
    (src / "b.bin").write_bytes(data)
    summary = repo.backup([src])
    assert summary.bytes_read == 2 * len(data)
    assert backend.put_bytes("data/") < len(data)  # compressible, and stored once
