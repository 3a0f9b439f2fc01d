"""Measuring one tool process: wall time, peak RSS, and the size of a directory tree.

Peak memory is the tool's own high-water mark as GNU ``/usr/bin/time``
reports it (``%M``).  Not ``os.wait4`` on a child of this process: Linux
carries the parent's RSS high-water mark into a child across fork/vfork and
exec, so a harness holding 300 MB read 313 MB for ``/bin/true``.
``/usr/bin/time`` is a small C program, so what leaks into its child is its own
~2 MB.  CPU time still comes from ``os.wait4`` on the ``time`` process, which
includes the tool it waited for.
"""

from __future__ import annotations

import filecmp
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from strongroom.errors import StrongroomError


class ToolFailed(StrongroomError):
    """A benchmarked tool exited with an error."""

    def __init__(self, cmd: Sequence[str], code: int, output: str) -> None:
        tail = output.strip().splitlines()[-5:]
        super().__init__(f"{' '.join(cmd[:3])} ... exited {code}: " + " | ".join(tail))
        self.code = code
        self.output = output


@dataclass(frozen=True)
class Measurement:
    """One finished tool process."""

    seconds: float
    cpu_seconds: float  # user + system time of the process, all its threads
    peak_rss: int  # bytes
    output: str


#: GNU time (Debian package ``time``, installed by scripts/setup-system.sh).
TIME = "/usr/bin/time"


def run(cmd: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | Path | None = None,
        ok_codes: Sequence[int] = (0,), timeout: float = 1800) -> Measurement:
    """Run *cmd* to completion; return its wall time and peak RSS (ToolFailed on a bad exit).

    A process still running after *timeout* seconds is killed, with everything
    it started (and so fails).
    """
    if not os.access(TIME, os.X_OK):
        raise StrongroomError(f"{TIME} is needed to measure peak memory honestly",
                              hint="apt-get install time (scripts/setup-system.sh)")
    full_env = {**os.environ, **(env or {})}
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r") as rss:
        start = time.perf_counter()
        proc = subprocess.Popen([TIME, "-q", "-f", "%M", "-o", rss.name, *cmd], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
                                start_new_session=True)
        killer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
        killer.start()
        try:
            # wait4 instead of Popen.wait: its rusage holds the CPU time of the tool
            # that ``time`` waited for.
            _pid, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read().decode(errors="replace")
        peak_kib = _last_int(rss.read())
    if proc.returncode not in ok_codes:
        raise ToolFailed(cmd, proc.returncode, output)
    return Measurement(seconds, usage.ru_utime + usage.ru_stime, peak_kib * 1024, output)


def _last_int(text: str) -> int:
    # ``time`` writes "Command exited with non-zero status N" before the figure.
    words = [w for w in text.split() if w.isdigit()]
    return int(words[-1]) if words else 0


def tree_bytes(root: str | Path) -> int:
    """Sum of the apparent sizes of all files under *root* (0 if it does not exist)."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:  # a tool's temp file vanishing between walk and stat
                pass
    return total


def tree_diff(expected: str | Path, actual: str | Path) -> list[str]:
    """Relative paths that differ between two trees (missing, extra, or other bytes)."""
    want, got = _files(expected), _files(actual)
    problems = [f"missing {p}" for p in sorted(want - got)] + [f"extra {p}" for p in sorted(got - want)]
    for rel in sorted(want & got):
        if not filecmp.cmp(os.path.join(expected, rel), os.path.join(actual, rel), shallow=False):
            problems.append(f"differs {rel}")
    return problems


def _files(root: str | Path) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root) for d, _dirs, files in os.walk(root) for f in files}


def find_restored(target: str | Path, marker: str) -> Path | None:
    """The directory under *target* that holds *marker* (tools nest restored paths differently)."""
    for dirpath, _dirs, _files in os.walk(target):
        if os.path.isfile(os.path.join(dirpath, marker)):
            return Path(dirpath)
    return None


def drop_caches() -> bool:
    """Flush dirty pages and try to drop the page cache; True if the kernel allowed it."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False
