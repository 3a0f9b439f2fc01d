"""SQLite message stores: WhatsApp's current schema, the benchmark's, broken files."""

from __future__ import annotations

import hashlib
import random
import sqlite3
from pathlib import Path

import pytest
from chats_samples import whatsapp_msgstore

from bench import msgstore as bench_msgstore
from strongroom.chats import CatalogueEntry
from strongroom.chats.msgstore import (
    iso_utc,
    parse_bytes,
    parse_path,
    summarize_bytes,
    summarize_path,
)


def test_whatsapp_current_schema(tmp_path: Path) -> None:
    (tmp_path / "Databases").mkdir()
    db = whatsapp_msgstore(tmp_path / "Databases" / "msgstore.db")
    path = str(db)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    for result in (parse_path(path), parse_bytes(path, db.read_bytes())):
        assert result.warnings == ()
        one, group = result.chats
        assert one.name == "491701234567" and one.kind == "whatsapp-msgstore"
        assert [(m.time, m.author, m.text) for m in one.messages] == [
            ("2024-01-01T10:00:00Z", "491701234567", "Hallo"),
            ("2024-01-01T10:01:00Z", "me", "Hi!\nWie geht's?"),
            ("2024-01-01T10:02:00Z", "491701234567", "caption")]
        assert one.messages[2].attachments == ("Media/WhatsApp Images/IMG-20240101-WA0000.jpg",)
        assert one.sources == (f"{tmp_path}/Databases/msgstore.db",
                               f"{tmp_path}/Media/WhatsApp Images/IMG-20240101-WA0000.jpg")
        assert group.name == "Climbing club"
        assert [(m.author, m.text) for m in group.messages] == [
            (None, ""), ("491705555555", "Saturday 9:00?")]
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert not (tmp_path / "Databases" / "msgstore.db-journal").exists()


def test_benchmark_schema(tmp_path: Path) -> None:
    (tmp_path / "Databases").mkdir()
    path = tmp_path / "Databases" / "msgstore.db"
    db = sqlite3.connect(path)
    bench_msgstore.create(db)
    rng = random.Random(5)
    bench_msgstore.add_chats(db, rng, 3, 1_700_000_000_000)
    bench_msgstore.add_media(db, [(1, "photo", "Media/Images/IMG-1.jpg", 10, None)])
    maker = bench_msgstore.MessageMaker(random.Random(6), "lorem ipsum dolor " * 200,
                                        bench_msgstore.chat_weights(rng, 3), random.Random(7))
    with db:
        bench_msgstore.insert_messages(db, maker.rows(1, 40, 1_700_000_000_000,
                                                      1_700_000_600_000, {3: 1}, 0))
    db.close()
    result = parse_path(str(path))
    assert result.warnings == ()
    assert sum(c.message_count for c in result.chats) == 40
    assert {c.kind for c in result.chats} == {"msgstore"}
    assert sum(c.attachment_count for c in result.chats) == 1
    (with_media,) = [c for c in result.chats if c.attachment_count]
    assert f"{tmp_path}/Media/Images/IMG-1.jpg" in with_media.sources
    assert all(m.time.endswith("Z") for c in result.chats for m in c.messages)


def test_wal_mode_database_from_bytes(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "wal.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE chats (id INTEGER PRIMARY KEY, jid TEXT, subject TEXT)")
    db.execute("CREATE TABLE media (id INTEGER PRIMARY KEY, path TEXT)")
    db.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, chat_id INTEGER, sender TEXT,"
               " from_me INTEGER, timestamp INTEGER, text TEXT, media_id INTEGER)")
    db.execute("INSERT INTO messages VALUES (1, 1, 'x@s', 0, 0, 'hi', NULL)")
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = (tmp_path / "wal.db").read_bytes()
    db.close()
    assert data[18:20] == b"\x02\x02"
    (chat,) = parse_bytes("wal.db", data).chats
    assert chat.messages[0].text == "hi" and chat.name == "chat 1"


def test_legacy_whatsapp_schema() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE messages (_id INTEGER PRIMARY KEY, key_remote_jid TEXT, key_from_me"
               " INTEGER, key_id TEXT, data TEXT, timestamp INTEGER, media_name TEXT,"
               " remote_resource TEXT)")
    db.execute("INSERT INTO messages VALUES (1, '4917@s.whatsapp.net', 1, 'a', 'yo', 0, NULL, NULL)")
    (chat,) = parse_bytes("msgstore.db", db.serialize()).chats
    assert chat.messages[0].author == "me" and chat.messages[0].time == "1970-01-01T00:00:00Z"


@pytest.mark.parametrize(("data", "why"), [
    (b"", "not an SQLite database"),
    (b"\x00\x01" * 500, "not an SQLite database"),        # what a .crypt14 looks like to us
    (b"SQLite format 3\x00" + b"\xff" * 200, "damaged"),
])
def test_broken_or_encrypted_is_a_warning(data: bytes, why: str, tmp_path: Path) -> None:
    file = tmp_path / "msgstore.db"
    file.write_bytes(data)
    for result in (parse_bytes("msgstore.db", data), parse_path(str(file))):
        assert result.chats == ()
        assert why in result.warnings[0].message


def test_truncated_database_is_a_warning(tmp_path: Path) -> None:
    db = whatsapp_msgstore(tmp_path / "msgstore.db")
    data = db.read_bytes()[:4096 + 100]
    result = parse_bytes("msgstore.db", data)
    assert result.chats == () and result.warnings[0].path == "msgstore.db"


def test_unknown_schema_is_a_warning() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE notes (id INTEGER, body TEXT)")
    result = parse_bytes("msgstore.db", db.serialize())
    assert "known message schema" in result.warnings[0].message


def test_missing_file_is_a_warning(tmp_path: Path) -> None:
    assert "unreadable" in parse_path(str(tmp_path / "nope.db")).warnings[0].message


def test_iso_utc_out_of_range_is_the_epoch() -> None:
    assert iso_utc(10**30) == "1970-01-01T00:00:00Z"
    assert iso_utc(b"x") == "1970-01-01T00:00:00Z"
    assert iso_utc(1_704_103_200_123) == "2024-01-01T10:00:00Z"
    assert iso_utc(-1_000) == "1969-12-31T23:59:59Z"
    assert iso_utc("253402300799000") == "9999-12-31T23:59:59Z"
    assert iso_utc(253402300800000) == "1970-01-01T00:00:00Z"
    assert iso_utc(-30610224000000) == "1000-01-01T00:00:00Z"  # 4-digit years only
    assert iso_utc(-30610224001000) == "1970-01-01T00:00:00Z"
    assert iso_utc(86_400_000 * 3 + 3_723_000) == "1970-01-04T01:02:03Z"


def _same_summary(path: Path) -> None:
    chats = parse_path(str(path)).chats
    full = [CatalogueEntry.of(c, str(path)) for c in chats]
    assert full
    data = path.read_bytes()
    for chat in chats:  # asking for one chat gives that chat, and nothing else is needed
        assert chat in parse_bytes(str(path), data, chats={chat.name}).chats
    assert parse_bytes(str(path), data, chats={"no such chat"}).chats in ((), chats)
    for entries, warnings in (summarize_path(str(path)), summarize_bytes(str(path), path.read_bytes())):
        assert warnings == ()
        assert sorted(entries, key=repr) == sorted(full, key=repr)


def test_sql_summary_equals_the_full_parse(tmp_path: Path) -> None:
    (tmp_path / "Databases").mkdir()
    _same_summary(whatsapp_msgstore(tmp_path / "Databases" / "msgstore.db"))
    bench = tmp_path / "bench.db"
    db = sqlite3.connect(bench)
    bench_msgstore.create(db)
    rng = random.Random(8)
    bench_msgstore.add_chats(db, rng, 4, 1_700_000_000_000)
    bench_msgstore.add_media(db, [(1, "photo", "Media/Images/IMG-1.jpg", 10, None),
                                  (2, "voice", "Media/Voice Notes/PTT-2.opus", 10, 3)])
    maker = bench_msgstore.MessageMaker(random.Random(9), "lorem ipsum " * 300,
                                        bench_msgstore.chat_weights(rng, 4), random.Random(10))
    with db:
        bench_msgstore.insert_messages(db, maker.rows(1, 60, 1_700_000_000_000,
                                                      1_700_000_900_000, {3: 1, 9: 2}, 0))
    db.close()
    _same_summary(bench)
    legacy = tmp_path / "legacy.db"
    db = sqlite3.connect(legacy)
    db.execute("CREATE TABLE messages (_id INTEGER PRIMARY KEY, key_remote_jid TEXT, key_from_me"
               " INTEGER, data TEXT, timestamp INTEGER, media_name TEXT, remote_resource TEXT)")
    db.executemany("INSERT INTO messages VALUES (?,?,?,?,?,?,?)", [
        (1, "a@s", 0, "x", 5_000, None, None), (2, "a@s", 1, "y", 9_000, "IMG.jpg", None),
        (3, "b@g.us", 0, "z", 7_000, "", "c@s")])
    db.commit()
    db.close()
    _same_summary(legacy)


def test_sql_summary_of_broken_data_is_a_warning(tmp_path: Path) -> None:
    assert summarize_bytes("m.db", b"\x00" * 64)[1][0].path == "m.db"
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE notes (id INTEGER)")
    entries, warnings = summarize_bytes("m.db", db.serialize())
    assert entries == () and "known message schema" in warnings[0].message
    assert "unreadable" in summarize_path(str(tmp_path / "none.db"))[1][0].message
