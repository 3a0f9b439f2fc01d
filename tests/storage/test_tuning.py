"""Engine hints from backends: request concurrency, and S3 uploads without body hashing."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from tests.support import servers

from strongroom.repo.packer import Packer
from strongroom.storage.limit import LimitBackend
from strongroom.storage.local import LocalBackend
from strongroom.storage.memory import MemoryBackend
from strongroom.storage.readahead import ReadAheadBackend
from strongroom.storage.retry import RetryBackend
from strongroom.storage.s3 import S3Backend
from strongroom.storage.tuning import DEFAULT_CONCURRENCY, preferred_concurrency

_prefixes = itertools.count()


def test_local_and_memory_get_the_default(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert preferred_concurrency(LocalBackend(tmp_path / "r", create=True)) == DEFAULT_CONCURRENCY
    assert preferred_concurrency(MemoryBackend()) == DEFAULT_CONCURRENCY


def test_wrappers_pass_the_inner_preference_through_and_limits_cap_it() -> None:
    class Networked(MemoryBackend):
        preferred_concurrency = 7

    assert preferred_concurrency(ReadAheadBackend(RetryBackend(Networked()))) == 7
    assert preferred_concurrency(LimitBackend(RetryBackend(Networked()), 2)) == 2
    assert preferred_concurrency(RetryBackend(LimitBackend(Networked(), 4))) == 4
    assert preferred_concurrency(LimitBackend(MemoryBackend(), 9)) == DEFAULT_CONCURRENCY


def test_network_backends_ask_for_more_than_local() -> None:
    assert S3Backend.preferred_concurrency > DEFAULT_CONCURRENCY


@pytest.mark.s3
@pytest.mark.xdist_group("servers")
def test_s3_uploads_are_not_hashed_for_signing_and_the_server_accepts_them(
        seaweedfs: servers.S3Server) -> None:
    backend = S3Backend(seaweedfs.url, "strongroom-test", f"tuning{next(_prefixes)}",
                        create=True, access_key=seaweedfs.access_key,
                        secret_key=seaweedfs.secret_key)
    sent: list[str] = []

    def capture(request: Any, **_: Any) -> None:
        sent.append(request.headers.get("X-Amz-Content-SHA256"))

    backend._client.meta.events.register("before-send.s3.PutObject", capture)
    try:
        backend.put("data/aa/object", b"x" * 100_000)
        assert backend.get("data/aa/object") == b"x" * 100_000
    finally:
        backend.close()
    assert sent == [b"UNSIGNED-PAYLOAD"]  # botocore keeps prepared headers as bytes


def test_packer_uploads_with_the_backend_concurrency() -> None:
    from strongroom.api import BackupKey, Repository

    class Networked(MemoryBackend):
        preferred_concurrency = 5

    repo = Repository.create(RetryBackend(Networked()), BackupKey.generate())
    packer = Packer(repo._engine)
    try:
        assert packer._pool._max_workers == 5
        assert packer._max_inflight == 5
    finally:
        packer.abort()
