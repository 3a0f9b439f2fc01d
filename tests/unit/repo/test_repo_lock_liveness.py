"""Lock liveness (spec §9): refreshed while a long file is read, lost when taken away."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from repo_helpers import Clock, Rng, SpyBackend

from strongroom.api import BackupKey, Repository
from strongroom.errors import RepositoryLocked
from strongroom.repo.locks import HOLD_MARGIN, STALE_AFTER, Lock, LockObservations


def test_the_lock_is_refreshed_while_one_long_file_is_read(repo: Repository, tree: Path,
                                                           backend: SpyBackend) -> None:
    repo._engine.lock_refresh_every = 0.05
    seen: list[list[str]] = []

    def slow_read(path: Path) -> None:  # one file that takes long to read
        if path.name == "blob.bin":
            seen.append(sorted(backend.list("locks/")))
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and sorted(backend.list("locks/")) == seen[0]:
                time.sleep(0.01)
            seen.append(sorted(backend.list("locks/")))

    repo._engine._test_only_before_read = slow_read
    repo.backup([tree])
    assert len(seen) == 2 and len(seen[0]) == 1 and len(seen[1]) == 1
    assert seen[0] != seen[1]  # a new lock object replaced the old one meanwhile
    assert list(backend.list("locks/")) == []  # and the last one was released


def test_a_lock_taken_away_is_lost_and_not_rewritten(backend: SpyBackend, key: BackupKey) -> None:
    mono = Clock(step=0)
    lock = Lock(backend, key, False, mono, Rng(2)).acquire()
    lock.ensure_held()
    backend.delete(lock.name)  # another device judged it stale
    mono.now += 6 * 60
    lock.refresh_if_due()
    assert list(backend.list("locks/")) == []  # not resurrected
    with pytest.raises(RepositoryLocked, match="nothing was committed"):
        lock.ensure_held()


def test_a_lock_not_refreshed_for_the_margin_is_no_longer_trusted(backend: SpyBackend,
                                                                  key: BackupKey) -> None:
    mono = Clock(step=0)
    lock = Lock(backend, key, False, mono, Rng(2)).acquire()
    mono.now += HOLD_MARGIN
    with pytest.raises(RepositoryLocked):
        lock.ensure_held()
    lock.release()


def test_the_observers_own_clock_decides_and_sightings_persist(tmp_path: Path,
                                                               backend: SpyBackend,
                                                               key: BackupKey) -> None:
    Lock(backend, key, True, Clock(start=10**9), Rng(3)).acquire()  # a writer far ahead
    path = tmp_path / "seen.json"
    for elapsed, blocked in ((0, True), (STALE_AFTER - 5, True), (STALE_AFTER + 5, False)):
        # A new observer process each time (same boot): the first sighting is remembered.
        obs = LockObservations(path, boot="boot-1")
        mine = Lock(backend, key, False, lambda e=elapsed: 500.0 + e, Rng(4 + elapsed),
                    observations=obs)
        if blocked:
            with pytest.raises(RepositoryLocked):
                mine.acquire()
        else:
            mine.acquire().release()
    # After a reboot the old sightings say nothing: the lock is new again.
    fresh = Lock(backend, key, False, lambda: 1.0, Rng(9),
                 observations=LockObservations(path, boot="boot-2"))
    with pytest.raises(RepositoryLocked):
        fresh.acquire()
