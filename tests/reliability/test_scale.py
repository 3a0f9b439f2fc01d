"""Scale and resources campaign: a large file, many small files, a big SQLite database.

Each dataset is backed up and restored with the real CLI in a child process
whose stderr is a pseudo-terminal (so progress bars are drawn, as for a user);
the peak RSS of each child is read from ``os.wait4``'s rusage (in a small
launcher process, see ``_LAUNCHER``).  Restores are
compared byte for byte.  The memory bound asserted at CI scale is generous
(400 MB): it is behaviour (memory does not grow with the data), not timing.

Sizes (``STRONGROOM_CAMPAIGN_SCALE``): ci = 300 MB file, 5,000 files, 100 MB
database; full = 10 GB, 100,000 files, 5 GB.
"""

from __future__ import annotations

import json
import os
import pty
import random
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.terminal import read_until_closed

from .campaign import CLI, cli, cli_env, record, sized, tree_digest

MB = 1024 * 1024
BIG_FILE = sized(300, 10 * 1024) * MB
SMALL_FILES = sized(5_000, 100_000)
DB_SIZE = sized(100, 5 * 1024) * MB
RSS_BOUND = 400 * MB
SEED = 6005


# Runs the command and reports its peak RSS.  A separate small launcher is needed:
# Linux carries the parent's RSS high-water mark into a child across fork/vfork and
# exec, so ``wait4`` in the (large) pytest process would report at least pytest's own
# peak; the launcher's is ~10 MB.
_LAUNCHER = """
import json, os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump({"exit": os.waitstatus_to_exitcode(status), "maxrss_kib": usage.ru_maxrss}, out)
"""


def _run_on_pty(args: list[str], env: dict[str, str], report: Path) -> tuple[int, int, str]:
    """Run ``strongroom ARGS`` with stderr on a pty; (exit status, peak RSS bytes, stderr)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER, str(report), *CLI, *args],
                            env={**env, "COLUMNS": "100", "TERM": "xterm"},
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks: list[bytes] = []
    reader = threading.Thread(target=read_until_closed, args=(master, chunks), daemon=True)
    reader.start()
    proc.wait()
    reader.join(timeout=10)
    os.close(master)
    assert proc.returncode == 0, b"".join(chunks)[-2000:]
    result = json.loads(report.read_text())
    return result["exit"], result["maxrss_kib"] * 1024, b"".join(chunks).decode("utf-8", "replace")


def _big_file(path: Path) -> None:
    """Random 1 MiB blocks with every third block zero (sparse-ish, mostly incompressible)."""
    rnd = random.Random(SEED)
    with open(path, "wb") as fh:
        fh.writelines(bytes(MB) if i % 3 == 2 else rnd.randbytes(MB)
                      for i in range(BIG_FILE // MB))


def _small_files(root: Path) -> None:
    rnd = random.Random(SEED + 1)
    for i in range(SMALL_FILES):
        d = root / f"chat{i // 500:03d}"
        if i % 500 == 0:
            d.mkdir(parents=True)
        (d / f"msg{i:06d}.txt").write_bytes(rnd.randbytes(rnd.randrange(64, 4096)))


def _database(path: Path) -> None:
    rnd = random.Random(SEED + 2)
    with sqlite3.connect(path) as db:
        db.execute("create table messages (id integer primary key, chat int, body blob)")
        rows = DB_SIZE // 1100
        for start in range(0, rows, 10_000):
            db.executemany("insert into messages (chat, body) values (?, ?)",
                           ((rnd.randrange(100), rnd.randbytes(1000))
                            for _ in range(min(10_000, rows - start))))
    db.close()


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path``, emptied afterwards: at full scale one dataset, its repository and
    its restore take ~27 GB (the 10 GB file), and pytest keeps every test's folder
    until the session ends, so without this the three datasets need ~45 GB."""
    yield tmp_path
    for child in tmp_path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["big-file", "small-files", "sqlite"])
def test_backup_and_restore_in_bounded_memory(scratch: Path, dataset: str) -> None:
    tmp_path = scratch
    src = tmp_path / "src"
    src.mkdir()
    {"big-file": lambda: _big_file(src / "video.raw"),
     "small-files": lambda: _small_files(src),
     "sqlite": lambda: _database(src / "msgstore.db")}[dataset]()
    size = sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
    env = cli_env(tmp_path, str(tmp_path / "repo"), tmp_path / "repo.key")
    assert cli(["init", "--no-store"], env).returncode == 0

    code, backup_rss, backup_err = _run_on_pty(["backup", str(src)], env,
                                               tmp_path / "backup-rusage.json")
    assert code == 0, backup_err[-2000:]
    code, restore_rss, restore_err = _run_on_pty(
        ["restore", "latest", "--target", str(tmp_path / "out")], env,
        tmp_path / "restore-rusage.json")
    assert code == 0, restore_err[-2000:]
    assert tree_digest(tmp_path / "out" / str(src).lstrip("/")) == tree_digest(src)

    # Progress was drawn on the terminal (rich redraws with carriage returns / cursor codes).
    assert "\r" in backup_err or "\x1b[" in backup_err, backup_err[-500:]
    assert "\r" in restore_err or "\x1b[" in restore_err, restore_err[-500:]
    record("scale", {"dataset": dataset, "bytes": size, "backup_peak_rss": backup_rss,
                     "restore_peak_rss": restore_rss})
    assert backup_rss < RSS_BOUND and restore_rss < RSS_BOUND, (backup_rss, restore_rss)


def test_index_memory_per_blob_matches_the_spec() -> None:
    """Memory the loaded index keeps per blob, measured with tracemalloc (deterministic)."""
    import gc
    import tracemalloc

    from strongroom.repo.index import Index, PackInfo, decode_index, encode_index
    from strongroom.repo.pack import BlobLocation

    rnd = random.Random(SEED)
    n, per_pack = 40_000, 2_000
    packs = [(rnd.randbytes(16), PackInfo(rnd.randbytes(32), 10**7),
              [(rnd.randbytes(32), BlobLocation(0, 1, 36 + 100 * i, 100, 4096, 0, 4096))
               for i in range(per_pack)]) for _ in range(n // per_pack)]
    plain = encode_index(packs)
    del packs
    gc.collect()
    tracemalloc.start()
    try:
        idx = Index()
        for pid, info, entries in decode_index(plain, "index/x"):
            idx.add_pack(pid, info, entries)
        gc.collect()
        per_blob = tracemalloc.get_traced_memory()[0] / n
    finally:
        tracemalloc.stop()
    assert len(idx.blobs) == n
    assert per_blob <= 150, per_blob
