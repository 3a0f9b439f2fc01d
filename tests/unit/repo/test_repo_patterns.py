"""Path patterns (backup --exclude, restore --include/--exclude, find): exact semantics."""

from __future__ import annotations

import pytest

from strongroom.errors import UsageError
from strongroom.repo.patterns import Pattern, PatternSet, read_pattern_file, split

ROOTS = (split("/home/me/chats"),)


def m(pattern: str, path: str) -> bool:
    return Pattern.parse(pattern).matches(split(path), ROOTS)


def test_a_name_pattern_matches_at_any_depth_but_only_whole_names() -> None:
    assert m("*.db", "/home/me/chats/msgstore.db")
    assert m("*.db", "/var/x.db")
    assert not m("*.db", "/home/me/chats/msgstore.db-wal")
    assert m("IMG-?.jpg", "/home/me/chats/Media/IMG-1.jpg")
    assert not m("IMG-?.jpg", "/home/me/chats/Media/IMG-12.jpg")
    assert m("[ab].txt", "/x/a.txt") and not m("[ab].txt", "/x/c.txt")


def test_star_never_crosses_a_slash_and_double_star_spans_folders() -> None:
    assert m("/home/*/chats", "/home/me/chats")
    assert not m("/home/*", "/home/me/chats")
    assert m("/home/**", "/home/me/chats")
    assert m("/home/**/chats", "/home/chats")  # ** matches zero components too
    assert m("/**/Media/*.jpg", "/home/me/chats/Media/a.jpg")
    assert not m("/**/Media/*.jpg", "/home/me/chats/Media/x/a.jpg")


def test_a_relative_pattern_is_relative_to_the_roots_only() -> None:
    assert m("Media/*.jpg", "/home/me/chats/Media/a.jpg")
    assert not m("Media/*.jpg", "/home/me/other/Media/a.jpg")
    assert not m("Media/*.jpg", "/home/me/chats/x/Media/a.jpg")
    assert not Pattern.parse("Media/*.jpg").matches(split("/home/me/chats/Media/a.jpg"), ())
    assert m("**", "/home/me/chats/Media/a.jpg")  # '**' alone: everything below the roots
    assert not m("**", "/var/x")


def test_covers_counts_a_matched_ancestor_folder() -> None:
    p = Pattern.parse("Media")
    assert p.covers(split("/home/me/chats/Media/a.jpg"), ROOTS)
    assert not p.matches(split("/home/me/chats/Media/a.jpg"), ROOTS)
    assert not p.covers(split("/home/me/chats/notes.txt"), ROOTS)


@pytest.mark.parametrize("bad", ["", "/", "a//b", "../x", "a/./b", "a**b", "**x", "a\x00b",
                                 "x" * 5000])
def test_bad_patterns_are_usage_errors(bad: str) -> None:
    with pytest.raises(UsageError):
        Pattern.parse(bad)


def test_pattern_set_and_pattern_file() -> None:
    ps = PatternSet.of(["*.tmp", "/home/me/chats/Media"], ["/home/me/chats"])
    assert ps.covers(split("/home/me/chats/Media/a.jpg")) and ps.matches(split("/a/b.tmp"))
    assert not ps.covers(split("/home/me/chats/notes.txt"))
    assert ps.describe() == "*.tmp, /home/me/chats/Media"
    assert not PatternSet.of([])
    lines = ["# comment\n", "\n", "  *.tmp  \n", "Media/Video\r\n"]
    assert read_pattern_file(lines, "f") == ["*.tmp", "Media/Video"]
    with pytest.raises(UsageError, match="f line 2"):
        read_pattern_file(["ok", "y" * 5000], "f")
