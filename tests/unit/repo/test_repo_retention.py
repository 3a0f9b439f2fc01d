"""Retention (forget) with exact calendars: every restic rule, reasons, groups, time zones."""

from __future__ import annotations

import datetime as dt

import pytest

from strongroom.errors import UsageError
from strongroom.repo.manifest import SnapshotDoc
from strongroom.repo.retention import (
    Duration,
    RetentionPolicy,
    keep_reasons,
    parse_group_by,
    plan,
)

UTC = dt.UTC


def at(y: int, mo: int, d: int, h: int = 12, mi: int = 0, tz: dt.tzinfo = UTC) -> float:
    return dt.datetime(y, mo, d, h, mi, tzinfo=tz).timestamp()


def doc(name: str, t: float, host: str = "h", paths: tuple[str, ...] = ("/p",),
        tags: tuple[str, ...] = ()) -> SnapshotDoc:
    return SnapshotDoc(name, t, host, list(paths), 0, 0, 0, None, [], sorted(tags))


def kept(docs: list[SnapshotDoc], **policy: object) -> dict[str, list[str]]:
    return keep_reasons(docs, RetentionPolicy(**policy))  # type: ignore[arg-type]


def test_hourly_daily_keep_the_newest_of_each_period_that_has_one() -> None:
    # 2026-03-01 .. 03-05, at 09:00, 09:30 and 18:00; no snapshot at all on 03-03.
    docs = [doc(f"{d}-{h}{m}", at(2026, 3, d, h, m)) for d in (1, 2, 4, 5)
            for h, m in ((9, 0), (9, 30), (18, 0))]
    assert set(kept(docs, daily=3)) == {"5-180", "4-180", "2-180"}  # 03-03 has none: skipped
    assert set(kept(docs, hourly=3)) == {"5-180", "5-930", "4-180"}  # 09:00 and 09:30 share an hour
    assert set(kept(docs, last=2)) == {"5-180", "5-930"}


def test_weekly_uses_iso_weeks_monthly_and_yearly_calendar_periods() -> None:
    # 2026-12-27 is a Sunday (ISO week 52), 2026-12-28 a Monday (ISO week 53 of 2026),
    # 2027-01-03 a Sunday (still ISO week 53 of 2026), 2027-01-04 a Monday (2027 week 1).
    docs = [doc(n, at(*ymd)) for n, ymd in
            (("dec27", (2026, 12, 27)), ("dec28", (2026, 12, 28)), ("jan03", (2027, 1, 3)),
             ("jan04", (2027, 1, 4)))]
    assert set(kept(docs, weekly=3)) == {"jan04", "jan03", "dec27"}
    assert set(kept(docs, monthly=2)) == {"jan04", "dec28"}
    assert set(kept(docs, yearly=5)) == {"jan04", "dec28"}


def test_rules_add_up_and_every_kept_snapshot_says_why() -> None:
    docs = [doc(f"d{d:02d}", at(2026, 1, d)) for d in range(1, 32)]
    reasons = kept(docs, last=2, daily=3, monthly=1)
    assert reasons == {"d31": ["last snapshot", "daily snapshot", "monthly snapshot"],
                       "d30": ["last snapshot", "daily snapshot"],
                       "d29": ["daily snapshot"]}


def test_keep_within_counts_back_from_the_newest_snapshot_not_from_now() -> None:
    docs = [doc(f"d{d:02d}", at(2026, 1, d)) for d in range(1, 11)]
    assert set(kept(docs, within=Duration.parse("3d"))) == {"d10", "d09", "d08"}
    assert kept(docs, within=Duration.parse("3d"))["d10"] == ["within 3d"]
    assert set(kept(docs, within=Duration.parse("2d12h"))) == {"d10", "d09", "d08"}
    assert set(kept(docs, within=Duration.parse("2d13h"))) == {"d10", "d09", "d08"}
    assert set(kept(docs, within=Duration.parse("1d11h"))) == {"d10", "d09"}


def test_keep_within_months_normalise_like_go_add_date() -> None:
    # 2026-03-31 minus one month is "2026-02-31", which Go (and restic) rolls to 2026-03-03.
    assert Duration.parse("1m").before(dt.datetime(2026, 3, 31, 12, tzinfo=UTC)) == \
        dt.datetime(2026, 3, 3, 12, tzinfo=UTC)
    assert Duration.parse("1y").before(dt.datetime(2028, 2, 29, tzinfo=UTC)) == \
        dt.datetime(2027, 3, 1, tzinfo=UTC)
    assert Duration.parse("1y2m3d4h") == Duration(1, 2, 3, 4)
    assert str(Duration.parse("1y4h")) == "1y4h"
    docs = [doc("mar02", at(2026, 3, 2)), doc("mar04", at(2026, 3, 4)), doc("mar31", at(2026, 3, 31))]
    assert set(kept(docs, within=Duration.parse("1m"))) == {"mar31", "mar04"}


@pytest.mark.parametrize("bad", ["", "3", "d", "1d1y", "-1d", "1.5d", "1w"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(UsageError):
        Duration.parse(bad)


def test_keep_tag_keeps_snapshots_with_all_tags_of_one_set() -> None:
    docs = [doc("a", at(2026, 1, 1), tags=("x", "y")), doc("b", at(2026, 1, 2), tags=("x",)),
            doc("c", at(2026, 1, 3))]
    assert set(kept(docs, tags=(frozenset({"x", "y"}),))) == {"a"}
    assert kept(docs, tags=(frozenset({"x"}),)) == {"a": ["has tags x"], "b": ["has tags x"]}


def test_days_are_counted_in_the_given_time_zone() -> None:
    tokyo = dt.timezone(dt.timedelta(hours=9))
    # 2026-05-01 14:00 and 16:00 UTC are one UTC day, but 23:00 on 05-01 and 01:00 on
    # 05-02 in UTC+9.
    docs = [doc("early", at(2026, 5, 1, 14)), doc("late", at(2026, 5, 1, 16))]
    assert set(keep_reasons(docs, RetentionPolicy(daily=2), tz=UTC)) == {"late"}
    assert set(keep_reasons(docs, RetentionPolicy(daily=2), tz=tokyo)) == {"late", "early"}


def test_groups_explain_why_keep_last_one_keeps_several() -> None:
    docs = [doc("a1", at(2026, 1, 1), host="a"), doc("b1", at(2026, 1, 2), host="b"),
            doc("a2", at(2026, 1, 3), host="a"), doc("a3", at(2026, 1, 4), host="a",
                                                     paths=("/q",))]
    groups = plan(docs, RetentionPolicy(last=1))
    assert [(g.host, g.paths, [k.id for k in g.keep], g.remove) for g in groups] == [
        ("a", ["/p"], ["a2"], ["a1"]), ("b", ["/p"], ["b1"], []), ("a", ["/q"], ["a3"], [])]
    one = plan(docs, RetentionPolicy(last=1), group_by=())
    assert len(one) == 1 and [k.id for k in one[0].keep] == ["a3"]
    by_host = plan(docs, RetentionPolicy(last=1), group_by=parse_group_by("host"))
    assert [(g.host, g.paths, [k.id for k in g.keep]) for g in by_host] == [
        ("a", None, ["a3"]), ("b", None, ["b1"])]


def test_policy_and_group_by_errors() -> None:
    with pytest.raises(UsageError):
        plan([], RetentionPolicy())
    with pytest.raises(UsageError):
        RetentionPolicy(last=-1)
    with pytest.raises(UsageError, match="cannot group by"):
        parse_group_by("host,colour")
    assert parse_group_by("tags, host") == ("host", "tags")
    assert parse_group_by("") == ()
