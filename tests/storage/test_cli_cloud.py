"""The command line against real cloud storage: S3 (SeaweedFS) and rclone (WebDAV).

Credentials come from the environment the way users provide them (AWS_*
variables, RCLONE_CONFIG_* variables), never from the location.
"""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support import servers

pytestmark = pytest.mark.xdist_group("servers")


def _run(args: list[str], env: dict[str, str], ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "strongroom.cli.main", *args], env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300,
                          check=False)
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def _env(tmp_path: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STRONGROOM_", "AWS_", "RCLONE_"))}
    env.update(STRONGROOM_CONFIG_DIR=str(tmp_path / "device"), STRONGROOM_KEYRING="no", **extra)
    return env


def _journey(repo: str, env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "chats"
    (source / "Media").mkdir(parents=True)
    (source / "msgstore.db").write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 400)
    (source / "Media" / "IMG-1.jpg").write_bytes(os.urandom(300_000))
    key = tmp_path / "key"
    _run(["--repo", repo, "--key-file", str(key), "init"], env)
    _run(["--repo", repo, "--key-file", str(key), "backup", str(source)], env)
    target = tmp_path / "restored"
    _run(["--repo", repo, "--key-file", str(key), "restore", "latest", "--target", str(target)], env)
    restored = {p.name: p for p in target.rglob("*") if p.is_file()}
    assert sorted(restored) == ["IMG-1.jpg", "msgstore.db"]
    for p in source.rglob("*"):
        if p.is_file():
            assert filecmp.cmp(p, restored[p.name], shallow=False)
    check = _run(["--repo", repo, "--key-file", str(key), "check", "--read-data"], env)
    assert check.returncode == 0


@pytest.mark.s3
def test_s3_journey_and_refused_credentials(seaweedfs: servers.S3Server, tmp_path: Path) -> None:
    env = _env(tmp_path, {"AWS_ACCESS_KEY_ID": seaweedfs.access_key,
                          "AWS_SECRET_ACCESS_KEY": seaweedfs.secret_key})
    repo = seaweedfs.location("cli-bucket", "phone")  # init creates the bucket
    _journey(repo, env, tmp_path)
    bad = dict(env, AWS_SECRET_ACCESS_KEY="wrong-secret-value")
    done = _run(["--repo", repo, "--key-file", str(tmp_path / "key"), "snapshots"], bad, ok=False)
    assert done.returncode == 15
    assert "access denied" in done.stderr and "wrong-secret-value" not in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.s3
def test_s3_missing_bucket_is_repository_not_found(seaweedfs: servers.S3Server,
                                                    tmp_path: Path) -> None:
    env = _env(tmp_path, {"AWS_ACCESS_KEY_ID": seaweedfs.access_key,
                          "AWS_SECRET_ACCESS_KEY": seaweedfs.secret_key})
    done = _run(["--repo", seaweedfs.location("no-such-bucket", "x"), "--key-file",
                 str(tmp_path / "key"), "snapshots"], env, ok=False)
    assert done.returncode == 10, done.stderr
    assert "no-such-bucket does not exist" in done.stderr


@pytest.mark.rclone
def test_rclone_webdav_journey(webdav: servers.WebDavServer, tmp_path: Path) -> None:
    env = _env(tmp_path, webdav.rclone_env("mydav"))
    _journey("rclone:mydav:backups/phone", env, tmp_path)
    assert (webdav.root / "backups" / "phone" / "config").is_file()
