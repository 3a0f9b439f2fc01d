"""Retention policy for ``forget``: which snapshots to keep and why (restic's semantics).

Pure: no I/O, and the time zone is a parameter.  Snapshots are first put
into groups (by default one per host and set of paths, ``--group-by``); the
policy is applied to each group on its own, so ``--keep-last 1`` keeps one
snapshot *per group*.  Inside a group, snapshots are walked newest first and
one is kept if any rule keeps it:

* ``last N``: the N newest.
* ``hourly/daily/weekly/monthly/yearly N``: walking newest first, a
  snapshot is kept when its hour (day, ISO week, month, year) differs from
  that of the last snapshot this rule kept, until the rule has kept N: the
  newest snapshot of each of the N most recent periods *that have one*.
* ``within D``: every snapshot newer than the group's newest snapshot minus
  D (years, months, days, hours; calendar arithmetic in the time zone, with
  Go's normalisation of day overflow as restic has it).
* ``tags``: every snapshot carrying all tags of one of the tag sets.

Every kept snapshot is reported with the rules that kept it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    from .manifest import SnapshotDoc

GROUP_FIELDS = ("host", "paths", "tags")
DEFAULT_GROUP_BY = ("host", "paths")
_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)d)?(?:(\d+)h)?$")


@dataclass(frozen=True)
class Duration:
    """A calendar duration for ``--keep-within``: ``1y2m3d4h``."""

    years: int = 0
    months: int = 0
    days: int = 0
    hours: int = 0

    @classmethod
    def parse(cls, text: str) -> Duration:
        """``2y``, ``6m``, ``14d``, ``36h`` or combinations in that order; else ``UsageError``."""
        m = _DURATION.match(text.strip())
        if not text.strip() or m is None:
            raise UsageError(f"bad duration {text!r}",
                             hint="write e.g. 14d, 6m, 1y6m or 2d12h (y, m, d, h in that order)")
        y, mo, d, h = (int(g or 0) for g in m.groups())
        if y > 9999 or mo > 9999 * 12:
            raise UsageError(f"duration {text!r} is too long")
        return cls(y, mo, d, h)

    def __bool__(self) -> bool:
        return bool(self.years or self.months or self.days or self.hours)

    def __str__(self) -> str:
        return "".join(f"{n}{u}" for n, u in ((self.years, "y"), (self.months, "m"),
                                              (self.days, "d"), (self.hours, "h")) if n) or "0h"

    def before(self, when: dt.datetime) -> dt.datetime:
        """``when`` minus this duration (Go ``AddDate``: day overflow rolls into next month)."""
        months = when.year * 12 + (when.month - 1) - self.years * 12 - self.months
        year, month = divmod(months, 12)
        if year < 1:
            return dt.datetime.min.replace(tzinfo=when.tzinfo)
        first = when.replace(year=year, month=month + 1, day=1)
        try:
            return first + dt.timedelta(days=when.day - 1 - self.days, hours=-self.hours)
        except OverflowError:  # further back than year 1: every snapshot is within
            return dt.datetime.min.replace(tzinfo=when.tzinfo)


@dataclass(frozen=True)
class RetentionPolicy:
    """Counts of snapshots to keep per rule (0: rule off), ``within`` and ``tags``."""

    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    within: Duration = field(default_factory=Duration)
    tags: tuple[frozenset[str], ...] = ()

    def __post_init__(self) -> None:
        for name in ("last", "hourly", "daily", "weekly", "monthly", "yearly"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise UsageError(f"--keep-{name} must be a whole number of 0 or more")

    def __bool__(self) -> bool:
        return bool(self.last or self.hourly or self.daily or self.weekly or self.monthly
                    or self.yearly or self.within or self.tags)


@dataclass(frozen=True)
class KeptSnapshot:
    """A snapshot the policy keeps, with the rules that keep it (``daily snapshot``, …)."""

    id: str
    time: float
    reasons: list[str]


@dataclass(frozen=True)
class ForgetGroup:
    """One group of snapshots and what the policy does with it (ids oldest first).

    ``host``, ``paths`` and ``tags`` are the group's key: ``None`` for a field
    the snapshots are not grouped by.
    """

    host: str | None
    paths: list[str] | None
    tags: list[str] | None
    keep: list[KeptSnapshot]
    remove: list[str]


def parse_group_by(text: str) -> tuple[str, ...]:
    """``host,paths`` -> ``('host', 'paths')``; ``''`` -> one group for everything."""
    fields = tuple(f.strip() for f in text.split(",") if f.strip())
    bad = [f for f in fields if f not in GROUP_FIELDS]
    if bad:
        raise UsageError(f"cannot group by {', '.join(bad)}",
                         hint="group by host, paths and tags (comma-separated), or by nothing")
    return tuple(f for f in GROUP_FIELDS if f in fields)


def _buckets(tz: dt.tzinfo | None) -> list[tuple[str, Callable[[SnapshotDoc, int], object]]]:
    def local(d: SnapshotDoc) -> dt.datetime:
        return dt.datetime.fromtimestamp(d.time, tz)

    return [
        ("last", lambda d, n: n),
        ("hourly", lambda d, n: local(d).strftime("%Y-%m-%d %H")),
        ("daily", lambda d, n: local(d).date()),
        ("weekly", lambda d, n: local(d).isocalendar()[:2]),
        ("monthly", lambda d, n: (local(d).year, local(d).month)),
        ("yearly", lambda d, n: local(d).year),
    ]


def keep_reasons(docs: Sequence[SnapshotDoc], policy: RetentionPolicy, *,
                 tz: dt.tzinfo | None = dt.UTC) -> dict[str, list[str]]:
    """For one group: the id of each kept snapshot and why it is kept.

    Periods are counted in ``tz``; ``None`` is this machine's local time zone
    (with its daylight-saving rules), what the CLI uses, as restic does.
    """
    newest_first = sorted(docs, key=lambda d: (d.time, d.id), reverse=True)
    if not newest_first:
        return {}
    cutoff = policy.within.before(dt.datetime.fromtimestamp(newest_first[0].time, tz))
    rules = [(name, getattr(policy, name), bucket) for name, bucket in _buckets(tz)]
    left = {name: count for name, count, _ in rules}
    last_seen: dict[str, object] = {}
    kept: dict[str, list[str]] = {}
    for n, d in enumerate(newest_first):
        reasons = [f"has tags {','.join(sorted(t))}" for t in policy.tags if t <= set(d.tags)]
        if policy.within and dt.datetime.fromtimestamp(d.time, tz) > cutoff:
            reasons.append(f"within {policy.within}")
        for name, _count, bucket in rules:
            value = bucket(d, n)
            if left[name] > 0 and last_seen.get(name, _NONE) != value:
                last_seen[name] = value
                left[name] -= 1
                reasons.append(f"{name} snapshot")
        if reasons:
            kept[d.id] = reasons
    return kept


_NONE = object()


GroupKey = tuple[str | None, tuple[str, ...] | None, tuple[str, ...] | None]


def group_key(doc: SnapshotDoc, group_by: Sequence[str]) -> GroupKey:
    """The key of the group ``doc`` belongs to under ``group_by``."""
    return (doc.hostname if "host" in group_by else None,
            tuple(sorted(doc.paths)) if "paths" in group_by else None,
            tuple(doc.tags) if "tags" in group_by else None)


def plan(docs: Sequence[SnapshotDoc], policy: RetentionPolicy, *,
         group_by: Sequence[str] = DEFAULT_GROUP_BY, tz: dt.tzinfo | None = dt.UTC
         ) -> list[ForgetGroup]:
    """Apply ``policy`` to each group of ``docs``; groups in order of their oldest snapshot."""
    if not policy:
        # Refuse rather than guess: an empty policy would keep nothing.
        raise UsageError("no retention policy given; nothing would be kept",
                         hint="give at least one keep rule", reason="no-retention-rule")
    groups: dict[GroupKey, list[SnapshotDoc]] = {}
    for d in sorted(docs, key=lambda d: (d.time, d.id)):
        groups.setdefault(group_key(d, group_by), []).append(d)
    out = []
    for (host, paths, tags), members in groups.items():
        reasons = keep_reasons(members, policy, tz=tz)
        out.append(ForgetGroup(
            host, list(paths) if paths is not None else None,
            list(tags) if tags is not None else None,
            [KeptSnapshot(d.id, d.time, reasons[d.id]) for d in members if d.id in reasons],
            [d.id for d in members if d.id not in reasons]))
    return out


__all__ = ["DEFAULT_GROUP_BY", "Duration", "ForgetGroup", "KeptSnapshot", "RetentionPolicy",
           "group_key", "keep_reasons", "parse_group_by", "plan"]
