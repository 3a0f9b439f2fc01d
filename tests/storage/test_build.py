"""The public storage builders: explicit credentials, the wrappers applied, no secret shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support import servers

import strongroom
from strongroom.errors import PermanentStorageError, UsageError
from strongroom.storage.local import LocalBackend
from strongroom.storage.readahead import ReadAheadBackend
from strongroom.storage.retry import RetryBackend

pytestmark = pytest.mark.xdist_group("seaweedfs")


def test_local_and_memory_builders(tmp_path: Path) -> None:
    with pytest.raises(strongroom.RepositoryNotFound) as info:
        strongroom.storage_local(tmp_path / "missing")
    assert "--" not in (info.value.hint or "")
    local = strongroom.storage_local(tmp_path / "repo", create=True)
    assert isinstance(local, LocalBackend)
    key = strongroom.BackupKey.generate()
    strongroom.Repository.create(local, key).close()
    # A location string works wherever a backend does.
    with strongroom.Repository.open(str(tmp_path / "repo"), key) as repo:
        assert repo.snapshots() == []
    assert isinstance(strongroom.storage_memory(), strongroom.Backend)


def test_s3_with_the_apps_own_credentials_beats_the_environment(
        seaweedfs: servers.S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The process environment holds someone else's keys: the app's must win.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG0")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-wrong-secret-wrong-secret00")
    backend = strongroom.storage_s3(seaweedfs.url, "strongroom-test", "sdk-build",
                                    access_key=seaweedfs.access_key,
                                    secret_key=seaweedfs.secret_key, region="us-east-1")
    assert isinstance(backend, ReadAheadBackend) and isinstance(backend.inner, RetryBackend)
    shown = repr(backend) + backend.location
    assert seaweedfs.secret_key not in shown
    src = tmp_path / "src"
    src.mkdir()
    (src / "msgstore.db").write_bytes(b"chat" * 100_000)
    key = strongroom.BackupKey.generate()
    with strongroom.Repository.create(backend, key) as repo:
        repo.backup([src])
        repo.restore("latest", tmp_path / "out", strip=str(src))
    assert (tmp_path / "out" / "msgstore.db").read_bytes() == b"chat" * 100_000
    # Without explicit keys the (wrong) environment is used: a clear, typed error.
    env_only = strongroom.storage_s3(seaweedfs.url, "strongroom-test", "sdk-build",
                                     retry=False)
    with pytest.raises(PermanentStorageError) as info:
        env_only.get("config")
    assert info.value.reason == "access-denied" and info.value.object == "config"
    assert "wrong-secret" not in str(info.value)


def test_s3_credentials_go_together() -> None:
    with pytest.raises(ValueError, match="both"):
        strongroom.storage_s3("http://127.0.0.1:1", "b", access_key="AKIA")
    with pytest.raises(ValueError, match="session token"):
        strongroom.storage_s3("http://127.0.0.1:1", "b", session_token="t")


def test_s3_session_token_is_sent(seaweedfs: servers.S3Server) -> None:
    # Temporary (STS) credentials: the token travels with every request.  A
    # static-key server like this one refuses a token it did not issue, which
    # shows the token was sent; the error is typed and shows no secret.
    backend = strongroom.storage_s3(seaweedfs.url, "strongroom-test", "sdk-sts",
                                    access_key=seaweedfs.access_key,
                                    secret_key=seaweedfs.secret_key,
                                    session_token="FQoGZXIvYXdzEXAMPLETOKEN", retry=False)
    with pytest.raises(PermanentStorageError) as info:
        backend.put("config", b"x")
    assert "EXAMPLETOKEN" not in str(info.value) + repr(backend)


def test_rclone_with_the_apps_own_config_file(webdav: servers.WebDavServer,
                                              tmp_path: Path) -> None:
    conf = tmp_path / "app-rclone.conf"
    conf.write_text(f"[appdav]\ntype = webdav\nurl = {webdav.url}\nvendor = other\n"
                    f"user = {webdav.user}\npass = {webdav.obscured_password}\n")
    backend = strongroom.storage_rclone("appdav:sdk-build", config_file=conf, create=True)
    try:
        assert isinstance(backend, ReadAheadBackend)
        key = strongroom.BackupKey.generate()
        with strongroom.Repository.create(backend, key) as repo:
            assert repo.snapshots() == []
    finally:
        backend.close()


def test_a_missing_extra_is_a_usage_error_without_cli_advice(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "strongroom.storage.s3", None)
    with pytest.raises(UsageError) as info:
        strongroom.storage_s3("https://s3.example.org", "b")
    assert info.value.reason == "not-installed" and "strongroom[s3]" in info.value.message
