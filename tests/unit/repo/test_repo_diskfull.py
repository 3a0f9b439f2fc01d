"""A full disk during restore: LocalWriteError, finished files kept, no partial file."""

from __future__ import annotations

import errno
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from repo_helpers import restored_root

from strongroom import Repository
from strongroom.errors import LocalWriteError
from strongroom.repo.restore import FileSink


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 900 KiB tmpfs when we may mount (root); else the test uses an injected ENOSPC."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=900k", "tmpfs", str(mnt)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here; test_enospc_injected covers the logic")
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


def test_full_tmpfs(repo: Repository, tree: Path, small_disk: Path) -> None:
    repo.backup([tree])
    with pytest.raises(LocalWriteError) as exc:
        repo.restore("latest", small_disk)
    assert exc.value.exit_code == 16
    _assert_nothing_partial(small_disk, tree)
    assert any(p.is_file() for p in small_disk.rglob("*"))  # some files were restored


def test_enospc_injected(repo: Repository, tree: Path, tmp_path: Path) -> None:
    repo.backup([tree])
    budget = [400_000]

    lock = threading.Lock()

    class Limited(FileSink):
        def pwrite(self, data: bytes, offset: int) -> int:
            with lock:
                budget[0] -= len(data)
                full = budget[0] < 0
            if full:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().pwrite(data, offset)

    repo._engine._test_only_open_for_write = Limited  # type: ignore[assignment]
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
