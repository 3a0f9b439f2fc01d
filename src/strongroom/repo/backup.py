"""One backup run: walk the sources, store new blobs, write the manifest, commit.

Commit order (the spec, "Commit protocol"): packs, then the index objects
that list them, then the snapshot object, written last with ``put_if_absent``
under a random name.  A snapshot therefore only ever refers to data that is
stored and indexed, and a run killed at any point leaves earlier snapshots
untouched.  Packs a killed run uploaded without an index are found again by
the next run (:func:`recover_orphans`), so their data is not uploaded twice.
"""

from __future__ import annotations

import dataclasses
import errno
import io
import os
import socket
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..cancel import NEVER, Cancel
from ..errors import DataDamaged, ObjectNotFound
from ..progress import NullProgress, Progress, report_totals
from . import chunker
from .chatcat import Cataloguer, load_catalogue
from .index import PackInfo, write_index
from .manifest import (
    KIND_DIR,
    KIND_FILE,
    KIND_SYMLINK,
    ChunkIds,
    Entry,
    RecordReader,
    SegmentWriter,
    SnapshotDoc,
    seal_snapshot,
    snapshot_name,
)
from .pack import (
    BLOB_DATA,
    BLOB_META,
    PREFIX_SIZE,
    BlobLocation,
    decode_header,
    pack_id_from_name,
)
from .packer import Packer
from .patterns import PatternSet
from .scan import scan
from .selection import normalize_tags

if TYPE_CHECKING:
    from ..chats.catalogue import Catalogue
    from ..results import BackupSummary
    from .engine import Engine


_READAHEAD_MIN = 1024 * 1024
#: How a listed file is opened (spec §11): never through a symlink, never blocking on a
#: FIFO; fstat then requires the regular file that lstat saw.
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_PROGRESS_STEP = 8 * 1024 * 1024
#: Files up to this size are read whole with one read (:meth:`BackupRun._small`).
_SMALL_FILE = 1024 * 1024
_MIN_READ = 64 * 1024
#: A streamed file's chunk ids are handed to its record this many bytes at a time.
_IDS_STEP = 64 * 1024


def _key(path: str) -> tuple[str, ...]:
    # Walk order and manifest order: depth first, names sorted at each level.
    return tuple(path.split("/"))


class ParentCursor:
    """Merge-join over the parent snapshot's records (both are in walk order).

    A record's chunk ids are read only when asked for (:meth:`chunks`): a changed
    database's old list (32 bytes a page) is skipped as its segments stream past.
    """

    def __init__(self, records: RecordReader | None, progress: Progress) -> None:
        self._reader = records
        self._progress = progress
        self._cur: Entry | None = None
        self._cur_key: tuple[str, ...] = ()
        self._taken = False  # ``_cur`` was given out by ``lookup``: the next one moves on
        self._advance()

    def _damaged(self, exc: DataDamaged) -> None:
        # A damaged parent only costs speed: the remaining files are read again.
        self._progress.warn(f"parent snapshot unreadable, reading all files: {exc.message}")
        self._reader, self._cur = None, None

    def _advance(self) -> None:
        self._taken = False
        try:
            self._cur = self._reader.head() if self._reader is not None else None
        except DataDamaged as exc:
            self._damaged(exc)
        if self._cur is not None:
            self._cur_key = _key(self._cur.path)

    def lookup(self, path: str) -> Entry | None:
        """The parent's record for ``path``, if any (paths must be asked in walk order);
        its chunk ids come from :meth:`chunks`."""
        if self._taken:
            self._advance()
        cur = self._cur
        if cur is None:
            return None
        if cur.path != path:  # the common case is the same tree as last time
            key = _key(path)
            while self._cur is not None and self._cur_key < key:
                self._advance()
            cur = self._cur
            if cur is None or cur.path != path:
                return None
        self._taken = True
        return cur

    def chunks(self) -> ChunkIds | None:
        """The chunk ids of the record :meth:`lookup` gave last (None if unreadable)."""
        if not self._taken or self._reader is None:
            return None
        try:
            return self._reader.chunks()
        except DataDamaged as exc:
            self._damaged(exc)
            return None


def archive_path(source: str | Path) -> str:
    """How a source path is named in a snapshot: absolute, without the leading '/'."""
    return os.path.abspath(os.fspath(source)).lstrip("/")


class BackupRun:
    """State of one backup (use once)."""

    def __init__(self, engine: Engine, progress: Progress, hostname: str | None,
                 tags: Sequence[str] = (), exclude: Sequence[str] = (),
                 cancel: Cancel = NEVER, *, chats: bool = True) -> None:
        self.engine = engine
        #: Whether chat data is recognised and catalogued (False: no catalogue at all).
        self.catalogue_chats = chats
        self.progress = progress
        #: Checked per file and per chunk: a cancelled backup stops as a kill would.
        self.cancel = cancel
        self.scanned = (0, 0)
        self.hostname = hostname or socket.gethostname()
        self.tags = normalize_tags(tags)
        self.exclude_patterns = list(exclude)
        PatternSet.of(self.exclude_patterns)  # a bad pattern fails before the lock is taken
        self.exclude = PatternSet()
        self.params = engine.config.chunker
        self.warnings: list[str] = []
        self.changed: list[str] = []
        self.files = self.dirs = self.unchanged = 0
        self.bytes_read = self.total_bytes = 0
        self.chats = Cataloguer(None, progress.warn, enabled=False)  # set up by _store
        self.segments = SegmentWriter(self._store_meta)  # the file list (replaced by _store)
        self._report_item = getattr(progress, "item", None)  # report_item, looked up once

    def run(self, sources: Sequence[str | Path]) -> BackupSummary:
        """Back up ``sources`` into a new snapshot and return the summary."""
        from ..results import BackupSummary

        lock = self.engine.lock(False)
        try:
            self.lock = lock
            index_bytes = recover_orphans(self.engine, self.progress)
            roots = sorted({archive_path(s): Path(os.path.abspath(s)) for s in sources}.items(),
                           key=lambda kv: _key(kv[0]))
            paths = ["/" + a for a, _ in roots]
            self.exclude = PatternSet.of(self.exclude_patterns, paths)
            if type(self.progress) is not NullProgress:  # a subclass may listen
                # The totals only feed a progress display: with none (a pipe, --quiet)
                # the first pass would double the file-system work for nothing.
                self.scanned = scan(roots, self.progress, self.cancel, self.exclude)
            parent = self._parent(paths)
            packer = Packer(self.engine)
            packer.before_index = lock.ensure_held
            try:
                snap_id, added = self._store(roots, paths, parent, packer)
            except BaseException:
                packer.abort()
                self.chats.wait()  # no store-counting thread outlives the run
                # The in-memory index now lists packs no stored index lists; kept, the
                # next backup in this process would take them for indexed (not orphans)
                # and commit a snapshot referring to them.  Read it again from storage.
                self.engine._index = None
                raise
        finally:
            lock.release()
        return BackupSummary(snap_id, self.files, self.dirs, self.bytes_read,
                             added + index_bytes, self.unchanged, packer.blobs_added,
                             list(self.warnings), list(self.changed),
                             len(self.chats.entries), list(self.chats.warnings),
                             ["/" + p for p in self.chats.parsed_now])

    def _parent(self, paths: list[str]) -> SnapshotDoc | None:
        docs = self.engine.snapshot_docs(skip_damaged=True)
        same = [d for d in docs if sorted(d.paths) == sorted(paths)]
        mine = [d for d in same if d.hostname == self.hostname]
        best = mine or same
        return best[-1] if best else None

    def _store(self, roots: list[tuple[str, Path]], paths: list[str],
               parent: SnapshotDoc | None, packer: Packer) -> tuple[str, int]:
        self.packer = packer
        # Version-1 repositories stay readable by the clients that wrote them: no catalogue.
        v2 = self.engine.config.version >= 2 and self.catalogue_chats
        self.chats = Cataloguer(self._parent_catalogue(parent) if v2 else None,
                                self.progress.warn, enabled=v2, roots=[a for a, _ in roots])
        cursor = ParentCursor(self.engine.records(parent) if parent else None, self.progress)
        segments = self.segments = SegmentWriter(self._store_meta)
        report_totals(self.progress, *self.scanned)  # before start: its first status has them
        self.progress.start("backup", self.scanned[1], "bytes")
        prev: list[tuple[str, ...]] = []
        for arch, path in roots:
            if any(_key(arch)[: len(p)] == p for p in prev):
                continue  # nested inside another source: already covered
            prev.append(_key(arch))
            for entry in self._walk(arch, path, cursor):
                segments.add(entry)
                self.lock.refresh_if_due()
                self.cancel.check()
        segments.flush()
        chats = self.chats.store(self._store_meta)
        packer.finish()
        self.progress.finish()
        # A lock taken away meanwhile (an observer judged it stale, then maybe pruned)
        # means the data this snapshot refers to may be gone: commit nothing.
        self.lock.ensure_held()
        doc = SnapshotDoc(self.engine.rng(16).hex(), self.engine.clock(), self.hostname, paths,
                          self.files, self.dirs, self.total_bytes,
                          parent.id if parent else None, segments.segments, self.tags,
                          chats)
        data = seal_snapshot(self.engine.key, doc, self.engine.rng, padded=True)
        # Random 128-bit names never collide in practice; put_if_absent makes sure.
        while not self.engine.backend.put_if_absent(snapshot_name(doc.id), data):
            doc = dataclasses.replace(doc, id=self.engine.rng(16).hex())
            data = seal_snapshot(self.engine.key, doc, self.engine.rng, padded=True)
        return doc.id, packer.bytes_added + len(data)

    def _parent_catalogue(self, parent: SnapshotDoc | None) -> Catalogue | None:
        if parent is None:
            return None
        try:
            return load_catalogue(self.engine, parent)
        except DataDamaged as exc:  # only costs time: chat files are parsed again
            self.progress.warn(f"chats: parent snapshot's catalogue unreadable, parsing "
                               f"again: {exc.message}")
            return None

    def _store_meta(self, data: bytes) -> bytes:
        bid = self.engine.blob_id(data)
        if bid not in self.engine.index() and bid not in self.packer.known:
            self.packer.add(bid, BLOB_META, data, True)
        return bid

    def _walk(self, arch: str, path: Path, cursor: ParentCursor) -> Iterator[Entry]:
        """The records under the source ``path`` (named ``arch``), in walk order."""
        st = self._listed(arch, str(path))
        if st is not None:
            yield from self._walk_one(arch, str(path), st, cursor, ())

    def _listed(self, arch: str, path: str) -> os.stat_result | None:
        """The lstat of ``path``, or None when --exclude names ``arch`` (neither it nor,
        for a folder, anything below it is stored) or it cannot be read (warned)."""
        if self.exclude and self.exclude.matches(_key(arch)):
            return None
        try:
            return os.lstat(path)
        except OSError as exc:
            self._open_failed(path, exc)
            return None

    def _walk_one(self, arch: str, path: str, st: os.stat_result, cursor: ParentCursor,
                  siblings: Sequence[str]) -> Iterator[Entry]:
        # ``path`` is a plain string (the source's normalised absolute path, then
        # "/name" per level): a Path object per file cost more than its lstat.
        if stat.S_ISDIR(st.st_mode):
            yield from self._walk_dir(arch, path, st, cursor)
        elif stat.S_ISLNK(st.st_mode):
            try:
                link = os.readlink(path)
            except OSError as exc:
                self._warn(path, "unreadable", exc)
                return
            yield Entry(KIND_SYMLINK, arch, st.st_mode, st.st_mtime_ns, link=link)
        elif stat.S_ISREG(st.st_mode):
            entry = self._regular(arch, path, st, cursor, siblings)
            if entry is not None:
                yield entry
        else:
            self._warn(path, "skipped (not a regular file, directory or symlink)", None)

    def _walk_dir(self, arch: str, path: str, st: os.stat_result,
                  cursor: ParentCursor) -> Iterator[Entry]:
        if arch:  # the file-system root itself has no record
            yield Entry(KIND_DIR, arch, st.st_mode, st.st_mtime_ns)
            self.dirs += 1
        try:
            names = sorted(os.listdir(path))
        except OSError as exc:
            self._warn(path, "unreadable", exc)
            return
        base = path if path.endswith("/") else path + "/"
        prefix = arch + "/" if arch else ""
        isreg = stat.S_ISREG
        for name in names:
            child_arch, child = prefix + name, base + name
            child_st = self._listed(child_arch, child)
            if child_st is None:
                continue
            if isreg(child_st.st_mode):  # most entries: no generator per file
                entry = self._regular(child_arch, child, child_st, cursor, names)
                if entry is not None:
                    yield entry
            else:
                yield from self._walk_one(child_arch, child, child_st, cursor, names)

    def _regular(self, arch: str, path: str, st: os.stat_result, cursor: ParentCursor,
                 siblings: Sequence[str]) -> Entry | None:
        if self._report_item is not None:
            self._report_item("/" + arch)
        entry = self._file(arch, path, st, cursor, siblings)
        if entry is not None:
            self.files += 1
            self.total_bytes += entry.size
        return entry

    def _file(self, arch: str, path: str, st: os.stat_result,
              cursor: ParentCursor, siblings: Sequence[str] = ()) -> Entry | None:
        # Looked up here, not by the caller: then ``old = None`` below really frees the
        # parent's record (a database's old chunk list) while the file is read.
        old = cursor.lookup(arch)
        if (old is not None and old.kind == KIND_FILE and old.size == st.st_size
                and old.mtime_ns == st.st_mtime_ns and old.inode == st.st_ino
                and old.ctime_ns == st.st_ctime_ns):
            # Only now the parent's chunk list is read (a changed file's is skipped).
            chunks = cursor.chunks()
            if chunks is not None and self._all_indexed(chunks):
                self.unchanged += 1
                self.chats.unchanged(arch, path, siblings)
                self.progress.advance(st.st_size)  # done without reading: the total counts it
                return Entry(KIND_FILE, arch, st.st_mode, st.st_mtime_ns, st.st_size, st.st_ino,
                             st.st_ctime_ns, chunks=chunks)
            chunks = None  # not held while the file is read
        old = None
        try:
            if self.engine._test_only_before_read is not None:
                self.engine._test_only_before_read(Path(path))
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symlink swapped in after the listing
                self._warn(path, "replaced by a symlink after it was listed; not read", None)
                return None
            self._open_failed(path, exc)
            return None
        try:
            listed = st
            try:
                st = os.fstat(fd)
            except OSError:
                os.close(fd)
                raise
            if (not stat.S_ISREG(st.st_mode)
                    or (st.st_dev, st.st_ino) != (listed.st_dev, listed.st_ino)):
                # A FIFO, device or another file swapped in after the listing:
                # reading it could hang or store an outside file under this name.
                os.close(fd)
                self._warn(path, "replaced by another file after it was listed; not read",
                           None)
                return None
            read = self._small(arch, path, fd, st) if st.st_size <= _SMALL_FILE else None
            streamed = read is None
            if read is None:
                # Its record is written as its chunks are cut: a database's chunk list
                # (32 bytes a page) is never held whole (SegmentWriter.begin).
                self.segments.begin(Entry(KIND_FILE, arch, st.st_mode, st.st_mtime_ns,
                                          st.st_size, st.st_ino, st.st_ctime_ns))
                ids, size = self._stream(arch, path, fd, st, siblings)
            else:
                ids, size = read
            after = os.stat(path)
        except OSError as exc:
            self.segments.abort()  # a record begun for this file is dropped
            self._open_failed(path, exc)
            return None
        if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns) or size != st.st_size:
            # Stored as read; the next backup will pick up the new content.
            self.changed.append(path)
            self.progress.warn(f"{path}: changed while it was being read")
        if streamed:
            return self.segments.end(size)  # the walk's add() of it is a no-op
        return Entry(KIND_FILE, arch, st.st_mode, st.st_mtime_ns, size, st.st_ino,
                     st.st_ctime_ns, chunks=ids)

    def _small(self, arch: str, path: str, fd: int, st: os.stat_result
               ) -> tuple[ChunkIds, int] | None:
        """Store a small file read whole in one go (closes ``fd``), or None, ``fd`` still
        open at its start, for the streamed path: chat data, or a file that grew.

        Most of a chat folder is small media: one open, fstat and read to EOF, no file
        object, no separate reads of the head by the chat detector and the chunker.
        The chunks are the ones the streamed path cuts (the same chunker runs on the
        bytes), so deduplication does not depend on which path read a file.
        """
        parts, total = [], 0
        try:
            while True:
                data = os.read(fd, max(st.st_size + 1 - total, _MIN_READ))
                if not data:
                    break
                parts.append(data)
                total += len(data)
                if total > _SMALL_FILE:  # grew meanwhile: streamed, not held in memory
                    os.lseek(fd, 0, os.SEEK_SET)
                    return None
                if total == st.st_size and len(parts) == 1:
                    # Asked for one byte more than fstat counted and got exactly its
                    # count: that is the whole file (a file growing meanwhile is caught
                    # by the stat after the read, as on the streamed path).
                    break
            data = parts[0] if len(parts) == 1 else b"".join(parts)
            if self.chats.enabled and self.chats.detect(arch, io.BytesIO(data)) is not None:
                os.lseek(fd, 0, os.SEEK_SET)  # chat data: parsed from the file, as it streams
                return None
            result = self._chunks(data, os.path.basename(path), len(data))
            if self.engine._test_only_after_read is not None:
                self.engine._test_only_after_read(Path(path))
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        return result

    def _stream(self, arch: str, path: str, fd: int, st: os.stat_result,
                siblings: Sequence[str]) -> tuple[ChunkIds, int]:
        """Store the open file ``fd`` (closed here) as it is read, in slabs."""
        with open(fd, "rb", buffering=0) as f:
            if st.st_size > _READAHEAD_MIN and hasattr(os, "posix_fadvise"):
                # Let the kernel read ahead while we hash and encrypt (cold caches).
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_WILLNEED)
            fmt = self.chats.detect(arch, f)
            src = self.chats.source(fmt, f, st.st_size)
            if src is None:
                self.chats.too_large(arch)
            ids, size = self._chunks(f if src is None else src, os.path.basename(path),
                                     st.st_size, self.segments.write_ids)
            if fmt is not None and src is not None:
                self.chats.parse(arch, fmt, src, siblings)
            if self.engine._test_only_after_read is not None:
                self.engine._test_only_after_read(Path(path))
        return ids, size

    def _all_indexed(self, chunks: ChunkIds) -> bool:
        index = self.engine.index()
        return all(c in index for c in chunks)

    def _open_failed(self, path: str, exc: OSError) -> None:
        self._warn(path, "vanished" if isinstance(exc, FileNotFoundError) else "unreadable", exc)

    def _chunks(self, f: object, name: str, size: int,
                sink: Callable[[bytes], None] | None = None) -> tuple[ChunkIds, int]:
        """Store the chunks of ``f``, an open file or (read whole) its bytes; their ids go
        to ``sink`` as they come, 2,048 at a time (then none are returned), or are returned."""
        ids, total, unreported = bytearray(), 0, 0
        step = _IDS_STEP if sink is not None else 1 << 62
        index, known = self.engine.index(), self.packer.known
        pieces = (chunker.chunks_of(f, name, self.params) if isinstance(f, bytes)
                  else chunker.chunks(f, name, size, self.params))  # type: ignore[arg-type]
        for data, compressible in pieces:
            bid = self.engine.blob_id(data)
            if bid not in index and bid not in known:
                self.packer.add(bid, BLOB_DATA, data, compressible)
            ids += bid
            if len(ids) >= step:
                sink(bytes(ids))  # type: ignore[misc]
                ids.clear()
            total += len(data)
            self.cancel.check()
            unreported += len(data)
            if unreported >= _PROGRESS_STEP:  # a big file moves the bar while it is read
                self.progress.advance(unreported)
                unreported = 0
        self.bytes_read += total
        self.progress.advance(unreported)
        if sink is not None:
            sink(bytes(ids))
            return ChunkIds(), total
        return ChunkIds(bytes(ids)), total

    def _warn(self, path: str | Path, what: str, exc: OSError | None) -> None:
        reason = f" ({exc.strerror})" if exc is not None and exc.strerror else ""
        message = f"{path}: {what}{reason}"
        self.warnings.append(message)
        self.progress.warn(message)


def find_orphans(engine: Engine) -> list[tuple[bytes, PackInfo, list[tuple[bytes, BlobLocation]]]]:
    """Packs no index lists, with their blob lists read from their own headers.

    Reads only each orphan's prefix and header (three ranged gets).  A pack whose
    header does not decrypt is skipped (``prune`` deletes it).
    """
    index = engine.index()
    found = []
    for name in list(engine.backend.list("data/")):
        pid = pack_id_from_name(name)
        if pid is None or pid in index.packs:
            continue
        try:
            size = engine.backend.stat(name).size
            tail = engine.backend.get_range(name, max(0, size - 4), 4)
            hlen = int.from_bytes(tail, "big")
            if len(tail) != 4 or hlen + 4 + PREFIX_SIZE > size:
                continue
            prefix = engine.backend.get_range(name, 0, PREFIX_SIZE)
            ct = engine.backend.get_range(name, size - 4 - hlen, hlen)
            entries = decode_header(engine.key, pid, prefix, ct, name)
        except (DataDamaged, ObjectNotFound):
            continue
        found.append((pid, PackInfo(prefix[4:], size), entries))
    return found


def recover_orphans(engine: Engine, progress: Progress) -> int:
    """Index packs that a killed backup uploaded without an index; return bytes written."""
    found = find_orphans(engine)
    if not found:
        return 0
    index = engine.index()
    for pid, info, entries in found:
        index.add_pack(pid, info, entries)
    written = 0
    for name, size, pids in write_index(engine.backend.put, engine.key, found, engine.rng,
                                        engine.config.padded):
        index.objects[name] = pids
        written += size
    return written
