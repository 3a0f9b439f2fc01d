"""The SQLite message store of the benchmark dataset (a chat app's ``msgstore.db``).

Rows are inserted in arrival order with the indexes already in place, as an app
writes them, so the B-trees have the partly-filled pages of a real database and a
day of new messages touches pages all over the index, not only at the end.
"""

from __future__ import annotations

import bisect
import itertools
import random
import sqlite3
from collections.abc import Iterator, Sequence

SCHEMA = """
CREATE TABLE props (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE chats (
    id INTEGER PRIMARY KEY,
    jid TEXT NOT NULL UNIQUE,
    subject TEXT,
    created INTEGER NOT NULL,
    last_message_id INTEGER,
    unread_count INTEGER NOT NULL DEFAULT 0,
    archived INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE media (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mime TEXT NOT NULL,
    duration_s INTEGER
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    chat_id INTEGER NOT NULL REFERENCES chats(id),
    sender TEXT NOT NULL,
    from_me INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    received_timestamp INTEGER,
    text TEXT,
    status INTEGER NOT NULL,
    read INTEGER NOT NULL,
    starred INTEGER NOT NULL DEFAULT 0,
    media_id INTEGER REFERENCES media(id),
    quoted_id INTEGER
);
CREATE INDEX messages_chat_ts ON messages(chat_id, timestamp);
CREATE INDEX messages_ts ON messages(timestamp);
CREATE INDEX messages_unread ON messages(chat_id, read);
CREATE INDEX messages_media ON messages(media_id) WHERE media_id IS NOT NULL;
CREATE INDEX messages_starred ON messages(chat_id) WHERE starred = 1;
"""

MIME = {
    "photo": "image/jpeg",
    "video": "video/mp4",
    "voice": "audio/ogg; codecs=opus",
    "document": "application/pdf",
}

# Message status as a chat app keeps it: 0 pending, 1 sent, 2 delivered, 3 read.
STATUS_READ = 3
_MSG_COLS = 12


def create(db: sqlite3.Connection) -> None:
    """Create the schema in an empty database."""
    db.executescript(SCHEMA)


def add_chats(db: sqlite3.Connection, rng: random.Random, n: int, start_ms: int) -> None:
    """Insert *n* chats (about one in five a group)."""
    rows = []
    for cid in range(1, n + 1):
        number = rng.randrange(10**11, 10**12)
        if rng.random() < 0.2:
            jid, subject = f"{number}-{cid}@g.us", f"{rng.choice(_TOPICS)} {cid}"
        else:
            jid, subject = f"{number}@s.whatsapp.net", None
        rows.append((cid, jid, subject, start_ms - rng.randrange(0, 10**10)))
    db.executemany("INSERT INTO chats (id, jid, subject, created) VALUES (?,?,?,?)", rows)


def chat_weights(rng: random.Random, n: int) -> list[float]:
    """Each chat's share of the traffic: Zipf-like, the k-th busiest chat gets 1/k."""
    weights = [1.0 / (k + 1) for k in range(n)]
    rng.shuffle(weights)
    return weights


_TOPICS = ("Family", "Work", "Friends", "Football club", "School parents", "Neighbours")


def add_media(db: sqlite3.Connection, items: Sequence[tuple[int, str, str, int, int | None]]) -> None:
    """Insert media rows: (id, kind, relative path, size, duration)."""
    db.executemany(
        "INSERT INTO media (id, kind, path, size, mime, duration_s) VALUES (?,?,?,?,?,?)",
        [(i, k, p, s, MIME[k], d) for i, k, p, s, d in items],
    )


class MessageMaker:
    """Produces message rows for a given set of chats, deterministic from its rng."""

    def __init__(self, rng: random.Random, corpus: str, weights: Sequence[float],
                 members_rng: random.Random) -> None:
        self._rng = rng
        self._corpus = corpus
        self._cum = list(itertools.accumulate(weights))
        self._me = f"{members_rng.randrange(10**11, 10**12)}@s.whatsapp.net"
        self._members = {
            cid: [f"{members_rng.randrange(10**11, 10**12)}@s.whatsapp.net" for _ in range(1 + cid % 7)]
            for cid in range(1, len(weights) + 1)
        }

    def rows(self, first_id: int, n: int, t0_ms: int, t1_ms: int, media: dict[int, int],
             read_upto_ms: int) -> Iterator[tuple[object, ...]]:
        """Yield *n* rows with ids from *first_id*, timestamps rising from *t0_ms* to *t1_ms*.

        *media* maps a message id to the media id it carries; messages older than
        *read_upto_ms* are read.
        """
        rng, corpus = self._rng, self._corpus
        step = max(1, (t1_ms - t0_ms) // max(1, n))
        ts = t0_ms
        top = self._cum[-1]
        span = len(corpus) - 2_000
        for mid in range(first_id, first_id + n):
            ts += rng.randrange(1, 2 * step)
            chat = bisect.bisect_left(self._cum, rng.random() * top) + 1
            from_me = rng.random() < 0.4
            sender = self._me if from_me else rng.choice(self._members[chat])
            length = int(rng.lognormvariate(3.9, 0.9))  # median ~50 chars, long tail
            start = rng.randrange(0, span)
            text = corpus[start : start + min(length, 1_900)] if length > 1 else None
            # A few old messages stay unread (muted groups): later read receipts change them.
            read = from_me or (ts < read_upto_ms and rng.random() > 0.03)
            status = STATUS_READ if read else rng.choice((1, 2))
            quoted = mid - rng.randrange(1, 50) if rng.random() < 0.05 and mid > 50 else None
            yield (mid, chat, sender, int(from_me), ts, ts + rng.randrange(50, 5_000), text, status,
                   int(read), int(rng.random() < 0.01), media.get(mid), quoted)


def insert_messages(db: sqlite3.Connection, rows: Iterator[tuple[object, ...]]) -> None:
    """Bulk-insert message rows (the caller holds the transaction)."""
    db.executemany(f"INSERT INTO messages VALUES ({','.join('?' * _MSG_COLS)})", rows)


def mark_read(db: sqlite3.Connection, ids: Sequence[int]) -> None:
    """Scattered read receipts: set status/read on existing rows."""
    db.executemany("UPDATE messages SET status = ?, read = 1 WHERE id = ?", [(STATUS_READ, i) for i in ids])


def refresh_chats(db: sqlite3.Connection) -> None:
    """Recompute each chat's last message and unread count, as the app does after a sync."""
    db.execute(
        "UPDATE chats SET last_message_id = (SELECT max(id) FROM messages m WHERE m.chat_id = chats.id),"
        " unread_count = (SELECT count(*) FROM messages m WHERE m.chat_id = chats.id AND m.read = 0)"
    )


def get_prop(db: sqlite3.Connection, key: str) -> str:
    """A value from the props table (KeyError if absent)."""
    row = db.execute("SELECT value FROM props WHERE key = ?", (key,)).fetchone()
    if row is None:
        raise KeyError(key)
    return str(row[0])


def set_props(db: sqlite3.Connection, **values: object) -> None:
    """Insert or replace values in the props table."""
    db.executemany("INSERT OR REPLACE INTO props VALUES (?, ?)", [(k, str(v)) for k, v in values.items()])


def unread_ids(db: sqlite3.Connection, max_id: int) -> list[int]:
    """Ids of unread messages up to *max_id*, ascending."""
    return [r[0] for r in db.execute("SELECT id FROM messages WHERE read = 0 AND id <= ? ORDER BY id", (max_id,))]


def media_bytes(db: sqlite3.Connection) -> dict[str, int]:
    """Total bytes of the media files of each kind."""
    return {k: n for k, n in db.execute("SELECT kind, sum(size) FROM media GROUP BY kind")}
