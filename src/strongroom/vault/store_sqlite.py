"""SQLite record store: the embedded default for one machine.

WAL journal with ``synchronous=FULL`` so a committed guess survives a power
cut; ``BEGIN IMMEDIATE`` takes the write lock at the start of every
transaction, so concurrent guesses (threads or processes) serialize and the
counter can never be read twice at the same value.  ``secure_delete`` and a
WAL checkpoint after an erase overwrite the bytes of an erased record.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from ..errors import UsageError, VaultStoreError
from .store import Fn, Mutation, RecordRow, RecordStore, SessionRow, slot_prefix

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    account_id TEXT PRIMARY KEY, state TEXT NOT NULL, used INTEGER NOT NULL,
    lim INTEGER NOT NULL, generation INTEGER NOT NULL, sealed BLOB, mac BLOB);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, expires_at REAL NOT NULL,
    generation INTEGER NOT NULL, sealed_state BLOB NOT NULL, sealed_record BLOB);
CREATE INDEX IF NOT EXISTS sessions_account ON sessions(account_id);
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions(expires_at);
CREATE TABLE IF NOT EXISTS accounts (name TEXT PRIMARY KEY, token_hash BLOB NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS heads (
    account_id TEXT PRIMARY KEY, counter INTEGER NOT NULL, tag BLOB NOT NULL);
"""


class SqliteStore(RecordStore):
    """Records in one SQLite file; one connection per thread."""

    local_reads = True  # WAL mode: a reader never waits for a writer

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 30000) -> None:
        self.path = str(path)
        self._busy = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            conn = self._conn()
            conn.executescript(_SCHEMA)
            columns = {r[1] for r in conn.execute("PRAGMA table_info(records)")}
            if "mac" not in columns:  # a database from before the row MAC (spec §5)
                conn.execute("ALTER TABLE records ADD COLUMN mac BLOB")
        except sqlite3.Error as exc:
            raise UsageError(f"cannot open the vault database {self.path}: {exc}") from exc

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={int(self._busy)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA secure_delete=ON")
            self._local.conn, self._local.durable = conn, True
            with self._lock:
                self._all.append(conn)
        return conn

    def get(self, account_id: str) -> RecordRow | None:
        try:
            r = self._conn().execute(
                f"SELECT {RecordRow.COLUMNS} FROM records WHERE account_id = ?",
                (account_id,)).fetchone()
        except sqlite3.Error as exc:
            raise VaultStoreError() from exc
        return RecordRow.from_db(r)

    def transact(self, account_id: str, fn: Fn, *, take_session: str | None = None,
                 durable: bool = True) -> Any:
        conn = self._conn()
        try:
            # FULL: the WAL is fsynced at this commit; NORMAL: at the next checkpoint.
            if getattr(self._local, "durable", None) is not durable:
                conn.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=NORMAL")
                self._local.durable = durable
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise VaultStoreError() from exc
        try:
            cur = self.get(account_id)
            sess = self._take(conn, take_session, account_id) if take_session else None
            m = fn(cur, sess)
            erased = self._apply(conn, account_id, cur, m)
            conn.execute("COMMIT")
        except BaseException as exc:
            _rollback(conn)
            if isinstance(exc, sqlite3.Error):
                raise VaultStoreError() from exc
            raise
        if erased:
            self._checkpoint(conn)
        return m.result

    @staticmethod
    def _take(conn: sqlite3.Connection, sid: str, account_id: str) -> SessionRow | None:
        r = conn.execute(
            "DELETE FROM sessions WHERE session_id = ? AND account_id = ? RETURNING session_id, "
            "account_id, expires_at, generation, sealed_state, sealed_record", (sid, account_id),
        ).fetchone()
        return SessionRow(*r) if r else None

    @staticmethod
    def _apply(conn: sqlite3.Connection, account_id: str, cur: RecordRow | None, m: Mutation) -> bool:
        erased = False
        if not m.keeps_row:
            if m.row is None:
                conn.execute("DELETE FROM records WHERE account_id = ?", (account_id,))
                erased = cur is not None and cur.sealed is not None
            else:
                w = m.row
                conn.execute(
                    f"INSERT OR REPLACE INTO records ({RecordRow.COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (account_id, w.state.value, w.used, w.limit, w.generation, w.sealed, w.mac))
                erased = cur is not None and cur.sealed is not None and w.sealed is None
        if m.drop_sessions:
            conn.execute("DELETE FROM sessions WHERE account_id = ?", (account_id,))
        if m.add_session is not None:
            s = m.add_session
            conn.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)",
                         (s.session_id, s.account_id, s.expires_at, s.generation,
                          s.sealed_state, s.sealed_record))
        return erased

    @staticmethod
    def _checkpoint(conn: sqlite3.Connection) -> None:
        # Move the erase into the main file and truncate the WAL, so the old
        # page does not linger in the log (secure_delete zeroes it in the file).
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass  # a busy checkpoint is retried by the next erase; the erase itself committed

    def record_keys(self, account_id: str) -> list[str]:
        prefix = slot_prefix(account_id)
        try:
            rows = self._conn().execute(
                "SELECT account_id FROM records WHERE account_id = ? OR substr(account_id, 1, ?) = ? "
                "ORDER BY account_id", (account_id, len(prefix), prefix)).fetchall()
        except sqlite3.Error as exc:
            raise VaultStoreError() from exc
        return [str(r[0]) for r in rows]

    def unsigned_rows(self) -> list[RecordRow]:
        try:
            rows = self._conn().execute(
                f"SELECT {RecordRow.COLUMNS} FROM records WHERE mac IS NULL").fetchall()
        except sqlite3.Error as exc:
            raise VaultStoreError() from exc
        return [r for r in map(RecordRow.from_db, rows) if r is not None]

    def purge_sessions(self, now: float) -> int:
        try:
            return self._conn().execute("DELETE FROM sessions WHERE expires_at < ?", (now,)).rowcount
        except sqlite3.Error as exc:
            raise VaultStoreError() from exc

    def put_account(self, name: str, token_hash: bytes) -> None:
        try:
            self._conn().execute("INSERT OR REPLACE INTO accounts VALUES (?, ?)", (name, token_hash))
        except sqlite3.Error as exc:
            raise VaultStoreError() from exc

    def account_for_token(self, token_hash: bytes) -> str | None:
        try:
            r = self._conn().execute(
                "SELECT name FROM accounts WHERE token_hash = ?", (token_hash,)).fetchone()
        except sqlite3.Error as exc:
            raise VaultStoreError() from exc
        return r[0] if r else None

    def list_accounts(self) -> list[tuple[str, str | None, int]]:
        try:
            rows = self._conn().execute(
                "SELECT n.name, r.state, COALESCE(r.used, 0) FROM (SELECT name FROM accounts "
                "UNION SELECT account_id FROM records) AS n "
                "LEFT JOIN records AS r ON r.account_id = n.name ORDER BY n.name").fetchall()
        except sqlite3.Error as exc:
            raise VaultStoreError() from exc
        return [(str(n), None if s is None else str(s), int(u)) for n, s, u in rows]

    def delete_account(self, name: str) -> bool:
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            n = 0
            n += conn.execute("DELETE FROM accounts WHERE name = ?", (name,)).rowcount
            prefix = slot_prefix(name)
            for table in ("records", "sessions", "heads"):
                # The account's legacy record (key = the name) and every slot's (spec §2.2).
                n += conn.execute(f"DELETE FROM {table} WHERE account_id = ? OR "
                                  "substr(account_id, 1, ?) = ?",
                                  (name, len(prefix), prefix)).rowcount
            conn.execute("COMMIT")
        except BaseException as exc:
            _rollback(conn)
            if isinstance(exc, sqlite3.Error):
                raise VaultStoreError() from exc
            raise
        self._checkpoint(conn)
        return n > 0

    def get_head(self, account_id: str) -> tuple[int, bytes] | None:
        try:
            r = self._conn().execute(
                "SELECT counter, tag FROM heads WHERE account_id = ?", (account_id,)).fetchone()
        except sqlite3.Error as exc:
            raise VaultStoreError() from exc
        return (int(r[0]), bytes(r[1])) if r else None

    def advance_head(self, account_id: str, counter: int, tag: bytes, *,
                     catch_up: bool = False) -> tuple[bool, int]:
        conn = self._conn()
        try:
            # A lost advance would look like a vault rollback to the device: always FULL.
            if getattr(self._local, "durable", None) is not True:
                conn.execute("PRAGMA synchronous=FULL")
                self._local.durable = True
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise VaultStoreError() from exc
        try:
            r = conn.execute("SELECT counter FROM heads WHERE account_id = ?",
                             (account_id,)).fetchone()
            current = int(r[0]) if r else 0
            if counter <= current if catch_up else counter != current + 1:
                conn.execute("ROLLBACK")
                return False, current
            conn.execute("INSERT OR REPLACE INTO heads VALUES (?, ?, ?)", (account_id, counter, tag))
            conn.execute("COMMIT")
        except BaseException as exc:
            _rollback(conn)
            if isinstance(exc, sqlite3.Error):
                raise VaultStoreError() from exc
            raise
        return True, counter

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for c in conns:
            c.close()
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"<SqliteStore {self.path}>"


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass


__all__ = ["SqliteStore"]
