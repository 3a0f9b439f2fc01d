"""Peak RSS of ``backup``, ``restore`` and ``check`` at a given data size (issue 11).

    python -m bench.peak_rss SIZE_GB WORKDIR

Generates WORKDIR/src once (60 % one file of random MiB blocks with every
third zero, 30 % a SQLite message table, 10 % small files), makes a local
repository next to it, and runs each command through :func:`bench.measure.run`
(``/usr/bin/time``: the high-water mark of that process alone; not ``wait4``
in a big parent, which would carry the parent's peak).  Prints one line per
command.
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.reliability.campaign import CLI, cli_env

from bench import measure

MB = 1 << 20


def make_dataset(src: Path, size: int) -> None:
    """The mixed dataset described above, deterministic (seed 1)."""
    src.mkdir(parents=True)
    rnd = random.Random(1)
    with open(src / "video.raw", "wb") as fh:
        fh.writelines(bytes(MB) if i % 3 == 2 else rnd.randbytes(MB)
                      for i in range(int(size * 0.6) // MB))
    with sqlite3.connect(src / "msgstore.db") as db:
        db.execute("create table messages (id integer primary key, chat int, body blob)")
        rows = int(size * 0.3) // 1100
        for start in range(0, rows, 10_000):
            db.executemany("insert into messages (chat, body) values (?, ?)",
                           ((rnd.randrange(100), rnd.randbytes(1000))
                            for _ in range(min(10_000, rows - start))))
    db.close()
    for i in range(int(size * 0.1) // 2048):
        d = src / f"chat{i // 500:03d}"
        d.mkdir(exist_ok=True)
        (d / f"m{i:06d}.txt").write_bytes(rnd.randbytes(rnd.randrange(64, 4096)))


def main(argv: list[str]) -> int:
    size, root = int(float(argv[0]) * (1 << 30)), Path(argv[1])
    src = root / "src"
    if not src.exists():
        make_dataset(src, size)
    total = sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
    env = cli_env(root, str(root / "repo"), root / "repo.key")
    env["STRONGROOM_STATE_DIR"] = str(root / "state")
    if not (root / "repo").exists():
        subprocess.run([*CLI, "init", "--no-store"], env=env, check=True, capture_output=True)
    print(f"dataset {total} bytes")
    for name, args in (("backup", ["backup", str(src)]),
                       ("restore", ["restore", "latest", "--target", str(root / "out")]),
                       ("check", ["check"]), ("check --read-data", ["check", "--read-data"])):
        try:
            m = measure.run([*CLI, *args], env=env)
            code = 0
        except measure.ToolFailed as exc:
            m, code = None, exc.code
        print(f"{name}: exit {code}, peak RSS "
              f"{m.peak_rss / MB if m else -1:.0f} MiB, wall {m.seconds if m else -1:.2f} s",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
