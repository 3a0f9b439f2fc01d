"""Browsing benchmark: ``ls`` and ``find`` on a snapshot, Strongroom against restic.

Run: ``python3 -m bench.browse_bench WORKDIR [--dataset DIR | --size-mb 1000] [--runs 5] [--json]
[--before EXE]``

Backs the dataset up once with each tool (``bench.dataset`` generates it
under WORKDIR unless ``--dataset`` names one), then times, as whole
processes, the same questions a person asks: list the whole snapshot
(``ls latest``), list the dataset's top folder in long format, and find
``*.db`` across all snapshots.  Each figure is the median wall time of
``--runs`` runs (the first run of each command is a warm-up and is not
counted; the CPU time of the process too), with restic's median and the ratio
Strongroom / restic; ``chats``
(the chat catalogue of the latest snapshot) has no restic counterpart.  The
runs of the tools alternate, so load from elsewhere falls on all of them.
``--before EXE`` adds another ``strongroom`` executable (e.g. an older tree's
venv) asking the same questions of the same repository, side by side.  The
query itself is the point, so the 1 GB backup is made once and kept.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

from bench import dataset, measure
from bench.tools import Restic, Strongroom, Tool


def _prepare(tool: Tool, work: Path, source: Path) -> Path:
    repo = work / f"{tool.name}-repo"
    if not repo.exists():
        tool.state.mkdir(parents=True, exist_ok=True)
        measure.run(tool.init(repo), env=tool.env())
        measure.run(tool.backup(repo, source, "day0"), env=tool.env())
    return repo


def _queries(tool: Tool, repo: Path, source: Path) -> dict[str, list[str]]:
    if isinstance(tool, Strongroom):
        base = [*tool.command(), "--repo", str(repo), "--key-file", str(tool.state / "key")]
        return {"ls": [*base, "ls", "latest"],
                "ls -l DIR": [*base, "ls", "-l", f"latest:{source}"],
                "find *.db": [*base, "find", "*.db"],
                "chats": [*base, "chats"]}
    base = ["restic", "--repo", str(repo)]
    return {"ls": [*base, "ls", "latest"],
            "ls -l DIR": [*base, "ls", "-l", "latest", str(source)],
            "find *.db": [*base, "find", "*.db"]}


class _StrongroomAt(Strongroom):
    """Another ``strongroom`` executable on the same repository and key (``--before``)."""

    name = "strongroom-before"

    def __init__(self, state: Path, exe: str) -> None:
        super().__init__(state)
        self.exe = exe

    def command(self) -> list[str]:  # type: ignore[override]
        return [self.exe]


def _medians(cmds: dict[str, tuple[list[str], dict[str, str]]], runs: int
             ) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall and CPU seconds of each tool's command, the tools' runs alternating."""
    wall: dict[str, list[float]] = {name: [] for name in cmds}
    cpu: dict[str, list[float]] = {name: [] for name in cmds}
    for cmd, env in cmds.values():
        measure.run(cmd, env=env)  # warm-up: page cache, restic's index cache
    for _ in range(runs):
        for name, (cmd, env) in cmds.items():
            m = measure.run(cmd, env=env)
            wall[name].append(m.seconds)
            cpu[name].append(m.cpu_seconds)
    return ({n: round(statistics.median(t), 3) for n, t in wall.items()},
            {n: round(statistics.median(t), 3) for n, t in cpu.items()})


def main(argv: list[str] | None = None) -> int:
    """Entry point; prints one line per query (or a JSON document)."""
    ap = argparse.ArgumentParser(prog="python -m bench.browse_bench", description=__doc__)
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--dataset", type=Path, help="an existing dataset (default: generate one)")
    ap.add_argument("--size-mb", type=float, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--before", metavar="EXE",
                    help="another strongroom executable to time side by side")
    args = ap.parse_args(argv)
    source = args.dataset or args.workdir / "data"
    if args.dataset is None and not source.exists():
        dataset.generate(source, args.size_mb)
    source = source.resolve()
    tools: list[Tool] = [Strongroom(args.workdir / "strongroom-state")]
    repos: dict[str, Path] = {}
    if args.before:
        tools.append(_StrongroomAt(args.workdir / "strongroom-state", args.before))
    restic = Restic(args.workdir / "restic-state")
    if restic.available():
        tools.append(restic)
    queries: dict[str, dict[str, tuple[list[str], dict[str, str]]]] = {}
    for tool in tools:
        repo = repos["strongroom"] if isinstance(tool, _StrongroomAt) else \
            _prepare(tool, args.workdir, source)
        repos[tool.name] = repo
        for name, cmd in _queries(tool, repo, source).items():
            queries.setdefault(name, {})[tool.name] = (cmd, tool.env())
    load_before = os.getloadavg()
    both = {name: _medians(cmds, args.runs) for name, cmds in queries.items()}
    results = {name: wall for name, (wall, _) in both.items()}
    if args.json:
        print(json.dumps({"source": str(source), "runs": args.runs, "seconds": results,
                          "cpu_seconds": {name: cpu for name, (_, cpu) in both.items()},
                          "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
                         indent=2))
        return 0
    for name, by_tool in results.items():
        cpu = both[name][1]
        line = f"{name:<10} strongroom {by_tool['strongroom']:.3f} s (CPU {cpu['strongroom']:.3f} s)"
        if "strongroom-before" in by_tool:
            line += (f"   before {by_tool['strongroom-before']:.3f} s"
                     f" (CPU {cpu['strongroom-before']:.3f} s)")
        if "restic" in by_tool:
            line += (f"   restic {by_tool['restic']:.3f} s   ratio "
                     f"{by_tool['strongroom'] / by_tool['restic']:.2f}")
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
