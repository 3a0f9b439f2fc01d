"""The C allocator's thresholds for commands that churn large buffers (glibc only).

A restore allocates a buffer per frame (128 KiB decoded, up to a few MiB
for media) and per ranged read (up to 8 MiB), in several threads.  glibc's
defaults serve such sizes with ``mmap`` at first and give freed memory back to
the kernel eagerly, so the same pages are faulted in again and again: 150,000
minor page faults and about 0.3 s of system time per 500 MB restored
(``bench/README.md``).  A fixed mmap threshold of 1 MiB and a trim threshold of
32 MiB keep that memory for reuse (27,000 faults; peak RSS about 6 MB higher).
Anywhere else (another C library, no ``mallopt``) this does nothing.
"""

from __future__ import annotations

import ctypes
import gc
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 20
TRIM_THRESHOLD = 32 << 20


def keep_freed_memory() -> bool:
    """Raise glibc's trim and fix its mmap threshold; True if it was done."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


#: Allocations between two collections of the youngest generation during a restore
#: (Python's default is 700).
GC_THRESHOLD = 10_000


def collect_less() -> None:
    """Fewer and cheaper cyclic garbage collections for the rest of the command.

    What is loaded by then (modules, classes, the command's setup) is frozen out
    of every later collection, and the youngest generation is collected after
    10,000 allocations instead of 700.  Restoring a 500 MB message store makes
    about 260 young collections at the default, mostly while the index is
    loaded and the plan built, where they hold the GIL that the fetching threads
    need (about 60 ms of a 1.8 s restore; 6 ms so).  Reference counting frees
    everything else as before; the restore makes few reference cycles.
    """
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
