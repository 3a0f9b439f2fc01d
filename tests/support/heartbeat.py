"""How responsive a process stays: heartbeat measurements shared by tests and bench.

``thread_stall`` runs a 1 ms heartbeat *thread* while ``work()`` runs: its
longest gap shows a call holding the GIL.  ``loop_lag`` runs a 5 ms heartbeat
*task* on the running event loop while ``make()`` is awaited: how late it woke
at worst shows the loop being blocked.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable


def thread_stall(work: Callable[[], object]) -> tuple[float, float]:
    """(seconds ``work()`` took, longest gap of a 1 ms heartbeat thread meanwhile)."""
    stop, worst = threading.Event(), [0.0]

    def beat() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            worst[0] = max(worst[0], now - last)
            last = now

    t = threading.Thread(target=beat)
    t.start()
    time.sleep(0.02)
    try:
        started = time.perf_counter()
        work()
        took = time.perf_counter() - started
    finally:
        stop.set()
        t.join()
    return took, worst[0]


def run_delay() -> float:
    """Seconds this thread has spent runnable but waiting for a CPU (Linux; else 0).

    ``/proc/thread-self/schedstat``: time on a CPU, time waiting on a run queue,
    time slices.  A thread waiting for the GIL or blocked in a call is asleep,
    not on a run queue, so this counts only the machine being busy.
    """
    try:
        with open("/proc/thread-self/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


async def loop_lag(make: Callable[[], Awaitable[object]], *, blocked_only: bool = False) -> float:
    """The latest a 5 ms heartbeat task woke while ``make()`` was awaited (seconds).

    ``blocked_only``: minus the time the loop's thread waited for a CPU (other
    processes), which leaves how long the loop was *blocked*: by a call on it,
    or by a worker holding the GIL.
    """
    loop = asyncio.get_running_loop()
    worst, running = 0.0, True

    async def beat() -> None:
        nonlocal worst
        while running:
            t, queued = loop.time(), run_delay()
            await asyncio.sleep(0.005)
            late = loop.time() - t - 0.005
            if blocked_only:
                late -= run_delay() - queued
            worst = max(worst, late)

    task = asyncio.create_task(beat())
    await asyncio.sleep(0.02)
    worst = 0.0
    try:
        await make()
    finally:
        running = False
        await task
    return worst


__all__ = ["loop_lag", "run_delay", "thread_stall"]
