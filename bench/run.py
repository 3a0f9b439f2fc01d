"""The benchmark harness: Strongroom, restic and borg on the same chat dataset in one run.

    python -m bench.run [--size-mb 1000] [--reps 3] [--tools strongroom,restic,borg] [--keep]

Each repetition regenerates the dataset (deterministic from ``--seed``), then for
each tool in turn (the order rotates per repetition): a full backup into a fresh
repository, one simulated day (``bench.dataset.grow``) and its incremental
backup, a full restore of the latest snapshot (the first repetition checks every
restored byte against the source), and a check that reads all data.  Wall time
is measured around each tool process, peak RSS with ``/usr/bin/time``, stored bytes as
the apparent size of the repository directory.  Prints a table of medians and
ratios and writes the raw figures as JSON under ``bench/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench import dataset, measure, report, tools
from strongroom.errors import StrongroomError, UsageError

HERE = Path(__file__).resolve().parent


class Harness:
    """One benchmark run: a work directory, the tools, and the figures collected."""

    def __init__(self, workdir: Path, names: list[str], *, cold: bool = False) -> None:
        self.workdir = workdir
        self.names = names
        self.cold = cold
        self.data = workdir / "chat"
        self.raw: dict[str, dict[str, list[float]]] = {n: defaultdict(list) for n in names}
        self.verified: dict[str, list[str]] = {}
        self.cache_dropped: list[bool] = []
        self.dataset: dict[str, Any] = {}
        self.loadavg: list[float] = []  # 1-minute load before each repetition: others' work skews times

    def repetition(self, rep: int, size_mb: float, seed: int, verify: bool) -> None:
        """Run every operation once for every tool on a fresh dataset."""
        self.loadavg.append(os.getloadavg()[0])
        shutil.rmtree(self.data, ignore_errors=True)
        base = dataset.generate(self.data, size_mb, seed)
        self.dataset = {"files": base.media_files + 1, "bytes": measure.tree_bytes(self.data),
                        "messages": base.messages, "db_bytes": base.db_bytes}
        os.sync()  # so no writeback of the fresh dataset runs during a measurement
        k = rep % len(self.names)
        order = self.names[k:] + self.names[:k]
        live = {n: self._fresh_tool(n) for n in order}
        for name, tool in live.items():
            measure.run(tool.init(self._repo(name)), env=tool.env())
            m = self._timed(tool, tool.backup(self._repo(name), self.data, "full"))
            self._record(name, "full", m, bytes_=measure.tree_bytes(self._repo(name)))
        self.dataset["day1"] = dataset.grow(self.data).to_json()
        os.sync()
        for name, tool in live.items():
            before = measure.tree_bytes(self._repo(name))
            m = self._timed(tool, tool.backup(self._repo(name), self.data, "day1"))
            self._record(name, "incr", m, bytes_=measure.tree_bytes(self._repo(name)) - before)
        for name, tool in live.items():
            self._restore(name, tool, verify)
        for name, tool in live.items():
            self._record(name, "check", self._timed(tool, tool.check(self._repo(name))))
        for name in order:
            self.raw[name]["peak_rss"].append(max(self.raw[name][f"{op}_rss"][-1]
                                                  for op in ("full", "incr", "restore", "check")))

    def cleanup(self, keep: bool) -> None:
        """Remove the work directory's bulky parts (*keep* keeps dataset, repositories and keys)."""
        for part in ("restore",) if keep else ("restore", "state", "repos", "chat"):
            shutil.rmtree(self.workdir / part, ignore_errors=True)

    def _fresh_tool(self, name: str) -> tools.Tool:
        state = self.workdir / "state" / name
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(self._repo(name), ignore_errors=True)
        state.mkdir(parents=True)
        self._repo(name).parent.mkdir(parents=True, exist_ok=True)
        return tools.TOOLS[name](state)

    def _repo(self, name: str) -> Path:
        return self.workdir / "repos" / name

    def _timed(self, tool: tools.Tool, cmd: list[str], cwd: Path | None = None) -> measure.Measurement:
        # Flush the previous step's writes so their writeback does not land on this one.
        os.sync()
        if self.cold:
            self.cache_dropped.append(measure.drop_caches())
        return measure.run(cmd, env=tool.env(), cwd=cwd)

    def _restore(self, name: str, tool: tools.Tool, verify: bool) -> None:
        target = self.workdir / "restore" / name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        cmd, cwd = tool.restore(self._repo(name), "day1", target)
        self._record(name, "restore", self._timed(tool, cmd, cwd))
        if verify:
            found = measure.find_restored(target, dataset.DB_PATH)
            self.verified[name] = (measure.tree_diff(self.data, found) if found
                                   else [f"no {dataset.DB_PATH} under the restore target"])
        shutil.rmtree(target)

    def _record(self, name: str, op: str, m: measure.Measurement, bytes_: int | None = None) -> None:
        self.raw[name][f"{op}_s"].append(m.seconds)
        self.raw[name][f"{op}_rss"].append(m.peak_rss)
        self.raw[name][f"{op}_cpu"].append(m.cpu_seconds)
        if bytes_ is not None:
            self.raw[name][f"{op}_bytes"].append(bytes_)


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Run the whole benchmark; return the results document."""
    names = tools.select(args.tools)
    harness = Harness(args.workdir, names, cold=args.cold)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    try:
        for rep in range(args.reps):
            print(f"bench: repetition {rep + 1}/{args.reps}", file=sys.stderr)
            harness.repetition(rep, args.size_mb, args.seed, verify=rep == 0)
    finally:
        harness.cleanup(args.keep)
    med = report.medians(harness.raw)
    return {
        "started": started,
        "command": "python -m bench.run " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
                    "loadavg_1min_before_each_rep": harness.loadavg},
        "versions": {n: tools.version_of(tools.TOOLS[n](args.workdir)) for n in names},
        "settings": {"size_mb": args.size_mb, "reps": args.reps, "seed": args.seed, "tools": names,
                     "page_cache": _cache_mode(args.cold, harness.cache_dropped)},
        "dataset": harness.dataset,
        "restore_verified": {n: (not p) for n, p in harness.verified.items()},
        "restore_problems": {n: p[:20] for n, p in harness.verified.items() if p},
        "raw": {n: dict(v) for n, v in harness.raw.items()},
        "median": med,
        "min": report.minimums(harness.raw),
        "ratio": report.ratios(med),
    }


def _cache_mode(cold: bool, dropped: list[bool]) -> str:
    if not cold:
        return "warm (dataset and repositories in the page cache)"
    return "cold (page cache dropped before each measured step)" if dropped and all(dropped) else \
        "warm: dropping the page cache was refused by the kernel"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``make bench``)."""
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=1000, help="dataset size in MB (default 1000)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions; medians are reported (default 3)")
    ap.add_argument("--tools", default="strongroom,restic,borg", help="comma-separated subset")
    ap.add_argument("--keep", action="store_true", help="keep the dataset and last repositories")
    ap.add_argument("--seed", type=int, default=1, help="dataset seed (default 1)")
    ap.add_argument("--cold", action="store_true", help="drop the page cache before each measured step")
    ap.add_argument("--workdir", type=Path, default=HERE / "data", help="scratch space (default bench/data)")
    ap.add_argument("--out", type=Path, help="results JSON (default bench/results/DATE-SIZEmb-warm|cold.json)")
    args = ap.parse_args(argv)
    try:
        if args.reps < 1:
            raise UsageError("--reps must be at least 1")
        doc = benchmark(args)
    except StrongroomError as exc:
        print(f"bench: error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"bench: hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    name = f"{doc['started'][:16].replace(':', '')}-{args.size_mb:g}mb-{'cold' if args.cold else 'warm'}.json"
    out = args.out or HERE / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(report.table(doc["median"], doc["ratio"], args.reps))
    for name, ok in doc["restore_verified"].items():
        print(f"restore of {name} byte-identical to the source: {'yes' if ok else 'NO'}")
    print(f"page cache: {doc['settings']['page_cache']}; results: {out}")
    return 0 if all(doc["restore_verified"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
