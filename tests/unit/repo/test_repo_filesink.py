"""FileSink: restored files are created (exclusively, relative to a directory) by their
first write or by finish, and given length, mode and mtime on the open file."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.repo.restore import FileSink
from strongroom.repo.target import BLOCK, data_runs


@pytest.fixture
def dir_fd(tmp_path: Path) -> Iterator[int]:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield fd
    finally:
        os.close(fd)


def test_nothing_exists_until_the_first_write(tmp_path: Path, dir_fd: int) -> None:
    path = tmp_path / "f"
    sink = FileSink(dir_fd, "f")
    assert not path.exists()
    sink.pwrite(b"abc", 0)
    assert path.exists()
    sink.finish(3, 0o640, 1_000_000_007)
    assert path.read_bytes() == b"abc"
    st = path.stat()
    assert (st.st_mode & 0o777, st.st_mtime_ns) == (0o640, 1_000_000_007)


def test_finish_without_writes_creates_the_file_with_its_length(tmp_path: Path,
                                                                 dir_fd: int) -> None:
    sink = FileSink(dir_fd, "empty")
    sink.finish(0, 0o600, 0)
    sink.close()  # idempotent after finish
    assert (tmp_path / "empty").read_bytes() == b""
    hole = FileSink(dir_fd, "hole")
    hole.pwrite(b"x", 0)
    hole.finish(1 << 24, 0o600, 0)  # a zero tail is a hole, not written zeros
    st = (tmp_path / "hole").stat()
    assert st.st_size == 1 << 24 and st.st_blocks * 512 < 1 << 20


def test_threads_fill_distinct_ranges(tmp_path: Path, dir_fd: int) -> None:
    sink = FileSink(dir_fd, "f")
    pieces = [bytes([i]) * 1000 for i in range(16)]
    threads = [threading.Thread(target=sink.pwrite, args=(p, i * 1000))
               for i, p in enumerate(pieces)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sink.finish(16_000, 0o600, 0)
    assert (tmp_path / "f").read_bytes() == b"".join(pieces)


def test_write_after_finish_is_refused(dir_fd: int) -> None:
    sink = FileSink(dir_fd, "f")
    sink.finish(0, 0o600, 0)
    with pytest.raises(ValueError):
        sink.pwrite(b"x", 0)
    with pytest.raises(ValueError):
        sink.finish(0, 0o600, 0)


@pytest.mark.parametrize("planted", ["link", "file"])
def test_an_existing_name_is_never_opened(tmp_path: Path, dir_fd: int, planted: str) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"mine")
    if planted == "link":
        (tmp_path / "f").symlink_to(outside)
    else:
        (tmp_path / "f").write_bytes(b"mine")
    sink = FileSink(dir_fd, "f")
    with pytest.raises(FileExistsError):
        sink.pwrite(b"evil", 0)
    with pytest.raises(FileExistsError):
        sink.finish(4, 0o777, 0)
    assert outside.read_bytes() == b"mine"
    assert outside.stat().st_mode & 0o777 != 0o777


def test_data_runs_skip_exactly_the_aligned_zero_blocks() -> None:
    rnd = random.Random(5)
    for _ in range(300):
        n = rnd.randrange(0, 5 * BLOCK)
        data = bytearray(rnd.randbytes(n)) if rnd.random() < 0.5 else bytearray(n)
        for _ in range(rnd.randrange(4)):
            a = rnd.randrange(n + 1)
            b = min(n, a + rnd.randrange(3 * BLOCK))
            data[a:b] = bytes([0 if rnd.random() < 0.6 else 7]) * (b - a)
        off = rnd.randrange(3 * BLOCK)
        written = bytearray(n)
        for s, e in data_runs(bytes(data), off):
            written[s:e] = b"\1" * (e - s)
        for b in range((-off) % BLOCK, n - BLOCK + 1, BLOCK):  # each aligned block
            zero = data[b : b + BLOCK] == bytes(BLOCK)
            assert any(written[b : b + BLOCK]) != zero
        head, tail = (-off) % BLOCK, (n + off) // BLOCK * BLOCK - off
        assert all(written[:min(head, n)]) and all(written[max(tail, head):])


def test_restore_writes_large_pieces_from_their_frames_and_copies_small_ones(
        tmp_path: Path) -> None:
    # Written without a joined copy: a piece that is most of its frame is handed to
    # the sink as a view of the frame; a piece under half its frame is a copy, so
    # queued writes never hold much more than their own bytes.
    from repo_helpers import Clock, Rng, SpyBackend, restored_root

    from strongroom import BackupKey, Repository

    rnd = random.Random(11)
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(rnd.randbytes(3 * 1024 * 1024))  # whole frames
    for i in range(40):  # small files sharing frames
        (src / f"s{i}.txt").write_bytes(rnd.randbytes(rnd.randrange(1, 3000)))
    repo = Repository.create(SpyBackend(), BackupKey.from_bytes(bytes(range(32))),
                             clock=Clock(), rng=Rng(7))
    repo.backup([src])
    seen: list[str] = []
    lock = threading.Lock()

    class Recording(FileSink):
        def pwrite(self, data: bytes | memoryview, offset: int) -> int:
            if isinstance(data, memoryview):  # raised here, the restore fails
                assert 2 * len(data) >= len(data.obj)  # type: ignore[arg-type]
            with lock:
                seen.append(type(data).__name__)
            return super().pwrite(data, offset)

    repo._engine._test_only_open_for_write = Recording
    out = tmp_path / "out"
    repo.restore("latest", out)
    root = restored_root(out, src)
    for p in src.iterdir():
        assert (root / p.name).read_bytes() == p.read_bytes()
    assert set(seen) == {"memoryview", "bytes"}, set(seen)
