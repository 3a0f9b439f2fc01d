"""FileSink: restored files are created by their first write, or by close."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from strongroom.repo.restore import FileSink


def test_nothing_exists_until_the_first_write(tmp_path: Path) -> None:
    path = tmp_path / "f"
    sink = FileSink(path)
    assert not path.exists()
    sink.pwrite(b"abc", 0)
    assert path.exists()
    sink.close()
    assert path.read_bytes() == b"abc"


def test_close_without_writes_creates_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    sink = FileSink(path)
    sink.close()
    sink.close()  # idempotent
    assert path.read_bytes() == b""


def test_threads_fill_distinct_ranges(tmp_path: Path) -> None:
    path = tmp_path / "f"
    sink = FileSink(path)
    pieces = [bytes([i]) * 1000 for i in range(16)]
    threads = [threading.Thread(target=sink.pwrite, args=(p, i * 1000))
               for i, p in enumerate(pieces)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sink.close()
    assert path.read_bytes() == b"".join(pieces)


def test_write_after_close_is_refused(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "f")
    sink.close()
    with pytest.raises(ValueError):
        sink.pwrite(b"x", 0)


def test_an_uncreatable_file_fails_on_write_and_on_close(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "missing-dir" / "f")
    with pytest.raises(FileNotFoundError):
        sink.pwrite(b"x", 0)
    with pytest.raises(FileNotFoundError):
        sink.close()
