"""The engine behind :class:`strongroom.api.Repository`: open/create, index, snapshots.

The operations live in their own modules (backup, restore, check, maintenance);
this module holds what they share.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import blake3

from ..cancel import NEVER, Cancel, active, adopt, current
from ..crypto import labels
from ..crypto.keys import BackupKey
from ..errors import (
    DataDamaged,
    ObjectNotFound,
    RepositoryExists,
    SnapshotNotFound,
)
from ..progress import Progress
from ..storage.base import Backend
from ..storage.tuning import preferred_concurrency
from .config import CONFIG_NAME, ChunkerParams, Config, new_config, read_config, repository_key
from .index import (
    INDEX_PREFIX,
    TRASH_PREFIX,
    Index,
    PackInfo,
    RawIndex,
    decode_index_raw,
    open_index_object,
)
from .locks import REFRESH_EVERY, Lock, default_observations
from .manifest import (
    SNAPSHOT_PREFIX,
    Entry,
    RecordReader,
    SnapshotDoc,
    open_snapshot,
    read_records,
)
from .pack import BlobLocation, open_frame, pack_cipher, pack_name
from .sealed import INDEX_MAX, SNAPSHOT_MAX, fetch_capped, named_objects

if TYPE_CHECKING:
    from ..crypto.aead import ObjectCipher
    from ..results import (
        BackupSummary,
        CheckReport,
        ForgetResult,
        PruneSummary,
        RestoreSummary,
        SnapshotInfo,
    )
    from .restore import RestoreOptions
    from .subset import Subset

Clock = Callable[[], float]
IndexPacks = tuple[bytes, PackInfo, list[tuple[bytes, BlobLocation]]]
Rng = Callable[[int], bytes]


#: Pack ciphers :meth:`Engine.fetch_frames` keeps, at most.
_CIPHERS_MAX = 256


class LastFrame:
    """The last frame :meth:`Engine.read_blob` fetched for one reader (one frame held)."""

    def __init__(self) -> None:
        self.key: tuple[bytes, int] | None = None
        self.frame = b""


class Engine:
    """An open repository: backend, key, config, and the lazily loaded index."""

    def __init__(self, backend: Backend, key: BackupKey, config: Config, clock: Clock,
                 rng: Rng) -> None:
        self.backend, self.config = backend, config
        #: The repository key RK: every object key derives from it, binding objects to
        #: this repository's id (K itself is kept only to re-check the config).
        self.master = key
        self.key = repository_key(key, config.repo_id)
        self.clock, self.rng = clock, rng
        self.repo_id_hex = config.repo_id.hex()
        self._blob_key = key.derive(labels.BLOB_ID)
        self._index: Index | None = None
        #: Frame ciphers of packs read lately (one HKDF per pack, not per ranged
        #: read: a restore reads a 4 MiB pack in two or more spans), at most
        #: ``_CIPHERS_MAX``; any thread may add one.
        self._ciphers: dict[tuple[bytes, bytes], ObjectCipher] = {}
        #: This process's monotonic clock: lock refresh and staleness (spec §9) use it,
        #: never a wall clock, so another device's clock cannot make a lock look stale.
        self.monotonic: Clock = time.monotonic
        #: Where this device remembers when it first saw each lock object.
        self.lock_observations = default_observations(self.repo_id_hex)
        #: Seconds between lock refreshes (spec §9: 5 minutes).
        self.lock_refresh_every = REFRESH_EVERY
        #: Test-only hooks (see tests/unit/repo): called before a source file is opened,
        #: after it is read (a concurrent writer), and a factory of restore sinks
        #: (``restore.Sink``) used instead of real files (an injected full disk).
        self._test_only_before_read: Callable[[Path], None] | None = None
        self._test_only_after_read: Callable[[Path], None] | None = None
        self._test_only_open_for_write: Callable[[int, str], Any] | None = None

    # -- lifecycle -------------------------------------------------------------------
    @classmethod
    def create(cls, backend: Backend, key: BackupKey, *, clock: Clock = time.time,
               rng: Rng = os.urandom, chunker: ChunkerParams | None = None) -> Engine:
        """Write a new config; ``RepositoryExists`` if the location has one."""
        config = new_config(key, rng(16), clock(), chunker)
        if not backend.put_if_absent(CONFIG_NAME, config.encode()):
            raise RepositoryExists(f"a repository already exists at {backend.location}")
        return cls(backend, key, config, clock, rng)

    @classmethod
    def open(cls, backend: Backend, key: BackupKey, *, clock: Clock = time.time,
             rng: Rng = os.urandom) -> Engine:
        """Read the config and check the key before anything else is downloaded."""
        config = read_config(backend)
        config.authenticate(key)
        return cls(backend, key, config, clock, rng)

    def lock(self, exclusive: bool) -> Lock:
        """Take a lock that refreshes itself from a background thread (spec §9)."""
        return Lock(self.backend, self.key, exclusive, self.monotonic, self.rng,
                    observations=self.lock_observations, background=True,
                    refresh_every=self.lock_refresh_every).acquire()

    def close(self) -> None:
        """Forget cached state; the backend belongs to the caller."""
        self._index = None
        self._ciphers = {}

    # -- ids, index, blobs -------------------------------------------------------------
    def concurrency(self) -> int:
        """How many uploads or downloads to keep in flight (the backend's preference)."""
        return preferred_concurrency(self.backend)

    def blob_id(self, data: bytes) -> bytes:
        """Keyed BLAKE3 of a blob's plaintext: its id (the provider cannot compute it)."""
        return blake3.blake3(data, key=self._blob_key).digest()

    def index(self) -> Index:
        """The union of all index objects (loaded once, several downloads at a time)."""
        if self._index is None:
            idx = Index()
            # Index objects first, then trash objects (their packs are marked condemned).
            names = (named_objects(self.backend.list(INDEX_PREFIX), INDEX_PREFIX)
                     + named_objects(self.backend.list(TRASH_PREFIX), TRASH_PREFIX))
            # Downloads overlap (a network store costs a round trip each); merging
            # stays in name order on this thread, so the result does not depend on timing.
            workers = min(self.concurrency(), len(names))
            with idx.blobs.loading():  # one sort at the end instead of a merge per ~1,000 blobs
                if workers > 1:
                    with ThreadPoolExecutor(workers, thread_name_prefix="strongroom-index",
                                            initializer=adopt, initargs=(current(),)) as pool:
                        self._merge_index_objects(idx, names, pool, 2 * workers)
                else:
                    for name in names:
                        self._merge_index_object(idx, name, self._read_index_object(name))
            self._index = idx
        return self._index

    def _merge_index_objects(self, idx: Index, names: list[str], pool: ThreadPoolExecutor,
                             window: int) -> None:
        # Workers download and decrypt; each object is decoded here, just before it is
        # merged.  So the ``window`` objects waiting at once are plaintext (44 bytes an
        # entry), never decoded entries (about 300 bytes each as Python objects): with
        # 16 waiting, decoded, a 800 MB message store's backup peaked 40 MB higher.
        pending: deque[Future[bytes | DataDamaged]] = deque()
        for i, name in enumerate(names):
            pending.append(pool.submit(self._fetch_index_object, name))
            if len(pending) >= window:
                done = names[i - window + 1]
                self._merge_index_object(idx, done, self._decode_index_object(
                    done, pending.popleft().result()))
        first = len(names) - len(pending)
        for j, fut in enumerate(pending):
            done = names[first + j]
            self._merge_index_object(idx, done, self._decode_index_object(done, fut.result()))

    def _merge_index_object(self, idx: Index, name: str, packs: RawIndex | DataDamaged) -> None:
        if isinstance(packs, DataDamaged):
            # Not fatal here: only blobs listed solely in it are affected, and
            # a backup simply stores those again.  check/restore name it.
            idx.damaged[name] = packs.message
        else:
            self._add_index_object(idx, name, packs)

    def _fetch_index_object(self, name: str) -> bytes | DataDamaged:
        """The decrypted plaintext of the index object ``name`` (or what is wrong)."""
        try:
            data = fetch_capped(self.backend, name, INDEX_MAX)
        except ObjectNotFound:
            return DataDamaged(f"{name} is missing")
        except DataDamaged as exc:
            return exc
        try:
            return open_index_object(data, self.key, name)
        except DataDamaged as exc:
            return exc

    @staticmethod
    def _decode_index_object(name: str, plain: bytes | DataDamaged) -> RawIndex | DataDamaged:
        if isinstance(plain, DataDamaged):
            return plain
        try:
            return decode_index_raw(plain, name)
        except DataDamaged as exc:
            return exc

    def _read_index_object(self, name: str) -> RawIndex | DataDamaged:
        return self._decode_index_object(name, self._fetch_index_object(name))

    @staticmethod
    def _add_index_object(idx: Index, name: str, raw: RawIndex) -> None:
        packs, entries = raw
        if name.startswith(TRASH_PREFIX):
            idx.trashed.update(p[0] for p in packs if p[0] not in idx.packs)
        idx.add_object(packs, entries)
        idx.objects[name] = [p[0] for p in packs]

    def load_index_object(self, idx: Index, name: str) -> None:
        """Add one index object to ``idx``; ``DataDamaged`` if it is damaged or missing."""
        packs = self._read_index_object(name)
        if isinstance(packs, DataDamaged):
            raise packs
        self._add_index_object(idx, name, packs)

    def fetch_frame(self, pack_id: bytes, loc: BlobLocation) -> bytes:
        """Download, decrypt and decompress one frame; ``DataDamaged`` naming the pack."""
        name = pack_name(pack_id)
        info = self.index().packs[pack_id]
        try:
            ct = self.backend.get_range(name, loc.frame_offset, loc.frame_len)
        except ObjectNotFound:
            raise DataDamaged(f"{name} is missing") from None
        return open_frame(self.key, pack_id, info.salt, loc, ct, name)

    def fetch_frames(self, pack_id: bytes, locs: Sequence[BlobLocation]
                     ) -> list[bytes | DataDamaged]:
        """Several frames of one pack with one ranged read (fewer requests to a network store).

        ``locs`` are in pack order; the read spans from the first frame's start
        to the last frame's end.  Each frame is checked on its own: a damaged
        one is returned as its ``DataDamaged``, the others are still usable.
        """
        name = pack_name(pack_id)
        info = self.index().packs[pack_id]
        start = min(loc.frame_offset for loc in locs)
        end = max(loc.frame_offset + loc.frame_len for loc in locs)
        try:
            span = memoryview(self.backend.get_range(name, start, end - start))
        except ObjectNotFound:
            return [DataDamaged(f"{name} is missing") for _ in locs]
        out: list[bytes | DataDamaged] = []
        cipher = self._ciphers.get((pack_id, info.salt))  # by salt too: what the key is derived from
        if cipher is None:
            if len(self._ciphers) >= _CIPHERS_MAX:
                self._ciphers.clear()
            cipher = self._ciphers[pack_id, info.salt] = pack_cipher(self.key, info.salt)
        for loc in locs:
            lo = loc.frame_offset - start
            try:
                out.append(open_frame(self.key, pack_id, info.salt, loc,
                                      span[lo:lo + loc.frame_len], name,  # type: ignore[arg-type]
                                      cipher))
            except DataDamaged as exc:
                out.append(exc)
        return out

    def read_blob(self, blob_id: bytes, what: str = "blob",
                  last: LastFrame | None = None, *, forget: bool = True) -> bytes:
        """The plaintext of one blob, verified against its id.

        With ``last``, a blob in the same frame as the previous one read through
        it is cut from that frame instead of fetching and decrypting it again
        (the consecutive pages of a message store share frames).  A frame found
        damaged is dropped from the index (so a backup stores its blobs again)
        unless ``forget`` is false: a reader beside others that use the index.
        """
        try:
            pack_id, loc = self.index().blobs[blob_id]
        except KeyError:
            reason = self.index().missing_reason()
            raise DataDamaged(f"{what}: blob {blob_id.hex()[:16]} {reason}") from None
        try:
            if last is not None and last.key == (pack_id, loc.frame_offset):
                frame = last.frame
            else:
                frame = self.fetch_frame(pack_id, loc)
                if last is not None:
                    last.key, last.frame = (pack_id, loc.frame_offset), frame
            data = frame[loc.inner : loc.inner + loc.length]
            if self.blob_id(data) != blob_id:
                raise DataDamaged(f"{pack_name(pack_id)}: blob {blob_id.hex()[:16]} "
                                  "has wrong content")
        except DataDamaged:
            # Never deduplicate against data known to be damaged.
            if forget:
                self.index().forget_frame(pack_id, loc.frame_offset)
            raise
        return data

    def read_blobs(self, blob_ids: Iterable[bytes], what: str = "blob") -> Iterator[bytes]:
        """The plaintexts of blobs, in order, each verified against its id.  A frame holds
        several blobs (a file's consecutive SQLite pages): it is fetched and decompressed
        once for a run of blobs in it, not once per blob (:meth:`read_blob` with one
        :class:`LastFrame`)."""
        last = LastFrame()
        for blob_id in blob_ids:
            yield self.read_blob(blob_id, what, last)

    # -- snapshots -----------------------------------------------------------------------
    def snapshot_ids(self) -> list[str]:
        """Ids of every snapshot object present."""
        names = named_objects(self.backend.list(SNAPSHOT_PREFIX), SNAPSHOT_PREFIX)
        return [n[len(SNAPSHOT_PREFIX):] for n in names]

    def load_snapshot(self, snap_id: str) -> SnapshotDoc:
        """Decrypt one snapshot object."""
        try:
            data = fetch_capped(self.backend, SNAPSHOT_PREFIX + snap_id, SNAPSHOT_MAX)
        except ObjectNotFound:
            raise SnapshotNotFound(f"snapshot {snap_id[:8]} does not exist") from None
        return open_snapshot(self.key, snap_id, data)

    def snapshot_docs(self, *, skip_damaged: bool = False) -> list[SnapshotDoc]:
        """Every snapshot, oldest first (ties broken by id); ``DataDamaged`` unless skipped."""
        docs = []
        for sid in self.snapshot_ids():
            try:
                docs.append(self.load_snapshot(sid))
            except (DataDamaged, SnapshotNotFound):
                # SnapshotNotFound: deleted by a concurrent forget since the listing.
                if not skip_damaged:
                    raise
        return sorted(docs, key=lambda d: (d.time, d.id))

    def snapshots(self) -> list[SnapshotInfo]:
        """Every snapshot as API objects, oldest first."""
        return [self.info(d) for d in self.snapshot_docs()]

    @staticmethod
    def info(d: SnapshotDoc) -> SnapshotInfo:
        """The API form of a snapshot document."""
        from ..results import SnapshotInfo

        return SnapshotInfo(d.id, d.time, d.hostname, list(d.paths), d.files, d.size, d.parent,
                            list(d.tags))

    def find_doc(self, ref: str) -> SnapshotDoc:
        """``latest`` or a unique id prefix."""
        ids = self.snapshot_ids()
        if ref == "latest":
            docs = self.snapshot_docs()
            if not docs:
                raise SnapshotNotFound("the repository has no snapshots yet")
            return docs[-1]
        matches = [i for i in ids if ref and i.startswith(ref.lower())]
        if not matches:
            raise SnapshotNotFound(f"no snapshot matches {ref!r}")
        if len(matches) > 1:
            shown = ", ".join(sorted(m[:8] for m in matches)[:5])
            raise SnapshotNotFound(f"more than one snapshot matches {ref!r} ({shown})",
                                   hint="give more digits of the id")
        return self.load_snapshot(matches[0])

    def find_snapshot(self, ref: str) -> SnapshotInfo:
        """API form of :meth:`find_doc`."""
        return self.info(self.find_doc(ref))

    def entries(self, doc: SnapshotDoc) -> Iterator[Entry]:
        """Stream a snapshot's records, one segment (and one record) in memory at a time."""
        what = f"snapshots/{doc.id}"
        yield from read_records((self.read_blob(seg, what) for seg in doc.segments), what)

    def records(self, doc: SnapshotDoc) -> RecordReader:
        """A snapshot's records for a reader that needs few chunk lists (backup's parent):
        a record's chunk ids are read only when asked for (:class:`RecordReader`)."""
        what = f"snapshots/{doc.id}"
        return RecordReader((self.read_blob(seg, what) for seg in doc.segments), what)

    # -- operations (each in its own module) ---------------------------------------------
    def backup(self, sources: Sequence[str | Path], *, progress: Progress,
               hostname: str | None, tags: Sequence[str] = (),
               exclude: Sequence[str] = (), cancel: Cancel = NEVER,
               chats: bool = True) -> BackupSummary:
        """See :mod:`strongroom.repo.backup`."""
        from .backup import BackupRun

        with active(cancel):  # the storage layer's waits see it too (cancel.pause)
            return BackupRun(self, progress, hostname, tags, exclude, cancel,
                             chats=chats).run(sources)

    def restore(self, ref: str, target: str | Path, *, subset: Subset,
                options: RestoreOptions, progress: Progress,
                cancel: Cancel = NEVER) -> RestoreSummary:
        """See :mod:`strongroom.repo.restore`."""
        from .restore import RestoreRun

        with active(cancel):
            return RestoreRun(self, progress, options, cancel).run(ref, Path(target), subset)

    def check(self, *, read_data: bool, progress: Progress,
              cancel: Cancel = NEVER) -> CheckReport:
        """See :mod:`strongroom.repo.check`."""
        from .check import CheckRun

        with active(cancel):
            return CheckRun(self, progress, cancel).run(read_data)

    def forget(self, **policy: Any) -> ForgetResult:
        """See :mod:`strongroom.repo.maintenance`."""
        from .maintenance import forget

        return forget(self, **policy)

    def prune(self, *, progress: Progress, cancel: Cancel = NEVER) -> PruneSummary:
        """See :mod:`strongroom.repo.maintenance`."""
        from .maintenance import prune

        with active(cancel):
            return prune(self, progress, cancel)
