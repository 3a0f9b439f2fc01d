"""The chat catalogue's cost on a full backup: Strongroom with and without it, in pairs.

Run: ``python3 -m bench.catalogue_bench WORKDIR [--dataset DIR | --size-mb 1000] [--pairs 8]``

Each pair backs the same dataset up twice into fresh repositories, once as
``strongroom backup`` and once as ``strongroom backup --no-chats`` (no chat
recognition, no catalogue), the order alternating between pairs so neither is
always first.  Printed: every wall and CPU time, the medians, the median of
the per-pair ratios (with / without: the issue 13 target is at most 1.05),
and the load average before each pair.  ``bench.run --tools
strongroom,strongroom-nochats`` measures the same inside the whole benchmark;
pairing only the full backups, back to back, is less exposed to load that
comes and goes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
from pathlib import Path

from bench import dataset, measure
from bench.tools import Strongroom, StrongroomNoChats


def main(argv: list[str] | None = None) -> int:
    """Entry point; prints the figures (or a JSON document with ``--json``)."""
    ap = argparse.ArgumentParser(prog="python -m bench.catalogue_bench", description=__doc__)
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--dataset", type=Path, help="an existing dataset (default: generate one)")
    ap.add_argument("--size-mb", type=float, default=1000)
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    source = args.dataset or args.workdir / "data"
    if args.dataset is None and not source.exists():
        dataset.generate(source, args.size_mb)
    source = source.resolve()
    runs: dict[str, list[tuple[float, float]]] = {"strongroom": [], "strongroom-nochats": []}
    loads = []
    for i in range(args.pairs):
        loads.append(round(os.getloadavg()[0], 2))
        for cls in (Strongroom, StrongroomNoChats)[:: 1 if i % 2 == 0 else -1]:
            state, repo = args.workdir / f"state-{cls.name}", args.workdir / f"repo-{cls.name}"
            for old in (state, repo):
                shutil.rmtree(old, ignore_errors=True)
            state.mkdir(parents=True)
            tool = cls(state)
            measure.run(tool.init(repo), env=tool.env())
            os.sync()  # the previous backup's writeback does not land on this one
            m = measure.run(tool.backup(repo, source, "full"), env=tool.env())
            runs[cls.name].append((m.seconds, m.cpu_seconds))
    pairs = list(zip(runs["strongroom"], runs["strongroom-nochats"], strict=True))
    doc = {
        "source": str(source), "pairs": args.pairs, "loadavg_before_each_pair": loads,
        "loadavg_after": round(os.getloadavg()[0], 2),
        "runs": {n: [{"wall_s": round(w, 3), "cpu_s": round(c, 3)} for w, c in v]
                 for n, v in runs.items()},
        "median": {n: {"wall_s": round(statistics.median(w for w, _ in v), 3),
                       "cpu_s": round(statistics.median(c for _, c in v), 3)}
                   for n, v in runs.items()},
        "pair_ratio_median": {"wall": round(statistics.median(a[0] / b[0] for a, b in pairs), 3),
                              "cpu": round(statistics.median(a[1] / b[1] for a, b in pairs), 3)},
    }
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    for name, values in runs.items():
        print(f"{name:<20} wall {[round(w, 2) for w, _ in values]}")
        print(f"{'':<20} CPU  {[round(c, 2) for _, c in values]}")
        print(f"{'':<20} median wall {doc['median'][name]['wall_s']} s, "
              f"CPU {doc['median'][name]['cpu_s']} s")
    ratio = doc["pair_ratio_median"]
    print(f"with/without catalogue, median of the pairs: wall {ratio['wall']}x, "
          f"CPU {ratio['cpu']}x (target <= 1.05)")
    print(f"load average before each pair {loads}, after {doc['loadavg_after']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
