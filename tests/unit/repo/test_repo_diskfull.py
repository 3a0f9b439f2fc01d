"""A full disk during restore: LocalWriteError, finished files kept, no partial file."""

from __future__ import annotations

import errno
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from repo_helpers import restored_root

from strongroom import Repository
from strongroom.errors import LocalWriteError
from strongroom.repo.restore import FileSink


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path | None]:
    """A real 900 KiB tmpfs when we may mount (root), else None.

    Not a skip: under CI=true a skip fails the run, and without mount rights the
    test still runs, with ENOSPC injected through the restore sink instead.
    """
    mnt = tmp_path / "small"
    mnt.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=900k", "tmpfs", str(mnt)],
                              capture_output=True, check=False)
        mounted = done.returncode == 0
    except OSError:  # no mount binary
        mounted = False
    if not mounted:
        yield None
        return
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def _assert_nothing_partial(out: Path, tree: Path) -> None:
    for p in out.rglob("*"):
        assert "strongroom-" not in p.name, f"temporary file left: {p}"
        if p.is_file() and not p.is_symlink():
            rel = p.relative_to(restored_root(out, tree))
            assert p.read_bytes() == (tree / rel).read_bytes(), f"{rel} is incomplete"


def test_full_disk(repo: Repository, tree: Path, small_disk: Path | None,
                   tmp_path: Path) -> None:
    repo.backup([tree])
    target = small_disk
    if target is None:  # no mount rights: the same disk budget, injected
        target = tmp_path / "out"
        repo._engine._test_only_open_for_write = _limited_sink(900 * 1024)
    with pytest.raises(LocalWriteError) as exc:
        repo.restore("latest", target)
    assert exc.value.exit_code == 16
    _assert_nothing_partial(target, tree)
    # What was finished before the error is kept.  (Which of two files written at
    # once meets ENOSPC first is up to the writer threads, so the entries that are
    # certainly finished by then are the links, created in order by the caller.)
    assert any(p.is_symlink() for p in target.rglob("*"))


def _limited_sink(budget_bytes: int) -> type[FileSink]:
    """A restore sink class that fails with ENOSPC once ``budget_bytes`` are written."""
    budget = [budget_bytes]
    lock = threading.Lock()

    class Limited(FileSink):
        def pwritev(self, pieces: Sequence[bytes | memoryview], offset: int) -> int:
            with lock:
                budget[0] -= sum(map(len, pieces))
                full = budget[0] < 0
            if full:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().pwritev(pieces, offset)

    return Limited


def test_enospc_injected(repo: Repository, tree: Path, tmp_path: Path) -> None:
    repo.backup([tree])
    repo._engine._test_only_open_for_write = _limited_sink(400_000)
    out = tmp_path / "out"
    with pytest.raises(LocalWriteError) as exc:
        repo.restore("latest", out)
    assert "No space left" in exc.value.message
    _assert_nothing_partial(out, tree)


def test_directory_in_the_way_is_a_local_write_error(repo: Repository, tree: Path,
                                                     tmp_path: Path) -> None:
    repo.backup([tree])
    out = tmp_path / "out"
    blocker = restored_root(out, tree) / "chats" / "notes.txt"
    blocker.mkdir(parents=True)
    (blocker / "keep").write_text("mine")
    with pytest.raises(LocalWriteError) as exc:
        repo.restore("latest", out)
    assert "notes.txt" in exc.value.message
    assert (blocker / "keep").read_text() == "mine"  # nothing of the user's is lost
    assert not [p for p in out.rglob("*") if "strongroom-" in p.name]
