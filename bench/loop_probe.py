"""What makes an asyncio app's event loop late while ``strongroom.aio`` works?

Run: ``python3 -m bench.loop_probe [--runs 3] [--size-mb 32] [--sqlite]
[--files 500] [--dump-ms 25] [backup restore login]``

A 5 ms heartbeat task runs on the loop during each operation.  Before every
beat it arms ``faulthandler.dump_traceback_later``, whose watchdog is a C
thread: if the beat is later than ``--dump-ms`` it writes every thread's
Python stack *while the culprit still runs*, GIL or not; the beat cancels it
when it wakes.  Each late beat is split as ``tests/support/heartbeat.py``
splits it: the loop thread's wait for a CPU (run queue), its own CPU time,
and the rest, which is the loop waiting for the GIL; and that minus the
longest wait for a CPU of any other thread of the process meanwhile (a GIL
holder that the OS preempted makes the loop wait that long: what remains is
the GIL held by running code).  At the end, for beats
whose GIL wait passed ``--dump-ms``, the busy worker frames the dumps show
are counted (idle pool threads and the loop itself left out): the code that
held the GIL, or ran while the GIL holder waited for a CPU.  A long GIL wait
with no busy frame at all is a thread that was handed the GIL and then waited
for a CPU itself (its frame is still the idle one): the machine's load.

``--sqlite`` makes the database a SQLite-headed file (4 KiB pages, one blob
per page: the index grows by 256 blobs per MiB); otherwise it is random bytes
(FastCDC).  Figures and what was found are in ``docs/sdk.md`` §6.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import faulthandler
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import strongroom
from strongroom import aio, opaque

MiB = 1024 * 1024


def _sched(path: str = "/proc/thread-self/schedstat") -> tuple[float, float]:
    """(on-CPU seconds, run-queue seconds) of a thread (the calling one by default)."""
    try:
        with open(path) as f:
            cpu, queued = f.read().split()[:2]
        return int(cpu) / 1e9, int(queued) / 1e9
    except (OSError, ValueError):
        return 0.0, 0.0


def _workers_queued(me: int) -> dict[int, float]:
    """Run-queue seconds of every other thread of this process."""
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task") if int(t) != me]
    except OSError:
        return {}
    return {t: _sched(f"/proc/self/task/{t}/schedstat")[1] for t in tids}


async def probe(make: Callable[[], Awaitable[object]], dump_ms: float, fd: int
                ) -> list[tuple[float, float, float, float]]:
    """(late, run-queue wait, loop CPU, longest worker run-queue wait) per beat; dumps
    stacks into ``fd``."""
    loop = asyncio.get_running_loop()
    me = threading.get_native_id()
    beats: list[tuple[float, float, float, float]] = []
    running = True

    async def beat() -> None:
        while running:
            cpu, queued = _sched()
            workers = _workers_queued(me)
            faulthandler.dump_traceback_later(dump_ms / 1000 + 0.005, file=fd)
            t = loop.time()
            await asyncio.sleep(0.005)
            late = loop.time() - t - 0.005
            faulthandler.cancel_dump_traceback_later()
            cpu2, queued2 = _sched()
            waits = [q - workers.get(tid, 0.0) for tid, q in _workers_queued(me).items()]
            beats.append((late, queued2 - queued, cpu2 - cpu, max(waits, default=0.0)))
            if late * 1000 > dump_ms:
                os.write(fd, f"=== LATE {late * 1000:.1f} runq {(queued2 - queued) * 1000:.1f}"
                             f" cpu {(cpu2 - cpu) * 1000:.1f}\n".encode())

    task = asyncio.create_task(beat())
    await asyncio.sleep(0.02)
    beats.clear()
    try:
        await make()
    finally:
        running = False
        await task
    return beats


_IDLE = ("concurrent/futures/thread.py\", line 8", "threading.py\", line 3",
         "selectors.py", "bench/loop_probe.py")


def culprits(dump_text: str, dump_ms: float) -> collections.Counter[str]:
    """Busy worker frames in the dumps of beats whose GIL wait passed ``dump_ms``."""
    found: collections.Counter[str] = collections.Counter()
    pieces = dump_text.split("=== LATE")
    for i in range(1, len(pieces)):
        head = pieces[i].splitlines()[0].split()
        late, runq, cpu = float(head[0]), float(head[2]), float(head[4])
        if late - runq - cpu < dump_ms:
            continue
        dumped = pieces[i - 1].split("\n", 1)[1] if i > 1 else pieces[0]
        for thread in re.split(r"\n(?=Thread 0x|Current thread)", dumped):
            frames = [ln.strip() for ln in thread.splitlines() if ln.strip().startswith("File")]
            if not frames or any(mark in frames[0] for mark in _IDLE):
                continue
            ours = [f for f in frames if "strongroom/" in f] or frames
            found[re.sub(r'^File "[^"]*/(src/)?', "", ours[0])] += 1
    return found


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ops", nargs="*", default=["backup", "restore", "login"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size-mb", type=int, default=32)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--dump-ms", type=float, default=25.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="loop-probe-") as tmp:
        root = Path(tmp)
        src = root / "src"
        (src / "Media").mkdir(parents=True)

        def new_database() -> None:  # every backup run stores new data
            with open(src / "msgstore.db", "wb") as f:
                if args.sqlite:
                    f.write(b"SQLite format 3\x00\x10\x00" + os.urandom(82))
                f.writelines(os.urandom(MiB) for _ in range(args.size_mb))

        new_database()
        for i in range(args.files):
            (src / "Media" / f"IMG-{i:04}.jpg").write_bytes(os.urandom(20_000))
        key = strongroom.BackupKey.generate()
        location = str(root / "repo")
        strongroom.Repository.create(location, key).close()
        outs = iter(range(10**6))
        setup, cfg = opaque.ServerSetup.generate(), opaque.OpaqueConfig()
        req, st = opaque.RegistrationClient.start(b"pw", config=cfg)
        rec, _ = opaque.RegistrationClient.finish(
            st, opaque.RegistrationServer.respond(setup, req, b"a", config=cfg), config=cfg)

        async def backup() -> None:
            await (await aio.open(location, key)).backup([src])

        async def restore() -> None:
            await (await aio.open(location, key)).restore("latest", root / f"o{next(outs)}",
                                                          strip=str(src))

        async def login() -> None:
            ke1, c = opaque.LoginClient.start(b"pw", config=cfg)
            ke2, _s = opaque.LoginServer.start(setup, rec, ke1, b"a", config=cfg)
            await aio.call(opaque.LoginClient.finish, c, ke2, config=cfg)

        ops = {"backup": backup, "restore": restore, "login": login}
        if "restore" in args.ops and "backup" not in args.ops:
            asyncio.run(backup())
        dumps = root / "dumps.txt"
        print(f"load average {_load()}; {args.size_mb} MiB "
              f"{'SQLite' if args.sqlite else 'random'} + {args.files} files; switch interval "
              f"{sys.getswitchinterval() * 1000:.0f} ms")
        for name in args.ops:
            with open(dumps, "w") as out:
                for _ in range(args.runs):
                    if name == "backup":
                        new_database()
                    started = time.perf_counter()
                    beats = asyncio.run(probe(ops[name], args.dump_ms, out.fileno()))
                    worst = max(beats)
                    gil = max(late - q - c for late, q, c, _ in beats)
                    alone = max(late - q - c - w for late, q, c, w in beats)
                    print(f"  {name:8} {time.perf_counter() - started:5.1f} s  latest beat "
                          f"{worst[0] * 1000:6.1f} ms (run queue {worst[1] * 1000:5.1f})  "
                          f"longest GIL wait {gil * 1000:6.1f} ms, less the longest worker "
                          f"wait for a CPU {alone * 1000:6.1f} ms  beats {len(beats)}")
            for frame, n in culprits(dumps.read_text(), args.dump_ms).most_common(8):
                print(f"      {n:3d}x  {frame}")
        print(f"load average {_load()}")


if __name__ == "__main__":
    main()
