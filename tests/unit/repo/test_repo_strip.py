"""restore(strip=PREFIX): the new-device restore (docs/spec/cli.md, restore --strip)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from repo_helpers import make_tree, tree_state

from strongroom import Repository, UsageError


def test_strip_puts_what_was_under_the_prefix_into_the_target(repo: Repository,
                                                              tmp_path: Path) -> None:
    src = make_tree(tmp_path / "home" / "old" / "chats")
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "secret.txt").write_text("not under the prefix")
    repo.backup([src, other])
    out = tmp_path / "new"
    summary = repo.restore("latest", out, strip=str(src))
    assert tree_state(out) == tree_state(src)
    assert not (out / "secret.txt").exists() and summary.files == sum(
        1 for p in src.rglob("*") if p.is_file() and not p.is_symlink())
    # A leading '/' is optional and a trailing one is ignored.
    again = tmp_path / "again"
    repo.restore("latest", again, strip=str(src).lstrip("/") + "/")
    assert tree_state(again) == tree_state(src)


def test_strip_of_a_deeper_folder_and_of_a_file(repo: Repository, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    repo.backup([src])
    media = tmp_path / "media"
    repo.restore("latest", media, strip=str(src / "chats" / "media"))
    assert sorted(p.relative_to(media).as_posix() for p in media.rglob("*")) == \
        ["p1.jpg", "voice", "voice/v1.opus"]
    one = tmp_path / "one"
    repo.restore("latest", one, strip=str(src / "chats" / "msgstore.db"))
    assert [p.name for p in one.iterdir()] == ["msgstore.db"]
    assert (one / "msgstore.db").read_bytes() == (src / "chats" / "msgstore.db").read_bytes()


def test_the_target_keeps_its_own_mode(repo: Repository, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    os.chmod(src, 0o700)
    repo.backup([src])
    out = tmp_path / "out"
    out.mkdir(mode=0o755)
    os.chmod(out, 0o755)
    repo.restore("latest", out, strip=str(src), overwrite="always")
    assert out.stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize("prefix", ["", "/", "a/../b", "a//b", "./a", "a/."])
def test_unsafe_or_empty_prefixes_are_refused(repo: Repository, tmp_path: Path,
                                              prefix: str) -> None:
    with pytest.raises(UsageError, match="invalid strip prefix"):
        repo.restore("latest", tmp_path / "out", strip=prefix or " ")
    assert not (tmp_path / "out").exists()


def test_a_prefix_with_nothing_under_it_is_an_error(repo: Repository, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    repo.backup([src])
    with pytest.raises(UsageError, match="lies under /no/such/folder") as info:
        repo.restore("latest", tmp_path / "out", strip="/no/such/folder")
    assert str(src) in (info.value.hint or "")
    assert not any((tmp_path / "out").rglob("*"))
    # A prefix that only shares a string prefix with a real folder does not match it.
    with pytest.raises(UsageError):
        repo.restore("latest", tmp_path / "out", strip=str(src) + "x")


def test_strip_with_include_and_dry_run(repo: Repository, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    repo.backup([src])
    heard: list[tuple[str, str]] = []
    summary = repo.restore("latest", tmp_path / "dry", strip=str(src),
                           include=[str(src / "chats" / "notes.txt")], dry_run=True,
                           on_item=lambda a, p, _w: heard.append((a, p)))
    assert heard == [("write", "chats/notes.txt")] and summary.files == 1
    assert not (tmp_path / "dry").exists()
