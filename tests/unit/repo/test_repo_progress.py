"""Progress moves while one big file is read or written, and adds up to the data."""

from __future__ import annotations

import random
from pathlib import Path

from strongroom import Repository
from strongroom.progress import RecordingProgress

MiB = 1024 * 1024


def _phase(progress: RecordingProgress, task: str) -> list[int]:
    """The ``advance`` amounts of the phase ``task``."""
    out: list[int] = []
    inside = False
    for kind, value in progress.events:
        if kind == "start":
            inside = isinstance(value, tuple) and value[0] == task
        elif kind == "finish":
            inside = False
        elif kind == "advance" and inside:
            out.append(int(value))  # type: ignore[call-overload]
    return out


def test_one_big_file_moves_the_bar_during_backup_and_restore(
        repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    size = 24 * MiB + 12345
    (src / "video.mp4").write_bytes(random.Random(3).randbytes(size))
    (src / "empty.txt").write_bytes(b"")

    backup = RecordingProgress()
    repo.backup([src], progress=backup)
    steps = [n for n in _phase(backup, "backup") if n]
    assert sum(steps) == size
    assert len(steps) >= 3  # not one jump when the file is done

    restore = RecordingProgress()
    repo.restore("latest", tmp_path / "out", progress=restore)
    steps = [n for n in _phase(restore, "restore") if n]
    assert sum(steps) == size
    assert len(steps) >= 3
