"""Source files that vanish, cannot be read, or change during a backup."""

from __future__ import annotations

import os
from pathlib import Path

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
