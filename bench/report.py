"""Medians, ratios and the printed table of a benchmark run.

    python -m bench.report bench/results/FILE.json     # print a saved run's table again
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Mapping, Sequence

_ORDER = ("strongroom", "restic", "borg")

# (key, label, unit, divisor, target for strongroom as text)
MEASURES: tuple[tuple[str, str, str, float, str], ...] = (
    ("full_s", "full backup", "s", 1, "<=0.5x restic, <1x borg"),
    ("full_cpu", "full backup, CPU user+sys", "s", 1, ""),
    ("full_bytes", "stored after full backup", "MB", 1e6, ""),
    ("full_rss", "peak RSS, full backup", "MB", 1e6, ""),
    ("incr_s", "incremental (1 day)", "s", 1, "<=0.5x restic"),
    ("incr_cpu", "incremental, CPU user+sys", "s", 1, ""),
    ("incr_bytes", "incremental: bytes added", "MB", 1e6, "<=0.3x restic"),
    ("restore_s", "full restore", "s", 1, "<=0.7x restic"),
    ("check_s", "check reading all data", "s", 1, "<=1.0x restic"),
    ("peak_rss", "peak RSS, any operation", "MB", 1e6, "<=1.0x restic"),
)


def medians(raw: Mapping[str, Mapping[str, Sequence[float]]]) -> dict[str, dict[str, float]]:
    """Median of each measure for each tool."""
    return {tool: {k: statistics.median(v) for k, v in per.items() if v} for tool, per in raw.items()}


def minimums(raw: Mapping[str, Mapping[str, Sequence[float]]]) -> dict[str, dict[str, float]]:
    """Smallest value of each measure for each tool (least disturbed by other load)."""
    return {tool: {k: min(v) for k, v in per.items() if v} for tool, per in raw.items()}


def ratios(med: Mapping[str, Mapping[str, float]], subject: str = "strongroom") -> dict[str, dict[str, float]]:
    """*subject*'s median divided by every other tool's, per measure (absent if undefined)."""
    out: dict[str, dict[str, float]] = {}
    if subject not in med:
        return out
    for other, per in med.items():
        if other == subject:
            continue
        out[f"{subject}/{other}"] = {
            k: med[subject][k] / v for k, v in per.items() if k in med[subject] and v > 0
        }
    return out


def table(med: Mapping[str, Mapping[str, float]], rat: Mapping[str, Mapping[str, float]], reps: int) -> str:
    """A fixed-width text table of medians and ratios."""
    tools = sorted(med, key=lambda t: _ORDER.index(t) if t in _ORDER else len(_ORDER))
    rat = {r: rat[r] for r in sorted(rat, key=lambda r: tools.index(r.split("/")[1]))}
    head = [f"median of {reps}", *tools, *rat, "target"]
    rows = [head]
    for key, label, unit, div, target in MEASURES:
        if not any(key in med[t] for t in tools):
            continue
        cells = [f"{label} [{unit}]"]
        cells += [_num(med[t][key] / div) if key in med[t] else "-" for t in tools]
        cells += [f"{rat[r][key]:.2f}x" if key in rat[r] else "-" for r in rat]
        cells.append(target if rat else "")
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in rows]
    return "\n".join(lines)


def _num(x: float) -> str:
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def main(argv: list[str] | None = None) -> int:
    """Print the table of saved results files."""
    for path in argv if argv is not None else sys.argv[1:]:
        with open(path) as f:
            doc = json.load(f)
        print(f"{path}: {doc['command']} (started {doc['started']}, {doc['settings']['page_cache']})")
        print(table(doc["median"], doc["ratio"], doc["settings"]["reps"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
