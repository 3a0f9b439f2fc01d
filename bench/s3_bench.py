"""Strongroom vs restic, backing up to and restoring from the same S3 server.

    python -m bench.s3_bench [--size-mb 1000] [--reps 3] [--workdir DIR] [--out FILE]

Starts a SeaweedFS S3 server on loopback (``tests/support/servers.py``), builds
the chat dataset (``bench/dataset.py``), and per repetition gives each tool a
fresh prefix in one bucket: init (not timed), full backup (timed), full restore
into an empty folder (timed; the first repetition's restore is compared byte
for byte with the dataset).  Both tools run through their command lines with
their defaults, against the same server in the same run.  Prints medians and
Strongroom/restic ratios (targets: backup <= 0.6, restore <= 0.7) and writes
the results as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

from bench import dataset, measure, tools

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.servers import S3Server, seaweedfs_s3

BUCKET = "bench"
TARGETS = {"backup": 0.6, "restore": 0.7}


def _one(tool: tools.Tool, location: str, data: Path, target: Path,
         env: dict[str, str], verify: bool) -> dict[str, float]:
    measure.run(tool.init(location), env=env)  # type: ignore[arg-type]
    backup = measure.run(tool.backup(location, data, "day1"), env=env)  # type: ignore[arg-type]
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    cmd, cwd = tool.restore(location, "day1", target)  # type: ignore[arg-type]
    restore = measure.run(cmd, env=env, cwd=cwd)
    if verify:
        found = measure.find_restored(target, dataset.DB_PATH)
        problems = measure.tree_diff(data, found) if found else ["nothing restored"]
        if problems:
            raise SystemExit(f"{tool.name}: restore differs from the dataset: {problems[:5]}")
    shutil.rmtree(target)
    return {"backup_s": backup.seconds, "restore_s": restore.seconds,
            "backup_rss": backup.peak_rss, "restore_rss": restore.peak_rss}


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Run the repetitions; return the results document."""
    work = args.workdir.resolve()
    data = work / f"dataset-{int(args.size_mb)}mb"
    if not (data / dataset.DB_PATH).exists():
        print(f"s3_bench: generating {args.size_mb} MB dataset in {data}", file=sys.stderr)
        dataset.generate(data, size_mb=args.size_mb, seed=args.seed)
    raw: dict[str, list[dict[str, float]]] = {"strongroom": [], "restic": []}
    with seaweedfs_s3(work / "server", bucket=BUCKET) as s3:
        for rep in range(args.reps):
            for name in ("restic", "strongroom") if rep % 2 else ("strongroom", "restic"):
                print(f"s3_bench: repetition {rep + 1}/{args.reps}: {name}", file=sys.stderr)
                raw[name].append(_measure_tool(name, s3, work, data, rep))
    med = {n: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
           for n, runs in raw.items()}
    ratio = {op: med["strongroom"][f"{op}_s"] / med["restic"][f"{op}_s"] for op in TARGETS}
    return {
        "started": args.started,
        "command": "python -m bench.s3_bench " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
        "versions": {n: tools.version_of(tools.TOOLS[n](work)) for n in raw},
        "settings": {"size_mb": args.size_mb, "reps": args.reps, "server": "SeaweedFS weed server -s3, loopback"},
        "raw": raw, "median": med, "ratio": ratio, "targets": TARGETS,
    }


def _measure_tool(name: str, s3: S3Server, work: Path, data: Path, rep: int) -> dict[str, float]:
    state = work / "state" / f"{name}-{rep}"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    tool = tools.TOOLS[name](state)
    # The console script next to this interpreter, not a version-manager shim
    # (a pyenv shim adds a bash start-up to every Strongroom command).
    scripts = sysconfig.get_path("scripts")
    env = {**s3.env(), **tool.env(), "PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}"}
    location = s3.location(BUCKET, f"{name}-{rep}-{int(time.time())}")
    return _one(tool, location, data, work / "restore", env, verify=rep == 0)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(prog="python -m bench.s3_bench", description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=1000, help="dataset size in MB (default 1000)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions; medians reported (default 3)")
    ap.add_argument("--seed", type=int, default=1, help="dataset seed (default 1)")
    ap.add_argument("--workdir", type=Path, default=Path(__file__).parent / "data" / "s3",
                    help="scratch space (default bench/data/s3)")
    ap.add_argument("--out", type=Path, help="results JSON (default bench/results/s3-DATE.json)")
    args = ap.parse_args(argv)
    args.started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result = run_bench(args)
    out = args.out or Path(__file__).parent / "results" / f"s3-{args.started[:10]}-{int(args.size_mb)}mb.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    for op, target in TARGETS.items():
        sr, rs = result["median"]["strongroom"][f"{op}_s"], result["median"]["restic"][f"{op}_s"]
        verdict = "meets" if result["ratio"][op] <= target else "MISSES"
        print(f"{op:8s} strongroom {sr:7.2f} s  restic {rs:7.2f} s  ratio {result['ratio'][op]:.2f} "
              f"({verdict} target <= {target})")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
