"""bench.vault_bench's per-thread figures: CPU on the main thread against the others, and
the context switches of all threads (not only the main one's, as /proc/PID/status has)."""

from __future__ import annotations

import os
import threading
import time

from bench.vault_bench import _tasks, thread_stats


def test_a_busy_thread_and_a_sleeping_one_are_told_apart() -> None:
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    def nap() -> None:
        for _ in range(20):
            time.sleep(0.005)

    busy = threading.Thread(target=spin)
    busy.start()
    try:
        before = _tasks(os.getpid())
        napper = threading.Thread(target=nap)
        napper.start()
        time.sleep(0.3)
        napper.join()  # still in the listing? A thread that ends is simply not counted
        after = _tasks(os.getpid())
    finally:
        stop.set()
        busy.join()
    stats = thread_stats(os.getpid(), before, after, 2)
    # The spinning thread's CPU is a worker's (per op: halved), not the main thread's.
    assert float(stats["worker_threads_cpu_ms_per_op"]) > 50  # type: ignore[arg-type]
    assert float(stats["main_thread_cpu_ms_per_op"]) < float(  # type: ignore[arg-type]
        stats["worker_threads_cpu_ms_per_op"])  # type: ignore[arg-type]
    assert stats["worker_threads_busy"] == 1
    # The main thread slept once and the spinner was preempted: switches are counted.
    assert float(stats["voluntary_switches_per_op"]) >= 0.5  # type: ignore[arg-type]
    assert 0.0 <= float(stats["kernel_cpu_share"]) <= 1.0  # type: ignore[arg-type]
