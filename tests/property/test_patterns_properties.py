"""Hypothesis properties of path patterns and snapshot tags (user input: never a traceback)."""

from __future__ import annotations

import fnmatch

from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.errors import UsageError
from strongroom.repo.patterns import Pattern
from strongroom.repo.selection import check_tag

names = st.text(st.sampled_from("ab*?[]!-./\\x\x00 é"), min_size=0, max_size=12)
components = st.text(st.sampled_from("abx. é-"), min_size=1, max_size=5).filter(
    lambda c: c not in (".", ".."))
paths = st.lists(components, min_size=1, max_size=6).map(tuple)
FAST = settings(max_examples=400, deadline=None)


@FAST
@given(text=names, path=paths)
def test_parse_refuses_with_usage_error_or_matches_without_raising(text: str,
                                                                   path: tuple[str, ...]) -> None:
    try:
        pattern = Pattern.parse(text)
    except UsageError:
        return
    pattern.matches(path, (path[:1],))
    pattern.covers(path, ())


@FAST
@given(path=paths)
def test_double_star_matches_everything_below_an_anchor(path: tuple[str, ...]) -> None:
    assert Pattern.parse("/" + path[0] + "/**").matches(path)
    assert Pattern.parse("/**").matches(path)
    assert Pattern.parse("/" + "/".join(path)).matches(path)


@FAST
@given(path=paths, glob=st.text(st.sampled_from("ab*?x."), min_size=1, max_size=4))
def test_a_name_pattern_agrees_with_fnmatch_on_the_last_component(
        path: tuple[str, ...], glob: str) -> None:
    if glob in (".", "..") or "**" in glob:
        return
    assert Pattern.parse(glob).matches(path) == fnmatch.fnmatchcase(path[-1], glob)


@FAST
@given(tag=st.text(max_size=300))
def test_check_tag_returns_the_tag_or_raises_usage_error(tag: str) -> None:
    try:
        assert check_tag(tag) == tag
    except UsageError:
        return
