"""Several devices, one repository, no data lost (issue 11, spec §9 and §12).

Device A backs up while device B — same hostname, wall clock 31 minutes ahead —
forgets and prunes.  B's prune runs from A's test-only hook, at the moment A
has deduplicated a file against data only a forgotten snapshot still used.  On
local storage and on S3 (SeaweedFS): every snapshot that exists afterwards
restores, and ``check --read-data`` is clean.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from strongroom.api import BackupKey, Repository
from strongroom.errors import RepositoryLocked
from strongroom.repo.locks import STALE_AFTER, Lock, LockObservations
from strongroom.storage.base import Backend

pytestmark = pytest.mark.xdist_group("servers")

BASE = 1_780_000_000.0
SHARED = random.Random(7).randbytes(300_000)
KINDS = ["local", pytest.param("s3", marks=pytest.mark.s3)]


class _Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def _device(backend: Backend, key: BackupKey, wall: float, seed: int
            ) -> tuple[Repository, _Clock]:
    """A Repository as one device sees it: its own wall clock, monotonic clock, sightings."""
    rnd = random.Random(seed)
    repo = Repository.open(backend, key, clock=_Clock(wall), rng=rnd.randbytes)
    mono = _Clock(1000.0 * seed)
    repo._engine.monotonic = mono
    repo._engine.lock_observations = LockObservations()
    return repo, mono


def _tree(root: Path, shared: bytes, extra: bytes) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "a-shared.bin").write_bytes(shared)
    (root / "m-extra.bin").write_bytes(extra)
    (root / "z-last.txt").write_text("last\n")
    return root


def _every_snapshot_restores(repo: Repository, tmp: Path) -> int:
    snaps = repo.snapshots()
    for s in snaps:
        out = tmp / f"r-{s.id}"
        repo.restore(s.id, out)
        assert any(out.rglob("z-last.txt"))
        for f in out.rglob("a-shared.bin"):
            assert f.read_bytes() == SHARED
    report = repo.check(read_data=True)
    assert report.ok, report.problems
    return len(snaps)


def _setup(backend: Backend, key: BackupKey, tmp: Path) -> tuple[Repository, Repository, Path]:
    Repository.create(backend, key, clock=_Clock(BASE), rng=random.Random(0).randbytes).close()
    a, _ = _device(backend, key, BASE, 1)
    shared = SHARED
    old = _tree(tmp / "old", shared, random.Random(8).randbytes(200_000))
    a.backup([old], hostname="localhost")  # the only snapshot that holds `shared`
    src = _tree(tmp / "src", shared, random.Random(9).randbytes(200_000))
    (src / "a-shared.bin").unlink()
    a.backup([src], hostname="localhost")
    (src / "a-shared.bin").write_bytes(shared)  # back: the next backup dedups against `old`
    (src / "z-last.txt").write_text("changed, so the next backup reads it\n")
    b, _ = _device(backend, key, BASE + 31 * 60, 2)
    return a, b, src


def _prune_on_b(b: Repository, old_paths: list[str]) -> None:
    b.forget(keep_last=5)  # takes the exclusive lock; keeps all; `old` is removed by hand
    for s in b.snapshots():
        if s.paths == old_paths:
            b._engine.backend.delete("snapshots/" + s.id)
    b.prune()
    b.prune()  # and the second phase, which deletes what the first condemned


@pytest.mark.parametrize("kind", KINDS)
def test_prune_on_another_device_waits_for_a_live_backup(
        kind: str, backend_factory: Callable[[str], Backend], tmp_path: Path) -> None:
    backend, key = backend_factory(kind), BackupKey.generate()
    a, b, src = _setup(backend, key, tmp_path)
    old_paths = ["/" + os.path.abspath(tmp_path / "old").lstrip("/")]
    refused: list[str] = []

    def during_backup(path: Path) -> None:
        if path.name == "z-last.txt" and not refused:
            for op in (lambda: b.forget(keep_last=5), b.prune):
                with pytest.raises(RepositoryLocked):
                    op()
            refused.append(path.name)

    a._engine._test_only_before_read = during_backup
    a.backup([src], hostname="localhost")
    assert refused, "the hook did not run"
    _prune_on_b(b, old_paths)
    fresh, _ = _device(backend, key, BASE, 3)
    assert _every_snapshot_restores(fresh, tmp_path) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_a_backup_whose_lock_was_judged_stale_commits_nothing(
        kind: str, backend_factory: Callable[[str], Backend], tmp_path: Path) -> None:
    backend, key = backend_factory(kind), BackupKey.generate()
    a, b, src = _setup(backend, key, tmp_path)
    old_paths = ["/" + os.path.abspath(tmp_path / "old").lstrip("/")]
    before = {s.id for s in a.snapshots()}
    mono_b = b._engine.monotonic
    assert isinstance(mono_b, _Clock)

    def during_backup(path: Path) -> None:
        if path.name == "z-last.txt":
            # B watches A's lock for 31 minutes of its own clock (A is asleep, no refresh).
            with pytest.raises(RepositoryLocked):
                b.prune()
            mono_b.now += STALE_AFTER + 60
            _prune_on_b(b, old_paths)

    a._engine._test_only_before_read = during_backup
    with pytest.raises(RepositoryLocked, match="nothing was committed"):
        a.backup([src], hostname="localhost")
    after = {s.id for s in b.snapshots()}
    assert after <= before and len(after) == 1
    fresh, _ = _device(backend, key, BASE, 3)
    assert _every_snapshot_restores(fresh, tmp_path) == 1
    fresh.backup([src], hostname="localhost")  # the next backup stores what is gone
    assert _every_snapshot_restores(fresh, tmp_path) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_data_a_racing_commit_relies_on_survives_two_prunes(
        kind: str, backend_factory: Callable[[str], Backend], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The window between a backup's lock check and its commit: two-phase deletion covers it."""
    backend, key = backend_factory(kind), BackupKey.generate()
    a, b, src = _setup(backend, key, tmp_path)
    old_paths = ["/" + os.path.abspath(tmp_path / "old").lstrip("/")]
    mono_b = b._engine.monotonic
    assert isinstance(mono_b, _Clock)

    def during_backup(path: Path) -> None:
        if path.name == "z-last.txt":
            with pytest.raises(RepositoryLocked):
                b.prune()
            mono_b.now += STALE_AFTER + 60
            b.forget(keep_last=5)
            for s in b.snapshots():
                if s.paths == old_paths:
                    backend.delete("snapshots/" + s.id)
            b.prune()  # phase one only: A's check passed just before (the race)

    a._engine._test_only_before_read = during_backup
    monkeypatch.setattr(Lock, "ensure_held", lambda self: None)  # the check already passed
    a.backup([src], hostname="localhost")
    monkeypatch.undo()
    fresh, _ = _device(backend, key, BASE, 3)
    assert _every_snapshot_restores(fresh, tmp_path) == 2
    fresh.prune()  # the second phase revives what the new snapshot uses
    fresh.prune()
    again, _ = _device(backend, key, BASE, 4)
    assert _every_snapshot_restores(again, tmp_path) == 2
