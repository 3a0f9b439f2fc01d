"""Real concurrency: two processes back up into one local-folder repository at once."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

from repo_helpers import make_tree, restored_root, tree_state

from strongroom import BackupKey, Repository
from strongroom.storage.local import LocalBackend

KEY = bytes(range(32))


def _backup(repo_dir: str, source: str, barrier: Any) -> None:
    repo = Repository.open(LocalBackend(repo_dir, fsync=False), BackupKey.from_bytes(KEY))
    barrier.wait()
    repo.backup([source])


def test_two_processes_back_up_concurrently(tmp_path: Path) -> None:
    repo_dir = tmp_path / "repo"
    Repository.create(LocalBackend(repo_dir, create=True, fsync=False), BackupKey.from_bytes(KEY))
    trees = [make_tree(tmp_path / f"t{i}", seed=i) for i in range(2)]
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_backup, args=(str(repo_dir), str(t), barrier)) for t in trees]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]

    repo = Repository.open(LocalBackend(repo_dir), BackupKey.from_bytes(KEY))
    snaps = repo.snapshots()
    assert len(snaps) == 2 and list(LocalBackend(repo_dir).list("locks/")) == []
    report = repo.check(read_data=True)
    assert report.ok, json.dumps(report.to_json())
    for i, tree in enumerate(trees):
        snap = next(s for s in snaps if s.paths == ["/" + str(tree).lstrip("/")])
        repo.restore(snap.id, tmp_path / f"out{i}")
        assert tree_state(restored_root(tmp_path / f"out{i}", tree)) == tree_state(tree)


def test_results_are_json_safe(tmp_path: Path) -> None:
    repo = Repository.create(LocalBackend(tmp_path / "r", create=True, fsync=False),
                             BackupKey.from_bytes(KEY))
    tree = make_tree(tmp_path / "src")
    results = [repo.backup([tree]), *repo.snapshots(), repo.restore("latest", tmp_path / "o"),
               repo.check(read_data=True), repo.forget(keep_last=1, dry_run=True), repo.prune()]
    for r in results:
        assert json.loads(json.dumps(r.to_json())) == r.to_json()
