"""PostgreSQL record store: stateless vault nodes sharing one database.

Every ``transact`` runs in one transaction that first takes a transaction-
scoped advisory lock on the account (``pg_advisory_xact_lock``), so guesses
on one account serialize across all vault processes even when no row exists
yet (phantom counters).  The commit is synchronous (``synchronous_commit=on``).
If the commit fails, times out or the connection drops, the outcome is
unknown: :class:`VaultStoreError` is raised, nothing is rolled back on
purpose, and the caller sends no KE2 — an unknown commit counts as a guess.

Round trips.  A ``transact`` costs two round trips to the server, whatever
it writes, each one query string of several statements (the simple query
protocol, values quoted client-side; sent and read through libpq by
:class:`_Wire`): ``BEGIN`` + lock + read (+ take the session) in the first,
every write + ``COMMIT`` in the second.  One ``execute`` per round trip costs the vault a fraction of the
CPU that libpq pipeline mode did with one ``execute`` per statement
(docs/vault-operations.md §8).  The lock and the read stay separate
statements: under READ COMMITTED a statement's snapshot is taken when it
starts, so a read in the same statement as the lock could miss the commit of
the lock's previous holder.  PostgreSQL stops a query string at its first
failing statement, so a failed lock, read or write never reaches ``COMMIT``.
A bearer token whose lookup was deferred (``defer_token_lookup``) is read in
the first round trip of the request's first ``get`` or ``transact`` (one
statement more, inside the transaction) and checked before ``fn`` runs or
anything is returned: a refused token rolls the transaction back.  With the
login start in one transaction (``locks_per_record``), a complete login is 4
round trips: 2 per request (it was 7: two token lookups and a record read of
their own, docs/vault-operations.md §8).

Connections.  A vault node holds at most ``max_connections`` connections
(default 40, as many as the vault's worker threads by default, so no request
waits for one that would not wait for a thread anyway), in a ``psycopg_pool``
pool shared by its worker threads; a request that finds none free within
``pool_timeout`` seconds gets 503.  So
the nodes of a cluster never hold more than nodes × ``max_connections``
server slots, whatever threads come and go.  (Before 2026-12, each worker
thread kept its own connection, and the thread pool retires idle threads:
every retired thread left an idle session on the server until PostgreSQL
refused connections — the rare failed run of the replica failover case.)

Replicated clusters (docs/vault-operations.md).  The DSN may name several
hosts (``host=a,b,c`` with ``target_session_attrs=read-write``): libpq tries
them in turn and keeps the one that accepts writes, so after a failover the
next connection finds the new leader.  A connection that fails is dropped,
the request gets 503, and the next one reconnects.  Each connection gets
TCP keepalives and a ``tcp_user_timeout`` unless the DSN sets them, so a
leader that vanishes without closing its sockets is noticed in seconds.
A commit that PostgreSQL acknowledges only after *cancelling* its wait for
the synchronous standby (the WARNING "canceling wait for synchronous
replication": committed locally, perhaps not on a majority) is treated as
unknown too: no answer depends on it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import psycopg_pool
from psycopg import pq
from psycopg.errors import error_from_result
from psycopg.generators import execute as _execute

from ..errors import UsageError, VaultStoreError
from .store import Fn, Mutation, RecordRow, RecordStore, SessionRow, slot_prefix

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vault_records (
    account_id TEXT PRIMARY KEY, state TEXT NOT NULL, used INTEGER NOT NULL,
    lim INTEGER NOT NULL, generation INTEGER NOT NULL, sealed BYTEA, mac BYTEA);
ALTER TABLE vault_records ADD COLUMN IF NOT EXISTS mac BYTEA;
CREATE TABLE IF NOT EXISTS vault_sessions (
    session_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, expires_at DOUBLE PRECISION NOT NULL,
    generation INTEGER NOT NULL, sealed_state BYTEA NOT NULL, sealed_record BYTEA);
CREATE INDEX IF NOT EXISTS vault_sessions_account ON vault_sessions(account_id);
CREATE INDEX IF NOT EXISTS vault_sessions_expiry ON vault_sessions(expires_at);
CREATE TABLE IF NOT EXISTS vault_accounts (name TEXT PRIMARY KEY, token_hash BYTEA NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS vault_heads (
    account_id TEXT PRIMARY KEY, counter BIGINT NOT NULL, tag BYTEA NOT NULL);
"""
_LOCK_KEY = "strongroom-vault:"
_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
#: libpq settings a vault connection gets unless its DSN says otherwise: fail over
#: quickly from a leader that stopped answering (seconds, milliseconds for the last).
_CONNECT_DEFAULTS = {"connect_timeout": "5", "keepalives": "1", "keepalives_idle": "5",
                     "keepalives_interval": "1", "keepalives_count": "3",
                     "tcp_user_timeout": "10000"}
#: The start of the WARNING PostgreSQL sends when a commit's wait for the synchronous
#: standby was cancelled: the commit is local only (SQLSTATE 01000, not an error).
_SYNC_CANCELLED = "canceling wait for synchronous replication"
_HEAD_LOCK_KEY = "strongroom-head:"
#: Connections one vault node holds at most, and how long a request waits for one.
DEFAULT_MAX_CONNECTIONS = 40
POOL_TIMEOUT = 10.0
_BEGIN_STATEMENTS = ("BEGIN",)
# A login finish: its reset may be lost with the leader (the safe side, core.login_finish).
_BEGIN_UNSYNCED_STATEMENTS = ("BEGIN", "SET LOCAL synchronous_commit = off")
_READ_SQL = f"SELECT {RecordRow.COLUMNS} FROM vault_records WHERE account_id = %s"
_TOKEN_SQL = "SELECT name FROM vault_accounts WHERE token_hash = %s"
_TAKE_SQL = ("DELETE FROM vault_sessions WHERE session_id = %s AND account_id = %s RETURNING "
             "session_id, account_id, expires_at, generation, sealed_state, sealed_record")
_UPSERT_SQL = (f"INSERT INTO vault_records ({RecordRow.COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s) "
               "ON CONFLICT (account_id) DO UPDATE SET state = EXCLUDED.state, "
               "used = EXCLUDED.used, lim = EXCLUDED.lim, generation = EXCLUDED.generation, "
               "sealed = EXCLUDED.sealed, mac = EXCLUDED.mac")


_OK = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)
#: How a result column is read: text, integer, float8, bytea.
_TEXT, _INT, _FLOAT, _BYTEA = "t", "i", "f", "b"
_RECORD_KINDS = (_TEXT, _TEXT, _INT, _INT, _INT, _BYTEA, _BYTEA)  # RecordRow.COLUMNS
_SESSION_KINDS = (_TEXT, _TEXT, _FLOAT, _INT, _BYTEA, _BYTEA)  # _TAKE_SQL's RETURNING


class _Wire:
    """One round trip of a transaction, through psycopg's libpq layer (``psycopg.pq``).

    The same query strings, the same simple query protocol and the same client-side
    quoting as ``psycopg.ClientCursor`` (values become SQL literals: a string by libpq's
    ``PQescapeLiteral``, bytes as a hex ``bytea`` literal, numbers by their Python
    spelling), without the cursor's per-statement machinery: a login start's transaction
    cost the vault 310-390 µs of CPU through the cursor and 197-274 µs this way
    (``bench.vault_store_micro``, docs/vault-operations.md §8, 2026-12-03).  Every result's status is
    checked, and a failed one raises psycopg's own error for it (so the caller's
    ``psycopg.Error`` handling is unchanged); a ``COMMIT`` that did not commit raises.
    """

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn, self.pgconn = conn, conn.pgconn
        self.encoding = conn.info.encoding
        self._escaping = pq.Escaping(self.pgconn)

    def literal(self, v: Any) -> bytes:
        """``v`` as an SQL literal (no value is ever spliced in unquoted)."""
        if v is None:
            return b"NULL"
        if isinstance(v, bytes | bytearray | memoryview):
            # Hex digits only, in an E'' string: the same under either setting of
            # standard_conforming_strings.
            return b"E'\\\\x" + bytes(v).hex().encode() + b"'::bytea"
        if isinstance(v, bool):
            raise TypeError("no boolean columns")
        if isinstance(v, int):
            return b" %d" % v if v < 0 else b"%d" % v  # " -1": never "--" after "-"
        if isinstance(v, float):
            return b"'" + repr(v).encode() + b"'::float8"
        if isinstance(v, str):
            if "\x00" in v:  # as psycopg: text cannot hold NUL (nor could the query string)
                raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
            return bytes(self._escaping.escape_literal(v.encode(self.encoding)))
        raise TypeError(f"cannot send a {type(v).__name__}")

    def run(self, statements: list[str], args: list[Any], *, commit: bool = False
            ) -> list[pq.abc.PGresult]:
        """Send the statements (``%s``: the next of ``args``) as one query string; their
        results, each checked."""
        query = "; ".join(statements).encode() % tuple(self.literal(a) for a in args)
        self.pgconn.send_query(query)
        results: list[pq.abc.PGresult] = self.conn.wait(_execute(self.pgconn))
        for r in results:
            if r.status not in _OK:
                raise error_from_result(r, encoding=self.encoding)
        if len(results) != len(statements):
            raise psycopg.OperationalError("a statement of the transaction got no result")
        if commit and results[-1].command_status != b"COMMIT":
            raise psycopg.OperationalError("the transaction did not commit")
        return results

    def row(self, r: pq.abc.PGresult, kinds: tuple[str, ...]) -> tuple[Any, ...] | None:
        """The first row of ``r`` (None if it has none), each column read as ``kinds``."""
        if not r.ntuples:
            return None
        out: list[Any] = []
        for i, kind in enumerate(kinds):
            v = r.get_value(0, i)
            if v is None:
                out.append(None)
            elif kind == _TEXT:
                out.append(bytes(v).decode(self.encoding))
            elif kind == _INT:
                out.append(int(v))
            elif kind == _FLOAT:
                out.append(float(v))
            else:
                out.append(bytes(self._escaping.unescape_bytea(bytes(v))))
        return tuple(out)


class PostgresStore(RecordStore):
    """Records in PostgreSQL, through a pool of at most ``max_connections`` connections."""

    locks_per_record = True  # the advisory lock is per record key

    def __init__(self, dsn: str, *, max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 pool_timeout: float = POOL_TIMEOUT) -> None:
        if max_connections < 1:
            raise UsageError("the vault needs at least one database connection")
        self.dsn = dsn
        try:
            given = psycopg.conninfo.conninfo_to_dict(dsn)
        except psycopg.ProgrammingError as exc:
            raise UsageError("the vault database is not a valid PostgreSQL URL or DSN") from exc
        self._conninfo = psycopg.conninfo.make_conninfo(
            "", **{**_CONNECT_DEFAULTS, **{k: str(v) for k, v in given.items()}})
        #: Per thread: whether the last commit's wait for the standby was cancelled
        #: (the notice arrives in the thread that reads the COMMIT's result).
        self._local = threading.local()
        try:
            with psycopg.connect(self._conninfo, autocommit=True) as conn, conn.transaction():
                # Serialize concurrent schema creation by several vault nodes.
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('strongroom-schema', 0))")
                conn.execute(_SCHEMA)
        except psycopg.Error as exc:
            raise UsageError(f"cannot open the vault database: {type(exc).__name__}") from exc
        self._pool = psycopg_pool.ConnectionPool(
            self._conninfo, kwargs={"autocommit": True}, min_size=min(2, max_connections),
            max_size=max_connections, timeout=pool_timeout, configure=self._configure,
            name="strongroom-vault", open=True)

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute("SET synchronous_commit = on")
        conn.add_notice_handler(self._notice)

    # -- a bearer token's lookup in the request's first round trip -----------------------

    def defer_token_lookup(self, token_hash: bytes, then: Callable[[str | None], None]) -> None:
        # Taken up by this thread's next get() or transact() (one statement more in its
        # first round trip, checked before anything is returned or written), or settled
        # on its own by any other operation and by settle_token_lookup().
        self.settle_token_lookup()
        self._local.token = (token_hash, then)

    def settle_token_lookup(self, *, run: bool = True) -> None:
        pending = self._take_token()
        if pending is not None and run:
            pending[1](self.account_for_token(pending[0]))

    def _take_token(self) -> tuple[bytes, Callable[[str | None], None]] | None:
        pending: tuple[bytes, Callable[[str | None], None]] | None = getattr(
            self._local, "token", None)
        self._local.token = None
        return pending

    @contextlib.contextmanager
    def _connection(self, *, folded: bool = False) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection for one operation.  A database error (a failed connect, no
        free connection in time, a failed or interrupted statement or COMMIT) is
        ``VaultStoreError``, and the connection, in an unknown state, is discarded.
        Unless the operation takes up a deferred token lookup itself (``folded``), that
        lookup is settled first."""
        if not folded:
            self.settle_token_lookup()
        try:
            with self._pool.connection() as conn:
                self._local.unsynced = False
                try:
                    yield conn
                except psycopg.Error:
                    conn.close()  # never reused: the pool replaces it
                    raise
        except psycopg_pool.PoolTimeout as exc:
            raise VaultStoreError() from exc
        except psycopg.Error as exc:
            # The server may be gone (a failover): test the idle connections as well, so
            # that the next requests are not handed the other dead ones one by one.
            with contextlib.suppress(psycopg.Error):
                self._pool.check()
            raise VaultStoreError() from exc

    def get(self, account_id: str) -> RecordRow | None:
        pending = self._take_token()
        with self._connection(folded=True) as conn:
            wire = _Wire(conn)
            if pending is None:
                (res,) = wire.run([_READ_SQL], [account_id])
            else:
                # One round trip: the token's account, then the record.
                found, res = wire.run([_TOKEN_SQL, _READ_SQL], [pending[0], account_id])
                who = wire.row(found, (_TEXT,))
            r = wire.row(res, _RECORD_KINDS)
        if pending is not None:
            pending[1](None if who is None else str(who[0]))  # raises: nothing returned
        return RecordRow.from_db(r)

    def transact(self, account_id: str, fn: Fn, *, take_session: str | None = None,
                 durable: bool = True) -> Any:
        # Any database error, a failed or interrupted COMMIT included, is VaultStoreError
        # (_connection): outcome unknown, guess counted.
        pending = self._take_token()
        with self._connection(folded=True) as conn:
            wire = _Wire(conn)
            # Round trip 1: BEGIN, (the token's account,) the lock, the read (and the session).
            sql = list(_BEGIN_STATEMENTS if durable else _BEGIN_UNSYNCED_STATEMENTS)
            args: list[Any] = []
            if pending is not None:
                sql.append(_TOKEN_SQL)
                args.append(pending[0])
            sql += [_LOCK_SQL, _READ_SQL]
            args += [_LOCK_KEY + account_id, account_id]
            if take_session:
                sql.append(_TAKE_SQL)
                args += [take_session, account_id]
            results = wire.run(sql, args)
            i = 1 if durable else 2  # past BEGIN (and SET LOCAL)
            who = None
            if pending is not None:
                who = wire.row(results[i], (_TEXT,))
                i += 1
            row = RecordRow.from_db(wire.row(results[i + 1], _RECORD_KINDS))  # past the lock
            sess = None
            if take_session:
                sess = self._session(wire.row(results[i + 2], _SESSION_KINDS))
            try:
                if pending is not None:
                    # Before fn and any write: a token of no account, or of another one,
                    # raises here and the transaction (the taken session too) rolls back.
                    pending[1](None if who is None else str(who[0]))
                m = fn(row, sess)
            except BaseException:
                # Ends the transaction and frees the lock; a connection that cannot is
                # closed (the pool replaces it).
                try:
                    conn.execute("ROLLBACK")
                except psycopg.Error:
                    conn.close()
                raise
            # Round trip 2: every write and the COMMIT.
            sql, args = self._writes(account_id, m)
            wire.run([*sql, "COMMIT"], args, commit=True)
            if durable:
                self._check_synced(conn)
        return m.result

    def _check_synced(self, conn: psycopg.Connection[Any]) -> None:
        """Raise if the last commit was acknowledged without its synchronous standby."""
        if getattr(self._local, "unsynced", False):
            # Committed on the leader only: whether it survives a failover is unknown.
            conn.close()
            raise VaultStoreError("the commit did not reach the synchronous standby")

    def _notice(self, diag: psycopg.errors.Diagnostic) -> None:
        if (diag.message_primary or "").startswith(_SYNC_CANCELLED):
            self._local.unsynced = True

    @staticmethod
    def _session(r: tuple[Any, ...] | None) -> SessionRow | None:
        if r is None:
            return None
        return SessionRow(r[0], r[1], r[2], r[3], bytes(r[4]), None if r[5] is None else bytes(r[5]))

    @staticmethod
    def _writes(account_id: str, m: Mutation) -> tuple[list[str], list[Any]]:
        """The statements and values that apply ``m`` (sent with the COMMIT)."""
        sql: list[str] = []
        args: list[Any] = []
        if not m.keeps_row:
            if m.row is None:
                sql.append("DELETE FROM vault_records WHERE account_id = %s")
                args.append(account_id)
            else:
                w = m.row
                sql.append(_UPSERT_SQL)
                args += [account_id, w.state.value, w.used, w.limit, w.generation, w.sealed, w.mac]
        if m.drop_sessions:
            sql.append("DELETE FROM vault_sessions WHERE account_id = %s")
            args.append(account_id)
        if m.add_session is not None:
            s = m.add_session
            sql.append("INSERT INTO vault_sessions VALUES (%s, %s, %s, %s, %s, %s)")
            args += [s.session_id, s.account_id, s.expires_at, s.generation, s.sealed_state,
                     s.sealed_record]
        return sql, args

    def record_keys(self, account_id: str) -> list[str]:
        prefix = slot_prefix(account_id)
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT account_id FROM vault_records WHERE account_id = %s OR left(account_id, %s) = %s "
                "ORDER BY account_id", (account_id, len(prefix), prefix)).fetchall()
        return [str(r[0]) for r in rows]

    def unsigned_rows(self) -> list[RecordRow]:
        with self._connection() as conn:
            rows = conn.execute(
                f"SELECT {RecordRow.COLUMNS} FROM vault_records WHERE mac IS NULL").fetchall()
        return [r for r in map(RecordRow.from_db, rows) if r is not None]

    def purge_sessions(self, now: float) -> int:
        with self._connection() as conn:
            return conn.execute("DELETE FROM vault_sessions WHERE expires_at < %s", (now,)).rowcount

    def put_account(self, name: str, token_hash: bytes) -> None:
        with self._connection() as conn:
            conn.execute(
                "INSERT INTO vault_accounts VALUES (%s, %s) ON CONFLICT (name) "
                "DO UPDATE SET token_hash = EXCLUDED.token_hash", (name, token_hash))

    def account_for_token(self, token_hash: bytes) -> str | None:
        with self._connection() as conn:
            r = conn.execute(
                "SELECT name FROM vault_accounts WHERE token_hash = %s", (token_hash,)).fetchone()
        return r[0] if r else None

    def list_accounts(self) -> list[tuple[str, str | None, int]]:
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT n.name, r.state, COALESCE(r.used, 0) FROM (SELECT name FROM vault_accounts "
                "UNION SELECT account_id FROM vault_records) AS n "
                "LEFT JOIN vault_records AS r ON r.account_id = n.name ORDER BY n.name").fetchall()
        return [(str(n), None if s is None else str(s), int(u)) for n, s, u in rows]

    def delete_account(self, name: str) -> bool:
        with self._connection() as conn:
            with conn.transaction():
                conn.execute(_LOCK_SQL, (_LOCK_KEY + name,))
                n = 0
                n += conn.execute("DELETE FROM vault_accounts WHERE name = %s", (name,)).rowcount
                prefix = slot_prefix(name)
                for table in ("vault_records", "vault_sessions", "vault_heads"):
                    # The legacy record (key = the name) and every slot's (spec §2.2).
                    n += conn.execute(f"DELETE FROM {table} WHERE account_id = %s OR "
                                      "left(account_id, %s) = %s",
                                      (name, len(prefix), prefix)).rowcount
            self._check_synced(conn)
        return n > 0

    def get_head(self, account_id: str) -> tuple[int, bytes] | None:
        with self._connection() as conn:
            r = conn.execute(
                "SELECT counter, tag FROM vault_heads WHERE account_id = %s", (account_id,)).fetchone()
        return (int(r[0]), bytes(r[1])) if r else None

    def advance_head(self, account_id: str, counter: int, tag: bytes, *,
                     catch_up: bool = False) -> tuple[bool, int]:
        with self._connection() as conn:
            with conn.transaction():
                # The advisory lock also covers the first advance (no row to lock yet).
                conn.execute(_LOCK_SQL, (_HEAD_LOCK_KEY + account_id,))
                r = conn.execute("SELECT counter FROM vault_heads WHERE account_id = %s",
                                 (account_id,)).fetchone()
                current = int(r[0]) if r else 0
                if counter <= current if catch_up else counter != current + 1:
                    return False, current
                conn.execute(
                    "INSERT INTO vault_heads VALUES (%s, %s, %s) ON CONFLICT (account_id) "
                    "DO UPDATE SET counter = EXCLUDED.counter, tag = EXCLUDED.tag",
                    (account_id, counter, tag))
            self._check_synced(conn)
        return True, counter

    def close(self) -> None:
        self._pool.close()

    def __repr__(self) -> str:
        return "<PostgresStore>"


__all__ = ["PostgresStore"]
