"""SQLite message stores: WhatsApp's decrypted Android ``msgstore.db`` and the benchmark's.

Recognised schemas (by their tables and columns, never by file name alone):

* WhatsApp (2022 on): ``message`` (``chat_row_id``, ``from_me``, ``sender_jid_row_id``,
  ``timestamp`` ms, ``message_type`` 7 = system, ``text_data``), ``chat`` (``jid_row_id``,
  ``subject``), ``jid`` (``user``, ``raw_string``), ``message_media`` (``message_row_id``,
  ``file_path``).
* WhatsApp legacy: ``messages`` (``key_remote_jid``, ``key_from_me``, ``data``,
  ``timestamp``, ``media_name``, ``remote_resource``).
* The benchmark dataset (bench/msgstore.py): ``chats``, ``messages`` (``chat_id``,
  ``sender``, ``from_me``, ``timestamp``, ``text``, ``media_id``), ``media`` (``path``).

The database is never written: bytes are deserialized into a private in-memory copy, a
path is opened with ``mode=ro&immutable=1``.  A broken, encrypted (``.crypt14``) or
unknown database is a warning, never an exception.  Times are UTC, ``...Z``.
"""

from __future__ import annotations

import functools
import posixpath
import re
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import quote

from .catalogue import CatalogueEntry
from .model import (
    KIND_BENCH_MSGSTORE,
    KIND_WHATSAPP_MSGSTORE,
    Chat,
    ChatParseWarning,
    Message,
    ParseResult,
)

Summary = tuple[tuple[CatalogueEntry, ...], tuple[ChatParseWarning, ...]]

SQLITE_MAGIC = b"SQLite format 3\x00"
ME = "me"  # the author of the phone owner's own messages

_WA_CHATS = ("SELECT c._id, c.subject, j.user, j.raw_string FROM chat c"
             " LEFT JOIN jid j ON j._id = c.jid_row_id")
#: A message's time formatted by SQLite where that is certain to equal :func:`iso_utc`
#: (an integer number of milliseconds from 1970 to the end of 9999; NULL otherwise, and
#: then Python formats it): half a million times cost 0.1 s instead of 1 s.
_SQL_TIME = ("CASE WHEN typeof({t}) = 'integer' AND {t} BETWEEN 0 AND 253402300799999"
             " THEN strftime('%Y-%m-%dT%H:%M:%SZ', {t} / 1000, 'unixepoch') END")
_WA_MESSAGES = ("SELECT m.chat_row_id, m.from_me, m.timestamp, "
                + _SQL_TIME.format(t="m.timestamp") + ", m.message_type, m.text_data,"
                " coalesce(s.user, s.raw_string), {media} FROM message m"
                " LEFT JOIN jid s ON s._id = m.sender_jid_row_id {join} {where}"
                " ORDER BY m.chat_row_id, m.timestamp, m._id")
_LEGACY = ("SELECT key_remote_jid, key_from_me, timestamp, " + _SQL_TIME.format(t="timestamp")
           + ", data, remote_resource, {media}"
           " FROM messages {where} ORDER BY key_remote_jid, timestamp, _id")
_BENCH_CHATS = "SELECT id, subject, jid FROM chats"
_BENCH_MESSAGES = ("SELECT m.chat_id, m.from_me, m.timestamp, "
                   + _SQL_TIME.format(t="m.timestamp") + ", m.text, m.sender, d.path"
                   " FROM messages m LEFT JOIN media d ON d.id = m.media_id {where}"
                   " ORDER BY m.chat_id, m.timestamp, m.id")


T = TypeVar("T")
_Work = Callable[[str, sqlite3.Connection], T]
_Fail = Callable[[str, str], T]
_DB_ERRORS = (sqlite3.Error, OverflowError, ValueError, MemoryError)


def _on_bytes(path: str, data: bytes, work: _Work[T], fail: _Fail[T]) -> T:
    if not data.startswith(SQLITE_MAGIC):
        return fail(path, "encrypted or not an SQLite database: not catalogued")
    if len(data) >= 100 and data[18:20] == b"\x02\x02":
        data = data[:18] + b"\x01\x01" + data[20:]  # WAL mode cannot be deserialized
    db = sqlite3.connect(":memory:")
    try:
        db.deserialize(data)
        return work(path, db)
    except _DB_ERRORS as exc:
        return fail(path, f"damaged SQLite database ({type(exc).__name__})")
    finally:
        db.close()


def _on_path(path: str, work: _Work[T], fail: _Fail[T], disk: str | None = None) -> T:
    disk = path if disk is None else disk
    try:
        with open(disk, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as exc:
        return fail(path, f"unreadable ({type(exc).__name__})")
    if head != SQLITE_MAGIC:
        return fail(path, "encrypted or not an SQLite database: not catalogued")
    try:
        db = sqlite3.connect(f"file:{quote(disk)}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as exc:
        return fail(path, f"cannot open SQLite database ({type(exc).__name__})")
    try:
        return work(path, db)
    except _DB_ERRORS as exc:
        return fail(path, f"damaged SQLite database ({type(exc).__name__})")
    finally:
        db.close()


def parse_bytes(path: str, data: bytes, *, chats: Collection[str] | None = None) -> ParseResult:
    """Parse a message store given as bytes (a private in-memory copy is queried).  With
    *chats*, only the chats of those names are built (the others may be left out)."""
    return _on_bytes(path, data, lambda p, db: _parse(p, db, chats), ParseResult.warning)


def parse_path(path: str) -> ParseResult:
    """Parse a message store on disk, opened read-only and immutable (never modified)."""
    return _on_path(path, _parse, ParseResult.warning)


def summarize_bytes(path: str, data: bytes) -> Summary:
    """The catalogue entries of a store, counted in SQL (no message is built): the same
    entries as ``CatalogueEntry.of`` each chat of :func:`parse_bytes`, much faster."""
    return _on_bytes(path, data, _summarize, _summary_warning)


def summarize_path(path: str, *, disk: str | None = None) -> Summary:
    """:func:`summarize_bytes` of a file on disk, opened read-only and immutable.  *disk*
    is where to open it when that differs from the *path* the entries name (backup names
    files by their snapshot path)."""
    return _on_path(path, _summarize, _summary_warning, disk)


def _columns(db: sqlite3.Connection) -> dict[str, set[str]]:
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: {r[1] for r in db.execute(f'PRAGMA table_info("{t}")')} for t in tables
            if '"' not in t}


def _schema(cols: dict[str, set[str]]) -> str | None:
    if {"chat_row_id", "text_data", "from_me"} <= cols.get("message", set()) and "chat" in cols:
        return "whatsapp"
    if {"key_remote_jid", "key_from_me", "data"} <= cols.get("messages", set()):
        return "legacy"
    if {"chat_id", "sender", "text", "media_id"} <= cols.get("messages", set()) and \
            "chats" in cols and "media" in cols:
        return "bench"
    return None


def _parse(path: str, db: sqlite3.Connection,
           wanted: Collection[str] | None = None) -> ParseResult:
    cols = _columns(db)
    root = _root(path)
    schema = _schema(cols)
    if schema == "whatsapp":
        return ParseResult(tuple(_whatsapp(db, path, root, cols, wanted)))
    if schema == "legacy":
        return ParseResult(tuple(_legacy(db, path, root, cols, wanted)))
    if schema == "bench":
        return ParseResult(tuple(_bench(db, path, root, wanted)))
    return ParseResult.warning(path, "SQLite database without a known message schema")


def _where(column: str, names: dict[object, str], wanted: Collection[str] | None
           ) -> tuple[str, list[object]]:
    """A WHERE clause keeping the chats named *wanted*, or none when that cannot be told
    from the chat table (a name of the ``chat N`` fallback form, or too many chats)."""
    if wanted is None:
        return "", []
    ids = [cid for cid, name in names.items() if name in wanted]
    if len(ids) > 500 or {names[c] for c in ids} != set(wanted):
        return "", []
    return f"WHERE {column} IN ({', '.join('?' * len(ids))})", ids


def _root(path: str) -> str:
    """The app folder media paths are relative to (the parent of ``Databases/``)."""
    folder = posixpath.dirname(path)
    return posixpath.dirname(folder) if posixpath.basename(folder) == "Databases" else folder


def iso_utc(ms: object) -> str:
    """Epoch milliseconds as ``YYYY-MM-DDTHH:MM:SSZ`` (out of range: the epoch)."""
    try:
        if not isinstance(ms, int | float | str):
            raise TypeError(type(ms).__name__)
        seconds = int(ms) // 1000
        if not _YEAR_1 <= seconds < _YEAR_10000:
            raise ValueError("out of range")
    except (TypeError, ValueError, OverflowError):
        return "1970-01-01T00:00:00Z"
    day, rest = divmod(seconds, 86_400)
    date = _DAYS.get(day)
    if date is None:  # a store's messages fall on few days: format each day once
        if len(_DAYS) > 100_000:
            _DAYS.clear()
        date = _DAYS[day] = time.strftime("%Y-%m-%d", time.gmtime(day * 86_400))
    hour, rest = divmod(rest, 3600)
    return f"{date}T{hour:02d}:{rest // 60:02d}:{rest % 60:02d}Z"


_DAYS: dict[int, str] = {}
_YEAR_1 = int(datetime(1000, 1, 1, tzinfo=UTC).timestamp())  # 4-digit years only
_YEAR_10000 = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()) + 1


@dataclass(frozen=True)
class _Source:
    """How one schema's messages are read: the query (``{where}`` to fill), its chat and
    time columns, the chat names, and the map from a result row to
    (chat, author, timestamp, SQL-formatted time, text, attachment)."""

    kind: str
    sql: str
    chat_col: str
    time_col: str
    names: dict[object, str]
    name_of: Callable[[object], str]
    rows: Callable[[Iterable[tuple[object, ...]]], Iterator[_Row]]


_Row = tuple[object, object, object, "str | None", object, object]


def _qualified(sql: str, schema: str) -> str:
    """*sql* reading the tables of the attached database *schema* (``main``: unchanged)."""
    return sql if schema == "main" else re.sub(r"\b(FROM|JOIN) (\w+)", rf"\1 {schema}.\2", sql)


def _source(db: sqlite3.Connection, schema: str, cols: dict[str, set[str]],
            schema_db: str = "main") -> _Source:
    q = functools.partial(_qualified, schema=schema_db)
    if schema == "whatsapp":
        full: dict[object, tuple[str, str | None]] = {}
        for cid, subject, user, raw in db.execute(q(_WA_CHATS)):
            full[cid] = (str(subject or user or raw or f"chat {cid}"), user or raw)
        media = {"file_path", "message_row_id"} <= cols.get("message_media", set())
        sql = q(_WA_MESSAGES.format(
            media="mm.file_path" if media else "NULL", where="{where}",
            join="LEFT JOIN message_media mm ON mm.message_row_id = m._id" if media else ""))

        def wa_rows(rows: Iterable[tuple[object, ...]]) -> Iterator[_Row]:
            for cid, fm, ts, t, mtype, text, sender, file in rows:
                yield (cid, None if mtype == 7 else (ME if fm else sender or full.get(cid, ("", None))[1]),
                       ts, t, text, file)  # type: ignore[misc]
        return _Source(KIND_WHATSAPP_MSGSTORE, sql, "m.chat_row_id", "m.timestamp",
                       {c: n for c, (n, _) in full.items()},
                       lambda cid: full.get(cid, (f"chat {cid}", None))[0], wa_rows)
    if schema == "legacy":
        legacy_media = "media_name" if "media_name" in cols["messages"] else "NULL"

        def legacy_rows(rows: Iterable[tuple[object, ...]]) -> Iterator[_Row]:
            for jid, fm, ts, t, text, res, file in rows:
                yield jid, ME if fm else (res or jid), ts, t, text, file  # type: ignore[misc]
        return _Source(KIND_WHATSAPP_MSGSTORE, q(_LEGACY.format(media=legacy_media, where="{where}")),
                       "key_remote_jid", "timestamp", {}, lambda jid: str(jid), legacy_rows)
    names: dict[object, str] = {cid: str(subject or jid)
                                for cid, subject, jid in db.execute(q(_BENCH_CHATS))}

    def bench_rows(rows: Iterable[tuple[object, ...]]) -> Iterator[_Row]:
        for cid, fm, ts, t, text, sender, file in rows:
            yield cid, ME if fm else sender, ts, t, text, file  # type: ignore[misc]
    return _Source(KIND_BENCH_MSGSTORE, q(_BENCH_MESSAGES.format(where="{where}")), "m.chat_id",
                   "m.timestamp", names, lambda cid: names.get(cid, f"chat {cid}"), bench_rows)


def _chats_of(db: sqlite3.Connection, path: str, root: str, src: _Source,
              wanted: Collection[str] | None, legacy: bool = False) -> Iterator[Chat]:
    where: str
    args: list[object]
    if legacy:
        where, args = ("", []) if wanted is None or len(wanted) > 500 else (
            f"WHERE key_remote_jid IN ({', '.join('?' * len(wanted))})", list(wanted))
    else:
        where, args = _where(src.chat_col, src.names, wanted)
    rows = src.rows(db.execute(src.sql.format(where=where), args))
    yield from _group(rows, path, root, src.kind, src.name_of)


def _whatsapp(db: sqlite3.Connection, path: str, root: str, cols: dict[str, set[str]],
              wanted: Collection[str] | None = None) -> Iterator[Chat]:
    yield from _chats_of(db, path, root, _source(db, "whatsapp", cols), wanted)


def _legacy(db: sqlite3.Connection, path: str, root: str, cols: dict[str, set[str]],
            wanted: Collection[str] | None = None) -> Iterator[Chat]:
    yield from _chats_of(db, path, root, _source(db, "legacy", cols), wanted, legacy=True)


def _bench(db: sqlite3.Connection, path: str, root: str,
           wanted: Collection[str] | None = None) -> Iterator[Chat]:
    yield from _chats_of(db, path, root, _source(db, "bench", {}), wanted)


def _group(rows: Iterable[tuple[object, object, object, str | None, object, object]], path: str,
           root: str, kind: str, name_of: Callable[[object], str]) -> Iterator[Chat]:
    current: object = object()
    messages: list[Message] = []
    files: set[str] = set()
    for cid, author, ts, t, text, file in rows:
        if cid != current:
            if messages:
                yield _chat(name_of(current), kind, path, files, messages)
            current, messages, files = cid, [], set()
        attachments = (str(file),) if file else ()
        if file and not str(file).startswith(("/", "..")):
            files.add(posixpath.join(root, str(file)))
        messages.append(Message(t or iso_utc(ts), None if author is None else str(author),
                                "" if text is None else str(text), attachments))
    if messages:
        yield _chat(name_of(current), kind, path, files, messages)


def _chat(name: str, kind: str, path: str, files: set[str], messages: list[Message]) -> Chat:
    return Chat(name, kind, tuple(sorted({path, *files})), tuple(messages))


def _summary_warning(path: str, message: str) -> Summary:
    return (), (ChatParseWarning(path, message),)


# Per chat: count and time range (a covering-index scan where the store has an index on
# (chat, time), as WhatsApp's and the benchmark's have), then the attachments driven from
# the media table, which is small, so no message row is joined to anything.
_SUMMARY_SQL = {
    "whatsapp": (("SELECT chat_row_id, count(*), min(timestamp), max(timestamp) FROM message"
                 " GROUP BY chat_row_id"),
                 ("SELECT m.chat_row_id, mm.file_path FROM message_media mm"
                 " CROSS JOIN message m ON m._id = mm.message_row_id"
                 " WHERE mm.file_path IS NOT NULL AND mm.file_path != ''")),
    "legacy": (("SELECT key_remote_jid, count(*), min(timestamp), max(timestamp)"
               " FROM messages GROUP BY key_remote_jid"),
               ("SELECT key_remote_jid, media_name FROM messages WHERE media_name IS NOT NULL"
               " AND media_name != ''")),
    "bench": (("SELECT chat_id, count(*), min(timestamp), max(timestamp) FROM messages"
              " GROUP BY chat_id"),
              ("SELECT m.chat_id, d.path FROM media d CROSS JOIN messages m ON m.media_id = d.id"
              " WHERE d.path IS NOT NULL AND d.path != ''")),
}
_NO_FILES = "SELECT NULL, NULL WHERE 0"


def _summarize(path: str, db: sqlite3.Connection) -> Summary:
    cols = _columns(db)
    schema = _schema(cols)
    if schema is None:
        return _summary_warning(path, "SQLite database without a known message schema")
    counts, files_sql = _SUMMARY_SQL[schema]
    if schema == "whatsapp":
        if not {"file_path", "message_row_id"} <= cols.get("message_media", set()):
            files_sql = _NO_FILES
        kind, names = KIND_WHATSAPP_MSGSTORE, _wa_names(db)
    elif schema == "legacy":
        if "media_name" not in cols["messages"]:
            files_sql = _NO_FILES
        kind, names = KIND_WHATSAPP_MSGSTORE, {}
    else:
        kind = KIND_BENCH_MSGSTORE
        names = {cid: str(subject or jid) for cid, subject, jid in db.execute(_BENCH_CHATS)}
    root = _root(path)
    files: dict[object, set[str]] = {}
    attached: dict[object, int] = {}
    for cid, file in db.execute(files_sql):
        attached[cid] = attached.get(cid, 0) + 1
        if not str(file).startswith(("/", "..")):
            files.setdefault(cid, set()).add(posixpath.join(root, str(file)))
    entries = [CatalogueEntry(names.get(cid, str(cid) if schema == "legacy" else f"chat {cid}"),
                              kind, n, iso_utc(lo), iso_utc(hi), attached.get(cid, 0),
                              tuple(sorted({path, *files.get(cid, ())})), path)
               for cid, n, lo, hi in db.execute(counts)]
    return tuple(entries), ()


def _wa_names(db: sqlite3.Connection) -> dict[object, str]:
    return {cid: str(subject or user or raw or f"chat {cid}")
            for cid, subject, user, raw in db.execute(_WA_CHATS)}


# -- what changed between two copies of a store ---------------------------------------------
#: Per chat name: the messages of the first and of the second copy whose (time, author)
#: differ between the copies, each list in chat order (see :func:`changed_messages`).
Changes = dict[str, tuple[list[Message], list[Message]]]


def changed_messages(path: str, before: bytes | Callable[[], bytes],
                     after: bytes | Callable[[], bytes]) -> Changes | None:
    """What differs between two copies of the message store *path*, found in SQL.

    A message's key is its (time, author).  The rows of the two copies are compared in
    SQL (with multiplicity); for each chat and second in which any row differs, all
    messages of that chat and second in each copy are returned, per chat name, in chat
    order.  Every other key has the same messages in both copies, so counting added and
    changed messages on these lists gives the counts of the whole chats, and a chat not in
    the result has the same messages in both.  None when this cannot be told cheaply and
    exactly (schemas unknown or not the same, chat or contact tables that differ, a time
    that is not integer milliseconds of years 1970-9999, a chat name used twice): the
    caller then compares whole chats.  *before* and *after* are the bytes, or functions
    giving them (each copy's bytes are then let go once SQLite holds its own copy).
    """
    db = sqlite3.connect(":memory:")
    try:
        for schema, data in (("main", before), ("b", after)):
            if schema != "main":
                db.execute(f"ATTACH ':memory:' AS {schema}")
            if not _deserialize(db, schema, data() if callable(data) else data):
                return None
        return _changed(db)
    except _DB_ERRORS:
        return None
    finally:
        db.close()


def _deserialize(db: sqlite3.Connection, schema: str, data: bytes) -> bool:
    if not data.startswith(SQLITE_MAGIC):
        return False
    if len(data) >= 100 and data[18:20] == b"\x02\x02":
        data = data[:18] + b"\x01\x01" + data[20:]  # WAL mode cannot be deserialized
    db.deserialize(data, name=schema)
    return True


def _columns_of(db: sqlite3.Connection, schema: str) -> dict[str, set[str]]:
    tables = [r[0] for r in db.execute(f"SELECT name FROM {schema}.sqlite_master"
                                       " WHERE type = 'table'")]
    return {t: {r[1] for r in db.execute(f'PRAGMA {schema}.table_info("{t}")')} for t in tables
            if '"' not in t}


#: Per schema: where chat names (and, for WhatsApp, a chat's default author) come from
#: besides the message rows.
_NAMES_SQL = {"whatsapp": _WA_CHATS, "legacy": None, "bench": _BENCH_CHATS}


@dataclass(frozen=True)
class _RowsOf:
    """What a message's fields are made of: its table, integer primary key, chat and time
    columns, the other columns read, and the rows of other tables joined to it
    (table, their key, their columns read, the message column referring to them)."""

    table: str
    pk: str
    chat: str
    time: str
    columns: tuple[str, ...]
    joined: tuple[tuple[str, str, tuple[str, ...], str], ...] = ()


_ROWS_OF = {
    "bench": _RowsOf("messages", "id", "chat_id", "timestamp",
                     ("from_me", "text", "sender", "media_id"),
                     (("media", "id", ("path",), "media_id"),)),
    "whatsapp": _RowsOf("message", "_id", "chat_row_id", "timestamp",
                        ("from_me", "message_type", "text_data", "sender_jid_row_id"),
                        (("jid", "_id", ("user", "raw_string"), "sender_jid_row_id"),
                         ("message_media", "message_row_id", ("file_path",), "_id"))),
    "legacy": _RowsOf("messages", "_id", "key_remote_jid", "timestamp",
                      ("key_from_me", "data", "remote_resource", "media_name")),
}


def _changed(db: sqlite3.Connection) -> Changes | None:
    cols = _columns_of(db, "main")
    schema = _schema(cols)
    if schema is None or _columns_of(db, "b") != cols:
        return None
    names_sql = _NAMES_SQL[schema]
    if names_sql is not None and _differ(db, names_sql, _qualified(names_sql, "b")):
        return None
    src_a, src_b = _source(db, schema, cols), _source(db, schema, cols, "b")
    if _qualified(src_a.sql, "b") != src_b.sql:
        return None
    spec = _ROWS_OF[schema]
    pk = [r for r in db.execute(f'PRAGMA main.table_info("{spec.table}")') if r[5]]
    if len(pk) != 1 or pk[0][1] != spec.pk or str(pk[0][2]).upper() != "INTEGER":
        return None  # the comparison pairs rows by a unique integer key
    t, chat, ts = spec.table, spec.chat, spec.time
    for s in ("main", "b"):  # every time formatted by SQLite: a second is then one key time
        if db.execute(f"SELECT 1 FROM {s}.{t} WHERE typeof({ts}) != 'integer' OR"
                      f" {ts} NOT BETWEEN 0 AND 253402300799999 LIMIT 1").fetchone():
            return None
    names = list(src_a.names.values())
    if len(set(names)) != len(names):
        return None  # a name used twice: the caller matches such chats by their entries
    # The (chat, second) of every message row that is not in the other copy as it is, and
    # of every message whose joined row (media, sender) is not: all other messages are
    # the same in both copies.
    keys: set[tuple[object, int]] = set()
    read = [c for c in (chat, ts, *spec.columns) if c in cols[t]]
    same = " AND ".join(f"x.{c} IS y.{c}" for c in read)
    for x, y in (("main", "b"), ("b", "main")):
        keys.update(db.execute(f"SELECT x.{chat}, x.{ts} / 1000 FROM {x}.{t} x LEFT JOIN {y}.{t} y"
                               f" ON y.{spec.pk} = x.{spec.pk} WHERE y.{spec.pk} IS NULL OR NOT"
                               f" ({same})"))
    for table, key, values, ref in spec.joined:
        if table not in cols or ref not in cols[t] or not {key, *values} <= cols[table]:
            continue
        fields = ", ".join((key, *values))
        counted = f"SELECT {fields}, count(*) FROM {{}}.{table} GROUP BY {fields}"
        changed = (f"SELECT {key} FROM ({counted.format('main')} EXCEPT {counted.format('b')})"
                   f" UNION SELECT {key} FROM ({counted.format('b')} EXCEPT "
                   f"{counted.format('main')})")
        for s in ("main", "b"):
            keys.update(db.execute(f"SELECT {chat}, {ts} / 1000 FROM {s}.{t}"
                                   f" WHERE {ref} IN ({changed})"))
    if not keys:
        return {}
    by_name: dict[str, object] = {}
    for cid in {c for c, _ in keys} | set(src_a.names):
        if by_name.setdefault(src_a.name_of(cid), cid) != cid:
            return None
    db.execute("CREATE TEMP TABLE sr_keys (cid, sec, PRIMARY KEY (cid, sec)) WITHOUT ROWID")
    db.executemany("INSERT INTO temp.sr_keys VALUES (?, ?)", keys)
    where = (f"WHERE ({src_a.chat_col}, {src_a.time_col} / 1000) IN"
             " (SELECT cid, sec FROM temp.sr_keys)")
    out: Changes = {}
    for side, src in enumerate((src_a, src_b)):
        for cid, author, stamp, when, text, file in src.rows(
                db.execute(src.sql.format(where=where))):
            msg = Message(when or iso_utc(stamp), None if author is None else str(author),
                          "" if text is None else str(text), (str(file),) if file else ())
            out.setdefault(src_a.name_of(cid), ([], []))[side].append(msg)
    return out


def _differ(db: sqlite3.Connection, a: str, b: str) -> bool:
    return db.execute(f"SELECT 1 FROM ({a} EXCEPT {b}) UNION ALL SELECT 1 FROM ({b} EXCEPT {a})"
                      " LIMIT 1").fetchone() is not None


# -- searching a store ----------------------------------------------------------------------
#: Per chat name: (position in the chat, message) of each message that matched, in order.
Found = dict[str, list[tuple[int, Message]]]


def search_bytes(path: str, data: bytes | Callable[[], bytes], text: str) -> Found | None:
    """The messages of the store *path* whose text or attachment name contains *text*
    (Unicode case folding, as :func:`strongroom.chats.search.search`), with their
    positions in their chats as :func:`parse_bytes` numbers them.  Only matching messages
    are built: the match runs inside the query.  None if the store cannot be searched so
    (then parse it whole); a store without a known schema has no matches."""
    needle = text.casefold()

    def match(body: object, file: object) -> int:
        return int(needle in ("" if body is None else str(body)).casefold()
                   or bool(file) and needle in str(file).casefold())

    db = sqlite3.connect(":memory:")
    try:
        if not _deserialize(db, "main", data() if callable(data) else data):
            return None
        cols = _columns(db)
        schema = _schema(cols)
        if schema is None:
            return None
        src = _source(db, schema, cols)
        head, _, order = src.sql.format(where="").partition(" ORDER BY ")
        if not head.startswith("SELECT ") or not order:
            return None
        db.create_function("sr_match", 2, match, deterministic=True)
        body, file = _TEXT_AND_FILE[schema](cols)
        columns, _, tables = head[len("SELECT "):].partition(" FROM ")
        pk = src.chat_col.rpartition(".")[0] + "." * ("." in src.chat_col) + _ROWS_OF[schema].pk
        one, = db.execute(f"SELECT count(*) = count(DISTINCT {pk}) FROM {tables}").fetchone()
        if not one:
            return None  # a message joined to two rows: positions cannot be told by its key
        # The text is matched inside the query, so only matching messages come out; their
        # positions from a narrow window over the message table alone (the same order,
        # and no message is joined to two rows).
        alias = src.chat_col.rpartition(".")[0]
        rows = db.execute(f"SELECT {pk}, {columns} FROM {tables}"
                          f" WHERE sr_match({body}, {file})").fetchall()
        db.execute("CREATE TEMP TABLE sr_hits (pk INTEGER PRIMARY KEY)")
        db.executemany("INSERT INTO temp.sr_hits VALUES (?)", ((r[0],) for r in rows))
        position = dict(db.execute(
            f"SELECT * FROM (SELECT {pk} AS sr_pk, row_number() OVER (PARTITION BY"
            f" {src.chat_col} ORDER BY {order}) - 1 FROM {_ROWS_OF[schema].table} {alias})"
            " WHERE sr_pk IN (SELECT pk FROM temp.sr_hits)"))
        out: Found = {}
        for (cid, author, stamp, when, txt, att), row in zip(src.rows(r[1:] for r in rows), rows,
                                                              strict=True):
            msg = Message(when or iso_utc(stamp), None if author is None else str(author),
                          "" if txt is None else str(txt), (str(att),) if att else ())
            out.setdefault(src.name_of(cid), []).append((int(position[row[0]]), msg))
        for hits in out.values():
            hits.sort(key=lambda h: h[0])
        return out
    except _DB_ERRORS:
        return None
    finally:
        db.close()


_TEXT_AND_FILE: dict[str, Callable[[dict[str, set[str]]], tuple[str, str]]] = {
    "whatsapp": lambda cols: ("m.text_data", "mm.file_path" if {"file_path", "message_row_id"}
                              <= cols.get("message_media", set()) else "NULL"),
    "legacy": lambda cols: ("data", "media_name" if "media_name" in cols["messages"] else "NULL"),
    "bench": lambda cols: ("m.text", "d.path"),
}
