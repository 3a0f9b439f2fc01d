"""Profile Strongroom's full and incremental backup through the library API (cProfile).

    python -m bench.profile [--size-mb 1000] [--top 25] [--workdir bench/data/profile]

Generates the dataset, backs it up into a fresh local repository under the
profiler, simulates one day and profiles the incremental backup, then prints
the top functions by own time and by cumulative time for each, and keeps the
``.prof`` files for ``python -m pstats`` or snakeviz.  cProfile sees only this
process: work done in worker processes shows up as waiting on them.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import sys
import time
from pathlib import Path

from bench import dataset


def profile_backup(repo: object, source: Path, out: Path) -> tuple[float, pstats.Stats]:
    """Run ``repo.backup([source])`` under cProfile; return wall seconds and the stats."""
    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.enable()
    repo.backup([source])  # type: ignore[attr-defined]
    prof.disable()
    seconds = time.perf_counter() - start
    prof.dump_stats(out)
    return seconds, pstats.Stats(prof)


def top(stats: pstats.Stats, sort: str, n: int) -> str:
    """The *n* top lines of *stats* sorted by *sort*, paths shortened."""
    buf = io.StringIO()
    stats.stream = buf  # type: ignore[attr-defined]
    stats.strip_dirs().sort_stats(sort).print_stats(n)
    lines = buf.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return "\n".join(lines[start:])


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    from strongroom import api
    from strongroom.storage.registry import open_backend

    ap = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--workdir", type=Path, default=Path(__file__).resolve().parent / "data" / "profile")
    args = ap.parse_args(argv)
    shutil.rmtree(args.workdir, ignore_errors=True)
    data, repo_dir = args.workdir / "chat", args.workdir / "repo"
    dataset.generate(data, args.size_mb, args.seed)
    key = api.BackupKey.generate()
    with api.Repository.create(open_backend(str(repo_dir)), key) as repo:
        full_s, full = profile_backup(repo, data, args.workdir / "full.prof")
    dataset.grow(data)
    with api.Repository.open(open_backend(str(repo_dir)), key) as repo:
        incr_s, incr = profile_backup(repo, data, args.workdir / "incremental.prof")
    for label, seconds, stats in (("full backup", full_s, full), ("incremental", incr_s, incr)):
        for sort in ("tottime", "cumulative"):
            print(f"== {label}: {seconds:.2f} s under cProfile; top {args.top} by {sort} ==")
            print(top(stats, sort, args.top))
    print(f"profiles: {args.workdir}/full.prof, {args.workdir}/incremental.prof")
    return 0


if __name__ == "__main__":
    sys.exit(main())
