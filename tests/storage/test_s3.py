"""S3 backend behaviour beyond the shared contract, against a real SeaweedFS."""

from __future__ import annotations

import pytest
from tests.support import servers

from strongroom.errors import PermanentStorageError, RepositoryNotFound, TransientStorageError
from strongroom.storage.registry import open_backend
from strongroom.storage.s3 import MiB, S3Backend

pytestmark = [pytest.mark.s3, pytest.mark.xdist_group("servers")]


def _backend(s3: servers.S3Server, prefix: str, **kw: object) -> S3Backend:
    return S3Backend(s3.url, "strongroom-test", prefix, access_key=s3.access_key,
                     secret_key=s3.secret_key, **kw)  # type: ignore[arg-type]


def test_large_objects_go_up_in_parts(seaweedfs: servers.S3Server) -> None:
    b = _backend(seaweedfs, "multipart", multipart_threshold=5 * MiB, part_size=5 * MiB)
    data = bytes(range(256)) * (45 * 1024)  # 11.25 MiB -> 3 parts
    b.put("data/big", data)
    head = seaweedfs.client().head_object(Bucket="strongroom-test", Key="multipart/data/big")
    assert head["ETag"].strip('"').endswith("-3")  # S3's marker of a 3-part upload
    assert b.get("data/big") == data
    assert b.put_if_absent("data/big", data[::-1]) is False  # refused at completion
    assert b.get("data/big") == data
    assert not seaweedfs.client().list_multipart_uploads(
        Bucket="strongroom-test", Prefix="multipart/").get("Uploads")  # none abandoned


def test_environment_credentials_and_restic_url(seaweedfs: servers.S3Server,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweedfs.secret_key)
    b = open_backend(seaweedfs.location("strongroom-test", "envcreds"))
    b.put("config", b"hello")
    assert b.get("config") == b"hello"
    assert seaweedfs.secret_key not in repr(b) + b.location


def test_wrong_secret_is_permanent_names_object_hides_secret(seaweedfs: servers.S3Server) -> None:
    b = S3Backend(seaweedfs.url, "strongroom-test", "wrong", access_key=seaweedfs.access_key,
                  secret_key="not-the-secret-0123456789")
    with pytest.raises(PermanentStorageError, match=r"cannot put config: access denied") as info:
        b.put("config", b"x")
    assert "not-the-secret" not in str(info.value)
    # The library's hint fits any app; the CLI's names the environment variables.
    assert info.value.reason == "access-denied" and info.value.object == "config"
    assert info.value.hint and "AWS_" not in info.value.hint
    from strongroom.cli.errors import cli_hint

    assert "AWS_SECRET_ACCESS_KEY" in (cli_hint(info.value) or "")
    assert seaweedfs.url in str(info.value)


def test_missing_bucket_is_repository_not_found_unless_create(seaweedfs: servers.S3Server) -> None:
    with pytest.raises(RepositoryNotFound, match="bucket fresh-bucket-1 does not exist"):
        S3Backend(seaweedfs.url, "fresh-bucket-1", access_key=seaweedfs.access_key,
                  secret_key=seaweedfs.secret_key)
    b = S3Backend(seaweedfs.url, "fresh-bucket-1", "p", create=True,
                  access_key=seaweedfs.access_key, secret_key=seaweedfs.secret_key)
    b.put("config", b"1")
    assert list(b.list()) == ["config"]


def test_foreign_keys_under_the_prefix_are_not_objects(seaweedfs: servers.S3Server) -> None:
    b = _backend(seaweedfs, "foreign")
    client = seaweedfs.client()
    for key in ("foreign/folder/", "foreign/has space", "foreignother/x"):
        client.put_object(Bucket="strongroom-test", Key=key, Body=b"")
    b.put("data/x", b"1")
    assert sorted(b.list()) == ["data/x"]


def test_unreachable_endpoint_is_transient() -> None:
    port = servers.free_port()
    with pytest.raises(TransientStorageError, match=f"127.0.0.1:{port}"):
        S3Backend(f"http://127.0.0.1:{port}", "bkt", access_key="a", secret_key="b", timeout=2)


_CUT_CHILD = r"""
import os, signal, sys
from strongroom.storage.s3 import S3Backend

class _DiesOnRead:
    # A request body whose first read kills the process: the headers are out, no byte of
    # the body is, as when a phone's app is killed mid-upload.
    def read(self, n=-1):
        os.kill(os.getpid(), signal.SIGKILL)

def _cut(request, **kw):
    request.body = _DiesOnRead()

url, prefix, how = sys.argv[1:4]
b = S3Backend(url, "strongroom-test", prefix, access_key=os.environ["AWS_ACCESS_KEY_ID"],
              secret_key=os.environ["AWS_SECRET_ACCESS_KEY"])
b._client.meta.events.register("before-send.s3.PutObject", _cut)
data = b"snapshot bytes " * 200
if how == "put":
    b.put("snapshots/" + "a" * 32, data)
elif how == "put_if_absent":
    b.put_if_absent("snapshots/" + "a" * 32, data)
else:  # what the backend sent before the checksum: the body alone
    b._client.put_object(Bucket="strongroom-test", Key=prefix + "/snapshots/" + "a" * 32,
                         Body=data)
"""


@pytest.mark.parametrize("how", ["put", "put_if_absent"])
def test_an_upload_cut_after_its_headers_stores_nothing(seaweedfs: servers.S3Server,
                                                       how: str) -> None:
    """docs/spec/storage.md §4: killed after the headers of a ``PutObject`` and before its
    body, the uploader left SeaweedFS an empty object under the name (the control below);
    with the body's CRC32 in the request the server stores nothing."""
    import os
    import subprocess
    import sys

    from strongroom.errors import ObjectNotFound

    env = {**os.environ, "AWS_ACCESS_KEY_ID": seaweedfs.access_key,
           "AWS_SECRET_ACCESS_KEY": seaweedfs.secret_key}

    def killed_upload(prefix: str, kind: str) -> None:
        r = subprocess.run([sys.executable, "-c", _CUT_CHILD, seaweedfs.url, prefix, kind],
                           check=False, env=env, capture_output=True, timeout=60)
        assert r.returncode == -9, r.stderr[-2000:]

    killed_upload(f"cut-control-{how}", "bare")
    control = _backend(seaweedfs, f"cut-control-{how}")
    assert control.stat("snapshots/" + "a" * 32).size == 0  # SeaweedFS's behaviour
    killed_upload(f"cut-{how}", how)
    b = _backend(seaweedfs, f"cut-{how}")
    with pytest.raises(ObjectNotFound):
        b.stat("snapshots/" + "a" * 32)
    assert list(b.list()) == []
