"""Local-folder backend behaviour beyond the shared contract: root handling,
temporary files, and how OS errors reach the user."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.errors import ObjectNotFound, PermanentStorageError, RepositoryNotFound
from strongroom.storage.local import LocalBackend


def test_missing_root_is_repository_not_found(tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFound, match="does not exist"):
        LocalBackend(tmp_path / "nope")
    assert not (tmp_path / "nope").exists()


def test_root_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(RepositoryNotFound, match="not a folder"):
        LocalBackend(tmp_path / "file", create=True)


def test_create_makes_nested_root(tmp_path: Path) -> None:
    b = LocalBackend(tmp_path / "a" / "b", create=True)
    assert (tmp_path / "a" / "b").is_dir()
    b.put("data/00/x", b"1")
    assert (tmp_path / "a" / "b" / "data" / "00" / "x").read_bytes() == b"1"


def test_no_temporary_file_left_or_listed(tmp_path: Path) -> None:
    b = LocalBackend(tmp_path, create=True)
    b.put("data/00/x", b"1")
    assert b.put_if_absent("data/00/y", b"2") is True
    assert b.put_if_absent("data/00/y", b"3") is False
    assert sorted(os.listdir(tmp_path / "data" / "00")) == ["x", "y"]
    # A temporary file a crash left behind is neither listed nor readable as an object.
    stale = tmp_path / "data" / "00" / ".tmp#0123#z"
    stale.write_bytes(b"partial")
    assert sorted(b.list()) == ["data/00/x", "data/00/y"]
    os.utime(stale, (1000, 1000))
    assert b.remove_stale_temp_files(max_age=3600) == 1
    assert not stale.exists()


def test_foreign_files_are_not_objects(tmp_path: Path) -> None:
    b = LocalBackend(tmp_path, create=True)
    (tmp_path / "has space").write_bytes(b"x")
    (tmp_path / "dir").mkdir()
    assert list(b.list()) == []
    with pytest.raises(ObjectNotFound):
        b.get("dir")
    with pytest.raises(ObjectNotFound):
        b.stat("dir")
    b.delete("dir")  # a folder is never an object: deleting it is a no-op
    assert (tmp_path / "dir").is_dir()


def test_object_where_folder_needed_is_permanent_and_named(tmp_path: Path) -> None:
    b = LocalBackend(tmp_path, create=True)
    b.put("a", b"file")
    with pytest.raises(PermanentStorageError, match=r"cannot write a/b") as info:
        b.put("a/b", b"x")
    assert str(tmp_path) in str(info.value)
    with pytest.raises(ObjectNotFound):
        b.get("a/b")


@contextlib.contextmanager
def _tmpfs(path: Path, options: str) -> Iterator[Path]:
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_disk_is_permanent_names_object_and_leaves_nothing(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "small", "size=256k") as root:
        b = LocalBackend(root)
        b.put("config", b"c" * 100)
        with pytest.raises(PermanentStorageError, match="data/00/big: no space left"):
            b.put("data/00/big", b"x" * 512 * 1024)
        with pytest.raises(PermanentStorageError, match="no space left"):
            b.put_if_absent("data/00/big", b"x" * 512 * 1024)
        assert os.listdir(root / "data" / "00") == []  # temporary file removed
        assert b.get("config") == b"c" * 100           # nothing lost


def test_read_only_file_system_is_permanent(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "ro", "size=64k,ro") as root:
        b = LocalBackend(root)
        with pytest.raises(PermanentStorageError, match="config: the file system is read-only"):
            b.put("config", b"x")
        with pytest.raises(ObjectNotFound):
            b.get("config")


def test_unfsynced_mode_still_atomic(tmp_path: Path) -> None:
    b = LocalBackend(tmp_path, create=True, fsync=False)
    b.put("x", b"1")
    b.put("x", b"2")
    assert b.get("x") == b"2"
    assert b.put_if_absent("x", b"3") is False
