"""A realistic chat-backup dataset, deterministic from a seed.

    python -m bench.dataset DIR [--size-mb 1000] [--seed 1]     # generate
    python -m bench.dataset DIR --grow                          # simulate one more day

Layout (proportions kept for any ``--size-mb``; at 1000 MB: ~500k messages in
250 chats, a ~100 MB database and ~900 MB of media)::

    Databases/msgstore.db          SQLite message store (10 %)
    Media/Images/IMG-*.jpg         photos 50 KB-3 MB, incompressible (40 %)
    Media/Video/VID-*.mp4          videos 1-20 MB, incompressible (40 %)
    Media/Voice Notes/PTT-*.opus   voice notes 5-200 KB, incompressible (5 %)
    Media/Documents/DOC-*.pdf      PDF-like documents, about half compressible (5 %)

``--grow`` adds 1 % new messages spread over the chats, marks scattered older
unread messages as read, and adds about 1 % new media files of each kind.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import content, msgstore
from strongroom.errors import UsageError

DB_PATH = "Databases/msgstore.db"
MEDIA_LAYOUT = {
    "photo": ("Media/Images", "IMG", ".jpg"),
    "video": ("Media/Video", "VID", ".mp4"),
    "voice": ("Media/Voice Notes", "PTT", ".opus"),
    "document": ("Media/Documents", "DOC", ".pdf"),
}
MEDIA_SHARE = {"photo": 0.40, "video": 0.40, "voice": 0.05, "document": 0.05}
MESSAGES_PER_MB = 500
CHATS_PER_MB = 0.25
END_MS = 1_735_689_600_000  # 2025-01-01T00:00Z: end of the generated history
SPAN_MS = 2 * 365 * 86_400_000
DAY_MS = 86_400_000
CORPUS_CHARS = 2_000_000
DAILY_GROWTH = 0.01  # +1 % messages and media per simulated day
READS_PER_NEW_MESSAGE = 0.06  # scattered read receipts on older rows, per new message


@dataclass(frozen=True)
class Summary:
    """What ``generate`` or ``grow`` did."""

    day: int
    messages: int
    new_messages: int
    read_updates: int
    media_files: int
    media_bytes: int
    db_bytes: int

    def to_json(self) -> dict[str, int]:
        """JSON-safe form."""
        return asdict(self)


@dataclass(frozen=True)
class _Media:
    media_id: int
    kind: str
    path: str
    size: int
    msg_id: int


def generate(root: Path, size_mb: float = 1000, seed: int = 1, media: bool = True) -> Summary:
    """Create the dataset for day 0 under *root* (which must not hold one yet).

    ``media=False``: the message store alone (about a tenth of *size_mb*), with
    no media rows, so :func:`grow` adds no media files either.
    """
    if size_mb < 1:
        raise UsageError(f"--size-mb must be at least 1, not {size_mb}")
    db_file = root / DB_PATH
    if db_file.exists():
        raise UsageError(f"{root} already holds a dataset", hint="use --grow, or choose an empty directory")
    n_msgs = max(100, round(size_mb * MESSAGES_PER_MB))
    n_chats = max(5, round(size_mb * CHATS_PER_MB))
    t0 = END_MS - SPAN_MS
    media_rng = random.Random(f"{seed}/media")
    plan = []
    for kind, share in (MEDIA_SHARE if media else {}).items():
        plan += _plan_kind(media_rng, kind, size_mb * share * 1e6)
    msg_ids = media_rng.sample(range(1, n_msgs + 1), len(plan))
    media = [_named(i + 1, kind, size, mid, t0, END_MS, 1, n_msgs)
             for i, ((kind, size), mid) in enumerate(zip(plan, msg_ids))]
    corpus = content.text_corpus(random.Random(f"{seed}/corpus"), CORPUS_CHARS)
    db_file.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(db_file, isolation_level=None)
    try:
        msgstore.create(db)  # executescript commits by itself: schema first
        db.execute("BEGIN")
        msgstore.add_chats(db, random.Random(f"{seed}/chats"), n_chats, t0)
        msgstore.add_media(db, [(m.media_id, m.kind, m.path, m.size, None) for m in media])
        maker = _maker(seed, corpus, n_chats, random.Random(f"{seed}/messages"))
        read_upto = END_MS - 3 * DAY_MS
        msgstore.insert_messages(db, maker.rows(1, n_msgs, t0, END_MS, {m.msg_id: m.media_id for m in media}, read_upto))
        msgstore.refresh_chats(db)
        msgstore.set_props(db, seed=seed, size_mb=size_mb, chats=n_chats, day=0, last_ts=END_MS)
        db.execute("COMMIT")
    finally:
        db.close()
    _write_media(root, media, seed, corpus)
    _stamp(root, media, day=0)
    return Summary(0, n_msgs, n_msgs, 0, len(media), sum(m.size for m in media), db_file.stat().st_size)


def grow(root: Path) -> Summary:
    """Simulate one more day on the dataset under *root*."""
    db_file = root / DB_PATH
    if not db_file.is_file():
        raise UsageError(f"{root} holds no dataset", hint="generate one first: python -m bench.dataset DIR")
    db = sqlite3.connect(db_file, isolation_level=None)
    try:
        seed, n_chats = int(msgstore.get_prop(db, "seed")), int(msgstore.get_prop(db, "chats"))
        day, last_ts = int(msgstore.get_prop(db, "day")) + 1, int(msgstore.get_prop(db, "last_ts"))
        rng = random.Random(f"{seed}/grow/{day}")
        count = db.execute("SELECT max(id) FROM messages").fetchone()[0]
        n_new = max(1, round(count * DAILY_GROWTH))
        media = _new_media(db, rng, count, n_new, last_ts)
        unread = msgstore.unread_ids(db, count)
        reads = sorted(rng.sample(unread, min(len(unread), round(n_new * READS_PER_NEW_MESSAGE))))
        corpus = content.text_corpus(random.Random(f"{seed}/corpus"), CORPUS_CHARS)
        maker = _maker(seed, corpus, n_chats, rng)
        db.execute("BEGIN")
        msgstore.add_media(db, [(m.media_id, m.kind, m.path, m.size, None) for m in media])
        rows = maker.rows(count + 1, n_new, last_ts, last_ts + DAY_MS, {m.msg_id: m.media_id for m in media},
                          last_ts + DAY_MS - 2 * 3_600_000)
        msgstore.insert_messages(db, rows)
        msgstore.mark_read(db, reads)
        msgstore.refresh_chats(db)
        msgstore.set_props(db, day=day, last_ts=last_ts + DAY_MS)
        db.execute("COMMIT")
    finally:
        db.close()
    _write_media(root, media, seed, corpus)
    _stamp(root, media, day=day)
    return Summary(day, count + n_new, n_new, len(reads), len(media), sum(m.size for m in media),
                   db_file.stat().st_size)


def _maker(seed: int, corpus: str, n_chats: int, rng: random.Random) -> msgstore.MessageMaker:
    weights = msgstore.chat_weights(random.Random(f"{seed}/weights"), n_chats)
    return msgstore.MessageMaker(rng, corpus, weights, random.Random(f"{seed}/members"))


def _plan_kind(rng: random.Random, kind: str, budget: float) -> list[tuple[str, int]]:
    lo = content.SIZE_RANGE[kind][0]
    sizes, total = [], 0
    while total < budget:
        left = budget - total
        if left < lo:
            # Less room than the smallest file: add one with odds that keep the expected
            # bytes right, so tiny datasets do not grow by a whole video a day.
            if rng.random() < left / lo:
                sizes.append((kind, lo))
            break
        size = min(content.sample_size(rng, kind), int(left))
        sizes.append((kind, size))
        total += size
    return sizes


def _named(media_id: int, kind: str, size: int, msg_id: int, t0: int, t1: int, first: int, n: int) -> _Media:
    # File names carry the (approximate) message date, as chat apps name them.
    ts = t0 + (t1 - t0) * (msg_id - first) // max(1, n)
    folder, prefix, ext = MEDIA_LAYOUT[kind]
    date = time.strftime("%Y%m%d", time.gmtime(ts / 1000))
    return _Media(media_id, kind, f"{folder}/{prefix}-{date}-WA{media_id:06d}{ext}", size, msg_id)


def _new_media(db: sqlite3.Connection, rng: random.Random, count: int, n_new: int, last_ts: int) -> list[_Media]:
    # About 1 % more media bytes of each kind: a few files, on distinct new messages.
    next_id = (db.execute("SELECT max(id) FROM media").fetchone()[0] or 0) + 1
    plan = []
    for kind, total in sorted(msgstore.media_bytes(db).items()):
        plan += _plan_kind(rng, kind, total * DAILY_GROWTH)
    msg_ids = rng.sample(range(count + 1, count + n_new + 1), min(n_new, len(plan)))
    return [_named(next_id + i, kind, size, mid, last_ts, last_ts + DAY_MS, count + 1, n_new)
            for i, ((kind, size), mid) in enumerate(zip(plan, msg_ids))]


def _write_media(root: Path, media: list[_Media], seed: int, corpus: str) -> None:
    for m in media:
        path = root / m.path
        path.parent.mkdir(parents=True, exist_ok=True)
        content.write_media(str(path), m.kind, m.size, seed, corpus)


def _stamp(root: Path, media: list[_Media], day: int) -> None:
    # Fixed mtimes keep the tree deterministic.  Only the files written now are
    # touched: utime changes ctime, which restic and borg take as "file changed".
    now = END_MS // 1000 + day * 86_400
    db = sqlite3.connect(root / DB_PATH)
    try:
        ids = ",".join(str(m.msg_id) for m in media)  # ints we made: no injection
        ts = dict(db.execute(f"SELECT id, timestamp FROM messages WHERE id IN ({ids})")) if media else {}
    finally:
        db.close()
    for m in media:
        os.utime(root / m.path, (ts[m.msg_id] // 1000, ts[m.msg_id] // 1000))
    os.utime(root / DB_PATH, (now, now))
    for dirpath, _dirs, _files in os.walk(root):
        os.utime(dirpath, (now, now))


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(prog="python -m bench.dataset", description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path, help="dataset directory")
    ap.add_argument("--size-mb", type=float, default=1000, help="total size in MB (default 1000)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--grow", action="store_true", help="simulate one more day on an existing dataset")
    args = ap.parse_args(argv)
    try:
        summary = grow(args.dir) if args.grow else generate(args.dir, args.size_mb, args.seed)
    except UsageError as exc:
        print(f"bench.dataset: error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"bench.dataset: hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(summary.to_json()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
