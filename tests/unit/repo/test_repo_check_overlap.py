"""check runs its snapshot pass beside the pack pass, and takes its findings only when
the pack pass found no bad blob (otherwise the snapshot pass runs again after it)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from repo_helpers import SpyBackend

from strongroom import Repository
from strongroom.errors import StorageError
from strongroom.repo import check as check_mod
from strongroom.repo.manifest import SnapshotDoc

BESIDE = "strongroom-check-snapshots"


def _two_snapshots(repo: Repository, tree: Path) -> None:
    repo.backup([tree])
    (tree / "later.txt").write_text("one more file\n")
    repo.backup([tree])


def _record_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = check_mod.CheckRun._check_doc

    def noted(self, doc: SnapshotDoc, name: str, index: object) -> None:  # type: ignore[no-untyped-def]
        seen.append(threading.current_thread().name)
        real(self, doc, name, index)  # type: ignore[arg-type]

    monkeypatch.setattr(check_mod.CheckRun, "_check_doc", noted)
    return seen


def test_a_clean_repository_is_checked_with_the_snapshot_pass_beside_the_packs(
        repo: Repository, tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _two_snapshots(repo, tree)
    seen = _record_threads(monkeypatch)
    report = repo.check(read_data=True)
    assert report.ok and report.snapshots == 2
    assert seen == [BESIDE, BESIDE]
    seen.clear()
    assert repo.check(read_data=False).ok
    assert seen == [BESIDE, BESIDE]


def test_a_bad_blob_makes_the_snapshot_pass_run_again_and_name_the_files(
        repo: Repository, backend: SpyBackend, tree: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _two_snapshots(repo, tree)
    objects = backend.inner._objects  # type: ignore[attr-defined]
    packs = sorted(n for n in objects if n.startswith("data/"))
    # Flip a byte in the middle of the largest pack: one frame fails, its files are named.
    name = max(packs, key=lambda n: len(objects[n]))
    data = bytearray(objects[name])
    data[len(data) // 2] ^= 1
    objects[name] = bytes(data)
    seen = _record_threads(monkeypatch)
    report = repo.check(read_data=True)
    assert not report.ok
    bad = {p.object: p for p in report.problems}
    assert name in bad and bad[name].files
    # Beside the pack pass first (its findings dropped), then again in the caller's thread.
    assert seen[:2] == [BESIDE, BESIDE] and seen[2:] == [threading.current_thread().name] * 2
    # The pass beside the packs dropped nothing from the index: a later check finds the same.
    again = repo.check(read_data=True)
    assert [(p.object, p.what, p.files) for p in again.problems] == \
        [(p.object, p.what, p.files) for p in report.problems]


def test_a_storage_error_in_the_snapshot_pass_is_raised_to_the_caller(
        repo: Repository, backend: SpyBackend, tree: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _two_snapshots(repo, tree)
    real_get, real_range = backend.get, backend.get_range

    def refuse(name: str) -> None:
        if name.startswith("snapshots/") and threading.current_thread().name == BESIDE:
            raise StorageError("the store went away")

    def get(name: str) -> bytes:
        refuse(name)
        return real_get(name)

    def get_range(name: str, offset: int, length: int) -> bytes:
        refuse(name)
        return real_range(name, offset, length)

    monkeypatch.setattr(backend, "get", get)
    monkeypatch.setattr(backend, "get_range", get_range)
    with pytest.raises(StorageError, match="went away"):
        repo.check(read_data=True)


def test_a_failing_pack_pass_stops_the_snapshot_pass_and_waits_for_it(
        repo: Repository, tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _two_snapshots(repo, tree)
    started = threading.Event()
    real = check_mod.CheckRun._check_snapshots

    def slow(self, index, stop=None):  # type: ignore[no-untyped-def]
        started.set()
        if stop is not None:
            assert stop.wait(10), "never told to stop"
        return real(self, index, stop)

    def broken(self, index, read_data):  # type: ignore[no-untyped-def]
        assert started.wait(10)
        raise StorageError("pack listing failed")

    monkeypatch.setattr(check_mod.CheckRun, "_check_snapshots", slow)
    monkeypatch.setattr(check_mod.CheckRun, "_check_packs", broken)
    with pytest.raises(StorageError, match="pack listing failed"):
        repo.check(read_data=True)
    assert not [t for t in threading.enumerate() if t.name == BESIDE]
