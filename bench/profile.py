"""Profile Strongroom's full and incremental backup through the library API (cProfile).

    python -m bench.profile [--size-mb 1000] [--top 25] [--workdir bench/data/profile]

Generates the dataset, backs it up into a fresh local repository under the
profiler, simulates one day and profiles the incremental backup, the restore
of the latest snapshot and ``check --read-data``, then prints the top functions
by own time and by cumulative time for each, and keeps the ``.prof`` files for
``python -m pstats`` or snakeviz.  cProfile sees only this
process.  Work the engine hands to ``concurrent.futures`` worker threads is
profiled too (each work item under its own profiler, merged), and printed
separately: in the main thread it only shows up as waiting on a lock.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import thread as futures_thread
from contextlib import contextmanager
from pathlib import Path

from bench import dataset


@contextmanager
def worker_profiles() -> Iterator[list[cProfile.Profile]]:
    """Profile every thread-pool work item run inside the block (bench-only instrumentation)."""
    profiles: list[cProfile.Profile] = []
    original = futures_thread._WorkItem.run

    def run(self: futures_thread._WorkItem) -> None:  # type: ignore[type-arg]
        prof = cProfile.Profile()
        prof.enable()
        try:
            original(self)
        finally:
            prof.disable()
            profiles.append(prof)

    futures_thread._WorkItem.run = run  # type: ignore[method-assign]
    try:
        yield profiles
    finally:
        futures_thread._WorkItem.run = original  # type: ignore[method-assign]


Profiled = tuple[str, float, pstats.Stats, "pstats.Stats | None"]


def profile_call(label: str, fn: Callable[[], object], out: Path) -> Profiled:
    """Run ``fn()`` under cProfile: label, wall seconds, main-thread and worker-thread stats."""
    prof = cProfile.Profile()
    with worker_profiles() as workers:
        start = time.perf_counter()
        prof.enable()
        fn()
        prof.disable()
        seconds = time.perf_counter() - start
    prof.dump_stats(out)
    return label, seconds, pstats.Stats(prof), pstats.Stats(*workers) if workers else None


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
    # Imported here so --help works even while the engine is being rebuilt.
    from strongroom import api
    from strongroom.storage.registry import open_backend

    ap = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--workdir", type=Path, default=Path(__file__).resolve().parent / "data" / "profile")
    args = ap.parse_args(argv)
    data, repo_dir = args.workdir / "chat", args.workdir / "repo"
    for part in (data, repo_dir):  # only what this tool creates there
        shutil.rmtree(part, ignore_errors=True)
    dataset.generate(data, args.size_mb, args.seed)
    key = api.BackupKey.generate()
    runs: list[Profiled] = []
    with api.Repository.create(open_backend(str(repo_dir), create=True), key) as repo:
        runs.append(profile_call("full backup", lambda: repo.backup([data]), args.workdir / "full.prof"))
    dataset.grow(data)
    with api.Repository.open(open_backend(str(repo_dir)), key) as repo:
        runs.append(profile_call("incremental", lambda: repo.backup([data]), args.workdir / "incremental.prof"))
        target = args.workdir / "restore"
        shutil.rmtree(target, ignore_errors=True)
        runs.append(profile_call("restore", lambda: repo.restore("latest", target), args.workdir / "restore.prof"))
        shutil.rmtree(target)
        runs.append(profile_call("check --read-data", lambda: repo.check(read_data=True),
                                 args.workdir / "check.prof"))
    for label, seconds, stats, workers in runs:
        for sort in ("tottime", "cumulative"):
            print(f"== {label}: {seconds:.2f} s under cProfile; main thread, top {args.top} by {sort} ==")
            print(top(stats, sort, args.top))
        if workers is not None:
            print(f"== {label}: worker threads (summed over threads), top {args.top} by tottime ==")
            print(top(workers, "tottime", args.top))
    print(f"profiles: {args.workdir}/{{full,incremental,restore,check}}.prof")
    return 0


if __name__ == "__main__":
    sys.exit(main())
