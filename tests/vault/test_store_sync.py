"""PostgreSQL store: a commit acknowledged without its synchronous standby is not a success.

PostgreSQL answers a COMMIT whose wait for the synchronous standby was cancelled
with success and a WARNING ("canceling wait for synchronous replication": committed
locally only).  On a replicated cluster that commit may vanish in a failover, so the
store must raise ``VaultStoreError`` (the vault answers 503 and sends no KE2).  A real
server: ``synchronous_standby_names`` names a standby that never connects, so every
commit waits until it is cancelled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from strongroom.errors import VaultStoreError
from strongroom.vault.store import Mutation, SessionRow
from strongroom.vault.store_postgres import PostgresStore

from . import pg


@pytest.fixture
def waiting_server() -> Iterator[pg.PgServer]:
    if not pg.available():
        pytest.skip("PostgreSQL 15 binaries not installed (apt-get install postgresql-15)")
    with pg.PgServer() as server:
        yield server


def _wait_for_syncrep(dsn: str) -> int:
    deadline = time.monotonic() + 30
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            r = conn.execute("SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep'").fetchone()
            if r:
                return int(r[0])
            time.sleep(0.05)
    raise AssertionError("no commit is waiting for the synchronous standby")


def test_a_commit_whose_sync_wait_was_cancelled_is_an_unknown_outcome(
        waiting_server: pg.PgServer) -> None:
    store = PostgresStore(waiting_server.dsn)  # schema first, while commits do not wait
    with psycopg.connect(waiting_server.dsn, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
        conn.execute("SELECT pg_reload_conf()")
    time.sleep(0.5)
    session = SessionRow("s1", "alice", 2e9, 0, b"state", None)
    outcome: list[object] = []

    def guess() -> None:
        try:
            outcome.append(store.transact("alice", lambda _r, _s: Mutation(add_session=session,
                                                                           result="answered")))
        except VaultStoreError as exc:
            outcome.append(exc)

    t = threading.Thread(target=guess)
    t.start()
    pid = _wait_for_syncrep(waiting_server.dsn)
    with psycopg.connect(waiting_server.dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_cancel_backend(%s)", (pid,))
    t.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], VaultStoreError), outcome
    # The row is there on this server (committed locally): the outcome really was unknown.
    with psycopg.connect(waiting_server.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM vault_sessions").fetchone()[0] == 1
    store.close()
