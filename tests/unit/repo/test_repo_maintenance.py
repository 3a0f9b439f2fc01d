"""forget (retention, restic semantics) and prune (delete/repack unreferenced data)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from repo_helpers import BASE_TIME, Clock, Rng, SpyBackend, make_tree, restored_root, tree_state

from strongroom import BackupKey, Repository
from strongroom.errors import UsageError
from strongroom.repo.manifest import SnapshotDoc
from strongroom.repo.retention import RetentionPolicy, keep_reasons

DAY = 86400.0


def _doc(i: str, t: float) -> SnapshotDoc:
    return SnapshotDoc(i, t, "h", ["/p"], 0, 0, 0, None, [])


def select_keep(docs: list[SnapshotDoc], last: int, daily: int, weekly: int) -> set[str]:
    return set(keep_reasons(docs, RetentionPolicy(last=last, daily=daily, weekly=weekly)))


def test_select_keep_restic_semantics() -> None:
    # Two snapshots a day for 20 days, at 01:00 and 13:00 UTC.
    docs = [_doc(f"{d:02d}{h:02d}", BASE_TIME - BASE_TIME % DAY + d * DAY + h * 3600)
            for d in range(20) for h in (1, 13)]
    assert select_keep(docs, 3, 0, 0) == {"1913", "1901", "1813"}
    daily = select_keep(docs, 0, 4, 0)
    assert daily == {"1913", "1813", "1713", "1613"}  # the newest of each of 4 days
    weekly = select_keep(docs, 0, 0, 2)
    assert len(weekly) == 2 and "1913" in weekly
    assert select_keep(docs, 1, 2, 0) == {"1913", "1813"}


def test_forget_and_prune_keep_what_is_needed(tmp_path: Path, key: BackupKey) -> None:
    backend = SpyBackend()
    clock = Clock(step=DAY)
    repo = Repository.create(backend, key, clock=clock, rng=Rng(1))
    src = tmp_path / "src"
    states = []
    for i in range(4):
        if src.exists():
            shutil.rmtree(src)
        make_tree(src, seed=i)
        repo.backup([src])
        states.append(tree_state(src))
    ids = [s.id for s in repo.snapshots()]

    dry = repo.forget(keep_last=2, dry_run=True)
    assert dry.remove == ids[:2] and len(repo.snapshots()) == 4
    res = repo.forget(keep_last=2)
    assert res.keep == ids[2:] and res.remove == ids[:2]
    assert [s.id for s in repo.snapshots()] == ids[2:]

    size_before = sum(backend.stat(n).size for n in backend.list("data/"))
    # Two-phase deletion (spec §12): the first prune condemns, the second deletes.
    first = repo.prune()
    assert first.packs_condemned > 0 and first.packs_deleted == 0
    assert sum(backend.stat(n).size for n in backend.list("data/")) >= size_before
    assert len(list(backend.list("trash/"))) == 1
    pruned = repo.prune()
    size_after = sum(backend.stat(n).size for n in backend.list("data/"))
    assert pruned.bytes_freed > 0 and size_after < size_before
    assert pruned.packs_deleted > 0
    assert len(list(backend.list("index/"))) == 1

    fresh = Repository.open(backend, key)
    assert fresh.check(read_data=True).ok
    for i, sid in enumerate(ids[2:], start=2):
        out = tmp_path / f"out{i}"
        fresh.restore(sid, out)
        assert tree_state(restored_root(out, src)) == states[i]
    # A second prune has nothing left to do.
    again = fresh.prune()
    assert again.packs_deleted == 0 and again.packs_repacked == 0


def test_prune_removes_orphan_packs(tmp_path: Path, key: BackupKey) -> None:
    from repo_helpers import Killed

    inner = SpyBackend()
    repo = Repository.create(inner, key, rng=Rng(1))
    tree = make_tree(tmp_path / "src")
    dying = Repository.open(SpyBackend(inner.inner, fail_after_puts=3), key, rng=Rng(2))
    with pytest.raises(Killed):
        dying.backup([tree])
    assert list(inner.list("data/")) and not list(inner.list("index/"))
    repo.prune()  # condemns them (a backup that lost its lock may still be writing)
    assert list(inner.list("data/"))
    repo.prune()
    assert list(inner.list("data/")) == []


def test_forget_needs_a_policy(repo: Repository) -> None:
    with pytest.raises(UsageError):
        repo.forget()
    with pytest.raises(UsageError):
        repo.forget(keep_last=-1)


def test_forget_groups_by_host_and_paths(repo: Repository, tree: Path) -> None:
    repo.backup([tree], hostname="a")
    repo.backup([tree], hostname="b")
    repo.backup([tree], hostname="a")
    res = repo.forget(keep_last=1)
    assert len(res.keep) == 2 and len(res.remove) == 1


def test_lost_pack_heals_after_prune_and_backup(repo: Repository, tree: Path,
                                                tmp_path: Path) -> None:
    backend = repo._engine.backend
    repo.backup([tree])
    eng = repo._engine
    entry = next(e for e in eng.entries(eng.find_doc("latest")) if e.path.endswith("p1.jpg"))
    from strongroom.repo.pack import pack_name

    lost = pack_name(eng.index().blobs[entry.chunks[0]][0])
    backend.delete(lost)
    assert not repo.check().ok
    repo.prune()  # forgets the lost pack
    healed = repo.backup([tree])  # the file is unchanged, but its data is stored again
    assert healed.files_unchanged < 6
    # Blob ids are content addresses: the re-stored data heals the old snapshot too.
    assert repo.check(read_data=True).ok
    repo.restore(healed.snapshot_id, tmp_path / "out")
    assert tree_state(restored_root(tmp_path / "out", tree)) == tree_state(tree)


def _pack_sizes(repo: Repository) -> dict[int, list[int]]:
    """Blob type -> stored sizes of the packs the index lists (not the condemned)."""
    index = repo._engine.index()
    by_type: dict[int, set[bytes]] = {}
    for pid, loc in index.blobs.values():
        if pid not in index.trashed:
            by_type.setdefault(loc.type, set()).add(pid)
    return {t: sorted(index.packs[p].size for p in pids) for t, pids in by_type.items()}


def test_prune_merges_the_small_packs_daily_backups_leave(tmp_path: Path, key: BackupKey) -> None:
    """Ten daily backups, each adding one small file: ten small data packs (and file
    lists).  Prune copies each type's small packs together; every snapshot restores
    the same; a second prune has none left to merge."""
    from strongroom.repo.maintenance import SMALL_PACK_SHARE

    backend = SpyBackend()
    repo = Repository.create(backend, key, clock=Clock(step=DAY), rng=Rng(3))
    small_below = repo._engine.config.chunker.pack_target * SMALL_PACK_SHARE
    src = make_tree(tmp_path / "src")
    states = []
    for day in range(10):
        (src / f"day-{day}.txt").write_bytes(Rng(day)(20_000))
        repo.backup([src])
        states.append(tree_state(src))
    ids = [s.id for s in repo.snapshots()]
    before = _pack_sizes(repo)
    # (the first backup's data pack holds the whole tree: not small)
    assert all(len([s for s in sizes if s < small_below]) >= 9 for sizes in before.values()), before

    first = repo.prune()
    assert first.packs_repacked >= 18  # nine or ten small packs of each of two types
    after = _pack_sizes(repo)
    assert all(len([s for s in sizes if s < small_below]) <= 1 for sizes in after.values()), after
    assert sum(map(len, after.values())) < sum(map(len, before.values())) / 5
    again = repo.prune()  # deletes the condemned packs; nothing left to merge
    assert again.packs_repacked == 0 and again.packs_deleted >= 18
    assert len(list(backend.list("index/"))) == 1

    fresh = Repository.open(backend, key)
    assert fresh.check(read_data=True).ok
    for day in (0, 4, 9):
        out = tmp_path / f"out{day}"
        fresh.restore(ids[day], out)
        assert tree_state(restored_root(out, src)) == states[day]
