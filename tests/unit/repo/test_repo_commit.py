"""Commit protocol: killed backups, reuse of what was stored, concurrent writers, locks."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from repo_helpers import (
    BASE_TIME,
    Clock,
    Killed,
    Rng,
    SpyBackend,
    make_tree,
    restored_root,
    tree_state,
)

from strongroom import BackupKey, Repository
from strongroom.errors import RepositoryLocked
from strongroom.repo import packer as packer_mod
from strongroom.repo.config import ChunkerParams
from strongroom.repo.locks import LOCK_TTL, STALE_AFTER, Lock, boot_id
from strongroom.repo.pack import pack_id_from_name, parse_header


def _big_tree(root: Path) -> Path:
    make_tree(root)
    for i in range(6):
        (root / "chats" / "media" / f"video{i}.mp4").write_bytes(Rng(i).__call__(300_000))
    return root


@pytest.fixture
def small_packs(monkeypatch: pytest.MonkeyPatch) -> None:
    # Small packs and frequent indexes, so a kill lands between many uploads.
    monkeypatch.setattr(packer_mod, "INDEX_EVERY", 2)


@pytest.mark.parametrize("kill_after", [1, 3, 5, 8])
def test_killed_backup_keeps_old_snapshot_and_next_backup_reuses(
        tmp_path: Path, key: BackupKey, small_packs: None, kill_after: int) -> None:
    inner = SpyBackend()
    repo = Repository.create(inner, key, clock=Clock(), rng=Rng(1))
    repo._engine.config = repo._engine.config.__class__(
        **{**vars(repo._engine.config), "chunker": ChunkerParams(pack_target=300_000)})
    first = make_tree(tmp_path / "one")
    repo.backup([first])
    before = tree_state(first)

    second = _big_tree(tmp_path / "two")
    dying = SpyBackend(inner.inner, fail_after_puts=kill_after)
    killed = Repository.open(dying, key, clock=Clock(), rng=Rng(2))
    killed._engine.config = repo._engine.config
    with pytest.raises(Killed):
        killed.backup([second])
    uploaded_before_kill = dying.put_bytes("data/")

    again = SpyBackend(inner.inner)
    # A later clock: "latest" is the newest by time, and each Clock() starts at BASE_TIME.
    repo2 = Repository.open(again, key, clock=Clock(start=BASE_TIME + 86_400), rng=Rng(3))
    repo2._engine.config = repo._engine.config
    assert [s.paths for s in repo2.snapshots()] == [["/" + str(first).lstrip("/")]]
    repo2.restore("latest", tmp_path / "out1")
    assert tree_state(restored_root(tmp_path / "out1", first)) == before

    summary = repo2.backup([second])
    assert summary.warnings == []
    # Everything uploaded before the kill is reused: no blob is stored twice.
    stored = [bid for name in again.inner.list("data/")
              for bid, _ in parse_header(repo2._engine.key,
                                         pack_id_from_name(name),  # type: ignore[arg-type]
                                         again.inner.get(name), name)]
    assert len(stored) == len(set(stored))
    if kill_after >= 5:
        assert uploaded_before_kill > 0
    repo2.restore("latest", tmp_path / "out2")
    assert tree_state(restored_root(tmp_path / "out2", second)) == tree_state(second)
    assert repo2.check(read_data=True).ok


def test_two_concurrent_backups_both_restorable(tmp_path: Path, key: BackupKey) -> None:
    backend = SpyBackend()
    Repository.create(backend, key)
    trees = [make_tree(tmp_path / f"t{i}", seed=i) for i in range(2)]
    errors: list[Exception] = []
    barrier = threading.Barrier(2)

    def run(i: int) -> None:
        try:
            repo = Repository.open(backend, key)
            barrier.wait()
            repo.backup([trees[i]])
        except Exception as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    repo = Repository.open(backend, key)
    snaps = repo.snapshots()
    assert len(snaps) == 2
    for i, snap in enumerate(sorted(snaps, key=lambda s: s.paths)):
        out = tmp_path / f"out{i}"
        repo.restore(snap.id, out)
        src = next(t for t in trees if snap.paths == ["/" + str(t).lstrip("/")])
        assert tree_state(restored_root(out, src)) == tree_state(src)
    assert repo.check(read_data=True).ok


def test_prune_refuses_while_a_backup_holds_its_lock(repo: Repository, backend: SpyBackend,
                                                     key: BackupKey) -> None:
    held = Lock(backend, repo._engine.key, False, Clock(), Rng(4)).acquire()
    with pytest.raises(RepositoryLocked):
        repo.prune()
    with pytest.raises(RepositoryLocked):
        repo.forget(keep_last=1)
    held.release()
    repo.prune()
    assert list(backend.list("locks/")) == []


def test_backup_refuses_while_prune_holds_the_exclusive_lock(repo: Repository, tree: Path,
                                                             backend: SpyBackend,
                                                             key: BackupKey) -> None:
    held = Lock(backend, repo._engine.key, True, Clock(), Rng(4)).acquire()
    with pytest.raises(RepositoryLocked):
        repo.backup([tree])
    assert len(list(backend.list("locks/"))) == 1  # our failed attempt removed itself
    held.release()


def test_stale_lock_is_ignored_and_removed(repo: Repository, tree: Path, backend: SpyBackend,
                                           key: BackupKey) -> None:
    # Another device's prune "dies" holding its lock.  Its wall clock says nothing here:
    # this device calls the lock stale only after watching it unrefreshed for 30 minutes.
    Lock(backend, repo._engine.key, True, Clock(), Rng(4)).acquire()
    mono = Clock(step=0)
    repo._engine.monotonic = mono
    with pytest.raises(RepositoryLocked):
        repo.backup([tree])  # first sighting
    mono.now += STALE_AFTER - 1
    with pytest.raises(RepositoryLocked):
        repo.backup([tree])
    mono.now += 2
    repo.backup([tree])  # a stale exclusive lock does not block
    repo.prune()  # and the exclusive locker removes it
    assert list(backend.list("locks/")) == []


def test_lock_refresh_replaces_the_object(backend: SpyBackend, repo: Repository,
                                          key: BackupKey) -> None:
    clock = Clock(step=0)
    lock = Lock(backend, repo._engine.key, False, clock, Rng(4)).acquire()
    first = lock.name
    lock.refresh_if_due()
    assert lock.name == first
    clock.now += 6 * 60
    lock.refresh_if_due()
    assert lock.name != first and list(backend.list("locks/")) == [lock.name]
    lock.release()


def test_lock_of_a_dead_process_on_this_host_is_stale(repo: Repository, tree: Path,
                                                      backend: SpyBackend) -> None:
    import json as _json
    import os
    import socket
    import subprocess
    import sys

    from strongroom.crypto import labels
    from strongroom.repo.locks import LOCK_MAGIC
    from strongroom.repo.sealed import seal_object

    # A prune killed with -9 leaves its exclusive lock behind; its pid is gone.
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    dead_pid = int(child.stdout)
    now = repo._engine.clock()
    name = "locks/" + "ee" * 16
    doc = {"exclusive": True, "time": now, "expires": now + LOCK_TTL,
           "hostname": socket.gethostname(), "pid": dead_pid, "boot": boot_id()}
    backend.put(name, seal_object(repo._engine.key, labels.LOCK, LOCK_MAGIC, name,
                                  _json.dumps(doc).encode(), Rng(9)))
    repo.backup([tree])  # not blocked for 30 minutes
    # The same lock from a live process (ours) or another device — even one with the same
    # hostname — still blocks: only this boot's pids are judged.
    for boot, pid in ((boot_id(), os.getpid()), ("other-boot", dead_pid)):
        doc.update(boot=boot, pid=pid)
        backend.put(name, seal_object(repo._engine.key, labels.LOCK, LOCK_MAGIC, name,
                                      _json.dumps(doc).encode(), Rng(9)))
        with pytest.raises(RepositoryLocked):
            repo.backup([tree])
