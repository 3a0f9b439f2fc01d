"""The write side of a backup: frames into packs, packs uploaded in the background.

The caller's thread reads, chunks, hashes and deduplicates; each full pack is
compressed, encrypted and uploaded by a small thread pool (zstd and the
backend's I/O release the GIL).  At most ``max_inflight`` packs are held in
memory.  Every ``INDEX_EVERY`` uploaded packs an index object is written, so a
backup killed midway leaves most of its uploaded data indexed and reusable.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from ..cancel import adopt, current
from .index import PackInfo, write_index
from .pack import BlobLocation, PackWriter, pack_name

if TYPE_CHECKING:
    from .engine import Engine

INDEX_EVERY = 8
_Uploaded = tuple[bytes, PackInfo, list[tuple[bytes, BlobLocation]]]


class Packer:
    """Accepts new blobs, writes packs and indexes; :meth:`finish` waits for everything."""

    def __init__(self, engine: Engine, workers: int | None = None,
                 max_inflight: int | None = None) -> None:
        # One upload per worker, as many as the backend serves well in parallel
        # (a network store hides its latency only with several in flight).
        workers = workers or engine.concurrency()
        max_inflight = max_inflight or workers
        self._engine = engine
        self._params = engine.config.chunker
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="strongroom-pack",
                                        initializer=adopt, initargs=(current(),))
        self._inflight: deque[Future[_Uploaded]] = deque()
        self._max_inflight = max_inflight
        self._packs: dict[int, PackWriter] = {}
        self._frames: dict[int, list[tuple[bytes, int, bytes]]] = {}
        self._frame_size: dict[int, int] = {}
        self._unindexed: list[_Uploaded] = []
        #: Called before each index object is written (a backup checks its lock there:
        #: packs of a run that lost its lock stay orphans, never indexed, spec §9).
        self.before_index: Callable[[], None] | None = None
        #: blob ids added during this run whose pack is not yet in the engine's index.
        self.known: set[bytes] = set()
        self.bytes_added = 0
        self.blobs_added = 0

    def add(self, blob_id: bytes, btype: int, data: bytes, compressible: bool) -> None:
        """Store a new blob (the caller has checked it is not stored yet).

        Data and file-list (meta) blobs go to separate packs, so a damaged data
        pack never hides which files a snapshot holds.
        """
        self.known.add(blob_id)
        self.blobs_added += 1
        if not compressible or len(data) >= self._params.frame_target:
            pack = self._packs.get(btype)
            if pack is not None and pack.raw_size + len(data) > self._params.pack_target:
                self._seal(btype)  # keeps every pack within pack_target (or one piece)
            self._current(btype).add_frame([(blob_id, btype, data)], compressible)
            self._maybe_seal(btype)
            return
        frame = self._frames.setdefault(btype, [])
        frame.append((blob_id, btype, data))
        self._frame_size[btype] = self._frame_size.get(btype, 0) + len(data)
        if self._frame_size[btype] >= self._params.frame_target:
            self._flush_frame(btype)

    def _current(self, btype: int) -> PackWriter:
        pack = self._packs.get(btype)
        if pack is None:
            pack = PackWriter(self._engine.key, self._engine.rng(16), self._engine.rng)
            self._packs[btype] = pack
        return pack

    def _flush_frame(self, btype: int) -> None:
        frame = self._frames.pop(btype, [])
        self._frame_size[btype] = 0
        if frame:
            self._current(btype).add_frame(frame, True)
            self._maybe_seal(btype)

    def _maybe_seal(self, btype: int) -> None:
        pack = self._packs.get(btype)
        if pack is not None and pack.raw_size >= self._params.pack_target:
            self._seal(btype)

    def _seal(self, btype: int) -> None:
        writer = self._packs.pop(btype, None)
        if writer is None or writer.blob_count == 0:
            return
        while len(self._inflight) >= self._max_inflight:
            self._collect(self._inflight.popleft())
        self._inflight.append(self._pool.submit(self._upload, writer))
        while self._inflight and self._inflight[0].done():
            self._collect(self._inflight.popleft())

    def _upload(self, writer: PackWriter) -> _Uploaded:
        data, entries = writer.finish()
        self._engine.backend.put(pack_name(writer.pack_id), data)
        return writer.pack_id, PackInfo(writer.salt, len(data)), entries

    def _collect(self, fut: Future[_Uploaded]) -> None:
        pack_id, info, entries = fut.result()
        self._engine.index().add_pack(pack_id, info, entries)
        # Once in the index, a blob needs no second entry here: keeping every
        # id of a run in this set cost ~100 B per blob (1.2 M pages of a 5 GB
        # SQLite store: ~130 MB).
        for blob_id, _loc in entries:
            self.known.discard(blob_id)
        self.bytes_added += info.size
        self._unindexed.append((pack_id, info, entries))
        if len(self._unindexed) >= INDEX_EVERY:
            self._write_index()

    def _write_index(self) -> None:
        if self._unindexed:
            if self.before_index is not None:
                self.before_index()
            for name, size, pids in write_index(self._engine.backend.put, self._engine.key,
                                                self._unindexed, self._engine.rng,
                                                self._engine.config.padded):
                self._engine.index().objects[name] = pids
                self.bytes_added += size
            self._unindexed = []

    def finish(self) -> None:
        """Flush the open frame and pack, wait for uploads, write the last index."""
        for btype in sorted(set(self._frames) | set(self._packs)):
            self._flush_frame(btype)
            self._seal(btype)
        while self._inflight:
            self._collect(self._inflight.popleft())
        self._write_index()
        self._pool.shutdown()

    def abort(self) -> None:
        """Stop after a failure: drop queued work and wait for running uploads."""
        self._pool.shutdown(wait=True, cancel_futures=True)
