"""``forget`` (retention policy) and ``prune`` (delete and repack unreferenced data).

Both take the exclusive lock, so no backup that might rely on a blob prune is
about to delete is running; and as locks from other devices can be judged
stale wrongly (a device asleep for half an hour), prune deletes in two phases
(see :func:`prune`).  Prune's order is crash-safe: new packs, then the new
index and trash objects, then the old ones are deleted, then the packs
condemned by the previous prune; a crash at any point leaves every remaining
snapshot complete.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..cancel import NEVER, Cancel
from ..progress import Progress
from .backup import find_orphans
from .index import INDEX_PREFIX, TRASH_PREFIX, Index, IndexPacks, write_index
from .locks import Lock
from .manifest import KIND_FILE, snapshot_name
from .pack import pack_id_from_name, pack_name
from .packer import Packer
from .retention import DEFAULT_GROUP_BY, RetentionPolicy, plan
from .sealed import named_objects
from .selection import SnapshotFilter

if TYPE_CHECKING:
    from ..results import ForgetResult, PruneSummary
    from .engine import Engine

#: A pack with less than this share of its blob bytes still in use is repacked.
REPACK_BELOW = 0.5
#: A pack stored in less than this share of the pack target size is *small*.  When
#: prune finds two or more small packs of one blob type, it copies their live blobs
#: together into new packs: each daily backup adds a small pack (and an index
#: object), and restore and check would otherwise open ever more objects.  What the
#: copy leaves is at most one small pack per type, which the next prune keeps.
SMALL_PACK_SHARE = 0.25
#: Temporary files of interrupted writes older than this (seconds) are removed by prune.
#: Prune's exclusive lock already excludes backups; the age also spares a write in
#: flight by a process that ignores locks or runs on a skewed clock.
STALE_TEMP_AGE = 3600.0


def _exclusive(engine: Engine) -> Lock:
    return engine.lock(True)


def forget(engine: Engine, policy: RetentionPolicy, *, dry_run: bool = False,
           group_by: Sequence[str] = DEFAULT_GROUP_BY, where: SnapshotFilter | None = None,
           tz: dt.tzinfo | None = dt.UTC) -> ForgetResult:
    """Delete the snapshots ``policy`` does not keep, group by group (``retention``).

    Only snapshots passing ``where`` are considered; the others are neither
    kept nor removed by this call.  ``tz`` is the zone days and weeks are
    counted in (the CLI passes the device's local zone, as restic does).
    """
    from ..results import ForgetResult

    lock = _exclusive(engine)
    try:
        docs = [d for d in engine.snapshot_docs() if where is None or where.matches(d)]
        groups = plan(docs, policy, group_by=group_by, tz=tz)
        removed = {sid for g in groups for sid in g.remove}
        if not dry_run:
            for d in docs:
                if d.id in removed:
                    engine.backend.delete(snapshot_name(d.id))
    finally:
        lock.release()
    return ForgetResult([d.id for d in docs if d.id not in removed],
                        [d.id for d in docs if d.id in removed], dry_run, groups)


def _used_blobs(engine: Engine, cancel: Cancel) -> set[bytes]:
    used: set[bytes] = set()
    for doc in engine.snapshot_docs():
        used.update(doc.segments)
        used.update(doc.chats or ())
        for e in engine.entries(doc):
            cancel.check()
            if e.kind == KIND_FILE:
                used.update(e.chunks)
    return used


def prune(engine: Engine, progress: Progress, cancel: Cancel = NEVER) -> PruneSummary:
    """Two-phase deletion (spec §12): condemn unreferenced packs now, delete them next time.

    A pack no snapshot references is not deleted at once: it moves from the index
    to a *trash* object (same format as an index object, under ``trash/``), which
    readers still use to find blobs but backups do not deduplicate against.  The
    next prune deletes a condemned pack only if still no snapshot references it;
    one that a snapshot written meanwhile uses (by a backup that started before
    the first prune and relied on the old index) is indexed again.  So prune never
    deletes data that a backup which started before it could still reference.

    ``cancel`` is checked per snapshot record read, per blob repacked and once more
    before the new index is written (the commit point); a cancelled prune leaves
    what a killed one would (repacked packs no index lists yet, which the next
    backup or prune picks up).  After the commit point prune runs to its end:
    what is left is a few deletions.
    """
    from ..results import PruneSummary

    lock = _exclusive(engine)
    try:
        engine._index = None
        index = engine.index()
        used = _used_blobs(engine, cancel)
        per_pack: dict[bytes, list[bytes]] = defaultdict(list)
        for bid, (pid, _) in index.blobs.items():
            per_pack[pid].append(bid)
        present = set(engine.backend.list("data/"))
        # Packs the index lists but storage lost: drop them from the new index, so
        # the next backup stores their data again instead of deduplicating against it.
        lost = [pid for pid in index.packs if pack_name(pid) not in present]
        for pid in lost:
            per_pack.pop(pid, None)
        small_below = int(engine.config.chunker.pack_target * SMALL_PACK_SHARE)
        dead, repack = _classify(index, per_pack, used, small_below)
        dead = [pid for pid in dead if pid not in lost]
        repack = [pid for pid in repack if pid not in lost]
        condemned_before = set(index.trashed)
        delete_now = [pid for pid in dead if pid in condemned_before]
        condemn = [pid for pid in dead if pid not in condemned_before] + repack
        # Their entries as they are now, before repacking moves the live blobs.
        trash = [(pid, index.packs[pid], [(b, index.blobs[b][1]) for b in per_pack[pid]])
                 for pid in condemn]
        orphans = [o for o in find_orphans(engine) if o[0] not in index.packs]
        trash += [o for o in orphans if o[0] not in condemned_before]
        progress.start("prune", len(delete_now) + len(repack), "packs")
        packer = Packer(engine)
        try:
            for pid in repack:
                for bid in per_pack[pid]:
                    cancel.check()
                    if bid in used:
                        loc = index.blobs[bid][1]
                        data = engine.read_blob(bid)
                        # Forget the old location so the new pack's becomes the indexed one.
                        del index.blobs[bid]
                        packer.add(bid, loc.type, data, loc.flags != 0)
                progress.advance(1)
                lock.refresh_if_due()
            cancel.check()
        except BaseException:
            packer.abort()
            raise
        packer.finish()
        gone = set(delete_now) | set(condemn) | set(lost)
        new_index = _rewrite_index(engine, index, gone, used, trash)
        bytes_freed = 0
        for pid in delete_now:
            bytes_freed += index.packs[pid].size
            engine.backend.delete(pack_name(pid))
            progress.advance(1)
        bytes_freed += _delete_orphans(engine, new_index)
        _remove_stale_temp_files(engine)
        progress.finish()
    finally:
        lock.release()
        engine._index = None
    return PruneSummary(len(delete_now), len(repack), bytes_freed, 1, len(trash))


def _classify(index: Index, per_pack: dict[bytes, list[bytes]], used: set[bytes],
              small_below: int) -> tuple[list[bytes], list[bytes]]:
    """Packs with no live blob (``dead``), and packs to copy the live blobs of
    (``repack``): mostly unused ones, and small ones when a type has two or more."""
    dead, repack = [], []
    small: dict[int, list[bytes]] = defaultdict(list)  # blob type -> small packs
    for pid in index.packs:
        blobs = per_pack.get(pid, [])
        total = sum(index.blobs[b][1].length for b in blobs) or 1
        live = sum(index.blobs[b][1].length for b in blobs if b in used)
        if live == 0:
            dead.append(pid)
        elif pid in index.trashed:
            continue
        elif live / total < REPACK_BELOW:
            repack.append(pid)
        elif index.packs[pid].size < small_below:
            small[index.blobs[blobs[0]][1].type].append(pid)
    for pids in small.values():
        if len(pids) >= 2:
            repack += pids
    return dead, repack


def _rewrite_index(engine: Engine, index: Index, gone: set[bytes], used: set[bytes],
                   trash: list[IndexPacks]) -> Index:
    """New index objects for every surviving pack and a trash object for the condemned
    ones; then the old index and trash objects are deleted."""
    keep = Index()
    for bid, (pid, loc) in index.blobs.items():
        if pid not in gone and bid in used:
            keep.blobs.setdefault(bid, (pid, loc))
    by_pack: dict[bytes, list] = defaultdict(list)  # type: ignore[type-arg]
    for bid, (pid, loc) in keep.blobs.items():
        by_pack[pid].append((bid, loc))
    packs = [(pid, index.packs[pid], entries) for pid, entries in by_pack.items()]
    old = (named_objects(engine.backend.list(INDEX_PREFIX), INDEX_PREFIX)
           + named_objects(engine.backend.list(TRASH_PREFIX), TRASH_PREFIX))
    written = {name for name, _, _ in write_index(engine.backend.put, engine.key, packs,
                                                  engine.rng, engine.config.padded)}
    written |= {name for name, _, _ in write_index(engine.backend.put, engine.key, trash,
                                                   engine.rng, engine.config.padded,
                                                   prefix=TRASH_PREFIX)}
    for obj in old:
        if obj not in written:
            engine.backend.delete(obj)
    for pid, info, entries in packs:
        keep.add_pack(pid, info, entries)
    for pid, info, entries in trash:
        keep.trashed.add(pid)
        keep.add_pack(pid, info, entries)
    return keep


def _delete_orphans(engine: Engine, index: Index) -> int:
    """Delete packs that no index lists (left by interrupted backups; we hold the lock)."""
    freed = 0
    for name in list(engine.backend.list("data/")):
        pid = pack_id_from_name(name)
        if pid is not None and pid not in index.packs:
            freed += engine.backend.stat(name).size
            engine.backend.delete(name)
    return freed


def _remove_stale_temp_files(engine: Engine, max_age: float = STALE_TEMP_AGE) -> int:
    """Remove temporary files that interrupted writes left, on backends that keep them.

    Only some backends (the local folder) write through temporary files; the
    hook is looked up through wrapping backends (retry, read-ahead) by ``inner``.
    """
    backend: object = engine.backend
    while backend is not None:
        cleanup = getattr(backend, "remove_stale_temp_files", None)
        if cleanup is not None:
            return int(cleanup(max_age, now=engine.clock))
        backend = getattr(backend, "inner", None)
    return 0
