"""FileSink: restored files are created (exclusively, relative to a directory) by their
first write or by finish, and given length, mode and mtime on the open file."""

from __future__ import annotations

import itertools
import os
import random
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from strongroom.repo.restore import FileSink
from strongroom.repo.target import BLOCK, data_runs

if TYPE_CHECKING:
    from strongroom import Repository


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
        assert data_runs(memoryview(bytes(data)), off) == data_runs(bytes(data), off) \
            == _runs_block_by_block(bytes(data), off)


def _runs_block_by_block(data: bytes, offset: int) -> list[tuple[int, int]]:
    """What ``data_runs`` must give, one aligned block at a time: the longest runs
    between holes (holes, too, as long as they go)."""
    kinds = []  # (start, end, is a hole) of each part: head, every aligned block, tail
    cut = [0, *range((-offset) % BLOCK, len(data) + 1, BLOCK), len(data)]
    for a, b in itertools.pairwise(sorted(set(cut))):
        hole = b - a == BLOCK and (a + offset) % BLOCK == 0 and data[a:b] == bytes(BLOCK)
        if kinds and kinds[-1][2] == hole:
            kinds[-1] = (kinds[-1][0], b, hole)
        else:
            kinds.append((a, b, hole))
    return [(a, b) for a, b, hole in kinds if not hole]


def test_data_runs_of_long_writes_with_few_or_many_zero_blocks() -> None:
    rnd = random.Random(6)
    for zero_share in (0.0, 0.02, 0.5, 1.0):
        for _ in range(20):
            blocks = [bytes(BLOCK) if rnd.random() < zero_share else
                      bytes([0]) + rnd.randbytes(BLOCK - 2) + bytes([rnd.choice([0, 9])])
                      for _ in range(rnd.randrange(1, 80))]
            off = rnd.choice([0, 0, 1, BLOCK - 1, rnd.randrange(BLOCK)])
            data = rnd.randbytes((-off) % BLOCK) + b"".join(blocks) + rnd.randbytes(rnd.randrange(99))
            assert data_runs(data, off) == _runs_block_by_block(data, off)


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
        def pwritev(self, pieces: Sequence[bytes | memoryview], offset: int) -> int:
            for data in pieces:
                if isinstance(data, memoryview):  # raised here, the restore fails
                    assert 2 * len(data) >= len(data.obj)  # type: ignore[arg-type]
                with lock:
                    seen.append(type(data).__name__)
            return super().pwritev(pieces, offset)

    repo._engine._test_only_open_for_write = Recording
    out = tmp_path / "out"
    repo.restore("latest", out)
    root = restored_root(out, src)
    for p in src.iterdir():
        assert (root / p.name).read_bytes() == p.read_bytes()
    assert set(seen) == {"memoryview", "bytes"}, set(seen)


def _files_backed_up(tmp_path: Path, n: int = 60) -> tuple[Repository, Path]:
    from repo_helpers import Clock, Rng, SpyBackend

    from strongroom import BackupKey, Repository

    rnd = random.Random(5)
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    for i in range(n):
        (src / "d" / f"s{i:03d}.txt").write_bytes(rnd.randbytes(rnd.randrange(1, 5000)))
        os.chmod(src / "d" / f"s{i:03d}.txt", 0o600 if i % 2 else 0o644)
    (src / "empty").write_bytes(b"")
    (src / "big.bin").write_bytes(rnd.randbytes(3 * 1024 * 1024))
    repo = Repository.create(SpyBackend(), BackupKey.from_bytes(bytes(range(32))),
                             clock=Clock(), rng=Rng(7))
    repo.backup([src])
    return repo, src


def _same_files(src: Path, root: Path) -> None:
    for p in src.rglob("*"):
        q = root / p.relative_to(src)
        if p.is_file():
            assert q.read_bytes() == p.read_bytes(), q
            sp, sq = p.stat(), q.stat()
            assert (sq.st_mode & 0o7777, sq.st_mtime_ns) == (sp.st_mode & 0o7777, sp.st_mtime_ns), q
    assert not [q for q in root.rglob("*") if q.name.startswith(".strongroom-")]


def test_small_files_are_finished_and_renamed_by_the_writer_after_their_last_write(
        tmp_path: Path) -> None:
    # A small file's writes, its length, mode and mtime, and its rename into place
    # are one writer task, in that order: the caller's thread does none of it.
    from repo_helpers import restored_root

    repo, src = _files_backed_up(tmp_path)
    finished_by: dict[str, str] = {}
    lock = threading.Lock()

    class Recording(FileSink):
        def finish(self, size: int, mode: int, mtime_ns: int) -> None:
            super().finish(size, mode, mtime_ns)
            with lock:
                finished_by[self._name] = threading.current_thread().name

    repo._engine._test_only_open_for_write = Recording
    out = tmp_path / "out"
    summary = repo.restore("latest", out)
    root = restored_root(out, src)
    _same_files(src, root)
    assert summary.files == 62
    assert len(finished_by) == 62
    writers = [t for t in finished_by.values() if t.startswith("strongroom-write")]
    assert len(writers) >= 61, finished_by  # every small and empty file; the big one may be either


def test_a_file_whose_finish_fails_in_a_writer_is_a_local_write_error_and_removed(
        tmp_path: Path) -> None:
    import errno

    from repo_helpers import restored_root

    from strongroom.errors import LocalWriteError

    repo, src = _files_backed_up(tmp_path)
    calls = [0]
    lock = threading.Lock()

    class FailingFifth(FileSink):
        def finish(self, size: int, mode: int, mtime_ns: int) -> None:
            with lock:
                calls[0] += 1
                fail = calls[0] == 5
            if fail:
                super().close()
                raise OSError(errno.EDQUOT, "Disk quota exceeded")
            super().finish(size, mode, mtime_ns)

    repo._engine._test_only_open_for_write = FailingFifth
    out = tmp_path / "out"
    with pytest.raises(LocalWriteError) as exc:
        repo.restore("latest", out)
    assert exc.value.exit_code == 16 and "quota" in exc.value.message
    root = restored_root(out, src)
    # No temporary file is left, and every file that carries its name is complete.
    assert not [q for q in out.rglob("*") if q.name.startswith(".strongroom-")]
    placed = [q for q in root.rglob("*") if q.is_file()]
    assert len(placed) < 62
    for q in placed:
        assert q.read_bytes() == (src / q.relative_to(root)).read_bytes(), q


def test_pieces_are_written_in_few_calls_and_zero_blocks_stay_holes(
        tmp_path: Path, dir_fd: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from strongroom.repo import target

    calls: list[tuple[int, int]] = []  # (buffers, offset) of each os.pwritev
    real = os.pwritev

    def counting(fd: int, bufs: Sequence[memoryview], offset: int) -> int:
        calls.append((len(bufs), offset))
        return real(fd, bufs, offset)

    monkeypatch.setattr(target.os, "pwritev", counting)
    rnd = random.Random(3)
    data = [rnd.randbytes(BLOCK) for _ in range(6)]
    zero = bytes(4 * BLOCK)  # four aligned zero blocks: a hole
    pieces: list[bytes | memoryview] = [data[0], memoryview(data[1] + data[2])[BLOCK:],
                                        data[3], zero, data[4], b"", data[5][:100]]
    sink = FileSink(dir_fd, "f")
    start = 2 * BLOCK
    assert sink.pwritev(pieces, start) == sum(map(len, pieces))
    sink.finish(start + sum(map(len, pieces)), 0o600, 0)
    expect = bytes(start) + b"".join(bytes(p) for p in pieces)
    assert (tmp_path / "f").read_bytes() == expect
    # One call before the hole (three buffers), one after it (two).
    assert calls == [(3, start), (2, start + 7 * BLOCK)]
    st = (tmp_path / "f").stat()
    assert st.st_blocks * 512 <= 6 * BLOCK  # the leading gap and the zero run are holes


def test_a_short_write_is_resumed_and_iov_max_is_respected(
        tmp_path: Path, dir_fd: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from strongroom.repo import target

    sizes: list[int] = []
    real = os.pwritev

    def short(fd: int, bufs: Sequence[memoryview], offset: int) -> int:
        # At most 3 buffers and 10,000 bytes a call, as a signal or a pipe might cut it.
        assert len(bufs) <= 3
        cut: list[memoryview] = []
        room = 10_000
        for b in bufs:
            cut.append(b[:room])
            room -= len(cut[-1])
            if not room:
                break
        sizes.append(sum(map(len, cut)))
        return real(fd, cut, offset)

    monkeypatch.setattr(target, "_IOV_MAX", 3)
    monkeypatch.setattr(target.os, "pwritev", short)
    rnd = random.Random(5)
    pieces = [rnd.randbytes(rnd.randrange(1, 9000)) for _ in range(20)]
    sink = FileSink(dir_fd, "f")
    sink.pwritev(pieces, 0)
    sink.finish(sum(map(len, pieces)), 0o600, 0)
    assert (tmp_path / "f").read_bytes() == b"".join(pieces)
    assert len(sizes) > 20 // 3 and sum(sizes) == sum(map(len, pieces))


def test_a_write_that_makes_no_progress_is_an_error_not_a_loop(
        tmp_path: Path, dir_fd: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from strongroom.repo import target

    monkeypatch.setattr(target.os, "pwritev", lambda fd, bufs, offset: 0)
    sink = FileSink(dir_fd, "f")
    with pytest.raises(OSError, match="no progress"):
        sink.pwritev([b"abc"], 0)
    sink.close()
