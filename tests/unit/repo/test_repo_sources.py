"""Source files that vanish, cannot be read, or change during a backup."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from repo_helpers import restored_root

from strongroom import Repository
from strongroom.progress import RecordingProgress


def test_vanished_file_is_warned_and_backup_continues(repo: Repository, tree: Path,
                                                      tmp_path: Path) -> None:
    victim = tree / "chats" / "blob.bin"

    def before_read(path: Path) -> None:
        if path == victim:
            victim.unlink()  # deleted between the directory scan and the read

    repo._engine._test_only_before_read = before_read
    progress = RecordingProgress()
    summary = repo.backup([tree], progress=progress)
    assert len(summary.warnings) == 1
    assert str(victim) in summary.warnings[0] and "vanished" in summary.warnings[0]
    # (make_tree's msgstore.db has no chat schema: that is a chat warning, listed apart.)
    assert [w for w in progress.warnings if not w.startswith("chats: ")] == summary.warnings
    assert summary.files == 5
    repo.restore("latest", tmp_path / "out")
    root = restored_root(tmp_path / "out", tree)
    assert (root / "chats" / "notes.txt").read_text() == (tree / "chats/notes.txt").read_text()
    assert not (root / "chats" / "blob.bin").exists()


def test_unreadable_file_is_warned_and_backup_continues(repo: Repository, tree: Path) -> None:
    # Tests run as root, where chmod 000 does not stop reads; replacing the file by a
    # directory between scan and read makes open() fail for real (EISDIR).
    victim = tree / "chats" / "notes.txt"

    def before_read(path: Path) -> None:
        if path == victim:
            victim.unlink()
            victim.mkdir()

    repo._engine._test_only_before_read = before_read
    summary = repo.backup([tree])
    assert len(summary.warnings) == 1 and "unreadable" in summary.warnings[0]
    assert summary.files == 5


def test_unreadable_file_for_non_root(repo: Repository, tree: Path) -> None:
    victim = tree / "chats" / "notes.txt"
    os.chmod(victim, 0)
    if os.geteuid() == 0:
        # root reads it anyway: nothing to warn about, and the backup stores it.
        assert repo.backup([tree]).warnings == []
    else:  # pragma: no cover - CI runs as root
        assert "unreadable" in repo.backup([tree]).warnings[0]


def test_missing_source_is_a_warning(repo: Repository, tree: Path, tmp_path: Path) -> None:
    summary = repo.backup([tree, tmp_path / "nope"])
    assert len(summary.warnings) == 1 and "nope" in summary.warnings[0]
    assert summary.files == 6


def test_file_changing_while_read_is_noted(repo: Repository, tree: Path,
                                          tmp_path: Path) -> None:
    victim = tree / "chats" / "notes.txt"
    before = victim.read_bytes()

    def writer(path: Path) -> None:
        if path == victim:  # another process appends while the backup reads
            with open(victim, "ab") as f:
                f.write(b"late\n")

    progress = RecordingProgress()
    repo._engine._test_only_after_read = writer
    summary = repo.backup([tree], progress=progress)
    # Not a warning (exit 0): the file was stored as read, and it is reported.
    assert summary.warnings == [] and summary.changed == [str(victim)]
    assert any("changed while" in w for w in progress.warnings)
    repo.restore("latest", tmp_path / "out")
    assert (restored_root(tmp_path / "out", tree) / "chats/notes.txt").read_bytes() == before
    # The next backup stores the new content.
    repo._engine._test_only_after_read = None
    repo.backup([tree])
    repo.restore("latest", tmp_path / "out2")
    assert (restored_root(tmp_path / "out2", tree) / "chats/notes.txt").read_bytes() == (
        before + b"late\n")


def test_special_files_are_skipped_with_a_warning(repo: Repository, tree: Path) -> None:
    os.mkfifo(tree / "chats" / "pipe")
    summary = repo.backup([tree])
    assert len(summary.warnings) == 1 and "pipe" in summary.warnings[0]
    assert summary.files == 6  # everything else was stored


def _stored_chunks(repo: Repository) -> dict[str, bytes]:
    doc = repo._engine.snapshot_docs()[-1]
    return {e.path.rsplit("/", 1)[-1]: e.chunks.raw for e in repo._engine.entries(doc)
            if e.kind == 1 and e.size}


def test_small_files_read_whole_get_the_chunks_a_streamed_read_cuts(
        repo: Repository, tmp_path: Path) -> None:
    # Files up to 1 MiB are read with one read to EOF (backup._small); what they are cut
    # into must not depend on that: the same chunker over the file as a stream.
    import random

    from strongroom.repo import chunker

    rnd = random.Random(3)
    src = tmp_path / "src"
    src.mkdir()
    page = 512
    files = {
        "tiny.txt": b"hello\n",
        "text.txt": b"".join(rnd.choice([b"hi ", b"ok ", b"see you\n"]) for _ in range(90000)),
        "photo.jpg": b"\xff\xd8\xff" + rnd.randbytes(700_000),
        # A small SQLite file: cut on its 512-byte pages, whole or streamed.
        "tiny.db": b"SQLite format 3\x00" + page.to_bytes(2, "big") + rnd.randbytes(8 * page - 18),
        "big.bin": rnd.randbytes(3 * 1024 * 1024),  # above the limit: streamed
        "edge.bin": rnd.randbytes(1024 * 1024),      # exactly the limit: read whole
    }
    for name, data in files.items():
        (src / name).write_bytes(data)
    repo.backup([src])
    stored = _stored_chunks(repo)
    params, blob_id = repo._engine.config.chunker, repo._engine.blob_id
    for name, data in files.items():
        with open(src / name, "rb", buffering=0) as f:
            want = b"".join(blob_id(c) for c, _ in chunker.chunks(f, name, len(data), params))
        assert stored[name] == want, name
    assert len(stored["tiny.db"]) == 8 * 32  # one chunk per page
    out = tmp_path / "out"
    repo.restore("latest", out)
    root = restored_root(out, src)
    assert {n: (root / n).read_bytes() for n in files} == files


def test_a_small_file_that_grows_while_read_is_streamed_and_flagged(
        repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A writer appends 2 MiB between the backup's fstat and its first read: the
    # read-whole path must not hold the file in memory past its limit; the file is
    # stored streamed, as read, and reported as changed while it was read.
    from strongroom.repo import backup as backup_mod

    src = tmp_path / "src"
    src.mkdir()
    victim = src / "growing.log"
    victim.write_bytes(b"x" * 1000)
    real_read, grown = os.read, []

    def read(fd: int, n: int) -> bytes:
        if not grown and os.readlink(f"/proc/self/fd/{fd}") == str(victim):
            grown.append(n)
            with open(victim, "ab") as f:
                f.write(os.urandom(2 * 1024 * 1024))
        return real_read(fd, n)

    monkeypatch.setattr(backup_mod.os, "read", read)
    summary = repo.backup([src])
    monkeypatch.undo()
    assert grown and summary.changed == [str(victim)]
    out = tmp_path / "out"
    repo.restore("latest", out)
    restored = (restored_root(out, src) / "growing.log").read_bytes()
    assert restored == victim.read_bytes() and len(restored) > 2 * 1024 * 1024
