"""Restore of SNAPSHOT:SUBPATH and --include/--exclude patterns; backup --exclude."""

from __future__ import annotations

from pathlib import Path

import pytest

from strongroom import Repository
from strongroom.errors import PathNotFound, UsageError


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "chats"
    (root / "Media" / "Old").mkdir(parents=True)
    (root / "notes.txt").write_text("notes")
    (root / "Media" / "IMG-1.jpg").write_bytes(b"jpg1")
    (root / "Media" / "PTT-2.opus").write_bytes(b"opus")
    (root / "Media" / "Old" / "IMG-0.jpg").write_bytes(b"jpg0")
    (root / "msgstore.db").write_bytes(b"db")
    return root


def files(root: Path) -> set[str]:
    return {str(f.relative_to(root)) for f in root.rglob("*") if f.is_file()}


def test_subpath_folder_lands_without_its_leading_path(repo: Repository, src: Path,
                                                       tmp_path: Path) -> None:
    repo.backup([src])
    target = tmp_path / "t"
    s = repo.restore(f"latest:{src}/Media", target)
    assert files(target) == {"IMG-1.jpg", "PTT-2.opus", "Old/IMG-0.jpg"}
    assert s.files == 3
    one = tmp_path / "one"
    repo.restore(f"latest:{src}/Media/IMG-1.jpg", one)
    assert files(one) == {"IMG-1.jpg"} and (one / "IMG-1.jpg").read_bytes() == b"jpg1"


def test_include_exclude_patterns_relative_to_the_snapshot_paths(
        repo: Repository, src: Path, tmp_path: Path) -> None:
    repo.backup([src])
    base = str(src).lstrip("/")
    t1 = tmp_path / "t1"
    repo.restore("latest", t1, include=["Media/*.jpg"])
    assert files(t1) == {f"{base}/Media/IMG-1.jpg"}
    t2 = tmp_path / "t2"
    repo.restore("latest", t2, include=["Media"], exclude=["*.opus"])
    assert files(t2) == {f"{base}/Media/IMG-1.jpg", f"{base}/Media/Old/IMG-0.jpg"}
    t3 = tmp_path / "t3"
    repo.restore("latest", t3, include=[f"{src}/msgstore.db"])  # an absolute path as before
    assert files(t3) == {f"{base}/msgstore.db"}
    t4 = tmp_path / "t4"
    repo.restore(f"latest:{src}/Media", t4, include=["Old/*"])  # relative to the subpath
    assert files(t4) == {"Old/IMG-0.jpg"}
    t5 = tmp_path / "t5"
    repo.restore("latest", t5, exclude=["Media/Old", "notes.txt"])
    assert files(t5) == {f"{base}/Media/IMG-1.jpg", f"{base}/Media/PTT-2.opus",
                         f"{base}/msgstore.db"}


def test_an_include_that_matches_nothing_is_an_error_naming_the_paths(
        repo: Repository, src: Path, tmp_path: Path) -> None:
    repo.backup([src])
    with pytest.raises(PathNotFound, match="matches nothing") as info:
        repo.restore("latest", tmp_path / "t", include=["Photos/*.jpg"])
    assert str(src) in (info.value.hint or "")
    with pytest.raises(PathNotFound, match="matches nothing"):
        repo.restore("latest", tmp_path / "t", include=["*.png"], dry_run=True)
    with pytest.raises(PathNotFound, match="is not in snapshot"):
        repo.restore(f"latest:{src}/Nope", tmp_path / "t")
    with pytest.raises(UsageError):
        repo.restore(f"latest:{src}/../x", tmp_path / "t")
    with pytest.raises(UsageError):
        repo.restore("latest", tmp_path / "t", include=["a/../b"])
    assert files(tmp_path / "t") == set()


def test_backup_exclude_leaves_out_matches_and_what_is_below(repo: Repository, src: Path) -> None:
    repo.backup([src], exclude=["*.opus", "Media/Old", f"{src}/msgstore.db"])
    names = {e.path for e in repo.ls("latest")}
    assert names == {str(src), f"{src}/Media", f"{src}/Media/IMG-1.jpg", f"{src}/notes.txt"}
    with pytest.raises(UsageError):
        repo.backup([src], exclude=["**x"])
