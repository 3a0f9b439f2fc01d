"""restore keeps freed memory for reuse on glibc (cli/allocator.py) and does nothing elsewhere."""

from __future__ import annotations

import platform
import sys

from strongroom.cli import allocator


def _glibc() -> bool:
    return sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def test_thresholds_are_set_on_glibc_and_nothing_breaks_elsewhere() -> None:
    assert allocator.keep_freed_memory() is _glibc()
    assert allocator.keep_freed_memory() is _glibc()  # twice is harmless


def test_allocations_still_work_after_the_change() -> None:
    allocator.keep_freed_memory()
    bufs = [bytearray(size) for size in (1, 4096, 128 * 1024, 2 << 20, 9 << 20)]
    for b in bufs:
        b[-1] = 7
    assert [b[-1] for b in bufs] == [7] * len(bufs)


def test_collect_less_freezes_what_is_loaded_and_collects_young_objects_less_often() -> None:
    import gc

    old = gc.get_threshold()
    try:
        allocator.collect_less()
        assert gc.get_threshold() == (allocator.GC_THRESHOLD, *old[1:])
        assert gc.get_freeze_count() > 0
        cycle: list[object] = []
        cycle.append(cycle)  # a cycle made afterwards is still collected
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*old)
