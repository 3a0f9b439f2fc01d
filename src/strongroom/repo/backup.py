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
import os
import socket
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..cancel import NEVER, Cancel
from ..errors import DataDamaged, ObjectNotFound
from ..progress import Progress, report_item, report_totals
from . import chunker
from .chatcat import Cataloguer, load_catalogue
from .index import PackInfo, write_index
from .manifest import (
    KIND_DIR,
    KIND_FILE,
    KIND_SYMLINK,
    ChunkIds,
    Entry,
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


def _key(path: str) -> tuple[str, ...]:
    # Walk order and manifest order: depth first, names sorted at each level.
    return tuple(path.split("/"))


class ParentCursor:
    """Merge-join over the parent snapshot's records (both are in walk order)."""

    def __init__(self, records: Iterator[Entry] | None, progress: Progress) -> None:
        self._it = records
        self._progress = progress
        self._cur: Entry | None = None
        self._advance()

    def _advance(self) -> None:
        try:
            self._cur = next(self._it, None) if self._it is not None else None
        except DataDamaged as exc:
            # A damaged parent only costs speed: the remaining files are read again.
            self._progress.warn(f"parent snapshot unreadable, reading all files: {exc.message}")
            self._it, self._cur = None, None

    def lookup(self, path: str) -> Entry | None:
        """The parent's record for ``path``, if any (paths must be asked in walk order)."""
        key = _key(path)
        while self._cur is not None and _key(self._cur.path) < key:
            self._advance()
        return self._cur if self._cur is not None and self._cur.path == path else None


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
        cursor = ParentCursor(self.engine.entries(parent) if parent else None, self.progress)
        segments = SegmentWriter(self._store_meta)
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

    def _walk(self, arch: str, path: Path, cursor: ParentCursor,
              siblings: Sequence[str] = ()) -> Iterator[Entry]:
        if self.exclude and self.exclude.matches(_key(arch)):
            return  # --exclude: neither it nor (for a folder) anything below it
        try:
            st = os.lstat(path)
        except OSError as exc:
            self._warn(path, "vanished" if isinstance(exc, FileNotFoundError) else "unreadable",
                       exc)
            return
        if stat.S_ISDIR(st.st_mode):
            if arch:  # the file-system root itself has no record
                yield Entry(KIND_DIR, arch, st.st_mode, st.st_mtime_ns)
                self.dirs += 1
            try:
                names = sorted(os.listdir(path))
            except OSError as exc:
                self._warn(path, "unreadable", exc)
                return
            for name in names:
                yield from self._walk(f"{arch}/{name}" if arch else name, path / name, cursor,
                                      names)
        elif stat.S_ISLNK(st.st_mode):
            try:
                link = os.readlink(path)
            except OSError as exc:
                self._warn(path, "unreadable", exc)
                return
            yield Entry(KIND_SYMLINK, arch, st.st_mode, st.st_mtime_ns, link=link)
        elif stat.S_ISREG(st.st_mode):
            report_item(self.progress, "/" + arch)
            entry = self._file(arch, path, st, cursor.lookup(arch), siblings)
            if entry is not None:
                self.files += 1
                self.total_bytes += entry.size
                yield entry
        else:
            self._warn(path, "skipped (not a regular file, directory or symlink)", None)

    def _file(self, arch: str, path: Path, st: os.stat_result,
              old: Entry | None, siblings: Sequence[str] = ()) -> Entry | None:
        if (old is not None and old.kind == KIND_FILE and old.size == st.st_size
                and old.mtime_ns == st.st_mtime_ns and old.inode == st.st_ino
                and old.ctime_ns == st.st_ctime_ns
                and all(c in self.engine.index() for c in old.chunks)):
            self.unchanged += 1
            self.chats.unchanged(arch, path, siblings)
            self.progress.advance(st.st_size)  # done without reading: the total counts it
            return Entry(KIND_FILE, arch, st.st_mode, st.st_mtime_ns, st.st_size, st.st_ino,
                         st.st_ctime_ns, chunks=old.chunks)
        try:
            if self.engine._test_only_before_read is not None:
                self.engine._test_only_before_read(path)
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symlink swapped in after the listing
                self._warn(path, "replaced by a symlink after it was listed; not read", None)
                return None
            self._open_failed(path, exc)
            return None
        try:
            with open(fd, "rb", buffering=0) as f:
                listed = st
                st = os.fstat(f.fileno())
                if (not stat.S_ISREG(st.st_mode)
                        or (st.st_dev, st.st_ino) != (listed.st_dev, listed.st_ino)):
                    # A FIFO, device or another file swapped in after the listing:
                    # reading it could hang or store an outside file under this name.
                    self._warn(path, "replaced by another file after it was listed; not read",
                               None)
                    return None
                if st.st_size > _READAHEAD_MIN and hasattr(os, "posix_fadvise"):
                    # Let the kernel read ahead while we hash and encrypt (cold caches).
                    os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_WILLNEED)
                fmt = self.chats.detect(arch, f)
                src = self.chats.source(fmt, f, st.st_size)
                if src is None:
                    self.chats.too_large(arch)
                ids, size = self._chunks(f if src is None else src, path.name, st.st_size)
                if fmt is not None and src is not None:
                    self.chats.parse(arch, fmt, src, siblings)
                if self.engine._test_only_after_read is not None:
                    self.engine._test_only_after_read(path)
            after = os.stat(path)
        except OSError as exc:
            self._open_failed(path, exc)
            return None
        if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns) or size != st.st_size:
            # Stored as read; the next backup will pick up the new content.
            self.changed.append(str(path))
            self.progress.warn(f"{path}: changed while it was being read")
        return Entry(KIND_FILE, arch, st.st_mode, st.st_mtime_ns, size, st.st_ino,
                     st.st_ctime_ns, chunks=ids)

    def _open_failed(self, path: Path, exc: OSError) -> None:
        self._warn(path, "vanished" if isinstance(exc, FileNotFoundError) else "unreadable", exc)

    def _chunks(self, f: object, name: str, size: int) -> tuple[ChunkIds, int]:
        ids, total, unreported = bytearray(), 0, 0
        index, known = self.engine.index(), self.packer.known
        for data, compressible in chunker.chunks(f, name, size, self.params):  # type: ignore[arg-type]
            bid = self.engine.blob_id(data)
            if bid not in index and bid not in known:
                self.packer.add(bid, BLOB_DATA, data, compressible)
            ids += bid
            total += len(data)
            self.cancel.check()
            unreported += len(data)
            if unreported >= _PROGRESS_STEP:  # a big file moves the bar while it is read
                self.progress.advance(unreported)
                unreported = 0
        self.bytes_read += total
        self.progress.advance(unreported)
        return ChunkIds(bytes(ids)), total

    def _warn(self, path: Path, what: str, exc: OSError | None) -> None:
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
