"""How responsive a process stays: heartbeat measurements shared by tests and bench.

``thread_stall`` runs a 1 ms heartbeat *thread* while ``work()`` runs: its
longest gap shows a call holding the GIL.  ``loop_lag_parts`` runs a 5 ms
heartbeat *task* on the running event loop while ``make()`` is awaited: how
late it woke at worst, in all and the part this process is responsible for
(:class:`LoopLag`).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


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
    not on a run queue, so this counts only CPUs being busy.
    """
    return _schedstat("/proc/thread-self/schedstat")[1]


def _schedstat(path: str) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable waiting for one) of a thread; zeros if unknown."""
    try:
        with open(path) as f:
            on_cpu, waiting = f.read().split()[:2]
        return int(on_cpu) / 1e9, int(waiting) / 1e9
    except (OSError, ValueError):
        return 0.0, 0.0


def _threads_cpu(exclude: int) -> dict[int, float]:
    """CPU seconds of every other thread of this process, by thread id (Linux; else {})."""
    out = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return {}
    for tid in tids:
        if int(tid) != exclude:
            out[int(tid)] = _schedstat(f"/proc/self/task/{tid}/schedstat")[0]
    return out


def _machine_busy() -> float:
    """CPU seconds all processes have used since boot (``/proc/stat``; 0 if unknown)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:8]]
    except (OSError, ValueError):
        return 0.0
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class LoopLag:
    """How late a 5 ms heartbeat task woke at worst, and why (seconds).

    ``raw``: the latest wake, whatever made it late.  ``ours``: the latest wake
    minus the part of the loop thread's wait for a CPU that this process's own
    threads cannot explain, i.e. the lag this process is responsible for.  For
    each beat the loop thread's run-queue wait ``q`` is split: our other
    threads used ``c`` CPU seconds meanwhile, so they can have held all
    ``ncpu`` CPUs for at most ``c / ncpu`` seconds; ``min(q, c / ncpu)`` stays
    counted (the strict choice), the rest was other processes holding the
    CPUs.  A call on the loop, a worker holding the GIL, and a worker
    preempted while holding it all stay in ``ours``.  ``others``: the CPUs
    other processes used during the run, in cores (0 on a quiet machine).
    """

    raw: float
    ours: float
    others: float


async def loop_lag_parts(make: Callable[[], Awaitable[object]]) -> LoopLag:
    """:class:`LoopLag` of a 5 ms heartbeat task on the running loop while ``make()`` runs."""
    loop = asyncio.get_running_loop()
    me = threading.get_native_id()
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    raw = ours = 0.0
    running = True

    async def beat() -> None:
        nonlocal raw, ours
        # Beats cover the time without gaps: each is timed from the previous wake, so
        # the time spent reading the counters (which may itself wait for the GIL)
        # counts too, in the next beat.  A thread that ends within a beat drops out
        # of ``used`` (lenient, small).
        t = loop.time()
        queued, others = _schedstat("/proc/thread-self/schedstat")[1], _threads_cpu(me)
        while running:
            await asyncio.sleep(0.005)
            now = loop.time()
            late = now - t - 0.005
            waited_now, others_now = _schedstat("/proc/thread-self/schedstat")[1], \
                _threads_cpu(me)
            waited = waited_now - queued
            used = sum(cpu - others.get(tid, 0.0) for tid, cpu in others_now.items())
            own_wait = min(waited, max(0.0, used) / (ncpu or 1))
            raw = max(raw, late)
            ours = max(ours, late - waited + own_wait)
            t, queued, others = now, waited_now, others_now

    task = asyncio.create_task(beat())
    await asyncio.sleep(0.02)
    raw = ours = 0.0
    started, busy0, cpu0 = time.perf_counter(), _machine_busy(), time.process_time()
    try:
        await make()
    finally:
        running = False
        await task
    wall = time.perf_counter() - started
    others = (_machine_busy() - busy0 - (time.process_time() - cpu0)) / wall
    return LoopLag(raw, ours, max(0.0, others))


async def loop_lag(make: Callable[[], Awaitable[object]]) -> float:
    """The latest a 5 ms heartbeat task woke while ``make()`` was awaited (seconds)."""
    return (await loop_lag_parts(make)).raw


__all__ = ["LoopLag", "loop_lag", "loop_lag_parts", "run_delay", "thread_stall"]
