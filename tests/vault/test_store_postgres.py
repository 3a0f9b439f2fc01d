"""PostgreSQL store: a vault node's connections are bounded, whatever its threads do.

The failover campaign's rare failed run (docs/reliability.md §10): each worker
thread kept a connection of its own, the thread pool retires idle threads, and
every retired thread left an idle session on the server until PostgreSQL
refused new connections ("too many clients") and the vault answered 503 for
good.  The store now shares a bounded pool; these tests count the server's
sessions.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from strongroom.errors import UsageError, VaultStoreError
from strongroom.vault.store import Mutation
from strongroom.vault.store_postgres import PostgresStore

from .conftest import fresh_pg_dsn

pytestmark = pytest.mark.postgres


def _sessions(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND pid <> pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def test_threads_that_come_and_go_leave_no_sessions_behind(pg_server) -> None:  # type: ignore[no-untyped-def]
    dsn = fresh_pg_dsn(pg_server)
    store = PostgresStore(dsn, max_connections=3)
    try:
        for wave in range(4):  # 4 waves of 12 short-lived threads, all reading at once
            go = threading.Barrier(12)
            errors: list[BaseException] = []

            def read(go: threading.Barrier = go, errors: list[BaseException] = errors,
                     wave: int = wave) -> None:
                go.wait()
                try:
                    assert store.get(f"nobody-{wave}") is None
                except BaseException as exc:  # noqa: BLE001  # reported below
                    errors.append(exc)

            threads = [threading.Thread(target=read) for _ in range(12)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
            assert not errors, errors
        # 48 threads have read and exited; one thread per connection would leave 48.
        assert 1 <= _sessions(dsn) <= 3
    finally:
        store.close()
    deadline = time.monotonic() + 10
    while _sessions(dsn) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _sessions(dsn) == 0  # close() ends every session


def test_no_free_connection_in_time_is_a_store_failure_not_a_hang(pg_server) -> None:  # type: ignore[no-untyped-def]
    store = PostgresStore(fresh_pg_dsn(pg_server), max_connections=1, pool_timeout=0.5)
    holding, release = threading.Event(), threading.Event()

    def slow(_row: object, _sess: object) -> Mutation:
        holding.set()
        release.wait(30)
        return Mutation(result="done")

    results: list[object] = []
    t = threading.Thread(target=lambda: results.append(store.transact("alice", slow)))
    t.start()
    try:
        assert holding.wait(30)
        started = time.monotonic()
        with pytest.raises(VaultStoreError):
            store.get("bob")  # the only connection is in alice's transaction
        assert time.monotonic() - started < 5
    finally:
        release.set()
        t.join(timeout=30)
    assert results == ["done"]
    assert store.get("bob") is None  # and the connection serves again
    store.close()


def test_a_pool_of_no_connections_is_refused(pg_server) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match="at least one database connection"):
        PostgresStore(fresh_pg_dsn(pg_server), max_connections=0)


def test_by_default_a_node_has_a_connection_for_each_worker_thread() -> None:
    """No request waits for a connection that would not wait for a thread anyway."""
    from strongroom.vault.app import DEFAULT_WORKER_THREADS
    from strongroom.vault.store_postgres import DEFAULT_MAX_CONNECTIONS

    assert DEFAULT_MAX_CONNECTIONS == DEFAULT_WORKER_THREADS
