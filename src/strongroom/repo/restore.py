"""Restore a snapshot into a directory.

Each file is written under a temporary name in its final directory and renamed
only when complete, with mode and mtime set, so a partial file never carries
its real name.  Frames are downloaded and decrypted a few ahead by a thread
pool sized to the backend (more requests in flight for a network store) while
the caller's thread writes; frames that follow each other in a pack are
fetched with one ranged read.  Damage raises ``DataDamaged``
naming the object and the file; with ``allow_damaged`` the damaged files are
skipped, listed in the summary, and everything else is restored.
"""

from __future__ import annotations

import errno
import functools
import itertools
import os
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..errors import DataDamaged, LocalWriteError
from ..progress import Progress
from .locks import Lock
from .manifest import KIND_DIR, KIND_FILE, KIND_SYMLINK, Entry
from .pack import BlobLocation

if TYPE_CHECKING:
    from ..api import RestoreSummary
    from .engine import Engine

#: Decoded bytes fetched ahead of the writer, per fetch thread (spec §13).
PREFETCH_PER_FETCHER = 4 * 1024 * 1024
FETCH_THREADS = 3
WRITE_THREADS = 3
MAX_WRITE_BYTES = 16 * 1024 * 1024
WRITE_UNIT = 1024 * 1024
#: Largest span of consecutive frames fetched with one ranged read.
MAX_SPAN = 8 * 1024 * 1024
_FrameKey = tuple[bytes, int]


class Sink(Protocol):
    """Where a restored file's bytes go (a test can inject one that fails)."""

    def pwrite(self, data: bytes, offset: int) -> int:
        """Write ``data`` at ``offset``; thread-safe for distinct ranges."""

    def close(self) -> None:
        """Close the file."""


class FileSink:
    """A new file written with ``os.pwrite``, so several threads can fill it.

    The file is created by its first write (in a writer thread) or, if it gets
    no write, by :meth:`close`: creating a file can block for a long time while
    the file system's journal is busy flushing earlier writes, and the caller's
    thread should keep decoding and queueing meanwhile (py-spy on a loaded
    machine: ~2 s of a 9 s restore of 1 GB were the main thread in ``open``).
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd = -1
        self._closed = False
        self._lock = threading.Lock()

    def _descriptor(self) -> int:
        fd = self._fd
        if fd >= 0:
            return fd
        with self._lock:
            if self._closed:
                raise ValueError("write to a closed FileSink")
            if self._fd < 0:
                self._fd = os.open(self._path,
                                   os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            return self._fd

    def pwrite(self, data: bytes, offset: int) -> int:
        """Write all of ``data`` at ``offset`` (creating the file on the first write)."""
        fd = self._descriptor()
        view, done = memoryview(data), 0
        while done < len(data):
            done += os.pwrite(fd, view[done:], offset + done)
        return done

    def close(self) -> None:
        """Create the file if nothing was written, then close it (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            fd, self._fd = self._fd, -1
        if fd < 0:
            fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        os.close(fd)


class _FileJob:
    """A file being restored: its pending writes and any damage found."""

    def __init__(self, entry: Entry, dest: Path, tmp: Path, sink: Sink) -> None:
        self.entry, self.dest, self.tmp, self.sink = entry, dest, tmp, sink
        self.writes: list[Future[int]] = []
        self.problem: DataDamaged | None = None
        self.submitted = False  # all its writes are queued
        self.pending: list[bytes] = []  # small pieces not yet handed to a writer
        self.pending_size = 0
        self.reported = 0  # bytes already shown as progress


def _close_quietly(sink: Sink) -> None:
    try:
        sink.close()
    except OSError:
        pass


def _extends(span: list[BlobLocation], loc: BlobLocation) -> bool:
    """Whether ``loc`` starts where ``span`` ends and the span stays within ``MAX_SPAN``."""
    first, last = span[0], span[-1]
    return (loc.frame_offset == last.frame_offset + last.frame_len
            and loc.frame_offset + loc.frame_len - first.frame_offset <= MAX_SPAN)


def _wanted(path: str, include: list[str]) -> bool:
    return not include or any(path == p or path.startswith(p + "/") or p.startswith(path + "/")
                              for p in include)


class RestoreRun:
    """State of one restore (use once)."""

    def __init__(self, engine: Engine, progress: Progress, allow_damaged: bool) -> None:
        self.engine, self.progress, self.allow_damaged = engine, progress, allow_damaged
        self.files = self.bytes = 0
        self.damaged: list[str] = []
        self._dirs: list[tuple[Path, Entry]] = []
        self._dirs_ok: set[Path] = set()  # made or checked: inside the target
        self._tmp_counter = itertools.count()
        self._cur_key: _FrameKey | None = None
        self._cur_frame: bytes | DataDamaged = b""
        self._jobs: deque[_FileJob] = deque()
        self._inflight_bytes = 0
        self._lock = threading.Lock()
        self._prefetch_bytes = FETCH_THREADS * PREFETCH_PER_FETCHER

    def run(self, ref: str, target: Path, include: Sequence[str]) -> RestoreSummary:
        """Restore snapshot ``ref`` (or the paths under ``include``) into ``target``."""
        from ..api import RestoreSummary

        lock = Lock(self.engine.backend, self.engine.key, False, self.engine.clock,
                    self.engine.rng).acquire()
        try:
            doc = self.engine.find_doc(ref)
            inc = [p.strip("/") for p in include if p.strip("/")]
            self._mkdir(target)
            self._root = target.resolve()
            self._lock_held = lock
            self.progress.start("restore", doc.size, "bytes")
            fetchers = max(FETCH_THREADS, self.engine.concurrency())
            self._prefetch_bytes = fetchers * PREFETCH_PER_FETCHER
            with ThreadPoolExecutor(fetchers, thread_name_prefix="strongroom-fetch") as pool, \
                    ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="strongroom-write") as writer:
                self._writer = writer
                try:
                    self._restore_all(doc, target, inc, pool)
                finally:
                    self._finish_jobs()
            # Directory times last: writing files into a directory changes its mtime.
            for path, entry in reversed(self._dirs):
                self._set_meta(path, entry)
            self.progress.finish()
        finally:
            lock.release()
        return RestoreSummary(doc.id, self.files, self.bytes, list(self.damaged))

    def _selected(self, doc: object, inc: list[str]) -> Iterator[Entry]:
        # Include prefixes select a path itself, what is under it, and its parent dirs.
        for e in self.engine.entries(doc):  # type: ignore[arg-type]
            if _wanted(e.path, inc):
                yield e

    def _restore_all(self, doc: object, target: Path, inc: list[str],
                     pool: ThreadPoolExecutor) -> None:
        entries_a, entries_b = itertools.tee(self._selected(doc, inc))
        frames = self._prefetch(self._frame_keys(entries_a), pool)
        for entry in entries_b:
            self._lock_held.refresh_if_due()
            dest = target / entry.path
            if entry.kind == KIND_DIR:
                # Its own path is resolved (it may exist already, as a link), which
                # covers its parents too.
                self._checked_dir(dest, dest)
                self._dirs.append((dest, entry))
            elif entry.kind == KIND_SYMLINK:
                self._symlink(dest, entry)
            elif entry.kind == KIND_FILE:
                self._file(dest, entry, frames)

    def _locate(self, blob_id: bytes) -> tuple[bytes, BlobLocation] | None:
        return self.engine.index().blobs.get(blob_id)

    def _frame_keys(self, entries: Iterator[Entry]) -> Iterator[tuple[_FrameKey, BlobLocation]]:
        last: _FrameKey | None = None
        for e in entries:
            for cid in e.chunks if e.kind == KIND_FILE else ():
                where = self._locate(cid)
                if where is None:
                    continue
                key = (where[0], where[1].frame_offset)
                if key != last:
                    last = key
                    yield key, where[1]

    def _prefetch(self, keys: Iterator[tuple[_FrameKey, BlobLocation]], pool: ThreadPoolExecutor
                  ) -> Iterator[tuple[_FrameKey, Future[bytes]]]:
        # Frames that follow each other in one pack are fetched as one span (one
        # request instead of one per frame).  What is queued ahead is bounded in
        # bytes, not frames: with 128 KiB frames (SQLite pages) a bound of a few
        # frames kept a single 4 MiB span in flight, one request at a time.
        queue: deque[tuple[_FrameKey, Future[bytes], int]] = deque()
        queued = 0
        span: list[BlobLocation] = []
        span_pack = b""
        for key, loc in keys:
            if span and (key[0] != span_pack or not _extends(span, loc)):
                submitted = self._submit_span(span_pack, span, pool)
                queue.extend(submitted)
                queued += sum(size for _k, _f, size in submitted)
                span = []
            span_pack = key[0]
            span.append(loc)
            while queue and queued > self._prefetch_bytes:
                k, fut, size = queue.popleft()
                queued -= size
                yield k, fut
        if span:
            queue.extend(self._submit_span(span_pack, span, pool))
        while queue:
            k, fut, _size = queue.popleft()
            yield k, fut

    def _submit_span(self, pack_id: bytes, locs: list[BlobLocation], pool: ThreadPoolExecutor
                     ) -> list[tuple[_FrameKey, Future[bytes], int]]:
        futures: list[Future[bytes]] = [Future() for _ in locs]

        def fetch() -> None:
            try:
                frames = self.engine.fetch_frames(pack_id, locs)
            except BaseException as exc:  # noqa: BLE001 - waiters must never hang
                # Every frame of the span sees the storage error.
                for f in futures:
                    f.set_exception(exc)
                return
            for f, frame in zip(futures, frames, strict=True):
                if isinstance(frame, DataDamaged):
                    f.set_exception(frame)
                else:
                    f.set_result(frame)

        pool.submit(fetch)
        return [((pack_id, loc.frame_offset), f, loc.frame_raw)
                for loc, f in zip(locs, futures, strict=True)]

    def _checked_dir(self, path: Path, dest: Path) -> None:
        """Create directory ``path`` for ``dest``, refusing one a symlink leads out of the target.

        Checked once per directory (resolving a path costs about one ``lstat`` per
        component), then remembered in ``_dirs_ok``.
        """
        if path in self._dirs_ok:
            return
        if not path.resolve().is_relative_to(self._root):
            raise LocalWriteError(f"refusing to write {dest}: a symlink leads outside the target")
        self._mkdir(path)
        self._dirs_ok.add(path)

    def _file(self, dest: Path, entry: Entry,
              frames: Iterator[tuple[_FrameKey, Future[bytes]]]) -> None:
        tmp = dest.with_name(f".{dest.name}.strongroom-{os.getpid()}-{next(self._tmp_counter)}")
        self._checked_dir(dest.parent, dest)
        try:
            sink = self._open(tmp)
        except OSError as exc:
            raise LocalWriteError(f"cannot write {dest}: {exc.strerror or exc}") from exc
        job = _FileJob(entry, dest, tmp, sink)
        self._jobs.append(job)
        offset = 0
        for cid in entry.chunks:
            where = self._locate(cid)
            if where is None:
                reason = self.engine.index().missing_reason()
                job.problem = job.problem or DataDamaged(
                    f"blob {cid.hex()[:16]} {reason} (affects {entry.path})")
                continue
            key, loc = (where[0], where[1].frame_offset), where[1]
            if key != self._cur_key:
                self._cur_key, fut = next(frames)
                self._cur_frame = self._frame_result(fut)
            if isinstance(self._cur_frame, DataDamaged):
                job.problem = job.problem or DataDamaged(
                    f"{self._cur_frame.message} (affects {entry.path})")
                continue
            if job.problem is None:
                job.pending.append(self._cur_frame[loc.inner : loc.inner + loc.length])
                job.pending_size += loc.length
                if job.pending_size >= WRITE_UNIT:
                    offset = self._flush_pending(job, offset)
        if job.problem is None:
            self._flush_pending(job, offset)
        job.submitted = True
        while self._jobs and self._jobs[0].submitted and all(f.done() for f in self._jobs[0].writes):
            self._finalize(self._jobs.popleft())

    def _flush_pending(self, job: _FileJob, offset: int) -> int:
        # Consecutive small blobs (SQLite pages) become one write: one task per
        # 4 KiB page made the pool's lock and GIL hand-offs dominate the restore.
        if not job.pending:
            return offset
        data = job.pending[0] if len(job.pending) == 1 else b"".join(job.pending)
        job.pending, job.pending_size = [], 0
        self._submit_write(job, data, offset)
        # A big file moves the bar as it is written, not only when it is complete.
        self.progress.advance(len(data))
        job.reported += len(data)
        return offset + len(data)

    def _submit_write(self, job: _FileJob, data: bytes, offset: int) -> None:
        # Writes run in a thread pool (file I/O releases the GIL); the bytes in
        # flight are capped so memory stays bounded whatever the file sizes.
        while self._inflight_bytes + len(data) > MAX_WRITE_BYTES and self._jobs_inflight():
            self._wait_oldest_write()
        fut = self._writer.submit(job.sink.pwrite, data, offset)
        self._inflight_bytes += len(data)
        fut.add_done_callback(functools.partial(self._written, len(data)))
        job.writes.append(fut)

    def _written(self, n: int, _fut: object = None) -> None:
        with self._lock:
            self._inflight_bytes -= n

    def _jobs_inflight(self) -> bool:
        return any(not f.done() for j in self._jobs for f in j.writes)

    def _wait_oldest_write(self) -> None:
        for j in self._jobs:
            for f in j.writes:
                if not f.done():
                    wait([f])
                    return

    def _finalize(self, job: _FileJob) -> None:
        """Wait for a file's writes, then rename it into place (or discard it)."""
        error: OSError | None = None
        for f in job.writes:
            exc = f.exception()
            if isinstance(exc, OSError) and error is None:
                error = exc
            elif exc is not None and not isinstance(exc, OSError):
                raise exc
        try:
            job.sink.close()
        except OSError as exc:
            error = error or exc
        if error is not None:
            _remove(job.tmp)
            raise LocalWriteError(f"cannot write {job.dest}: {error.strerror or error}") from error
        # The rest of the file's size: all of it for an empty or damaged file.
        self.progress.advance(max(0, job.entry.size - job.reported))
        if job.problem is not None:
            _remove(job.tmp)
            if not self.allow_damaged:
                raise job.problem
            self.damaged.append(job.entry.path)
            self.progress.warn(f"{job.entry.path}: not restored, {job.problem.message}")
            return
        try:
            self._set_meta(job.tmp, job.entry)
            os.replace(job.tmp, job.dest)
        except (OSError, LocalWriteError) as exc:
            _remove(job.tmp)
            if isinstance(exc, LocalWriteError):
                raise
            raise LocalWriteError(f"cannot write {job.dest}: {exc.strerror or exc}") from exc
        self.files += 1
        self.bytes += job.entry.size

    def _finish_jobs(self) -> None:
        try:
            while self._jobs:
                self._finalize(self._jobs.popleft())
        finally:
            for job in self._jobs:  # after an error: no temporary file is left behind
                wait(job.writes)
                _close_quietly(job.sink)
                _remove(job.tmp)
            self._jobs.clear()

    @staticmethod
    def _frame_result(fut: Future[bytes]) -> bytes | DataDamaged:
        try:
            return fut.result()
        except DataDamaged as exc:
            return exc

    def _open(self, path: Path) -> Sink:
        hook = self.engine._test_only_open_for_write
        if hook is not None:
            sink: Sink = hook(path)
            return sink
        return FileSink(path)

    def _symlink(self, dest: Path, entry: Entry) -> None:
        self._checked_dir(dest.parent, dest)
        # A checked directory at or under ``dest`` must be checked again: it could
        # now be reached through this link.  (Replacing a directory by a link fails,
        # so this is belt and braces; links are rare in a chat backup.)
        self._dirs_ok = {d for d in self._dirs_ok if d != dest and dest not in d.parents}
        tmp = dest.with_name(f".{dest.name}.strongroom-{os.getpid()}-{next(self._tmp_counter)}")
        try:
            os.symlink(entry.link, tmp)
            os.utime(tmp, ns=(entry.mtime_ns, entry.mtime_ns), follow_symlinks=False)
            os.replace(tmp, dest)
        except OSError as exc:
            _remove(tmp)
            raise LocalWriteError(f"cannot create {dest}: {exc.strerror or exc}") from exc

    @staticmethod
    def _mkdir(path: Path) -> None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LocalWriteError(f"cannot create {path}: {exc.strerror or exc}") from exc

    @staticmethod
    def _set_meta(path: Path, entry: Entry) -> None:
        try:
            os.chmod(path, entry.mode & 0o7777)
            os.utime(path, ns=(entry.mtime_ns, entry.mtime_ns))
        except OSError as exc:
            if exc.errno not in (errno.EPERM,):
                raise LocalWriteError(f"cannot set times of {path}: {exc.strerror}") from exc


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
