"""Where the peak memory of a message store's incremental backup goes (issue 12).

    python -m bench.backup_memory --db-mb 200 --workdir /tmp/bm200            # RSS timeline
    python -m bench.backup_memory --db-mb 200 --workdir /tmp/bm200 --tracemalloc
    python -m bench.backup_memory --workdir /tmp/bm200 --floor                # no-op CLI call

Prepares WORKDIR once (``bench.dataset`` without media at ``--db-mb``, as
``bench.scale --cases msgstore`` makes it: a full backup, one simulated day),
keeps a copy of the repository as it was after the full backup, and then per
run puts that copy back and runs the incremental backup in a fresh
interpreter (``--child``) whose own thread samples ``/proc/self/statm`` every
2 ms.  Whenever the resident set grows by 256 KiB past its last high, the
main thread's innermost Strongroom frames are noted: the report is the
resident set at each phase's high and the stack at the overall peak.  With
``--tracemalloc`` the child also traces Python allocations and keeps a
snapshot taken at each new resident high (slow: sizes only, not times), then
prints the biggest allocation sites of the last one.  ``/usr/bin/time``'s
figure for the same child is printed beside it (``bench.measure``).
``--floor``: the same for ``strongroom --version`` and ``snapshots`` (the
interpreter and imports).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1e6


def _rss() -> int:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE


def _where(frame: Any) -> str:
    """The innermost frames of ``frame`` inside strongroom (or the innermost at all)."""
    parts = []
    f = frame
    while f is not None and len(parts) < 4:
        name = f.f_code.co_filename
        if "strongroom" in name:
            parts.append(f"{Path(name).name}:{f.f_lineno}:{f.f_code.co_name}")
        f = f.f_back
    return " < ".join(parts) or (f"{frame.f_code.co_name}" if frame is not None else "?")


def child(argv: list[str], traced: bool) -> int:
    """Run the CLI with ``argv`` in this process, sampling the resident set."""
    import tracemalloc

    main_id = threading.get_ident()
    highs: list[tuple[float, int, str]] = []
    state: dict[str, Any] = {"stop": False, "snap": None, "traced_high": 0}
    t0 = time.perf_counter()

    def sample() -> None:
        last = 0
        while not state["stop"]:
            rss = _rss()
            if rss > last + 256 * 1024:
                last = rss
                frame = sys._current_frames().get(main_id)
                highs.append((time.perf_counter() - t0, rss, _where(frame)))
                if traced and rss > state["traced_high"] + (1 << 20):
                    # At a new resident high, not a traced one: a read asks for the cap
                    # of its object kind (64 MiB) and is shrunk, which tracemalloc counts
                    # whole although only the bytes read were ever resident.
                    state["traced_high"] = rss
                    state["snap"] = tracemalloc.take_snapshot()
            time.sleep(0.002)

    if traced:
        tracemalloc.start(8)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    from strongroom.cli.main import main

    code = 0
    try:
        main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    state["stop"] = True
    sampler.join()
    out: dict[str, Any] = {"highs": highs, "code": code}
    if traced and state["snap"] is not None:
        snap = state["snap"].filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        out["traced_high"] = state["traced_high"]
        out["top"] = [(str(s.traceback.format(limit=4)), s.size, s.count)
                      for s in snap.statistics("traceback")[:25]]
    print("BACKUP_MEMORY " + json.dumps(out), file=sys.stderr)
    return code


def prepare(work: Path, db_mb: float, seed: int) -> dict[str, str]:
    """Dataset, repository after the full backup (kept as ``repo.full``), one day grown."""
    from bench import dataset, measure, scale, tools

    tool = tools.Strongroom(work / "state")
    if not (work / "repo.full").exists():
        shutil.rmtree(work, ignore_errors=True)
        (work / "state").mkdir(parents=True)
        dataset.generate(work / "data", db_mb / scale.DB_SHARE, seed, media=False)
        measure.run(tool.init(work / "repo"), env=tool.env())
        measure.run(tool.backup(work / "repo", work / "data", "day0"), env=tool.env())
        shutil.copytree(work / "repo", work / "repo.full")
        dataset.grow(work / "data")
        os.sync()
    return tool.env()


def run_child(work: Path, cli_args: list[str], env: dict[str, str], traced: bool,
              src: Path | None) -> dict[str, Any]:
    from bench import measure, tools

    cmd = [sys.executable, "-m", "bench.backup_memory", "--child"]
    cmd += ["--tracemalloc"] if traced else []
    full_env = dict(env)
    here = str(Path(__file__).resolve().parent.parent)
    full_env["PYTHONPATH"] = ":".join([str(src)] if src else []) + ":" + here
    m = measure.run([*cmd, "--", *tools.Strongroom(work / "state")._base(work / "repo")[1:],
                     *cli_args], env=full_env, cwd=here)
    line = [x for x in m.output.splitlines() if x.startswith("BACKUP_MEMORY ")][-1]
    doc: dict[str, Any] = json.loads(line[len("BACKUP_MEMORY "):])
    doc["time_peak_rss"] = m.peak_rss
    doc["seconds"] = m.seconds
    return doc


def report(doc: dict[str, Any]) -> str:
    lines = [f"peak RSS (/usr/bin/time) {doc['time_peak_rss'] / MB:.1f} MB, wall {doc['seconds']:.2f} s"]
    phases: dict[str, tuple[float, int]] = {}
    for t, rss, where in doc["highs"]:
        key = where.split(" < ")[-1] if where else "?"
        phases[key] = (t, rss)
    lines.append("resident-set highs by outermost Strongroom frame (last high reached there):")
    for key, (t, rss) in sorted(phases.items(), key=lambda kv: kv[1][0]):
        lines.append(f"  {t:6.2f} s {rss / MB:7.1f} MB  {key}")
    if doc["highs"]:
        t, rss, where = doc["highs"][-1]
        lines.append(f"overall high {rss / MB:.1f} MB at {t:.2f} s in {where}")
    if "top" in doc:
        lines.append(f"tracemalloc at the last resident high ({doc['traced_high'] / MB:.1f} MB resident, "
                     f"{sum(t[1] for t in doc['top']) / MB:.1f} MB in these sites):")
        for tb, size, count in doc["top"]:
            first = tb.replace("\n", " | ")
            lines.append(f"  {size / MB:7.2f} MB {count:8d}  {first[:230]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in and args_in[0] == "--child":
        rest = args_in[1:]
        traced = bool(rest) and rest[0] == "--tracemalloc"
        rest = rest[1:] if traced else rest
        return child(rest[1:] if rest and rest[0] == "--" else rest, traced)
    ap = argparse.ArgumentParser(prog="python -m bench.backup_memory", description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--db-mb", type=float, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--tracemalloc", action="store_true")
    ap.add_argument("--floor", action="store_true", help="RSS of --version and snapshots instead")
    ap.add_argument("--src", type=Path, help="run Strongroom from this src/ tree (e.g. the base)")
    args = ap.parse_args(args_in)
    work = args.workdir.resolve()
    import strongroom
    from bench.scale import precompile

    # As bench.scale does: a tree compiled at every start would count the compiler.
    precompile([Path(strongroom.__file__).parent]
               + ([args.src.resolve() / "strongroom"] if args.src is not None else []))
    env = prepare(work, args.db_mb, args.seed)
    print(f"load average at start: {os.getloadavg()[0]:.2f}, UTC {time.strftime('%H:%M:%S', time.gmtime())}")
    for _ in range(args.runs):
        shutil.rmtree(work / "repo", ignore_errors=True)
        shutil.copytree(work / "repo.full", work / "repo")
        os.sync()
        if args.floor:
            for cli_args in (["--version"], ["snapshots"]):
                print(" ".join(cli_args) + ": " + report(run_child(work, cli_args, env, False, args.src)))
            continue
        doc = run_child(work, ["backup", str(work / "data")], env, args.tracemalloc, args.src)
        print(report(doc))
    print(f"load average at end: {os.getloadavg()[0]:.2f}, UTC {time.strftime('%H:%M:%S', time.gmtime())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
