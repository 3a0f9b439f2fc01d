"""A throwaway PostgreSQL server for tests: free port, temp dir, stopped afterwards.

Uses Debian's PostgreSQL 15 binaries.  initdb refuses to run as root, so as
root the server runs as the ``postgres`` system user with a data directory it
owns; as any other user it runs as that user.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

PG_BIN = Path(os.environ.get("STRONGROOM_PG_BIN", "/usr/lib/postgresql/15/bin"))


def available() -> bool:
    """True when the PostgreSQL server binaries are installed."""
    return (PG_BIN / "initdb").exists() and (PG_BIN / "pg_ctl").exists()


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One PostgreSQL cluster in a temp dir, listening on 127.0.0.1:port."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="strongroom-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as_root = os.geteuid() == 0

    @property
    def dsn(self) -> str:
        """libpq connection string of the superuser database."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres connect_timeout=10"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> PgServer:
        """initdb and start; returns when the server accepts connections."""
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8", "--no-instructions")
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                "-c fsync=on -c synchronous_commit=on -c max_connections=200")
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
                  "-o", opts, "-w", "-t", "60", "start")
        return self

    def dump(self) -> bytes:
        """``pg_dump`` of the database, as bytes."""
        out = subprocess.run([str(PG_BIN / "pg_dump"), "-h", "127.0.0.1", "-p", str(self.port),
                              "-U", "postgres", "postgres"], check=True, capture_output=True,
                             timeout=120)
        return out.stdout

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory."""
        try:
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_port(port: int, timeout: float = 30.0) -> None:
    """Block until something listens on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")
