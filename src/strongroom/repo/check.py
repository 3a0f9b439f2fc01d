"""``check``: is every snapshot restorable?  Names each bad object and the files it affects.

Structure (always): the config parses, every index and snapshot object
decrypts, every blob a snapshot refers to is in an index, every indexed pack
exists with the indexed size.  With ``read_data``: every pack is downloaded,
its header decrypted and compared with the index, every frame decrypted and
every blob re-hashed against its id.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..cancel import NEVER, Cancel
from ..errors import DataDamaged, ObjectNotFound
from ..progress import Progress
from .config import read_config
from .index import Index
from .manifest import KIND_FILE
from .pack import BlobLocation, open_frame, pack_name, parse_header
from .sealed import fetch_capped

if TYPE_CHECKING:
    from ..api import CheckReport
    from .engine import Engine

MAX_FILES_LISTED = 1000


@dataclass
class _Verdict:
    """What verifying one pack found: problems, whether the whole pack is lost, bad blobs."""

    problems: list[str]
    whole_pack: bool
    bad_blobs: list[bytes]


def verify_pack(engine: Engine, pid: bytes, blobs: list[tuple[bytes, BlobLocation]]
                ) -> _Verdict:
    """Download one pack, compare its header with the index, open every frame, re-hash blobs."""
    name = pack_name(pid)
    try:
        # No more than the indexed size is read: a pack grown on storage is damaged.
        data = fetch_capped(engine.backend, name, engine.index().packs[pid].size)
        header = dict(parse_header(engine.key, pid, data, name))
    except (DataDamaged, ObjectNotFound) as exc:
        return _Verdict([exc.message], True, [])
    verdict = _Verdict([], False, [])
    frames: dict[int, bytes | None] = {}
    salt = engine.index().packs[pid].salt
    for bid, loc in blobs:
        if header.get(bid) != loc:
            verdict.problems.append(f"header and index disagree about blob {bid.hex()[:16]}")
            verdict.bad_blobs.append(bid)
            continue
        if loc.frame_offset not in frames:
            ct = data[loc.frame_offset : loc.frame_offset + loc.frame_len]
            try:
                frames[loc.frame_offset] = open_frame(engine.key, pid, salt, loc, ct, name)
            except DataDamaged as exc:
                frames[loc.frame_offset] = None
                verdict.problems.append(f"frame at offset {loc.frame_offset}: {exc.message}")
        frame = frames[loc.frame_offset]
        if frame is None or engine.blob_id(frame[loc.inner : loc.inner + loc.length]) != bid:
            if frame is not None:
                verdict.problems.append(f"blob {bid.hex()[:16]} does not match its id")
            verdict.bad_blobs.append(bid)
    return verdict


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

    def run(self, read_data: bool) -> CheckReport:
        """Run the check and build the report."""
        from ..api import CheckReport, Problem
        lock = self.engine.lock(False)
        try:
            self.lock = lock
            read_config(self.engine.backend).authenticate(self.engine.master)
            index = self._load_indexes()
            self._adopt_orphans(index)
            self._check_packs(index, read_data)
            nsnap = self._check_snapshots(index)
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
            index.add_pack(pid, info, entries)
            for bid, _ in entries:
                self.unindexed[bid] = pack_name(pid)

    def _check_packs(self, index: Index, read_data: bool) -> None:
        present = set(self.engine.backend.list("data/"))
        by_pack: dict[bytes, list[bytes]] = defaultdict(list)
        for bid, (pid, _) in index.blobs.items():
            by_pack[pid].append(bid)
        self.progress.start("check", len(index.packs), "packs")
        # Packs are downloaded and verified a few at a time by worker threads (the
        # I/O and AES-GCM overlap); results are merged here, in order.
        inflight: deque[tuple[bytes, Future[_Verdict]]] = deque()
        with ThreadPoolExecutor(3, thread_name_prefix="strongroom-check") as pool:
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
                    blobs = [(b, index.blobs[b][1]) for b in by_pack[pid]]
                    inflight.append((pid, pool.submit(verify_pack, self.engine, pid, blobs)))
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
                   by_pack: dict[bytes, list[bytes]]) -> None:
        for what in verdict.problems:
            self._bad(name, what)
        bad = by_pack[pid] if verdict.whole_pack else verdict.bad_blobs
        for bid in bad:
            self.bad_blobs.setdefault(bid, name)
        self.progress.advance(1)
        self.lock.refresh_if_due()
        self.cancel.check()

    def _check_snapshots(self, index: Index) -> int:
        ids = self.engine.snapshot_ids()
        for sid in ids:
            name = f"snapshots/{sid}"
            try:
                doc = self.engine.load_snapshot(sid)
                for seg in doc.segments:
                    self._note_unindexed(seg, name, "(file list)")
                    if seg in self.bad_blobs or seg not in index.blobs:
                        raise DataDamaged(f"file list segment in "
                                          f"{self.bad_blobs.get(seg, 'no index')} is unreadable")
                for entry in self.engine.entries(doc):
                    self.cancel.check()
                    if entry.kind == KIND_FILE:
                        self._check_file(name, entry.path, entry.chunks, index)
            except DataDamaged as exc:
                self._bad(name, exc.message)
        return len(ids)

    def _note_unindexed(self, blob_id: bytes, snap: str, path: str) -> None:
        pack = self.unindexed.get(blob_id)
        if pack is not None:
            self._bad(pack, "is listed in no readable index (the next backup re-indexes it)")
            self.affected[pack][path] = None
            for idx in self.bad_indexes:  # most likely what listed it
                self.affected[idx][path] = None

    def _check_file(self, snap: str, path: str, chunks: Sequence[bytes], index: Index) -> None:
        hit: set[str] = set()
        for cid in chunks:
            self._note_unindexed(cid, snap, path)
            obj = self.bad_blobs.get(cid) or self.unindexed.get(cid)
            if obj is None and cid not in index.blobs:
                # Most likely listed in a damaged index; otherwise the snapshot is at fault.
                obj = self.bad_indexes[0] if self.bad_indexes else snap
                self._bad(obj, "refers to data that is in no index")
            if obj is not None and obj not in hit:
                hit.add(obj)
                self.affected[obj][path] = None
