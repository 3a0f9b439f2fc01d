"""The restore target: directory handles, safe file creation, the overwrite policy.

A snapshot is written by whoever holds K, and the target may be changed by
other processes while a restore runs; neither may make the restore write,
chmod or utime anything outside the target (spec §12).  So nothing below the
target is ever reached by a path: every directory is opened relative to its
parent's descriptor with ``O_NOFOLLOW|O_DIRECTORY`` (a symlink, planted in the
snapshot or swapped in meanwhile, makes the open fail instead of leading
elsewhere), files are created relative to that descriptor with
``O_CREAT|O_EXCL|O_NOFOLLOW`` under random names, their mode and times are set
on the open descriptor, and they are renamed relative to the same descriptor.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from ..errors import FormatError, LocalWriteError
from .manifest import KIND_DIR, KIND_FILE, Entry

OVERWRITE_MODES = ("always", "if-changed", "if-newer", "never")
#: The default replaces an existing file only when the snapshot's copy is newer
#: (docs/spec/cli.md explains the choice).
DEFAULT_OVERWRITE = "if-newer"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_TMP_PREFIX = ".strongroom-"
#: What ``decide`` can answer: a new entry, one that replaces an existing one, or
#: an existing one left as it is.
WRITE, REPLACE, SKIP = "write", "replace", "skip"
#: Zero runs at least this long, aligned in the file, are left as holes.
BLOCK = 4096
_ZERO_BLOCK = bytes(BLOCK)
#: Buffers one ``os.pwritev`` call takes at most (Linux: 1024).
_IOV_MAX = max(16, os.sysconf("SC_IOV_MAX") if "SC_IOV_MAX" in os.sysconf_names else 1024)


class TempNames:
    """Fresh temporary names: 96 random bits each, independent of the entry's own
    name (so they always fit the file system's name length).

    The random bytes are drawn 64 names at a time: one ``getrandom`` per file
    was measurable in a restore of many small files.
    """

    _BATCH = 64

    def __init__(self) -> None:
        self._pool = b""

    def __call__(self) -> str:
        if not self._pool:
            self._pool = secrets.token_bytes(12 * self._BATCH)
        raw, self._pool = self._pool[:12], self._pool[12:]
        return _TMP_PREFIX + raw.hex()


def write_error(what: str, path: str, exc: OSError) -> LocalWriteError:
    """A ``LocalWriteError`` for ``exc`` met while doing ``what`` to ``path``."""
    return LocalWriteError(f"cannot {what} {path}: {exc.strerror or exc}", path=path)


def checked_entries(entries: Iterable[Entry], what: str) -> Iterator[Entry]:
    """``entries``, refusing (``FormatError``) what no backup writes.

    Paths must be strictly increasing in walk order (which rules out duplicates),
    and nothing may lie below a record that is not a directory.  All of a
    record's descendants follow it directly in walk order, so comparing each
    record with the one before it is enough.
    """
    prev: Entry | None = None
    prev_key: tuple[str, ...] = ()
    for e in entries:
        key = tuple(e.path.split("/"))
        if prev is not None:
            if key == prev_key:
                raise FormatError(f"{what}: path {e.path!r} appears twice in the file list")
            if key < prev_key:
                raise FormatError(f"{what}: path {e.path!r} is out of order in the file list")
            if prev.kind != KIND_DIR and key[: len(prev_key)] == prev_key:
                raise FormatError(f"{what}: {e.path!r} lies below {prev.path!r}, "
                                  "which is not a directory")
        prev, prev_key = e, key
        yield e


def decide(policy: str, entry: Entry, existing: os.stat_result | None,
           read_link: Callable[[], str]) -> tuple[str, str]:
    """(action, reason) for ``entry`` (a file or symlink) given what is at its path.

    restic's meaning of the words: ``always`` replaces, ``if-changed`` keeps an
    existing file of the same size and mtime (a link with the same target),
    ``if-newer`` replaces only when the snapshot's copy has a later mtime,
    ``never`` keeps whatever exists.
    """
    if existing is None:
        return WRITE, ""
    if policy == "always":
        return REPLACE, ""
    if policy == "never":
        return SKIP, "exists"
    if policy == "if-newer":
        if entry.mtime_ns > existing.st_mtime_ns:
            return REPLACE, "older than the snapshot's copy"
        if entry.mtime_ns < existing.st_mtime_ns:
            return SKIP, "newer than the snapshot's copy"
        return SKIP, "as old as the snapshot's copy"
    if entry.kind == KIND_FILE:
        same = (stat.S_ISREG(existing.st_mode) and existing.st_size == entry.size
                and existing.st_mtime_ns == entry.mtime_ns)
    else:
        same = stat.S_ISLNK(existing.st_mode) and read_link() == entry.link
    return (SKIP, "unchanged") if same else (REPLACE, "changed")


def data_runs(data: bytes | memoryview, offset: int) -> list[tuple[int, int]]:
    """The ranges of ``data`` (to be written at file ``offset``) that are not whole
    zero blocks (``BLOCK``-aligned in the file).

    Only blocks that begin with a zero byte are looked at, found by one search in
    the copied first bytes of all the aligned blocks (a block-by-block loop was a
    writer thread's largest line in a restore of a message store, holding the
    GIL for every 4 KiB written), and each first by its last byte: a SQLite
    page full of zero runs made a search for a zero block crawl (0.3 s of CPU
    per 500 MB restored), and few blocks of real data begin and end with a zero
    byte.
    """
    n = len(data)
    first = (-offset) % BLOCK  # the first aligned block
    last = n - BLOCK
    if first > last:
        return [(0, n)] if n else []
    view = memoryview(data)
    heads = bytes(view[first:last + 1:BLOCK])  # byte 0 of each aligned block
    k = heads.find(0)
    if k < 0:
        return [(0, n)]
    runs: list[tuple[int, int]] = []
    start = 0
    while k >= 0:
        b = first + k * BLOCK
        if view[b + BLOCK - 1] or view[b:b + BLOCK] != _ZERO_BLOCK:
            k = heads.find(0, k + 1)
            continue
        e = b + BLOCK
        while e <= last and not view[e] and view[e:e + BLOCK] == _ZERO_BLOCK:
            e += BLOCK
        if b > start:
            runs.append((start, b))
        start = e
        k = heads.find(0, (e - first) // BLOCK)
    if start < n:
        runs.append((start, n))
    return runs


def _pwritev_all(fd: int, bufs: list[memoryview], offset: int) -> None:
    """Write every byte of ``bufs`` at ``offset`` (short writes resumed)."""
    i = 0
    while i < len(bufs):
        done = os.pwritev(fd, bufs[i:i + _IOV_MAX], offset)
        if not done:
            raise OSError(errno.EIO, "a write made no progress")
        offset += done
        while i < len(bufs) and done >= len(bufs[i]):
            done -= len(bufs[i])
            i += 1
        if done:  # part of bufs[i] was written
            bufs[i] = bufs[i][done:]


class FileSink:
    """A new file written with ``os.pwrite``, so several threads can fill it.

    It is created relative to an open directory (``dir_fd``, which the caller
    keeps open until the file is renamed or removed), exclusively and without
    following a link.  The file is created by its first write (in a writer
    thread) or, if it gets no write, by :meth:`finish`: creating a file can block
    for a long time while the file system's journal is busy flushing earlier
    writes, and the caller's thread should keep decoding and queueing meanwhile
    (py-spy on a loaded machine: ~2 s of a 9 s restore of 1 GB were the main
    thread in ``open``).
    """

    def __init__(self, dir_fd: int, name: str) -> None:
        self._dir_fd, self._name = dir_fd, name
        self._fd = -1
        self._end = 0  # the end of the last byte written so far
        self._closed = False
        self._lock = threading.Lock()

    def _create(self) -> int:
        return os.open(self._name, _NEW_FILE_FLAGS, 0o600, dir_fd=self._dir_fd)

    def _descriptor(self) -> int:
        fd = self._fd
        if fd >= 0:
            return fd
        with self._lock:
            if self._closed:
                raise ValueError("write to a closed FileSink")
            if self._fd < 0:
                self._fd = self._create()
            return self._fd

    def pwrite(self, data: bytes | memoryview, offset: int) -> int:
        """Write ``data`` at ``offset`` (creating the file on the first write)."""
        return self.pwritev((data,), offset)

    def pwritev(self, pieces: Sequence[bytes | memoryview], offset: int) -> int:
        """Write ``pieces`` one after another from ``offset``, in as few system calls
        as the holes allow (``os.pwritev``, at most ``IOV_MAX`` buffers a call).

        Aligned all-zero blocks are skipped: the new file reads as zeros there
        already, and they stay holes (a sparse file is restored sparse).  One
        call per piece cost a restore of a 2 GB message store ~64,000 writes,
        each a release and re-acquisition of the GIL contended by the fetch
        and writer threads: ~520,000 ``futex`` calls and as much system time
        as user time (strace -c, issue 12).
        """
        fd = self._descriptor()
        group: list[memoryview] = []  # buffers adjacent in the file
        start = end = offset  # the file range of ``group``
        at = offset
        for data in pieces:
            view = memoryview(data)
            for a, b in data_runs(view, at):
                if group and at + a != end:  # a hole before this run
                    _pwritev_all(fd, group, start)
                    group = []
                if not group:
                    start = at + a
                group.append(view[a:b])
                end = at + b
            at += len(view)
        if group:
            _pwritev_all(fd, group, start)
        # Unlocked: a lost update only costs finish() one ftruncate too many.
        self._end = max(self._end, end)
        return at - offset

    def finish(self, size: int, mode: int, mtime_ns: int) -> None:
        """Give the file its length (a zero tail stays a hole), mode and mtime, then close it.

        Mode and times are set on the open descriptor (``fchmod``/``futimens``),
        never by path.
        """
        with self._lock:
            if self._closed:
                raise ValueError("finish of a closed FileSink")
            self._closed = True
            fd, self._fd = self._fd, -1
        if fd < 0:
            fd = self._create()
        try:
            if size != self._end:  # a zero tail left as a hole
                os.ftruncate(fd, size)
            os.fchmod(fd, mode)
            os.utime(fd, ns=(mtime_ns, mtime_ns))
        finally:
            os.close(fd)

    def close(self) -> None:
        """Close without finishing (after an error; idempotent)."""
        with self._lock:
            self._closed = True
            fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


class Dir:
    """An open directory of the target, shared by the walk and the files being written in it.

    ``refs`` counts its users (the walk while it is on the stack, each file job in
    it); when the last lets go, its recorded mode and times are applied through
    the descriptor and the descriptor is closed.  ``fd`` is -1 for a directory
    that does not exist (a dry run, or a probe ahead of the writer).
    """

    __slots__ = ("created", "entry", "fd", "name", "path", "refs")

    def __init__(self, fd: int, name: str, path: str, created: bool) -> None:
        self.fd, self.name, self.path, self.created = fd, name, path, created
        self.entry: Entry | None = None
        self.refs = 1


class DirStack:
    """The chain of open directories from the target down to the current entry's parent.

    Entries come in walk order, so the chain changes only at its end.  With
    ``create`` missing directories are made (mode 0777 less the umask until their
    own mode is applied); without it (a dry run, the look-ahead probe) they are
    only looked up.
    """

    def __init__(self, root_fd: int, root: Path, *, create: bool,
                 on_release: Callable[[Dir], None] | None = None) -> None:
        self.root = root
        self.create = create
        self._on_release = on_release
        self._stack = [Dir(root_fd, "", "", False)]
        self._names: tuple[str, ...] | None = ()  # the names of the stack below the root
        self._stack[0].refs += 1  # the root descriptor belongs to the caller

    def show(self, rel: str) -> str:
        """How a path below the target is named in messages."""
        return str(self.root / rel)

    def enter(self, parts: tuple[str, ...]) -> Dir:
        """The open directory ``parts`` (below the target), opening or creating what is missing."""
        stack = self._stack
        if parts == self._names:  # the same directory as the last entry (most of them)
            return stack[-1]
        common = 0
        n, depth = len(parts), len(stack) - 1
        while common < n and common < depth and stack[common + 1].name == parts[common]:
            common += 1
        while len(stack) > common + 1:
            self.release(stack.pop())
        self._names = None  # unknown until the stack is complete (_child may fail)
        for name in parts[common:]:
            stack.append(self._child(stack[-1], name))
        self._names = parts
        return stack[-1]

    def _child(self, parent: Dir, name: str) -> Dir:
        path = f"{parent.path}/{name}" if parent.path else name
        if parent.fd < 0:
            return Dir(-1, name, path, False)
        created = False
        if self.create:
            try:
                os.mkdir(name, 0o777, dir_fd=parent.fd)
                created = True
            except FileExistsError:
                pass
            except OSError as exc:
                raise write_error("create", self.show(path), exc) from exc
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent.fd)
        except FileNotFoundError:
            if self.create:  # removed again by someone else between mkdir and open
                raise LocalWriteError(f"cannot create {self.show(path)}: it vanished") from None
            return Dir(-1, name, path, False)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                raise LocalWriteError(
                    f"refusing to restore into {self.show(path)}: it exists in the target "
                    "and is not a directory (restore never follows symlinks)") from exc
            raise write_error("open", self.show(path), exc) from exc
        return Dir(fd, name, path, created)

    def release(self, d: Dir) -> None:
        """One user of ``d`` is done with it; the last applies its metadata and closes it."""
        d.refs -= 1
        if d.refs > 0 or d.fd < 0:
            return
        try:
            if self._on_release is not None:
                self._on_release(d)
        finally:
            os.close(d.fd)
            d.fd = -1

    def close(self, *, apply: bool) -> None:
        """Let go of the whole chain (innermost first); ``apply`` False skips metadata."""
        if not apply:
            self._on_release = None
        self._names = ()
        while len(self._stack) > 1:
            self.release(self._stack.pop())


def lstat_at(d: Dir, name: str) -> os.stat_result | None:
    """What is at ``name`` in ``d`` (a link itself, not what it points to), or None."""
    if d.fd < 0:
        return None
    try:
        return os.stat(name, dir_fd=d.fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def set_dir_meta(d: Dir, mode: int, mtime_ns: int, show: str) -> None:
    """Mode and times of an open directory, through its descriptor."""
    try:
        os.fchmod(d.fd, mode)
        os.utime(d.fd, ns=(mtime_ns, mtime_ns))
    except OSError as exc:
        if exc.errno != errno.EPERM:  # not ours (e.g. restoring into /): keep going
            raise write_error("set the mode and times of", show, exc) from exc


def remove_at(d: Dir, name: str) -> None:
    """Remove our temporary ``name`` in ``d`` (quietly: it may not exist yet)."""
    try:
        os.unlink(name, dir_fd=d.fd)
    except OSError:
        pass
