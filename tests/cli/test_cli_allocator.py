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
