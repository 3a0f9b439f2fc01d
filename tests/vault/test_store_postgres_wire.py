"""The PostgreSQL store's round trips through libpq (``store_postgres._Wire``): every value
comes back as it was sent, whatever it holds and however the server reads string
literals; a failed statement, or a ``COMMIT`` that did not commit, raises psycopg's error
(the store's callers turn it into ``VaultStoreError``, outcome unknown)."""

from __future__ import annotations

import psycopg
import pytest

from strongroom.errors import VaultStoreError
from strongroom.vault.counter import State
from strongroom.vault.store import Mutation, RecordRow, SessionRow
from strongroom.vault.store_postgres import PostgresStore, _Wire

from .conftest import fresh_pg_dsn

pytestmark = pytest.mark.postgres

HOSTILE = ["", "'", "''; DROP TABLE vault_records; --", "\\", "\\'", "a\x1eb/c", "é ü \u2603",
           "$$", "E'x'", "%s", "%%", "\n\t"]


@pytest.mark.parametrize("conforming", ["on", "off"])
def test_values_come_back_as_sent(pg_server, conforming: str) -> None:  # type: ignore[no-untyped-def]
    with psycopg.connect(fresh_pg_dsn(pg_server), autocommit=True) as conn:
        conn.execute(f"SET standard_conforming_strings = {conforming}")
        wire = _Wire(conn)
        for text in HOSTILE:
            (r,) = wire.run(["SELECT %s::text"], [text])
            assert wire.row(r, ("t",)) == (text,)
        for blob in (b"", b"\x00", b"'\\\x00\xff" * 40, bytes(range(256))):
            (r,) = wire.run(["SELECT %s"], [blob])
            assert wire.row(r, ("b",)) == (blob,)
        for n in (0, 1, -1, 2**62, -(2**62)):
            (r,) = wire.run(["SELECT 0 - %s"], [n])  # a negative value after a minus
            assert wire.row(r, ("i",)) == (-n,)
        for x in (0.0, 1733200000.125, -1e-300, 1e300):
            (r,) = wire.run(["SELECT %s"], [x])
            assert wire.row(r, ("f",)) == (x,)
        (r,) = wire.run(["SELECT NULL::bytea WHERE %s = %s"], [None, None])
        assert wire.row(r, ("b",)) is None  # no row: NULL = NULL is not true
        with pytest.raises(TypeError):
            wire.literal(True)
        with pytest.raises(psycopg.DataError):
            wire.run(["SELECT %s"], ["a\x00'; SELECT 1 --"])
        (r,) = wire.run(["SELECT %s"], ["still usable"])
        assert wire.row(r, ("t",)) == ("still usable",)


def test_a_failed_statement_or_a_commit_that_did_not_commit_raises(pg_server) -> None:  # type: ignore[no-untyped-def]
    with psycopg.connect(fresh_pg_dsn(pg_server), autocommit=True) as conn:
        wire = _Wire(conn)
        with pytest.raises(psycopg.errors.DivisionByZero):
            wire.run(["BEGIN", "SELECT 1", "SELECT 1 / %s", "COMMIT"], [0], commit=True)
        # The transaction is aborted: its COMMIT answers ROLLBACK, never taken for a commit.
        with pytest.raises(psycopg.OperationalError, match="did not commit"):
            wire.run(["COMMIT"], [], commit=True)
        (r,) = wire.run(["SELECT %s"], ["fine"])
        assert wire.row(r, ("t",)) == ("fine",)


def test_the_store_keeps_hostile_keys_and_values_apart(pg_server) -> None:  # type: ignore[no-untyped-def]
    store = PostgresStore(fresh_pg_dsn(pg_server), max_connections=2)
    try:
        for i, key in enumerate(HOSTILE[1:]):
            row = RecordRow(key, State.ACTIVE, i, 10, 1, b"'\\" + bytes([i]) * 50, bytes(32))
            sess = SessionRow(f"s'{i}\\", key, 1e12 + 0.5, 1, b"\x00'" * 9, None)
            store.transact(key, lambda _c, _s, row=row, sess=sess: Mutation(row=row, add_session=sess))
        for i, key in enumerate(HOSTILE[1:]):
            got = store.get(key)
            assert got is not None and (got.account_id, got.used, got.sealed) == (
                key, i, b"'\\" + bytes([i]) * 50)
            taken = store.transact(key, lambda _c, s: Mutation(result=s), take_session=f"s'{i}\\",
                                   durable=False)
            assert taken == SessionRow(f"s'{i}\\", key, 1e12 + 0.5, 1, b"\x00'" * 9, None)

        def fails(_c: object, _s: object) -> Mutation:
            return Mutation(row=RecordRow("x", State.ACTIVE, 0, 10, 1, None, bytes(32)),
                            add_session=SessionRow("dup", "x", 1.0, 1, b"s", None))

        store.transact("x", fails)
        with pytest.raises(VaultStoreError):
            store.transact("x", fails)  # the session id exists: the insert fails, no commit
        assert store.get("x") is not None
    finally:
        store.close()
