"""Fixtures of the vault tests: small OPAQUE parameters, real SQLite and PostgreSQL stores."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import pytest

from strongroom.vault import _opaque as opaque
from strongroom.vault.core import Vault, VaultPolicy, VaultSecrets
from strongroom.vault.params import KsfBounds
from strongroom.vault.store import RecordStore
from strongroom.vault.store_sqlite import SqliteStore

from . import pg

# Small Argon2id so the suite stays fast; the vault keeps them with the record.
SMALL_KSF = {"memory_kib": 256, "iterations": 1, "parallelism": 1}
#: What the tests' clients accept: SMALL_KSF (real devices keep DEFAULT_KSF as the minimum).
SMALL_BOUNDS = KsfBounds(minimum={"memory_kib": 8, "iterations": 1, "parallelism": 1})


def small_config() -> object:
    """The OPAQUE configuration every vault test uses."""
    return opaque.OpaqueConfig(ksf=opaque.Argon2idKSF(**SMALL_KSF), context=b"strongroom-test")


class DetRng:
    """A deterministic byte source (tests only): SHA-512 in counter mode over a seed."""

    def __init__(self, seed: bytes = b"seed") -> None:
        import hashlib

        self._h, self._seed, self._n, self._buf = hashlib, seed, itertools.count(), b""

    def __call__(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._buf += self._h.sha512(self._seed + next(self._n).to_bytes(8, "big")).digest()
        out, self._buf = self._buf[:n], self._buf[n:]
        return out


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pg.PgServer]:
    """One throwaway PostgreSQL per test process."""
    if not pg.available():
        pytest.skip("PostgreSQL 15 binaries not installed (apt-get install postgresql-15)")
    server = pg.PgServer().start()
    try:
        yield server
    finally:
        server.stop()


_db_counter = itertools.count()


def fresh_pg_dsn(server: pg.PgServer) -> str:
    """A new empty database on ``server``; returns its DSN."""
    import psycopg

    name = f"t{os.getpid()}_{next(_db_counter)}"
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.dsn.replace("dbname=postgres", f"dbname={name}")


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    """Each record store, empty."""
    if request.param == "sqlite":
        s: RecordStore = SqliteStore(tmp_path / "vault.db")
    else:
        from strongroom.vault.store_postgres import PostgresStore

        s = PostgresStore(fresh_pg_dsn(request.getfixturevalue("pg_server")))
    s.kind = request.param  # type: ignore[attr-defined]
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="session")
def secrets() -> VaultSecrets:
    """Fixed vault secrets (deterministic)."""
    rng = DetRng(b"vault-secrets")
    return VaultSecrets(opaque.ServerSetup.generate(rng), rng(32))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def vault(store: RecordStore, secrets: VaultSecrets, clock: Clock) -> Vault:
    """A vault with a limit of 10 over each store."""
    return Vault(store, secrets, small_config(), VaultPolicy(attempt_limit=10, session_ttl=60),
                 clock=clock, rng=DetRng(b"vault"))


class LiveVault:
    """A real uvicorn server on a free loopback port, in a thread of this process."""

    def __init__(self, app: object) -> None:
        import threading

        import uvicorn

        self.port = pg.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                             lifespan="off")
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        pg.wait_port(self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live(vault: Vault) -> Iterator[tuple[LiveVault, object]]:
    """The vault fixture served over HTTP in standalone-token mode; yields (server, auth)."""
    from strongroom.vault.app import create_app
    from strongroom.vault.auth import TokenAuth

    auth = TokenAuth(vault.store)
    with LiveVault(create_app(vault, auth)) as server:
        yield server, auth


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class VaultProcess:
    """``strongroom vault serve`` in a subprocess on a free port (software keystore)."""

    def __init__(self, tmp: Path, *, database: str | None = None, extra: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> None:
        import sys

        self.port = pg.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database = database or str(tmp / "vault.db")
        self.secrets = str(tmp / "vault-secrets.json")
        self.env = {**os.environ, "STRONGROOM_VAULT_PASSPHRASE": "test passphrase", **(env or {})}
        self.args = [sys.executable, "-m", "strongroom.cli.main", "vault", "serve",
                     "--db", self.database, "--secrets", self.secrets, "--port", str(self.port),
                     "--kdf-memory-kib", "256", *extra]
        # A file, not a pipe: nobody reads a pipe while the vault serves, and a
        # full pipe (64 KiB of access log) would block the vault mid-request.
        self.log = tmp / f"vault-{self.port}.log"
        self._log_file: object = None
        self.proc: object = None

    def start(self) -> VaultProcess:
        """Start and wait until it listens."""
        import subprocess
        import time

        self._log_file = log = open(self.log, "wb")  # noqa: SIM115  # closed in stop()
        self.proc = p = subprocess.Popen(self.args, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not _listening(self.port):
            if p.poll() is not None:  # it died: say why instead of waiting
                self.stop()
                raise RuntimeError(f"vault exited with {p.returncode}; log tail:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"vault did not listen on port {self.port}; log tail:\n"
                                   f"{self.log_tail()}")
            time.sleep(0.05)
        return self

    def log_tail(self, limit: int = 4000) -> str:
        """The last ``limit`` characters of the vault's output."""
        try:
            return self.log.read_bytes()[-limit:].decode(errors="replace")
        except FileNotFoundError:
            return ""

    def create_account(self, name: str) -> str:
        """``strongroom vault account create NAME``; returns the printed token."""
        import subprocess
        import sys

        out = subprocess.run([sys.executable, "-m", "strongroom.cli.main", "vault", "account",
                              "create", name, "--db", self.database], env=self.env, check=True,
                             capture_output=True, text=True, timeout=60)
        return out.stdout.strip()

    def stop(self) -> None:
        """Terminate (SIGTERM, then SIGKILL)."""
        import subprocess

        p = self.proc
        if isinstance(p, subprocess.Popen) and p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        log = self._log_file
        if log is not None and hasattr(log, "close"):
            log.close()
        self._log_file = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
