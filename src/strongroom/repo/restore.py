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
network store) while the caller's thread writes; frames close to each other
in a pack are fetched with one ranged read.  Each frame a file needs is
fetched once for that file, even when its blobs are spread over the file (a
database after a day of changes: the changed pages sit in a few new frames,
each holding pages from all over the file): all of that frame's blobs are
written at their offsets when it arrives.  Damage raises
``DataDamaged`` naming the object and the file; with ``allow_damaged`` the
damaged files are skipped, listed in the summary, and everything else is
restored.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
from array import array
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter, mul
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..cancel import NEVER, Cancel, adopt, current
from ..errors import DataDamaged, LocalWriteError, UsageError
from ..progress import Progress, report_item, report_totals
from .manifest import ID_SIZE, KIND_DIR, KIND_FILE, KIND_SYMLINK, ChunkIds, Entry
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
    from ..results import RestoreSummary
    from .engine import Engine
    from .subset import Subset

__all__ = ["FileSink", "RestoreOptions", "RestoreRun", "Sink"]

#: Decoded bytes fetched ahead of the writer, per fetch thread (spec §13): for a
#: store with more requests in flight than ``FETCH_THREADS`` (network), and for
#: one with no more (a local folder), where a request costs no round trip and
#: the read-ahead was the largest part of restore's peak RSS (issue 12).
PREFETCH_PER_FETCHER = 4 * 1024 * 1024
PREFETCH_PER_FETCHER_LOCAL = 1024 * 1024
FETCH_THREADS = 3
WRITE_THREADS = 3
MAX_WRITE_BYTES = 8 * 1024 * 1024
WRITE_UNIT = 1024 * 1024
#: Writes handed to a writer thread in one task, at most (small files).
MAX_BATCH_WRITES = 64
#: Files open at once (each holds a descriptor, and one of its directory).
MAX_OPEN_FILES = 128
#: Largest span of frames fetched with one ranged read (stored, and decoded):
#: network stores, and a store with no more than ``FETCH_THREADS`` in flight.
MAX_SPAN = 8 * 1024 * 1024
MAX_SPAN_LOCAL = 2 * 1024 * 1024
#: Bytes between two frames of one span that are read and thrown away (a frame
#: not needed, or already fetched): cheaper than a second request.
MAX_GAP = 128 * 1024
#: Spans of different packs being filled at once (a file whose blobs alternate
#: between packs); the oldest is sent when one more is needed.
MAX_OPEN_SPANS = 8
#: Decoded frames kept for the next files (small files share frames), at most.
FRAME_CACHE_BYTES = 2 * 1024 * 1024
FRAME_CACHE_MAX = 256 * 1024  # larger frames are not kept (media pieces)
#: Steps planned ahead of the writer, at most (whatever their bytes).
MAX_QUEUED_STEPS = 4096
#: Pieces of one frame handed to the writer in one step (a zero blob repeated).
MAX_STEP_PIECES = 4096
#: Chunks of a file looked up in the index in one call while planning.
PLAN_BATCH = 4096
_SPECIAL_BITS = 0o7000
_MISSING = (1 << 64) - 1
_LOW32 = 0xFFFFFFFF
_FIRST = itemgetter(0)
#: One step of a file: a frame (None: a blob in no index) and the pieces of it
#: to write, each (file offset, inner offset << 32 | length); or, with pieces
#: None, the end of the file (the third item its length).
_Step = tuple["Future[bytes] | None", "list[tuple[int, int]] | None", int]
#: Adjacent pieces to write to a file from an offset (slices of frames, or copies).
_Write = tuple["Sink", int, "list[bytes | memoryview]"]
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

    def pwritev(self, pieces: Sequence[bytes | memoryview], offset: int) -> int:
        """Write ``pieces`` one after another from ``offset``; thread-safe for
        distinct ranges."""

    def finish(self, size: int, mode: int, mtime_ns: int) -> None:
        """Set length, mode and mtime on the open file, then close it."""

    def close(self) -> None:
        """Close without finishing (after an error; idempotent)."""


class _FileJob:
    """A file being restored: its pending writes and any damage found."""

    def __init__(self, entry: Entry, where: Dir, tmp: str, sink: Sink) -> None:
        self.entry, self.where, self.tmp, self.sink = entry, where, tmp, sink
        self.writes: deque[Future[None]] = deque()  # not yet seen done, oldest first
        self.failed: list[BaseException] = []  # errors of writes already seen done
        self.in_batch = False  # some of its writes wait in the run's batch
        self.problem: DataDamaged | None = None
        self.submitted = False  # all its writes are queued
        self.pending: list[memoryview] = []  # adjacent pieces not yet handed to a writer
        self.pending_copy: list[bool] = []  # for each: copied when handed over
        self.pending_start = self.pending_end = 0  # their range in the file
        self.pending_frame: bytes | None = None  # the frame the last piece is from,
        self.pending_inner = 0  # and where in it that piece ends
        self.length = 0  # the file's length (set once all its pieces are queued)
        self.reported = 0  # bytes already shown as progress
        self.replaces = False
        self.name = ""  # its real name in ``where``,
        self.mode = 0  # and the mode it gets (both set by RestoreRun._file)
        #: Finished and renamed by the writer thread after its last write (set
        #: before that task is queued); ``placed`` once the rename is done, or
        #: ``finish_error`` if finishing or renaming failed.
        self.finish_queued = False
        self.placed = False
        self.finish_error: OSError | None = None


class _Span:
    """Frames of one pack to be fetched with one ranged read, once complete."""

    __slots__ = ("end", "futures", "limit", "locs", "opened", "pack_id", "raw", "sent", "start")

    def __init__(self, pack_id: bytes, opened: int, limit: int = MAX_SPAN) -> None:
        self.pack_id = pack_id
        self.limit = limit  # stored bytes, and decoded bytes, at most
        self.locs: list[BlobLocation] = []
        self.futures: list[Future[bytes]] = []
        self.start = self.end = self.raw = 0
        self.opened = opened  # planned bytes when it was opened
        self.sent = False

    def takes(self, loc: BlobLocation) -> bool:
        """Whether ``loc`` follows the span closely enough to join it."""
        # Bounded in stored and in decoded bytes: each is held at once by a fetcher.
        if self.sent:  # sent early (the writer needed it): never added to
            return False
        return (not self.locs or (self.end <= loc.frame_offset <= self.end + MAX_GAP
                                  and loc.frame_offset + loc.frame_len - self.start <= self.limit
                                  and self.raw + loc.frame_raw <= self.limit))

    def add(self, loc: BlobLocation) -> Future[bytes]:
        if not self.locs:
            self.start = loc.frame_offset
        self.end = loc.frame_offset + loc.frame_len
        self.raw += loc.frame_raw
        fut: Future[bytes] = Future()
        self.locs.append(loc)
        self.futures.append(fut)
        return fut


def _write_all(batch: list[_Write], finishes: list[_FileJob]) -> None:
    # Writes that continue one another in one file (pieces of different frames,
    # one after another in the plan) go out in one call.
    run: list[bytes | memoryview] = []
    run_sink: Sink | None = None
    start = end = 0
    for sink, offset, pieces in batch:
        if run and (sink is not run_sink or offset != end):
            run_sink.pwritev(run, start)  # type: ignore[union-attr]
            run = []
        if not run:
            run_sink, start, end = sink, offset, offset
        run.extend(pieces)
        end += sum(map(len, pieces))
    if run:
        run_sink.pwritev(run, start)  # type: ignore[union-attr]
    # Files whose every write is above (or already done): length, mode, mtime and
    # the rename into place here, after their last write, in this thread; the
    # caller's thread only learns the outcome (one file failing does not stop the
    # others from being placed).
    for job in finishes:
        try:
            _place(job)
        except OSError as exc:
            job.finish_error = exc
        else:
            job.placed = True


def _place(job: _FileJob) -> None:
    """Give the written file its length, mode and mtime, and rename it into place."""
    job.sink.finish(job.length, job.mode, job.entry.mtime_ns)
    os.rename(job.tmp, job.name, src_dir_fd=job.where.fd, dst_dir_fd=job.where.fd)


def _reap(job: _FileJob) -> bool:
    """Drop the job's finished writes (keeping their errors); True if some still run."""
    writes = job.writes
    while writes and writes[0].done():
        exc = writes.popleft().exception()
        if exc is not None:
            job.failed.append(exc)
    return bool(writes)


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
        self._cur_fut: Future[bytes] | None = None
        self._cur_frame: bytes | DataDamaged = b""
        self._temp_name = TempNames()
        self._jobs: deque[_FileJob] = deque()
        self._missing: deque[bytes] = deque()  # blobs in no index, in the steps' order
        self._batch: list[_Write] = []  # writes not yet handed to a writer
        self._batch_bytes = 0
        self._batch_jobs: list[_FileJob] = []  # the files those writes belong to
        self._finishes: list[_FileJob] = []  # files the batch's task finishes and renames
        self._inflight_bytes = 0
        self._lock = threading.Lock()
        self._prefetch_bytes = FETCH_THREADS * PREFETCH_PER_FETCHER
        self._span_limit = MAX_SPAN

    def run(self, ref: str, target: Path, subset: Subset) -> RestoreSummary:
        """Restore snapshot ``ref`` (or the part ``subset`` selects) into ``target``."""
        from ..results import RestoreSummary

        lock = self.engine.lock(False)  # refreshed in the background (spec §9)
        try:
            self._lock_held = lock
            doc = self.engine.find_doc(ref)
            root_fd = self._open_target(target)
            try:
                report_totals(self.progress, doc.files, doc.size)
                self.progress.start("restore", doc.size, "bytes")
                entries = subset.select(doc, checked_entries(self.engine.entries(doc),
                                                             f"snapshots/{doc.id}"))
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
        if self.engine.concurrency() <= FETCH_THREADS:  # a local folder: no round trips
            self._prefetch_bytes = fetchers * PREFETCH_PER_FETCHER_LOCAL
            self._span_limit = MAX_SPAN_LOCAL
        else:
            self._prefetch_bytes = fetchers * PREFETCH_PER_FETCHER
            self._span_limit = MAX_SPAN
        ok = False
        try:
            with ThreadPoolExecutor(fetchers, thread_name_prefix="strongroom-fetch",
                                    initializer=adopt, initargs=(current(),)) as pool, \
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
        steps = self._prefetch(self._steps(items_a), pool)
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
                self._file(where, parts[-1], entry, steps, action == REPLACE)

    def _steps(self, items: Iterator[_Decided]
               ) -> Iterator[tuple[int, tuple[int, ...] | bytes, list[tuple[int, int]] | None]]:
        """Per file to restore: (frame key, index record, pieces) for each frame it
        needs, (_MISSING, blob id, []) for a blob in no index, then (0, b"", None)
        with the file's length as the key.

        A frame whose blobs appear in one run of the file comes where that run
        is; a frame whose blobs are spread over the file comes where it is
        first needed, with all its pieces (each frame once per file).  Per chunk
        this keeps 16 bytes (two arrays), not Python objects.
        """
        table = self.engine.index().blobs
        for e, action, _why in items:
            if e.kind != KIND_FILE or action == SKIP:
                continue
            if len(e.chunks) == 1:  # most files of a chat backup: no arrays
                one = table.record(e.chunks[0])
                if one is None:
                    yield _MISSING, e.chunks[0], []
                    yield 0, b"", None
                else:
                    yield one[0] << 32 | one[3], one, [(0, one[6] << 32 | one[7])]
                    yield one[7], b"", None
                continue
            keys, pieces, offsets = array("Q"), array("Q"), array("Q")
            recs: dict[int, int] = {}  # frame key -> record number of its first blob
            runs: dict[int, int] = {}
            missing: dict[int, bytes] = {}
            prev, prev_end, pos, piece = -1, -1, 0, 0  # piece: where the last one starts in its frame
            chunks = e.chunks
            raw = chunks.raw if isinstance(chunks, ChunkIds) else ChunkIds.of(chunks).raw
            # Searched a batch at a time (``positions``: C calls over the batch), and the
            # four fields planned with unpacked by one more: the loop below only builds runs.
            _ids, _off, rbuf, rsize, gone, short = table.lookup()
            fields = short.unpack_from
            step = ID_SIZE * PLAN_BATCH
            for start in range(0, len(raw), step):
                found = table.positions(raw[start:start + step])
                # A miss (-1) unpacks the last record: it is told apart by ``no`` below.
                got = (list(map(fields, repeat(rbuf), map(mul, found, repeat(rsize)))) if rbuf
                       else [(gone, 0, 0, 0)] * len(found))
                lost: deque[bytes] = deque()  # ids in no index, in order
                if -1 in found or gone in map(_FIRST, got):
                    lost.extend(raw[start + ID_SIZE * i:start + ID_SIZE * (i + 1)]
                                for i, no in enumerate(found) if no < 0 or got[i][0] == gone)
                    got = [(gone, 0, 0, 0) if no < 0 else g for no, g in zip(found, got)]
                for no, (pack, frame_offset, inner, length) in zip(found, got):
                    k = pack << 32 | frame_offset
                    if k == prev and inner == prev_end:
                        # The next blob of the frame follows in the file too (the
                        # unchanged pages of a database): one longer piece.
                        prev_end += length
                        continue
                    if prev >= 0:  # the piece before ends
                        pieces.append(piece << 32 | (prev_end - piece))
                        pos += prev_end - piece
                    if pack == gone:
                        missing[len(keys)] = lost.popleft()
                        keys.append(_MISSING)
                        pieces.append(0)
                        offsets.append(pos)
                        prev = -1
                        continue
                    if k != prev:
                        runs[k] = runs.get(k, 0) + 1
                        recs.setdefault(k, no)
                        prev = k
                    keys.append(k)
                    offsets.append(pos)
                    piece, prev_end = inner, inner + length
            if prev >= 0:
                pieces.append(piece << 32 | (prev_end - piece))
                pos += prev_end - piece
            # Planned: the file's chunk ids (32 bytes a chunk, 4 MB for a 500 MB store)
            # are not needed again, and would stay held until the file is written.
            e.chunks = ChunkIds()
            del chunks, raw
            record = table.record_at
            spread: dict[int, list[int]] = {k: [] for k, r in runs.items() if r > 1}
            if spread:
                for i, k in enumerate(keys):
                    if k in spread:
                        spread[k].append(i)
            i, n = 0, len(keys)
            while i < n:
                k = keys[i]
                if k == _MISSING:
                    yield k, missing[i], []
                    i += 1
                    continue
                if k in spread:
                    at = spread[k]
                    if at:  # the first time: every piece; later runs were planned with it
                        for c in range(0, len(at), MAX_STEP_PIECES):
                            yield k, record(recs[k]), [(offsets[j], pieces[j])
                                                       for j in at[c:c + MAX_STEP_PIECES]]
                        spread[k] = []
                    i += 1
                    continue
                j = i + 1
                while j < n and keys[j] == k and j - i < MAX_STEP_PIECES:
                    j += 1
                yield k, record(recs[k]), [(offsets[x], pieces[x]) for x in range(i, j)]
                i = j
            yield pos, b"", None

    def _prefetch(self, steps: Iterator[tuple[int, tuple[int, ...] | bytes,
                                              list[tuple[int, int]] | None]],
                  pool: ThreadPoolExecutor) -> Iterator[_Step]:
        # Frames near each other in one pack are fetched as one span (one request
        # instead of one per frame), with a span open per pack so that a file
        # alternating between packs still gets long spans.  What is queued ahead
        # is bounded in bytes, not frames: with 128 KiB frames (SQLite pages) a
        # bound of a few frames kept a single 4 MiB span in flight.
        table = self.engine.index().blobs
        queue: deque[tuple[_Step, _Span | None, int]] = deque()
        spans: dict[int, _Span] = {}
        cache: OrderedDict[int, tuple[Future[bytes], _Span, int]] = OrderedDict()
        last: tuple[int, Future[bytes], _Span] | None = None
        cached = planned = ahead = 0
        budget = self._prefetch_bytes
        for key, rec, pieces in steps:
            if pieces is None:
                queue.append(((None, None, key), None, 0))
            elif not isinstance(rec, tuple):
                queue.append(((None, [], 0), None, 0))
                self._missing.append(rec)
            else:
                size = 0
                hit = cache.get(key)
                if last is not None and last[0] == key:
                    _k, fut, span = last
                elif hit is not None:
                    cache.move_to_end(key)
                    fut, span, _size = hit
                else:
                    loc = BlobLocation(*rec[1:])
                    open_span = spans.get(rec[0])
                    if open_span is not None and not open_span.takes(loc):
                        self._send(spans.pop(rec[0]), pool)
                        open_span = None
                    if open_span is None:
                        if len(spans) >= MAX_OPEN_SPANS:
                            self._send(spans.pop(next(iter(spans))), pool)
                        open_span = spans[rec[0]] = _Span(table.pack_id(rec[0]), planned,
                                                           self._span_limit)
                    span = open_span
                    fut = span.add(loc)
                    size = loc.frame_raw
                    planned += size
                    ahead += size
                    if size <= FRAME_CACHE_MAX:
                        cache[key] = (fut, span, size)
                        cached += size
                        while cached > FRAME_CACHE_BYTES:
                            cached -= cache.popitem(last=False)[1][2]
                last = (key, fut, span)
                queue.append(((fut, pieces, 0), span, size))
            # A span open for half the read-ahead is sent: it will be needed soon.
            while spans:
                first = next(iter(spans))
                if planned - spans[first].opened < budget // 2:
                    break
                self._send(spans.pop(first), pool)
            # Bounded in steps too: files needing no new frame (empty files, small
            # files sharing a cached frame) must not let the plan run away.
            while queue and (ahead > budget or len(queue) > MAX_QUEUED_STEPS):
                yield self._pop(queue, pool)
                ahead -= queue.popleft()[2]
        for span in spans.values():
            self._send(span, pool)
        while queue:
            yield self._pop(queue, pool)
            queue.popleft()

    def _pop(self, queue: deque[tuple[_Step, _Span | None, int]], pool: ThreadPoolExecutor
             ) -> _Step:
        step, span, _size = queue[0]
        if span is not None and not span.sent:  # the writer needs it now
            self._send(span, pool)
        return step

    def _send(self, span: _Span, pool: ThreadPoolExecutor) -> None:
        if span.sent:
            return
        span.sent = True
        pack_id, locs, futures = span.pack_id, span.locs, span.futures
        # The span outlives its fetch in the plan (the cache names it); its frames
        # must not: a small cached frame would keep a whole 8 MiB span alive.
        span.locs, span.futures = [], []

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

    def _file(self, where: Dir, name: str, entry: Entry, steps: Iterator[_Step],
              replaces: bool) -> None:
        while len(self._jobs) >= MAX_OPEN_FILES:
            self._finalize(self._jobs.popleft())
        tmp = self._temp_name()
        job = _FileJob(entry, where, tmp, self._open(where, tmp))
        job.replaces = replaces
        job.name, job.mode = name, self.options.mode(entry.mode)
        where.refs += 1
        self._jobs.append(job)
        while True:
            self.cancel.check()
            fut, pieces, length = next(steps)
            if pieces is None:
                break
            if fut is None:
                cid = self._missing.popleft()
                reason = self.engine.index().missing_reason()
                job.problem = job.problem or DataDamaged(
                    f"blob {cid.hex()[:16]} {reason} (affects {entry.path})")
                continue
            if fut is not self._cur_fut:
                self._cur_fut = fut
                self._cur_frame = self._frame_result(fut)
            if isinstance(self._cur_frame, DataDamaged):
                job.problem = job.problem or DataDamaged(
                    f"{self._cur_frame.message} (affects {entry.path})")
                continue
            if job.problem is None:
                self._add_pieces(job, self._cur_frame, pieces)
        if job.problem is None:
            self._flush_pending(job, last=True)
            job.length = length
            if length != entry.size:
                job.problem = DataDamaged(f"snapshot record of {entry.path} gives size "
                                          f"{entry.size}, its chunks {length}")
            elif not _reap(job) and not job.failed:
                # No earlier write of the file still runs (a small file: all its
                # writes are in the batch being gathered): the writer task that
                # writes its last bytes also finishes and renames it, after them.
                # (A big file, with writes still running in other tasks, is
                # finished by this thread once they are done.)
                job.finish_queued = True
                if not job.in_batch:
                    job.in_batch = True
                    self._batch_jobs.append(job)
                self._finishes.append(job)
            self._submit_if_full()
        job.submitted = True
        while (self._jobs and self._jobs[0].submitted and not self._jobs[0].in_batch
               and not _reap(self._jobs[0])):
            self._finalize(self._jobs.popleft())

    def _add_pieces(self, job: _FileJob, frame: bytes, pieces: list[tuple[int, int]]) -> None:
        # Zero pieces first: they are holes, and what the others use of the frame
        # decides whether they are written from it or copied (below).
        live: list[tuple[int, int, int]] = []  # (file offset, start, end in frame); start -1: a hole
        used = 0
        for offset, packed in pieces:
            inner, length = packed >> 32, packed & _LOW32
            if length == 0:
                continue
            end = inner + length
            if frame[inner] == 0 and frame[end - 1] == 0 and frame.count(0, inner, end) == length:
                # A hole instead of written zeros: a sparse file stays sparse, and a
                # snapshot repeating one zero blob cannot fill the disk.
                live.append((offset, -1, 0))
            else:
                live.append((offset, inner, end))
                used += length
        # Writes hold the frame they are cut from.  When the pieces of this step use
        # less than half of it (a small file in a shared frame), they are copied
        # at the flush, so the frames queued writes hold stay within twice their
        # bytes; when they use more (a frame's pages spread over a database after
        # a day of changes: 40 % of a 500 MB store's bytes), they are not.
        copy = 2 * used < len(frame)
        view = memoryview(frame)
        for offset, inner, end in live:
            if inner < 0:
                self._flush_pending(job)
                continue
            if job.pending and offset == job.pending_end:
                if job.pending_frame is frame and inner == job.pending_inner:
                    # The next blob of the same frame: one longer slice.
                    last = job.pending[-1]
                    job.pending[-1] = view[inner - len(last):end]
                else:
                    job.pending.append(view[inner:end])
                    job.pending_copy.append(copy)
            else:
                self._flush_pending(job)
                job.pending_start = offset
                job.pending.append(view[inner:end])
                job.pending_copy.append(copy)
            job.pending_frame, job.pending_inner = frame, end
            job.pending_end = offset + end - inner
            if job.pending_end - job.pending_start >= WRITE_UNIT:
                self._flush_pending(job)

    def _flush_pending(self, job: _FileJob, last: bool = False) -> None:
        # Consecutive small blobs (SQLite pages) become one write: one task per
        # 4 KiB page made the pool's lock and GIL hand-offs dominate the restore.
        if not job.pending:
            return
        # Written from the frames themselves, not from a joined copy (the copy was
        # the main thread's largest line in a restore of a message store: 487 MB,
        # each 1 MiB buffer faulted in afresh).  Pieces of a frame that is mostly
        # not written from (``_add_pieces``) are copied.
        pieces: list[bytes | memoryview] = [
            bytes(v) if c else v for v, c in zip(job.pending, job.pending_copy, strict=True)]
        n = job.pending_end - job.pending_start
        job.pending = []
        job.pending_copy = []
        job.pending_frame = None
        if not job.in_batch:
            job.in_batch = True
            self._batch_jobs.append(job)
        self._batch.append((job.sink, job.pending_start, pieces))
        self._batch_bytes += n
        # A big file moves the bar as it is written, not only when it is complete.
        self.progress.advance(n)
        job.reported += n
        if not last:  # the file's last write: the caller may add its finish first
            self._submit_if_full()

    def _submit_if_full(self) -> None:
        if (self._batch_bytes >= WRITE_UNIT or len(self._batch) >= MAX_BATCH_WRITES
                or len(self._finishes) >= MAX_BATCH_WRITES):
            self._submit_batch()

    def _submit_batch(self) -> None:
        # Writes run in a thread pool (file I/O releases the GIL), several per task
        # (small files, or the pages of a frame spread over a database): one task
        # per small file made the pool's queue a large part of the restore.  The
        # bytes in flight are capped so memory stays bounded whatever the sizes.
        if not self._batch and not self._finishes:
            return
        batch, n, jobs, finishes = self._batch, self._batch_bytes, self._batch_jobs, self._finishes
        self._batch, self._batch_bytes, self._batch_jobs, self._finishes = [], 0, [], []
        while self._inflight_bytes + n > MAX_WRITE_BYTES and self._wait_oldest_write():
            pass
        fut = self._writer.submit(_write_all, batch, finishes)
        with self._lock:
            self._inflight_bytes += n
        fut.add_done_callback(functools.partial(self._written, n))
        for job in jobs:
            job.in_batch = False
            job.writes.append(fut)

    def _written(self, n: int, _fut: object = None) -> None:
        with self._lock:
            self._inflight_bytes -= n

    def _wait_oldest_write(self) -> bool:
        """Wait for the oldest write still running; False if none is."""
        for j in self._jobs:
            if _reap(j):
                wait([j.writes[0]])
                return True
        return False

    def _finalize(self, job: _FileJob) -> None:
        """Wait for a file's writes, then rename it into place (or discard it)."""
        try:
            self._finalize_job(job)
        finally:
            self._dirs.release(job.where)

    def _finalize_job(self, job: _FileJob) -> None:
        if job.in_batch:  # its last writes must be running before they are waited for
            self._submit_batch()
        error: OSError | None = None
        for exc in [*job.failed, *(f.exception() for f in job.writes)]:
            if isinstance(exc, OSError) and error is None:
                error = exc
            elif exc is not None and not isinstance(exc, OSError):
                job.sink.close()
                remove_at(job.where, job.tmp)
                raise exc
        # The rest of the file's size: all of it for an empty or damaged file.
        self.progress.advance(max(0, job.entry.size - job.reported))
        if job.finish_queued:
            error = error or job.finish_error
            assert job.placed or error is not None  # its task ran to the end, or failed
        elif error is None and job.problem is None:
            try:
                _place(job)
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
