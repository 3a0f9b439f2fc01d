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


def test_parent_merge_finds_every_unchanged_file_across_segments(
        repo: Repository, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from strongroom.repo import manifest

    monkeypatch.setattr(manifest, "SEGMENT_TARGET", 200)  # a segment every few records
    src = tmp_path / "src"
    names = ["a", "a-b", "a.b", "a_b", "B", "é", "z", "0", "a b"]
    count = 0
    for d in names:
        for sub in names[:4]:
            (src / d / sub).mkdir(parents=True)
            for f in names[:3]:
                (src / d / sub / f"{f}.txt").write_text(f"{d}/{sub}/{f}")
                count += 1
    first = repo.backup([src])
    assert first.files == count
    doc = repo._engine.find_doc("latest")
    assert len(doc.segments) > 10
    second = repo.backup([src])
    assert second.files_unchanged == count and second.bytes_read == 0
    (src / "a-b" / "a" / "a.txt").write_text("changed")
    third = repo.backup([src])
    assert third.files_unchanged == count - 1 and third.bytes_read == len("changed")
