"""Restore a snapshot into a directory.

Nothing is written, chmodded or timed outside the target, whatever the
snapshot holds and whatever appears in the target meanwhile: all file-system
work goes through directory descriptors (:mod:`strongroom.repo.target`).
Each file is written under a random temporary name in its final directory and
renamed only when complete, with mode and mtime set on the open file, so a
partial file never carries its real name.  What already exists is replaced,
or kept, by the overwrite policy.  All-zero chunks are not written: they stay
holes, so a sparse file stays sparse.  Frames are downloaded and decrypted a
few ahead by a thread pool sized to the backend (more requests in flight for a
network store) while the caller's thread writes; frames that follow each
other in a pack are fetched with one ranged read.  Damage raises
``DataDamaged`` naming the object and the file; with ``allow_damaged`` the
damaged files are skipped, listed in the summary, and everything else is
restored.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..cancel import NEVER, Cancel
from ..errors import DataDamaged, LocalWriteError, UsageError
from ..progress import Progress, report_item, report_totals
from .manifest import KIND_DIR, KIND_FILE, KIND_SYMLINK, Entry
from .pack import BlobLocation
from .strip import Strip
from .target import (
    DEFAULT_OVERWRITE,
    OVERWRITE_MODES,
    REPLACE,
    SKIP,
    Dir,
    DirStack,
    FileSink,
    TempNames,
    checked_entries,
    decide,
    lstat_at,
    remove_at,
    set_dir_meta,
    write_error,
)

if TYPE_CHECKING:
    from ..api import RestoreSummary
    from .engine import Engine

__all__ = ["FileSink", "RestoreOptions", "RestoreRun", "Sink"]

#: Decoded bytes fetched ahead of the writer, per fetch thread (spec §13).
PREFETCH_PER_FETCHER = 4 * 1024 * 1024
FETCH_THREADS = 3
WRITE_THREADS = 3
MAX_WRITE_BYTES = 16 * 1024 * 1024
WRITE_UNIT = 1024 * 1024
#: Files open at once (each holds a descriptor, and one of its directory).
MAX_OPEN_FILES = 128
#: Largest span of consecutive frames fetched with one ranged read.
MAX_SPAN = 8 * 1024 * 1024
_SPECIAL_BITS = 0o7000
_FrameKey = tuple[bytes, int]
#: (entry, action, reason) as decided against what exists in the target.
_Decided = tuple[Entry, str, str]


@dataclass(frozen=True)
class RestoreOptions:
    """How to restore.

    ``overwrite`` is one of ``always``, ``if-changed``, ``if-newer`` (default),
    ``never``; ``dry_run`` decides everything and writes nothing;
    ``special_bits`` restores setuid, setgid and sticky bits (dropped
    otherwise); ``on_item(action, path, reason)`` hears each file and link as it
    is decided: ``write`` (new), ``replace`` or ``skip`` (an existing one kept);
    ``strip`` is a path prefix to drop (:mod:`.strip`; empty: paths are kept).
    """

    allow_damaged: bool = False
    overwrite: str = DEFAULT_OVERWRITE
    dry_run: bool = False
    special_bits: bool = False
    on_item: Callable[[str, str, str], None] | None = None
    strip: str = ""

    def __post_init__(self) -> None:
        if self.overwrite not in OVERWRITE_MODES:
            raise ValueError(f"overwrite must be one of {', '.join(OVERWRITE_MODES)}")
        if self.strip:
            Strip(self.strip)  # UsageError now, before anything is opened

    def mode(self, st_mode: int) -> int:
        """The permission bits to give a restored file or directory."""
        return st_mode & (0o7777 if self.special_bits else 0o7777 & ~_SPECIAL_BITS)


class Sink(Protocol):
    """Where a restored file's bytes go (a test can inject one that fails)."""

    def pwrite(self, data: bytes, offset: int) -> int:
        """Write ``data`` at ``offset``; thread-safe for distinct ranges."""

    def finish(self, size: int, mode: int, mtime_ns: int) -> None:
        """Set length, mode and mtime on the open file, then close it."""

    def close(self) -> None:
        """Close without finishing (after an error; idempotent)."""


class _FileJob:
    """A file being restored: its pending writes and any damage found."""

    def __init__(self, entry: Entry, where: Dir, tmp: str, sink: Sink) -> None:
        self.entry, self.where, self.tmp, self.sink = entry, where, tmp, sink
        self.writes: list[Future[int]] = []
        self.problem: DataDamaged | None = None
        self.submitted = False  # all its writes are queued
        self.pending: list[bytes] = []  # small pieces not yet handed to a writer
        self.pending_size = 0
        self.length = 0  # the file's length so far (written bytes and holes)
        self.reported = 0  # bytes already shown as progress
        self.replaces = False


def _extends(span: list[BlobLocation], loc: BlobLocation) -> bool:
    """Whether ``loc`` starts where ``span`` ends and the span stays within ``MAX_SPAN``."""
    first, last = span[0], span[-1]
    return (loc.frame_offset == last.frame_offset + last.frame_len
            and loc.frame_offset + loc.frame_len - first.frame_offset <= MAX_SPAN)


def _wanted(path: str, include: list[str]) -> bool:
    return not include or any(path == p or path.startswith(p + "/") or p.startswith(path + "/")
                              for p in include)


def _is_zero(data: bytes) -> bool:
    # The end bytes first: almost every non-zero chunk is decided without a scan.
    return data[:1] == b"\0" and data[-1:] == b"\0" and data.count(0) == len(data)


class RestoreRun:
    """State of one restore (use once)."""

    def __init__(self, engine: Engine, progress: Progress, options: RestoreOptions,
                 cancel: Cancel = NEVER) -> None:
        self.engine, self.progress, self.options = engine, progress, options
        #: Checked per file and per chunk; a cancelled restore keeps only complete files.
        self.cancel = cancel
        self.files = self.bytes = self.replaced = self.skipped = 0
        self.damaged: list[str] = []
        self._cur_key: _FrameKey | None = None
        self._cur_frame: bytes | DataDamaged = b""
        self._zero_id: bytes | None = None
        self._temp_name = TempNames()
        self._jobs: deque[_FileJob] = deque()
        self._inflight_bytes = 0
        self._lock = threading.Lock()
        self._prefetch_bytes = FETCH_THREADS * PREFETCH_PER_FETCHER

    def run(self, ref: str, target: Path, include: Sequence[str]) -> RestoreSummary:
        """Restore snapshot ``ref`` (or the paths under ``include``) into ``target``."""
        from ..api import RestoreSummary

        lock = self.engine.lock(False)  # refreshed in the background (spec §9)
        try:
            self._lock_held = lock
            doc = self.engine.find_doc(ref)
            inc = [p.strip("/") for p in include if p.strip("/")]
            root_fd = self._open_target(target)
            try:
                report_totals(self.progress, doc.files, doc.size)
                self.progress.start("restore", doc.size, "bytes")
                entries: Iterator[Entry] = (
                    e for e in checked_entries(self.engine.entries(doc), f"snapshots/{doc.id}")
                    if _wanted(e.path, inc))
                strip = Strip(self.options.strip) if self.options.strip else None
                if strip is not None:
                    entries = strip(entries)
                probe = DirStack(root_fd, target, create=False)
                try:
                    decided = self._decided(entries, probe)
                    if self.options.dry_run:
                        self._dry_run(decided)
                    else:
                        self._restore(decided, DirStack(root_fd, target, create=True,
                                                        on_release=self._dir_done))
                finally:
                    probe.close(apply=False)
                self.progress.finish()
                if strip is not None and not strip.matched:
                    raise UsageError(f"nothing in snapshot {doc.id[:8]} lies under "
                                     f"/{strip.prefix}", hint="the snapshot's paths are "
                                     + ", ".join(doc.paths))
            finally:
                if root_fd >= 0:
                    os.close(root_fd)
        finally:
            lock.release()
        return RestoreSummary(doc.id, self.files, self.bytes, list(self.damaged),
                              self.replaced, self.skipped, self.options.dry_run)

    def _open_target(self, target: Path) -> int:
        # The target itself is the user's choice: links in its own path are followed.
        try:
            if not self.options.dry_run:
                target.mkdir(parents=True, exist_ok=True)
            return os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            if self.options.dry_run:
                return -1  # nothing exists yet: everything would be written
            raise LocalWriteError(f"cannot create {target}: it vanished") from None
        except OSError as exc:
            raise write_error("create", str(target), exc) from exc

    def _decided(self, entries: Iterator[Entry], probe: DirStack) -> Iterator[_Decided]:
        """Each entry with what to do about it, looked up (never created) ahead of the writer."""
        for e in entries:
            parts = tuple(e.path.split("/"))
            if e.kind == KIND_DIR:
                probe.enter(parts)  # an existing non-directory in its place is refused here
                yield e, "", ""
                continue
            where = probe.enter(parts[:-1])
            st = lstat_at(where, parts[-1])
            if st is not None and st.st_mode & 0o170000 == 0o040000:
                raise LocalWriteError(f"cannot restore {probe.show(e.path)}: a directory "
                                      "is in the way")
            action, why = decide(self.options.overwrite, e, st,
                                 functools.partial(os.readlink, parts[-1], dir_fd=where.fd))
            yield e, action, why

    def _report(self, entry: Entry, action: str, why: str) -> None:
        if action == REPLACE:
            self.replaced += 1
        elif action == SKIP:
            self.skipped += 1
        if self.options.on_item is not None:
            self.options.on_item(action, entry.path, why)

    def _dry_run(self, decided: Iterator[_Decided]) -> None:
        for entry, action, why in decided:
            self._lock_held.refresh_if_due()
            self.cancel.check()
            if entry.kind == KIND_DIR:
                continue
            self._report(entry, action, why)
            if entry.kind == KIND_FILE and action != SKIP:
                self.files += 1
                self.bytes += entry.size
            self.progress.advance(entry.size if entry.kind == KIND_FILE else 0)

    def _restore(self, decided: Iterator[_Decided], dirs: DirStack) -> None:
        self._dirs = dirs
        fetchers = max(FETCH_THREADS, self.engine.concurrency())
        self._prefetch_bytes = fetchers * PREFETCH_PER_FETCHER
        ok = False
        try:
            with ThreadPoolExecutor(fetchers, thread_name_prefix="strongroom-fetch") as pool, \
                    ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="strongroom-write") as writer:
                self._writer = writer
                try:
                    self._restore_all(decided, pool)
                finally:
                    self._finish_jobs()
            ok = True
        finally:
            # Directory modes and times last (writing into a directory changes its
            # mtime), through their descriptors; after an error, not at all.
            dirs.close(apply=ok)

    def _dir_done(self, d: Dir) -> None:
        e = d.entry
        if e is not None and (d.created or self.options.overwrite == "always"):
            set_dir_meta(d, self.options.mode(e.mode), e.mtime_ns, self._dirs.show(d.path))

    def _restore_all(self, decided: Iterator[_Decided], pool: ThreadPoolExecutor) -> None:
        items_a, items_b = itertools.tee(decided)
        frames = self._prefetch(self._frame_keys(items_a), pool)
        for entry, action, why in items_b:
            self._lock_held.refresh_if_due()
            self.cancel.check()
            parts = tuple(entry.path.split("/"))
            if entry.kind == KIND_DIR:
                self._dirs.enter(parts).entry = entry
                continue
            self._report(entry, action, why)
            if action == SKIP:
                self.progress.advance(entry.size if entry.kind == KIND_FILE else 0)
                continue
            where = self._dirs.enter(parts[:-1])
            if entry.kind == KIND_SYMLINK:
                self._symlink(where, parts[-1], entry)
            elif entry.kind == KIND_FILE:
                report_item(self.progress, "/" + entry.path)
                self._file(where, parts[-1], entry, frames, action == REPLACE)

    def _locate(self, blob_id: bytes) -> tuple[bytes, BlobLocation] | None:
        return self.engine.index().blobs.get(blob_id)

    def _frame_keys(self, items: Iterator[_Decided]) -> Iterator[tuple[_FrameKey, BlobLocation]]:
        last: _FrameKey | None = None
        for e, action, _why in items:
            if e.kind != KIND_FILE or action == SKIP:
                continue
            for cid in e.chunks:
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

    def _file(self, where: Dir, name: str, entry: Entry,
              frames: Iterator[tuple[_FrameKey, Future[bytes]]], replaces: bool) -> None:
        while len(self._jobs) >= MAX_OPEN_FILES:
            self._finalize(self._jobs.popleft())
        tmp = self._temp_name()
        job = _FileJob(entry, where, tmp, self._open(where, tmp))
        job.replaces = replaces
        where.refs += 1
        self._jobs.append(job)
        for cid in entry.chunks:
            self.cancel.check()
            where_blob = self._locate(cid)
            if where_blob is None:
                reason = self.engine.index().missing_reason()
                job.problem = job.problem or DataDamaged(
                    f"blob {cid.hex()[:16]} {reason} (affects {entry.path})")
                continue
            key, loc = (where_blob[0], where_blob[1].frame_offset), where_blob[1]
            if key != self._cur_key:
                self._cur_key, fut = next(frames)
                self._cur_frame = self._frame_result(fut)
            if isinstance(self._cur_frame, DataDamaged):
                job.problem = job.problem or DataDamaged(
                    f"{self._cur_frame.message} (affects {entry.path})")
                continue
            if job.problem is None:
                self._add_chunk(job, cid, self._cur_frame, loc)
        if job.problem is None:
            self._flush_pending(job)
            if job.length != entry.size:
                job.problem = DataDamaged(f"snapshot record of {entry.path} gives size "
                                          f"{entry.size}, its chunks {job.length}")
        job.submitted = True
        while self._jobs and self._jobs[0].submitted and all(f.done() for f in self._jobs[0].writes):
            self._finalize(self._jobs.popleft())

    def _add_chunk(self, job: _FileJob, cid: bytes, frame: bytes, loc: BlobLocation) -> None:
        if cid != self._zero_id:
            data = frame[loc.inner : loc.inner + loc.length]
            if not _is_zero(data):
                job.pending.append(data)
                job.pending_size += loc.length
                if job.pending_size >= WRITE_UNIT:
                    self._flush_pending(job)
                return
            self._zero_id = cid
        # A hole instead of written zeros: a sparse file stays sparse, and a
        # snapshot repeating one zero blob cannot fill the disk.
        self._flush_pending(job)
        job.length += loc.length

    def _flush_pending(self, job: _FileJob) -> None:
        # Consecutive small blobs (SQLite pages) become one write: one task per
        # 4 KiB page made the pool's lock and GIL hand-offs dominate the restore.
        if not job.pending:
            return
        data = job.pending[0] if len(job.pending) == 1 else b"".join(job.pending)
        job.pending, job.pending_size = [], 0
        self._submit_write(job, data, job.length)
        # A big file moves the bar as it is written, not only when it is complete.
        self.progress.advance(len(data))
        job.reported += len(data)
        job.length += len(data)

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
        try:
            self._finalize_job(job)
        finally:
            self._dirs.release(job.where)

    def _finalize_job(self, job: _FileJob) -> None:
        error: OSError | None = None
        for f in job.writes:
            exc = f.exception()
            if isinstance(exc, OSError) and error is None:
                error = exc
            elif exc is not None and not isinstance(exc, OSError):
                job.sink.close()
                remove_at(job.where, job.tmp)
                raise exc
        # The rest of the file's size: all of it for an empty or damaged file.
        self.progress.advance(max(0, job.entry.size - job.reported))
        if error is None and job.problem is None:
            try:
                job.sink.finish(job.length, self.options.mode(job.entry.mode),
                                job.entry.mtime_ns)
                name = job.entry.path.rsplit("/", 1)[-1]
                os.rename(job.tmp, name, src_dir_fd=job.where.fd, dst_dir_fd=job.where.fd)
            except OSError as exc:
                error = exc
        job.sink.close()
        if error is None and job.problem is None:
            self.files += 1
            self.bytes += job.entry.size
            return
        remove_at(job.where, job.tmp)
        if error is not None:
            raise write_error("write", self._dirs.show(job.entry.path), error) from error
        assert job.problem is not None
        if not self.options.allow_damaged:
            raise job.problem
        self.damaged.append(job.entry.path)
        self.progress.warn(f"{job.entry.path}: not restored, {job.problem.message}")

    def _finish_jobs(self) -> None:
        try:
            # Only files whose every write is queued are complete; after an error
            # or an interruption in the middle of a file, that file is discarded.
            while self._jobs and self._jobs[0].submitted:
                self._finalize(self._jobs.popleft())
        finally:
            for job in self._jobs:  # after an error: no temporary file is left behind
                wait(job.writes)
                job.sink.close()
                remove_at(job.where, job.tmp)
                self._dirs.release(job.where)
            self._jobs.clear()

    @staticmethod
    def _frame_result(fut: Future[bytes]) -> bytes | DataDamaged:
        try:
            return fut.result()
        except DataDamaged as exc:
            return exc

    def _open(self, where: Dir, tmp: str) -> Sink:
        hook = self.engine._test_only_open_for_write
        if hook is not None:
            sink: Sink = hook(where.fd, tmp)
            return sink
        return FileSink(where.fd, tmp)

    def _symlink(self, where: Dir, name: str, entry: Entry) -> None:
        tmp = self._temp_name()
        try:
            os.symlink(entry.link, tmp, dir_fd=where.fd)
            os.utime(tmp, ns=(entry.mtime_ns, entry.mtime_ns), dir_fd=where.fd,
                     follow_symlinks=False)
            os.rename(tmp, name, src_dir_fd=where.fd, dst_dir_fd=where.fd)
        except OSError as exc:
            remove_at(where, tmp)
            raise write_error("create", self._dirs.show(entry.path), exc) from exc
