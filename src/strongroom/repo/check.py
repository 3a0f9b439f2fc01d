"""``check``: is every snapshot restorable?  Names each bad object and the files it affects.

Structure (always): the config parses, every index and snapshot object
decrypts, every blob a snapshot refers to is in an index, every indexed pack
exists with the indexed size.  Its cost follows the unique content, not
snapshots x files: a file-list segment already found clean in an earlier
snapshot is not read again (unchanged runs of files give the same segments),
a record found clean (its kind, path, link target and chunk ids) is neither
decoded nor looked up again, and a large file (a database) is compared with
its last clean version, so only the chunk ids that changed are looked up.
With ``read_data``: every pack is downloaded, its header decrypted and
compared with the index, every frame decrypted and every blob re-hashed
against its id.  The snapshot pass runs in a thread beside the pack pass
(whose workers do the reading and decryption) and its findings are kept when
no blob was found bad; otherwise it runs again after the pack pass, which
decides which files a bad blob affects.
"""

from __future__ import annotations

import hashlib
import threading
from collections import defaultdict, deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from operator import eq, itemgetter
from typing import TYPE_CHECKING, cast

from ..cancel import NEVER, Cancel, adopt, current
from ..errors import DataDamaged, FormatError, ObjectNotFound
from ..progress import Progress
from .config import read_config
from .index import Index
from .manifest import (
    ID_SIZE,
    KIND_DIR,
    KIND_FILE,
    KIND_SYMLINK,
    RECORD_TAIL,
    ChunkIds,
    Entry,
    SnapshotDoc,
    decode_record,
    read_records,
    record_spans,
)
from .pack import BlobLocation, open_frame, pack_cipher, pack_name, parse_header_raw
from .sealed import fetch_capped

if TYPE_CHECKING:
    from ..results import CheckReport
    from .engine import Engine

MAX_FILES_LISTED = 1000
#: A file of at least this many chunks is compared with its last clean version.
BIG_FILE_CHUNKS = 1024


#: ``_changed`` compares the two chunk lists this many ids at a time.
_BLOCK_IDS = 2048
#: Keeps the record keys of the kinds apart (a directory's record is clean without a look
#: at its chunk ids, a file's with the same tail is not).
_KEY_PERSON = {KIND_FILE: b"file", KIND_DIR: b"dir", KIND_SYMLINK: b"symlink"}


def _changed(new: bytes, old: bytes) -> list[bytes]:
    """The chunk ids of ``new`` that differ from ``old`` at the same position (and
    any beyond its end), found at C speed: blocks of ids are compared as bytes, and
    in a block that differs the non-zero bytes of the two blocks' XOR are found with
    ``bytes.find``, one call per differing id (a day changes a few pages of a
    database, but scattered over every block: comparing such a block id by id took
    twice as long on a message store's daily records).  No copy of either list is
    made: the XOR of the whole lists as integers cost four copies of them (64 MB for
    a 2 GB message store); of one block, four copies of 64 KiB."""
    n = min(len(new), len(old))
    ids: list[bytes] = []
    block = _BLOCK_IDS * ID_SIZE
    with memoryview(new) as nv, memoryview(old) as ov:
        for start in range(0, n, block):
            end = min(n, start + block)
            if nv[start:end] == ov[start:end]:
                continue
            # 1 where the blocks differ, 0 where they agree.
            diff = (int.from_bytes(nv[start:end], "big") ^ int.from_bytes(ov[start:end], "big")
                    ).to_bytes(end - start, "big").translate(_NONZERO)
            at = diff.find(1)
            while at >= 0:
                at -= at % ID_SIZE  # the start of the id holding it
                ids.append(new[start + at : start + at + ID_SIZE])
                at = diff.find(1, at + ID_SIZE)
    ids += [new[i:i + ID_SIZE] for i in range(n, len(new), ID_SIZE)]
    return ids


def _record_key(kind: int, tail: bytes | memoryview) -> bytes:
    """What a record's check depends on, hashed: its kind and the bytes from its
    path length to its end (path, link target, chunk ids)."""
    return hashlib.blake2b(tail, digest_size=16, person=_KEY_PERSON[kind]).digest()


#: ``bytes.translate`` table: 0 stays 0, any other byte becomes 1.
_NONZERO = bytes(1) + bytes([1]) * 255


@dataclass
class _Verdict:
    """What verifying one pack found: problems, whether the whole pack is lost, bad blobs."""

    problems: list[str]
    whole_pack: bool
    bad_blobs: list[bytes]


def verify_pack(engine: Engine, pid: bytes, blobs: list[bytes]) -> _Verdict:
    """Download one pack, compare its header with the index, open every frame, re-hash blobs."""
    name = pack_name(pid)
    index = engine.index()
    try:
        # No more than the indexed size is read: a pack grown on storage is damaged.
        data = fetch_capped(engine.backend, name, index.packs[pid].size)
        # Flat tuples: compared with the index's raw records, no object per blob.
        entries = parse_header_raw(engine.key, pid, data, name)
    except (DataDamaged, ObjectNotFound) as exc:
        return _Verdict([exc.message], True, [])
    verdict = _Verdict([], False, [])
    # The index's view in the header's form, (blob id, location fields), made by C calls
    # and compared with the header's entries sorted by id (no bytecode per blob; ``blobs``
    # come in id order, and a pack indexed during this run, whose may not, just takes the
    # per-blob path): with as many entries as indexed blobs, all equal means every
    # header entry equals its blob's index entry.  Nothing is held per blob meanwhile.
    records = index.blobs.records(blobs)
    todo: list[tuple[bytes, int, int, int, int, int, int, int]]
    if (len(entries) == len(blobs) and None not in records
            and all(map(eq, sorted(entries), map(tuple.__add__, zip(blobs), map(
                _LOCATION, cast("list[tuple[int, ...]]", records)))))):
        todo = entries
    else:
        todo = _agreeing(entries, blobs, records, verdict)
    del entries, records  # not held while the frames are opened
    salt = index.packs[pid].salt
    cipher = pack_cipher(engine.key, salt)
    blob_id = engine.blob_id
    # In frame order, so only the frame being checked is held (not every frame of the
    # pack at once: up to its whole 4 MiB plaintext, per worker).
    todo.sort(key=_FRAME_ORDER)
    at, frame = -1, None
    for bid, btype, flags, frame_offset, frame_len, frame_raw, inner, length in todo:
        if frame_offset != at:
            at = frame_offset
            ct = data[frame_offset : frame_offset + frame_len]
            loc = BlobLocation(btype, flags, frame_offset, frame_len, frame_raw, inner, length)
            try:
                frame = open_frame(engine.key, pid, salt, loc, ct, name, cipher)
            except DataDamaged as exc:
                frame = None
                verdict.problems.append(f"frame at offset {frame_offset}: {exc.message}")
        if frame is None or blob_id(frame[inner : inner + length]) != bid:
            if frame is not None:
                verdict.problems.append(f"blob {bid.hex()[:16]} does not match its id")
            verdict.bad_blobs.append(bid)
    return verdict


#: An index record's location fields (after its pack number), and a header entry's
#: place in its pack (frame offset, offset inside the frame).
_LOCATION = itemgetter(slice(1, None))
_FRAME_ORDER = itemgetter(3, 6)


def _agreeing(entries: list[tuple[bytes, int, int, int, int, int, int, int]],
              blobs: list[bytes], records: list[tuple[int, ...] | None], verdict: _Verdict
              ) -> list[tuple[bytes, int, int, int, int, int, int, int]]:
    """The header entries of the indexed blobs whose location the index gives the same;
    each other indexed blob is a problem of ``verdict`` (the header and index disagree)."""
    header = {e[0]: e for e in entries}
    todo = []
    for bid, rec in zip(blobs, records, strict=True):
        entry = header.get(bid)
        if entry is None or rec is None or rec[1:] != entry[1:]:
            verdict.problems.append(f"header and index disagree about blob {bid.hex()[:16]}")
            verdict.bad_blobs.append(bid)
            continue
        todo.append(entry)
    return todo


class _PackIds:
    """Pack id -> the ids of its blobs (a list, made when asked for), held compactly."""

    def __init__(self, runs: dict[bytes, bytes]) -> None:
        self._runs = runs

    def __getitem__(self, pid: bytes) -> list[bytes]:
        run = self._runs.get(pid, b"")
        return [run[i:i + ID_SIZE] for i in range(0, len(run), ID_SIZE)]


class CheckRun:
    """State of one check (use once)."""

    def __init__(self, engine: Engine, progress: Progress, cancel: Cancel = NEVER) -> None:
        self.engine, self.progress, self.cancel = engine, progress, cancel
        # object name -> what is wrong; bad blob -> object name that explains it.
        self.bad_objects: dict[str, str] = {}
        self.bad_blobs: dict[bytes, str] = {}
        self.affected: dict[str, dict[str, None]] = defaultdict(dict)
        self.bad_indexes: list[str] = []
        self.unindexed: dict[bytes, str] = {}
        self.n_indexes = 0
        self._clean_segments: set[bytes] = set()
        self._last_big: dict[str, bytes] = {}  # path -> chunk ids of its last clean check
        # Records found clean, by a hash of what the check of a record depends on: its kind,
        # path, link target and chunk ids (not mode, times, size or inode).
        self._clean_records: set[bytes] = set()
        #: Whether a frame found damaged is dropped from the index (not beside the pack pass).
        self._forget_damaged = True

    def run(self, read_data: bool) -> CheckReport:
        """Run the check and build the report."""
        from ..results import CheckReport, Problem
        lock = self.engine.lock(False)
        try:
            self.lock = lock
            read_config(self.engine.backend).authenticate(self.engine.master)
            index = self._load_indexes()
            self._adopt_orphans(index)
            nsnap = self._packs_and_snapshots(index, read_data)
        finally:
            self.engine._index = None  # orphans adopted above are not really indexed
            lock.release()
        self._blame_config(nsnap)
        problems = [Problem(obj, what, list(self.affected.get(obj, {}))[:MAX_FILES_LISTED])
                    for obj, what in sorted(self.bad_objects.items())]
        return CheckReport(not problems, problems, nsnap, len(index.packs), len(index.blobs),
                           read_data)

    def _blame_config(self, nsnap: int) -> None:
        """Name ``config`` when no index or snapshot authenticates under its repository id.

        Objects are keyed by the repository key, which depends on the id in the
        config: if every one of them fails, the config is what does not belong.
        """
        failed_snaps = [o for o in self.bad_objects if o.startswith("snapshots/")
                        and "is damaged or was tampered with" in self.bad_objects[o]]
        all_indexes_bad = self.n_indexes > 0 and len(self.bad_indexes) == self.n_indexes
        if all_indexes_bad and nsnap and len(failed_snaps) == nsnap:
            self._bad("config", "no index or snapshot object authenticates under this "
                      "config's repository id: the config was replaced")

    def _bad(self, name: str, what: str) -> None:
        self.bad_objects.setdefault(name, what)

    def _load_indexes(self) -> Index:
        self.engine._index = None  # re-read: check must see the storage as it is now
        idx = self.engine.index()
        self.n_indexes = len(idx.objects) + len(idx.damaged)
        for name, why in sorted(idx.damaged.items()):
            self._bad(name, why)
            self.bad_indexes.append(name)
        return idx

    def _adopt_orphans(self, index: Index) -> None:
        """Read the headers of packs no index lists, to name the files they hold.

        Packs left by an interrupted backup are normal; they only become a
        problem (reported on the pack) when a snapshot needs them.
        """
        from .backup import find_orphans

        for pid, info, entries in find_orphans(self.engine):
            entries = list(entries)
            # A blob that a readable index lists is not needed from the orphan (a prune
            # killed after writing a repacked pack, before its index): only the others are.
            needed = [bid for bid, _ in entries if bid not in index.blobs]
            index.add_pack(pid, info, entries)
            for bid in needed:
                self.unindexed[bid] = pack_name(pid)

    def _check_packs(self, index: Index, read_data: bool) -> None:
        present = set(self.engine.backend.list("data/"))
        # Each pack's blob ids as one run of bytes (32 per blob), split into a list only
        # while that pack is checked: a list per pack held ~75 bytes per blob all along.
        by_pack = _PackIds(index.blobs.id_runs_by_pack())
        self.progress.start("check", len(index.packs), "packs")
        # Packs are downloaded and verified a few at a time by worker threads (the
        # I/O and AES-GCM overlap); results are merged here, in order.
        inflight: deque[tuple[bytes, Future[_Verdict]]] = deque()
        with ThreadPoolExecutor(3, thread_name_prefix="strongroom-check",
                                initializer=adopt, initargs=(current(),)) as pool:
            for pid, info in index.packs.items():
                name = pack_name(pid)
                if name not in present:
                    self._pack_done(pid, name, _Verdict(["missing"], True, []), by_pack)
                    continue
                size = self.engine.backend.stat(name).size
                if size != info.size:
                    why = f"size is {size} bytes, the index says {info.size}"
                    self._pack_done(pid, name, _Verdict([why], True, []), by_pack)
                elif read_data:
                    inflight.append((pid, pool.submit(verify_pack, self.engine, pid, by_pack[pid])))
                    if len(inflight) >= 3:
                        done_pid, fut = inflight.popleft()
                        self._pack_done(done_pid, pack_name(done_pid), fut.result(), by_pack)
                else:
                    self._pack_done(pid, name, _Verdict([], False, []), by_pack)
            while inflight:
                done_pid, fut = inflight.popleft()
                self._pack_done(done_pid, pack_name(done_pid), fut.result(), by_pack)
        self.progress.finish()

    def _pack_done(self, pid: bytes, name: str, verdict: _Verdict,
                   by_pack: _PackIds) -> None:
        for what in verdict.problems:
            self._bad(name, what)
        bad = by_pack[pid] if verdict.whole_pack else verdict.bad_blobs
        for bid in bad:
            self.bad_blobs.setdefault(bid, name)
        self.progress.advance(1)
        self.lock.refresh_if_due()
        self.cancel.check()

    def _packs_and_snapshots(self, index: Index, read_data: bool) -> int:
        """The pack pass here and, beside it in a thread, the snapshot pass as if no
        blob were bad; the number of snapshot objects.

        The snapshot pass is the main thread's work and the pack pass mostly waits
        for its workers, so the two overlap.  What the snapshot pass finds depends
        on the blobs the pack pass finds bad: its findings are taken as they are
        when no blob was (the common case), and it runs again, after the pack
        pass, when one was.  Beside the pack pass it drops nothing from the index
        (a frame it finds damaged is one the pack pass finds too).
        """
        beside = CheckRun(self.engine, self.progress, self.cancel)
        beside.unindexed, beside.bad_indexes = self.unindexed, self.bad_indexes
        beside._forget_damaged = False
        outcome: list[int | Exception] = []
        stop = threading.Event()
        token = current()

        def snapshots() -> None:
            adopt(token)
            try:
                outcome.append(beside._check_snapshots(index, stop))
            except Exception as exc:  # noqa: BLE001 - re-raised in the caller's thread
                outcome.append(exc)

        thread = threading.Thread(target=snapshots, name="strongroom-check-snapshots")
        thread.start()
        try:
            self._check_packs(index, read_data)
        except BaseException:
            stop.set()  # the snapshot pass ends at its next snapshot
            raise
        finally:
            thread.join()
        if self.bad_blobs:
            return self._check_snapshots(index)
        (result,) = outcome
        if isinstance(result, Exception):
            raise result
        for name, what in beside.bad_objects.items():
            self._bad(name, what)
        for obj, paths in beside.affected.items():
            self.affected[obj].update(paths)
        return result

    def _check_snapshots(self, index: Index, stop: threading.Event | None = None) -> int:
        ids = self.engine.snapshot_ids()
        docs: list[SnapshotDoc] = []
        for sid in ids:
            try:
                docs.append(self.engine.load_snapshot(sid))
            except DataDamaged as exc:
                self._bad(f"snapshots/{sid}", exc.message)
        # Oldest first: each snapshot is checked against what the ones before left clean.
        for doc in sorted(docs, key=lambda d: (d.time, d.id)):
            if stop is not None and stop.is_set():
                break
            name = f"snapshots/{doc.id}"
            try:
                for seg in doc.segments:
                    self._note_unindexed(seg, name, "(file list)")
                    if seg in self.bad_blobs or seg not in index.blobs:
                        raise DataDamaged(f"file list segment in "
                                          f"{self.bad_blobs.get(seg, 'no index')} is unreadable")
                for blob in doc.chats or ():
                    self._note_unindexed(blob, name, "(chat catalogue)")
                    if blob in self.bad_blobs or blob not in index.blobs:
                        raise DataDamaged(f"chat catalogue in "
                                          f"{self.bad_blobs.get(blob, 'no index')} is unreadable")
                self._check_doc(doc, name, index)
            except DataDamaged as exc:
                self._bad(name, exc.message)
        return len(ids)

    def _check_doc(self, doc: SnapshotDoc, name: str, index: Index) -> None:
        """Check every file of ``doc``, skipping segments found clean before."""
        group: list[bytes] = []  # segments whose records cross their ends: read as one stream
        skipped = False
        try:
            for seg in doc.segments:
                if seg in self._clean_segments:
                    self._check_group(group, name, index)
                    group, skipped = [], True
                    continue
                data = self.engine.read_blob(seg, name, forget=self._forget_damaged)
                try:
                    spans = record_spans(data, name)
                except FormatError:
                    group.append(data)
                    continue
                self._check_group(group, name, index)
                group = []
                if self._check_records(data, spans, name, index):
                    self._clean_segments.add(seg)
            self._check_group(group, name, index)
        except FormatError:
            if not skipped:
                raise
            # A record went on into a segment skipped above: read the whole stream.
            segments = (self.engine.read_blob(seg, name, forget=self._forget_damaged)
                        for seg in doc.segments)
            for entry in read_records(segments, name):
                self._check_decoded(entry, name, index)

    def _check_group(self, group: list[bytes], name: str, index: Index) -> None:
        if group:
            # Handed over one by one (and dropped from ``group``): a record spanning many
            # segments (a database's chunk list) is not held as segments and as a record.
            segments = (group.pop() for _ in range(len(group)))
            group.reverse()
            for entry in read_records(segments, name):
                self._check_decoded(entry, name, index)

    def _check_records(self, data: bytes, spans: list[tuple[int, int, int, int]],
                       snap: str, index: Index) -> bool:
        """Check the whole records of one segment; True if every one is clean.

        A record is decoded and checked once: later snapshots list most files
        unchanged, and a record whose kind, path, link target and chunk ids were
        found clean before is skipped from its fixed fields and a hash of its tail
        (a day's file list is a new segment as soon as one file in it changed).
        A large file's record is compared with its last clean version instead.
        """
        clean, seen = True, self._clean_records
        with memoryview(data) as view:
            for pos, length, kind, nc in spans:
                if kind == KIND_FILE and nc >= BIG_FILE_CHUNKS:
                    ok = self._check_entry(decode_record(data, pos, snap), snap, index)
                else:
                    key = _record_key(kind, view[pos + RECORD_TAIL : pos + length])
                    if key in seen:
                        continue
                    ok = self._check_new(key, decode_record(data, pos, snap), snap, index)
                clean = clean and ok
        return clean

    def _check_decoded(self, entry: Entry, snap: str, index: Index) -> bool:
        """:meth:`_check_entry` of a record decoded from a stream of segments (records
        that span segments, and the ones sharing their segments), with the same skip
        of records found clean before: the key is made from the record encoded again,
        the same bytes as stored."""
        if entry.kind == KIND_FILE and len(entry.chunks) >= BIG_FILE_CHUNKS:
            return self._check_entry(entry, snap, index)
        key = _record_key(entry.kind, entry.encode_head()[RECORD_TAIL:] + entry.chunks.raw)
        if key in self._clean_records:
            return True
        return self._check_new(key, entry, snap, index)

    def _check_new(self, key: bytes, entry: Entry, snap: str, index: Index) -> bool:
        """:meth:`_check_entry` of a record not found clean before; remembered if clean."""
        clean = self._check_entry(entry, snap, index)
        if clean:
            self._clean_records.add(key)
        return clean

    def _check_entry(self, entry: Entry, snap: str, index: Index) -> bool:
        """Check one record; True if nothing it refers to is missing or damaged."""
        if entry.kind != KIND_FILE:
            return True
        chunks = entry.chunks
        if not isinstance(chunks, ChunkIds) or len(chunks) < BIG_FILE_CHUNKS:
            return self._check_file(snap, entry.path, chunks, index)
        raw = chunks.raw
        prev = self._last_big.get(entry.path)
        if prev is None:
            clean = self._check_file(snap, entry.path, chunks, index)
        else:
            clean = self._check_file(snap, entry.path, _changed(raw, prev), index)
        if clean:
            self._last_big[entry.path] = raw
        return clean

    def _note_unindexed(self, blob_id: bytes, snap: str, path: str) -> None:
        pack = self.unindexed.get(blob_id)
        if pack is not None:
            self._bad(pack, "is listed in no readable index (the next backup re-indexes it)")
            self.affected[pack][path] = None
            for idx in self.bad_indexes:  # most likely what listed it
                self.affected[idx][path] = None

    def _check_file(self, snap: str, path: str, chunks: Sequence[bytes], index: Index) -> bool:
        if not self.unindexed and not self.bad_blobs and not index.blobs.absent(chunks):
            return True  # the common case, one call for the whole file
        hit: set[str] = set()
        for cid in chunks:
            if self.unindexed:
                self._note_unindexed(cid, snap, path)
            obj = self.bad_blobs.get(cid) or self.unindexed.get(cid)
            if obj is None and cid not in index.blobs:
                # Most likely listed in a damaged index; otherwise the snapshot is at fault.
                obj = self.bad_indexes[0] if self.bad_indexes else snap
                self._bad(obj, "refers to data that is in no index")
            if obj is not None and obj not in hit:
                hit.add(obj)
                self.affected[obj][path] = None
        return not hit
