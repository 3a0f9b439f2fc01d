"""The test harness's vault subprocess: its output goes to a log file, never a pipe."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from .conftest import VaultProcess


def _garbage_request(port: int) -> None:
    """One connection that uvicorn answers with a warning line in the vault's output."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"\x00 not http at all\r\n\r\n")
        s.recv(1024)


@pytest.mark.vault
def test_vault_writing_much_output_keeps_serving(tmp_path: Path) -> None:
    """More output than a pipe buffer holds (64 KiB) must not block the vault."""
    with VaultProcess(tmp_path) as vp:
        n = 0
        while vp.log.stat().st_size < 256 * 1024:  # four pipe buffers' worth
            _garbage_request(vp.port)
            n += 1
            assert n < 20_000, "the vault does not log invalid requests any more"
        r = httpx.get(f"{vp.url}/v1/info", timeout=10)
        assert r.status_code == 200 and "server_public_key" in r.json()
    assert "Invalid HTTP request" in vp.log_tail()


@pytest.mark.vault
def test_vault_failing_to_start_shows_its_log(tmp_path: Path) -> None:
    vp = VaultProcess(tmp_path, extra=("--auth", "jwt"))  # jwt mode without a public key
    with pytest.raises(RuntimeError) as exc:
        vp.start()
    assert "vault exited with" in str(exc.value)
    assert "jwt" in str(exc.value).lower()  # the vault's own explanation, from the log
    assert vp.log.exists()


def _threads(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def _concurrent_logins(url: str, token: str, n: int) -> list[int]:
    """``n`` login starts at once (each commits a counted guess with an fsync)."""
    import base64
    import concurrent.futures

    ke1 = base64.urlsafe_b64encode(bytes(96)).rstrip(b"=").decode()

    def one(_i: int) -> int:
        r = httpx.post(f"{url}/v1/accounts/alice/login/start", json={"ke1": ke1},
                       headers={"authorization": f"Bearer {token}"}, timeout=60)
        return r.status_code

    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        return list(ex.map(one, range(n)))


@pytest.mark.vault
@pytest.mark.parametrize("threads", [1, 3])
def test_threads_bound_the_vaults_worker_threads(tmp_path: Path, threads: int) -> None:
    """``--threads N``: however many requests arrive at once, at most N worker threads."""
    import subprocess

    with VaultProcess(tmp_path, extra=("--threads", str(threads))) as vp:
        assert isinstance(vp.proc, subprocess.Popen)
        before = _threads(vp.proc.pid)  # listening, no request served yet
        token = vp.create_account("alice")
        for _ in range(3):
            # Any answer will do (a KE1 of zeros is refused or counted); what counts
            # is that 24 requests were in flight at once.
            assert all(400 <= s < 500 or s == 200 for s in _concurrent_logins(vp.url, token, 24))
        added = _threads(vp.proc.pid) - before
    assert 1 <= added <= threads, (before, added)


@pytest.mark.vault
@pytest.mark.postgres
def test_db_connections_bound_the_sessions_a_node_holds(tmp_path: Path, pg_server) -> None:  # type: ignore[no-untyped-def]
    """``--db-connections N``: 8 worker threads, 24 requests at once, 3 rounds with pauses
    (idle worker threads retire): the PostgreSQL server never sees more than N sessions."""
    import time

    import psycopg

    from .conftest import fresh_pg_dsn

    dsn = fresh_pg_dsn(pg_server)

    def sessions() -> int:
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE "
                               "datname = current_database() AND pid <> pg_backend_pid()").fetchone()
        return int(row[0]) if row else -1

    with VaultProcess(tmp_path, database=dsn,
                      extra=("--threads", "8", "--db-connections", "2")) as vp:
        token = vp.create_account("alice")
        seen = []
        for _ in range(3):
            assert all(400 <= s < 500 or s == 200 for s in _concurrent_logins(vp.url, token, 24))
            seen.append(sessions())
            time.sleep(0.5)
    assert all(1 <= n <= 2 for n in seen), seen
