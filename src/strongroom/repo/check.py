"""``check``: is every snapshot restorable?  Names each bad object and the files it affects.

Structure (always): the config parses, every index and snapshot object
decrypts, every blob a snapshot refers to is in an index, every indexed pack
exists with the indexed size.  With ``read_data``: every pack is downloaded,
its header decrypted and compared with the index, every frame decrypted and
every blob re-hashed against its id.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from ..errors import DataDamaged, ObjectNotFound
from ..progress import Progress
from .config import read_config
from .index import Index
from .manifest import KIND_FILE
from .pack import open_frame, pack_name, parse_header

if TYPE_CHECKING:
    from ..api import CheckReport
    from .engine import Engine

MAX_FILES_LISTED = 1000


class CheckRun:
    """State of one check (use once)."""

    def __init__(self, engine: Engine, progress: Progress) -> None:
        self.engine, self.progress = engine, progress
        # object name -> what is wrong; bad blob -> object name that explains it.
        self.bad_objects: dict[str, str] = {}
        self.bad_blobs: dict[bytes, str] = {}
        self.affected: dict[str, dict[str, None]] = defaultdict(dict)
        self.bad_indexes: list[str] = []
        self.unindexed: dict[bytes, str] = {}

    def run(self, read_data: bool) -> CheckReport:
        """Run the check and build the report."""
        from ..api import CheckReport, Problem
        from .locks import Lock

        lock = Lock(self.engine.backend, self.engine.key, False, self.engine.clock,
                    self.engine.rng).acquire()
        try:
            self.lock = lock
            read_config(self.engine.backend).verify_key(self.engine.key)
            index = self._load_indexes()
            self._adopt_orphans(index)
            self._check_packs(index, read_data)
            nsnap = self._check_snapshots(index)
        finally:
            self.engine._index = None  # orphans adopted above are not really indexed
            lock.release()
        problems = [Problem(obj, what, list(self.affected.get(obj, {}))[:MAX_FILES_LISTED])
                    for obj, what in sorted(self.bad_objects.items())]
        return CheckReport(not problems, problems, nsnap, len(index.packs), len(index.blobs),
                           read_data)

    def _bad(self, name: str, what: str) -> None:
        self.bad_objects.setdefault(name, what)

    def _load_indexes(self) -> Index:
        self.engine._index = None  # re-read: check must see the storage as it is now
        idx = self.engine.index()
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
        present = {n for n in self.engine.backend.list("data/")}
        by_pack: dict[bytes, list[bytes]] = defaultdict(list)
        for bid, (pid, _) in index.blobs.items():
            by_pack[pid].append(bid)
        self.progress.start("check", len(index.packs), "packs")
        for pid, info in index.packs.items():
            name = pack_name(pid)
            whole_pack_bad = True
            if name not in present:
                self._bad(name, "missing")
            else:
                size = self.engine.backend.stat(name).size
                if size != info.size:
                    self._bad(name, f"size is {size} bytes, the index says {info.size}")
                elif read_data:
                    whole_pack_bad = not self._read_pack(pid, name, by_pack[pid])
                else:
                    whole_pack_bad = False
            if whole_pack_bad:
                for bid in by_pack[pid]:
                    self.bad_blobs.setdefault(bid, name)
            self.progress.advance(1)
            self.lock.refresh_if_due()
        self.progress.finish()

    def _read_pack(self, pid: bytes, name: str, blob_ids: list[bytes]) -> bool:
        """Verify every blob; False if the pack is unreadable as a whole."""
        eng = self.engine
        try:
            data = eng.backend.get(name)
            header = dict(parse_header(eng.key, pid, data, name))
        except (DataDamaged, ObjectNotFound) as exc:
            self._bad(name, exc.message)
            return False
        frames: dict[int, bytes | None] = {}
        salt = eng.index().packs[pid].salt
        for bid in blob_ids:
            loc = eng.index().blobs[bid][1]
            if header.get(bid) != loc:
                self._bad(name, f"header and index disagree about blob {bid.hex()[:16]}")
                self.bad_blobs[bid] = name
                continue
            if loc.frame_offset not in frames:
                ct = data[loc.frame_offset : loc.frame_offset + loc.frame_len]
                try:
                    frames[loc.frame_offset] = open_frame(eng.key, pid, salt, loc, ct, name)
                except DataDamaged as exc:
                    frames[loc.frame_offset] = None
                    self._bad(name, f"frame at offset {loc.frame_offset}: {exc.message}")
            frame = frames[loc.frame_offset]
            if frame is None or eng.blob_id(frame[loc.inner : loc.inner + loc.length]) != bid:
                if frame is not None:
                    self._bad(name, f"blob {bid.hex()[:16]} does not match its id")
                self.bad_blobs[bid] = name
        return True

    def _check_snapshots(self, index: Index) -> int:
        ids = self.engine.snapshot_ids()
        for sid in ids:
            name = f"snapshots/{sid}"
            try:
                doc = self.engine.load_snapshot(sid)
                for seg in doc.segments:
                    self._note_unindexed(seg, name, "(file list)")
                    if seg in self.bad_blobs or seg not in index:
                        raise DataDamaged(f"file list segment in "
                                          f"{self.bad_blobs.get(seg, 'no index')} is unreadable")
                for entry in self.engine.entries(doc):
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

    def _check_file(self, snap: str, path: str, chunks: list[bytes], index: Index) -> None:
        hit: set[str] = set()
        for cid in chunks:
            self._note_unindexed(cid, snap, path)
            obj = self.bad_blobs.get(cid) or self.unindexed.get(cid)
            if obj is None and cid not in index:
                # Most likely listed in a damaged index; otherwise the snapshot is at fault.
                obj = self.bad_indexes[0] if self.bad_indexes else snap
                self._bad(obj, "refers to data that is in no index")
            if obj is not None and obj not in hit:
                hit.add(obj)
                self.affected[obj][path] = None
