"""Backup and restore through a misbehaving network to a real S3 server.

Whatever the network does, a backup either completes and restores exactly, or
fails with a clear StorageError; the repository never holds a broken snapshot;
and a backup cut off by a network loss resumes without uploading again what was
already stored (counted in PUT body bytes through the proxy).
"""

from __future__ import annotations

import filecmp
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support import servers
from tests.support.faultproxy import FaultProxy, Faults

from strongroom.api import BackupKey, Repository
from strongroom.errors import StorageError, TransientStorageError
from strongroom.storage.retry import RetryBackend
from strongroom.storage.s3 import MiB, S3Backend

pytestmark = [pytest.mark.s3, pytest.mark.xdist_group("servers")]

_prefixes = iter(range(10**6))


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~12 MiB of incompressible files of mixed sizes (several packs), seeded."""
    root = tmp_path_factory.mktemp("source")
    rng = random.Random(5)
    (root / "chats").mkdir()
    (root / "media").mkdir()
    for i in range(40):
        (root / "chats" / f"chat{i}.txt").write_bytes(f"message {i}\n".encode() * rng.randint(1, 400))
    for i in range(12):
        (root / "media" / f"photo{i}.jpg").write_bytes(rng.randbytes(rng.randint(200_000, 1_800_000)))
    return root


@pytest.fixture
def proxy(seaweedfs: servers.S3Server) -> Iterator[FaultProxy]:
    with FaultProxy(seaweedfs.url, seed=11) as p:
        yield p


def _s3(url: str, s3: servers.S3Server, prefix: str, attempts: int = 8) -> RetryBackend:
    inner = S3Backend(url, "strongroom-test", prefix, access_key=s3.access_key,
                      secret_key=s3.secret_key, timeout=10, multipart_threshold=5 * MiB,
                      part_size=5 * MiB)
    return RetryBackend(inner, attempts=attempts, base_delay=0.005, max_delay=0.05)


def _assert_every_snapshot_restores(s3: servers.S3Server, prefix: str, key: BackupKey,
                                    source: Path, tmp: Path) -> int:
    """Through a healthy connection: check passes and every snapshot restores exactly."""
    with Repository.open(_s3(s3.url, s3, prefix), key) as repo:
        report = repo.check(read_data=True)
        assert report.ok, report.problems
        snaps = repo.snapshots()
        for snap in snaps:
            target = tmp / f"restore-{snap.id}"
            repo.restore(snap.id, target)
            _assert_same_tree(source, target)
        return len(snaps)


def _assert_same_tree(source: Path, target: Path) -> None:
    restored = {p.name: p for p in target.rglob("*") if p.is_file()}
    originals = [p for p in source.rglob("*") if p.is_file()]
    assert len(restored) == len(originals)
    for p in originals:
        assert filecmp.cmp(p, restored[p.name], shallow=False), p


def test_backup_and_restore_through_faults_complete_exactly(
        proxy: FaultProxy, seaweedfs: servers.S3Server, source: Path, tmp_path: Path) -> None:
    prefix, key = f"engine{next(_prefixes)}", BackupKey.generate()
    Repository.create(_s3(seaweedfs.url, seaweedfs, prefix), key).close()
    proxy.faults = Faults(drop=0.05, drop_after=0.05, error=0.08, delay=0.05)
    with Repository.open(_s3(proxy.url, seaweedfs, prefix), key) as repo:
        summary = repo.backup([source])
        repo.restore(summary.snapshot_id, tmp_path / "through-faults")
    _assert_same_tree(source, tmp_path / "through-faults")
    assert proxy.fates["drop"] + proxy.fates["drop_after"] + proxy.fates["error"] > 0
    assert _assert_every_snapshot_restores(seaweedfs, prefix, key, source, tmp_path) == 1


def test_hopeless_network_fails_clearly_and_leaves_no_broken_snapshot(
        seaweedfs: servers.S3Server, source: Path, tmp_path: Path) -> None:
    failures = []
    for seed in range(1, 6):
        prefix, key = f"engine{next(_prefixes)}", BackupKey.generate()
        Repository.create(_s3(seaweedfs.url, seaweedfs, prefix), key).close()
        with (FaultProxy(seaweedfs.url, seed=seed) as proxy,
              Repository.open(_s3(proxy.url, seaweedfs, prefix, attempts=3), key) as repo):
            # Faults start once the repository is open, so they hit the backup itself.
            proxy.faults = Faults(drop=0.1, drop_after=0.1, error=0.15)
            try:
                repo.backup([source])
            except StorageError as exc:
                failures.append(str(exc))
                print("backup failed:", exc)
            proxy.faults = Faults()
        _assert_every_snapshot_restores(seaweedfs, prefix, key, source, tmp_path / str(seed))
    assert failures, "the network was never bad enough to make a backup fail"
    assert all("s3:http://127.0.0.1:" in f and "/strongroom-test/engine" in f for f in failures)


def test_backup_cut_off_resumes_without_uploading_again(
        proxy: FaultProxy, seaweedfs: servers.S3Server, source: Path, tmp_path: Path) -> None:
    # A clean full backup through the proxy measures what a full upload costs.
    ref_prefix, key = f"engine{next(_prefixes)}", BackupKey.generate()
    with Repository.create(_s3(proxy.url, seaweedfs, ref_prefix), key) as repo:
        start = proxy.put_bytes
        repo.backup([source])
        full = proxy.put_bytes - start

    prefix = f"engine{next(_prefixes)}"
    Repository.create(_s3(seaweedfs.url, seaweedfs, prefix), key).close()
    start = proxy.put_bytes
    proxy.cut_after_put_bytes = start + full * 2 // 3   # the network dies two thirds in
    with (pytest.raises(TransientStorageError, match=r"gave up after 3 attempts"),
          Repository.open(_s3(proxy.url, seaweedfs, prefix, attempts=3), key) as repo):
        repo.backup([source])
    before_cut = proxy.put_bytes - start
    assert before_cut >= full * 2 // 3

    proxy.cut_after_put_bytes = None
    proxy.down = False  # the network is back
    start = proxy.put_bytes
    with Repository.open(_s3(proxy.url, seaweedfs, prefix), key) as repo:
        repo.backup([source])
    resumed = proxy.put_bytes - start
    # Everything stored before the cut is reused: the resumed run uploads the
    # rest, plus at most the packs that were in flight (allowance: a quarter).
    assert resumed <= full - before_cut + full // 4, (full, before_cut, resumed)
    assert _assert_every_snapshot_restores(seaweedfs, prefix, key, source, tmp_path) == 1
