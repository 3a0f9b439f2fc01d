"""Restore and check at scale (issue 12): Strongroom against restic (and borg) side by side.

    python -m bench.scale                      # reduced sizes, a few minutes
    python -m bench.scale --full               # the issue's sizes (2 GB store, 200,000 files, 60 days)
    python -m bench.scale --cases msgstore --db-mb 500 --reps 5
    python -m bench.scale --cases msgstore --before /tmp/main/src   # + another tree, interleaved

Cases, each tool on the same data in the same run, tools interleaved:

* ``msgstore``: one SQLite message store alone (``bench.dataset`` without
  media, ``--db-mb``; full: 2000).  Full backup, one simulated day, the
  incremental backup (its peak RSS is the "memory of a message store" figure),
  then restore and check of the latest snapshot, ``--reps`` times.
* ``small``: ``--files`` small files of 1-8 KiB (full: 200,000), half random
  bytes, half text.  Full backup into a new repository (``--reps`` times),
  backup with nothing changed (``--reps`` times), restore and check
  (``--reps`` times).
* ``days``: the chat dataset (``--days-mb``, full: 300) backed up once a day
  for ``--days`` days (full: 60), then restore and check ``--reps`` times;
  and the same final data backed up into a fresh repository, restored and
  checked the same way (the "within 1.2x of a fresh repository" target).

Check is each tool's check reading all data (as in ``bench.run``).  Every
restore in the first repetition is compared byte for byte with its source.
Restored trees of many files are deleted at the end of the run, not before the
next restore (a restore right after the deletion of 10,000 files paid for it in
file creation on this machine's file system: ``Scale._restore_and_check``).
Peak RSS is from ``/usr/bin/time`` (``bench.measure``).  Prints medians,
ratios strongroom/restic, the 1-minute load average before each case, and
writes every raw figure to ``bench/results/scale-DATE.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import strongroom
from bench import content, dataset, measure, tools
from strongroom.errors import StrongroomError, UsageError

HERE = Path(__file__).resolve().parent
DB_SHARE = 0.094  # the message store's share of bench.dataset at a given --size-mb
FULL = {"db_mb": 2000, "files": 200_000, "days_mb": 300, "days": 60}
REDUCED = {"db_mb": 200, "files": 20_000, "days_mb": 100, "days": 15}
CASES = ("msgstore", "small", "days")

# (case, measure) -> target for strongroom/restic, as printed.
TARGETS = {
    "restore_s": "<=0.7x restic",
    "check_s": "<=1.0x restic",
    "full_s": "<=0.5x restic",
    "unchanged_s": "<=0.5x restic",
    "incr_rss": "<=1.0x restic",
}


BEFORE = "strongroom-before"


class Before(tools.Strongroom):
    """Strongroom from another source tree (``--before SRC``: e.g. main's ``src/``), run
    by this Python with ``SRC`` first on ``PYTHONPATH``: the same run, interleaved."""

    src = ""

    def env(self) -> dict[str, str]:
        return {**super().env(), "PYTHONPATH": self.src}


class Scale:
    """One run: a work directory, the tools, raw figures per case, tool and measure."""

    def __init__(self, workdir: Path, names: list[str], reps: int) -> None:
        self.workdir, self.names, self.reps = workdir, names, reps
        self.raw: dict[str, dict[str, dict[str, list[float]]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(list)))
        self.verified: dict[str, dict[str, bool]] = defaultdict(dict)
        self.loadavg: dict[str, list[float]] = defaultdict(list)
        self.set_aside: list[Path] = []  # folders of restored trees deleted by cleanup()

    # -- helpers ------------------------------------------------------------------
    def _tool(self, case: str, name: str) -> tools.Tool:
        state = self.workdir / case / "state" / name
        state.mkdir(parents=True, exist_ok=True)
        if name.startswith(BEFORE):
            return Before(state)
        return tools.TOOLS[name.split("-")[0]](state)  # "strongroom-fresh": a second repository

    def _repo(self, case: str, name: str) -> Path:
        return self.workdir / case / "repos" / name

    def _run(self, case: str, name: str, op: str, cmd: list[str], tool: tools.Tool,
             cwd: Path | None = None) -> measure.Measurement:
        os.sync()  # the previous step's writeback must not land on this one
        m = measure.run(cmd, env=tool.env(), cwd=cwd)
        per = self.raw[case][name]
        per[f"{op}_s"].append(m.seconds)
        per[f"{op}_cpu"].append(m.cpu_seconds)
        per[f"{op}_rss"].append(m.peak_rss)
        return m

    def _init(self, case: str, name: str) -> tools.Tool:
        # A new repository gets new tool state too (an existing key file makes init refuse).
        shutil.rmtree(self.workdir / case / "state" / name, ignore_errors=True)
        tool = self._tool(case, name)
        repo = self._repo(case, name)
        shutil.rmtree(repo, ignore_errors=True)
        repo.parent.mkdir(parents=True, exist_ok=True)
        measure.run(tool.init(repo), env=tool.env())
        return tool

    def _restore_and_check(self, case: str, data: Path, marker: str, label: str, tag: str = "") -> None:
        """Restore and check every tool's repository ``--reps`` times, interleaved.

        A restored tree of many files is not deleted before the next restore but
        moved aside and deleted at the end of the run (:meth:`cleanup`).  On ext4
        without a journal (this machine's root file system) the inode allocator
        passes over every inode freed in the last 60 s (``recently_deleted`` in
        ``fs/ext4/ialloc.c``; 5 min while its inode table block is dirty), one
        page-cache lookup each, on every create: after deleting the previous
        tool's 10,000-file tree a create cost ~0.5-1 ms instead of ~30 us, for
        every tool, and how much depended on which deletions came shortly before
        (bench/README.md, "Small files: the harness's own deletions").
        """
        keep = _count_files(data) > KEEP_RESTORED_FILES
        for rep in range(self.reps):
            self.loadavg[case].append(os.getloadavg()[0])
            order = self.names[rep % len(self.names):] + self.names[:rep % len(self.names)]
            for name in order:
                tool = self._tool(case, name + tag)
                target = self.workdir / case / "restore" / name
                shutil.rmtree(target, ignore_errors=True)
                target.mkdir(parents=True)
                cmd, cwd = tool.restore(self._repo(case, name + tag), label, target)
                self._run(case, name + tag, "restore", cmd, tool, cwd)
                if rep == 0:
                    found = measure.find_restored(target, marker)
                    self.verified[case][name + tag] = found is not None and not measure.tree_diff(data, found)
                if keep:  # deleted at the end of the run, after every measurement
                    target.rename(self._aside(case, f"{name}{tag}-{rep}"))
                else:
                    shutil.rmtree(target)
            for name in order:
                tool = self._tool(case, name + tag)
                self._run(case, name + tag, "check", tool.check(self._repo(case, name + tag)), tool)

    def _aside(self, case: str, name: str) -> Path:
        aside = self.workdir / case / "restored" / name
        shutil.rmtree(aside, ignore_errors=True)
        aside.parent.mkdir(parents=True, exist_ok=True)
        self.set_aside.append(aside.parent)
        return aside

    def cleanup(self) -> None:
        """Delete the restored trees set aside (after the last measurement of the run)."""
        for d in dict.fromkeys(self.set_aside):
            shutil.rmtree(d, ignore_errors=True)
        self.set_aside.clear()

    # -- cases ---------------------------------------------------------------------
    def msgstore(self, db_mb: float, seed: int) -> None:
        """One message store: full backup, a day, incremental, restore, check."""
        data = self.workdir / "msgstore" / "data"
        shutil.rmtree(data, ignore_errors=True)
        dataset.generate(data, db_mb / DB_SHARE, seed, media=False)
        os.sync()
        live = {n: self._init("msgstore", n) for n in self.names}
        for name, tool in live.items():
            self._run("msgstore", name, "full", tool.backup(self._repo("msgstore", name), data, "day0"), tool)
        dataset.grow(data)
        os.sync()
        for name, tool in live.items():
            self._run("msgstore", name, "incr", tool.backup(self._repo("msgstore", name), data, "day1"), tool)
        self._restore_and_check("msgstore", data, dataset.DB_PATH, "day1")

    def small(self, files: int, seed: int) -> None:
        """Many small files: full backup, nothing-changed backups, restore, check."""
        data = self.workdir / "small" / "data"
        shutil.rmtree(data, ignore_errors=True)
        make_small_files(data, files, seed)
        os.sync()
        # The full backup --reps times too, each into a new repository, tools interleaved
        # (one run each was too noisy on a shared machine); the last ones are kept.
        for rep in range(self.reps):
            self.loadavg["small"].append(os.getloadavg()[0])
            live = {n: self._init("small", n) for n in self.names}
            for name in self.names[rep % len(self.names):] + self.names[:rep % len(self.names)]:
                tool = live[name]
                self._run("small", name, "full", tool.backup(self._repo("small", name), data, "full"),
                          tool)
        for rep in range(self.reps):
            for name in self.names[rep % len(self.names):] + self.names[:rep % len(self.names)]:
                tool = live[name]
                self._run("small", name, "unchanged", tool.backup(self._repo("small", name), data, f"u{rep}"),
                          tool)
        self._restore_and_check("small", data, SMALL_MARKER, f"u{self.reps - 1}")

    def days(self, size_mb: float, days: int, seed: int) -> None:
        """Daily backups for ``days`` days, then restore and check; and a fresh repository."""
        data = self.workdir / "days" / "data"
        shutil.rmtree(data, ignore_errors=True)
        dataset.generate(data, size_mb, seed)
        live = {n: self._init("days", n) for n in self.names}
        for day in range(days + 1):
            if day:
                dataset.grow(data)
            os.sync()
            for name, tool in live.items():
                self._run("days", name, "daily", tool.backup(self._repo("days", name), data, f"d{day}"), tool)
        self._restore_and_check("days", data, dataset.DB_PATH, f"d{days}")
        for name in self.names:  # the same final data in a fresh repository
            tool = self._init("days", name + "-fresh")
            self._run("days", name + "-fresh", "full", tool.backup(self._repo("days", name + "-fresh"), data,
                                                                      "fresh"), tool)
        self._restore_and_check("days", data, dataset.DB_PATH, "fresh", tag="-fresh")


SMALL_MARKER = "small-files-marker.txt"
#: A restored tree of more files than this is kept until the end of the run
#: (:meth:`Scale._restore_and_check`); smaller ones (the message store) are deleted
#: at once, so a --full run does not hold nine copies of a 2 GB store.
KEEP_RESTORED_FILES = 1000


def _count_files(root: Path) -> int:
    return sum(len(files) for _d, _dirs, files in os.walk(root))


def precompile(trees: list[Path]) -> None:
    """Byte-compile the Strongroom source trees that are run, as ``pip install`` does.

    With ``PYTHONDONTWRITEBYTECODE`` set (CI, some shells) an editable install or a
    ``--before`` tree is compiled from source on every start: about 0.2 s a command,
    which neither a user's install nor restic pays, and which differs between trees.
    """
    import compileall

    for tree in trees:
        if tree.is_dir() and not compileall.compile_dir(tree, quiet=1, force=False):
            raise UsageError(f"cannot byte-compile {tree}")


def make_small_files(root: Path, n: int, seed: int) -> None:
    """``n`` files of 1-8 KiB in directories of 500: half random bytes, half text."""
    rnd = random.Random(seed)
    corpus = content.text_corpus(random.Random(f"{seed}/corpus"), 1_000_000)
    root.mkdir(parents=True)
    (root / SMALL_MARKER).write_text("marker\n")
    for i in range(n):
        d = root / f"chat{i // 500:04d}"
        if i % 500 == 0:
            d.mkdir()
        size = rnd.randrange(1024, 8193)
        if i % 2:
            at = rnd.randrange(0, len(corpus) - size)
            body = corpus[at:at + size].encode()[:size]
        else:
            body = rnd.randbytes(size)
        (d / f"m{i:07d}.bin").write_bytes(body)


def summarize(raw: dict[str, dict[str, dict[str, list[float]]]]) -> list[dict[str, Any]]:
    """One row per case and measure: medians per tool, ratio strongroom/restic, target."""
    rows = []
    for case, per_tool in raw.items():
        measures = sorted({m for per in per_tool.values() for m in per})
        for m in measures:
            med = {t: statistics.median(v[m]) for t, v in per_tool.items() if v.get(m)}
            row: dict[str, Any] = {"case": case, "measure": m, "median": med}
            for tag in ("", "-fresh"):
                sr, rs = med.get("strongroom" + tag), med.get("restic" + tag)
                if sr is not None and rs:
                    row["ratio" + tag] = sr / rs
            before, rs = med.get(BEFORE), med.get("restic")
            if before is not None and rs:
                row["ratio_before"] = before / rs
            sr, fresh = med.get("strongroom"), med.get("strongroom-fresh")
            if sr is not None and fresh:
                row["vs_fresh"] = sr / fresh
            row["target"] = TARGETS.get(m, "")
            rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The printed table (times in s, RSS in MB)."""
    tools_seen = sorted({t for r in rows for t in r["median"]},
                        key=lambda t: (t.endswith("-fresh"), t != "strongroom", t))
    head = f"{'case':9} {'measure':12}" + "".join(f"{t:>17}" for t in tools_seen) + \
        f"{'sr/restic':>10}{'fresh':>8}{'sr/fresh':>9}  target"
    lines = [head]
    for r in rows:
        scale = 1e6 if r["measure"].endswith("_rss") else 1
        vals = "".join(f"{r['median'][t] / scale:17.2f}" if t in r["median"] else f"{'':17}"
                       for t in tools_seen)
        ratio = f"{r['ratio']:9.2f}x" if "ratio" in r else f"{'':10}"
        fresh = f"{r['ratio-fresh']:7.2f}x" if "ratio-fresh" in r else f"{'':8}"
        vsf = f"{r['vs_fresh']:8.2f}x" if "vs_fresh" in r else f"{'':9}"
        before = f"  before/restic {r['ratio_before']:.2f}x" if "ratio_before" in r else ""
        lines.append(f"{r['case']:9} {r['measure']:12}{vals}{ratio}{fresh}{vsf}  {r['target']}{before}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="the issue's sizes: " + json.dumps(FULL))
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of " + ",".join(CASES))
    ap.add_argument("--tools", default="strongroom,restic", help="comma-separated (default strongroom,restic)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of restore, check, unchanged backup")
    ap.add_argument("--db-mb", type=float, help=f"message store size (default {REDUCED['db_mb']})")
    ap.add_argument("--files", type=int, help=f"small files (default {REDUCED['files']})")
    ap.add_argument("--days-mb", type=float, help=f"chat dataset size for 'days' (default {REDUCED['days_mb']})")
    ap.add_argument("--days", type=int, help=f"daily backups (default {REDUCED['days']})")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=HERE / "data" / "scale", help="scratch (default bench/data/scale)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--before", type=Path, help="also run Strongroom from this src/ tree "
                    f"(tool {BEFORE!r}, e.g. a checkout of main)")
    ap.add_argument("--out", type=Path, help="results JSON (default bench/results/scale-DATE.json)")
    args = ap.parse_args(argv)
    sizes = dict(FULL if args.full else REDUCED)
    for k in sizes:
        if getattr(args, k) is not None:
            sizes[k] = getattr(args, k)
    try:
        cases = [c.strip() for c in args.cases.split(",") if c.strip()]
        if not cases or any(c not in CASES for c in cases):
            raise UsageError(f"--cases takes a subset of {','.join(CASES)}")
        if args.reps < 1 or sizes["files"] < 1 or sizes["days"] < 1 or sizes["db_mb"] < 1 or sizes["days_mb"] < 1:
            raise UsageError("--reps, --files, --days, --db-mb and --days-mb must be at least 1")
        names = tools.select(args.tools)
        if args.before is not None:
            Before.src = str(args.before.resolve())
        run = Scale(args.workdir, names + ([BEFORE] if args.before is not None else []), args.reps)
        precompile([Path(strongroom.__file__).parent]
                   + ([args.before.resolve() / "strongroom"] if args.before is not None else []))
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        try:
            for case in cases:
                print(f"bench.scale: {case}", file=sys.stderr, flush=True)
                if case == "msgstore":
                    run.msgstore(sizes["db_mb"], args.seed)
                elif case == "small":
                    run.small(int(sizes["files"]), args.seed)
                else:
                    run.days(sizes["days_mb"], int(sizes["days"]), args.seed)
        finally:
            run.cleanup()
            if not args.keep:
                shutil.rmtree(args.workdir, ignore_errors=True)
    except StrongroomError as exc:
        print(f"bench.scale: error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"bench.scale: hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    rows = summarize(run.raw)
    doc = {"started": started, "command": "python -m bench.scale " + " ".join(argv if argv is not None else sys.argv[1:]),
           "sizes": sizes, "reps": args.reps, "cases": cases,
           "versions": {n: tools.version_of(tools.TOOLS[n](args.workdir)) for n in names},
           "loadavg_1min_before_each_rep": run.loadavg, "restore_verified": run.verified,
           "raw": {c: {t: dict(v) for t, v in per.items()} for c, per in run.raw.items()}, "rows": rows}
    out = args.out or HERE / "results" / f"scale-{started[:16].replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(table(rows))
    print("load average (1 min) before each repetition: " + json.dumps(run.loadavg))
    ok = all(v for per in run.verified.values() for v in per.values())
    print(f"every restore byte-identical to its source: {'yes' if ok else 'NO'}; results: {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
