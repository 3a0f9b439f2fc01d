"""``check --read-data`` of kept repositories, Strongroom trees alternating (issue 12).

    python -m bench.scale --cases days --days 30 --tools strongroom --reps 1 --keep --workdir W
    python -m bench.check_pairs W/days --trees /work/wt-base/src,src --reps 10

The ``days`` case of :mod:`bench.scale` measures each check three times, after
restores, with restic in between; on a shared machine its wall times varied
0.66-1.11 s for one command.  This runs only the checks of one kept work
directory (its ``strongroom`` and ``strongroom-fresh`` repositories), every
source tree on each in turn, ``--reps`` rounds, and prints medians and the
grown/fresh ratios of wall and CPU time (``bench.measure``: ``/usr/bin/time``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from bench import measure
from bench.scale import precompile
from strongroom.errors import StrongroomError, UsageError

REPOS = ("strongroom", "strongroom-fresh")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(prog="python -m bench.check_pairs",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("case_dir", type=Path, help="a kept bench.scale case directory (W/days)")
    ap.add_argument("--trees", required=True, help="comma-separated Strongroom src/ trees")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--out", type=Path, help="results JSON (default: none)")
    args = ap.parse_args(argv)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    try:
        trees = [Path(t).resolve() for t in args.trees.split(",") if t.strip()]
        missing = [r for r in REPOS if not (args.case_dir / "repos" / r).is_dir()]
        if not trees or args.reps < 1 or missing:
            raise UsageError(f"need --trees, --reps >= 1 and {args.case_dir}/repos/"
                             f"{{{','.join(REPOS)}}} (missing: {', '.join(missing) or 'none'})")
        precompile([t / "strongroom" for t in trees])
        raw: dict[str, dict[str, list[tuple[float, float]]]] = {
            str(t): {r: [] for r in REPOS} for t in trees}
        loads = []
        for rep in range(args.reps):
            loads.append(os.getloadavg()[0])
            order = trees[rep % len(trees):] + trees[:rep % len(trees)]
            for tree in order:
                for repo in REPOS:
                    cmd = [sys.executable, "-m", "strongroom.cli.main",
                           "--repo", str(args.case_dir / "repos" / repo),
                           "--key-file", str(args.case_dir / "state" / repo / "key"),
                           "check", "--read-data"]
                    m = measure.run(cmd, env={**os.environ, "PYTHONPATH": str(tree)})
                    raw[str(tree)][repo].append((m.seconds, m.cpu_seconds))
    except StrongroomError as exc:
        print(f"bench.check_pairs: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    print(f"{'tree':40s} {'wall grown':>10s} {'fresh':>6s} {'ratio':>6s} "
          f"{'CPU grown':>10s} {'fresh':>6s} {'ratio':>6s}")
    for tree, per in raw.items():
        med = {r: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
               for r, v in per.items()}
        g, f = med["strongroom"], med["strongroom-fresh"]
        print(f"{tree[-40:]:40s} {g[0]:10.3f} {f[0]:6.3f} {g[0] / f[0]:5.2f}x "
              f"{g[1]:10.3f} {f[1]:6.3f} {g[1] / f[1]:5.2f}x")
    print("load average (1 min) before each round: " + json.dumps([round(x, 2) for x in loads]))
    if args.out:
        args.out.write_text(json.dumps({"started": started,
                                        "command": "python -m bench.check_pairs "
                                                   + " ".join(argv if argv is not None
                                                              else sys.argv[1:]),
                                        "loadavg_1min_before_each_round": loads,
                                        "raw_wall_cpu": raw}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
