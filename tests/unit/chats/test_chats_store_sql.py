"""A message store answered in SQL: per-chat changes (``changed_messages``) count exactly what
comparing the whole chats counts, declining (None) where that could not be exact; a search
(``search_bytes``) finds what searching the whole parsed chats finds."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from chats_samples import whatsapp_msgstore
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import msgstore as bench_msgstore
from strongroom.chats.msgstore import changed_messages, parse_bytes, search_bytes
from strongroom.chats.search import search
from strongroom.repo.chatcat import _compare

PATH = "phone/Databases/msgstore.db"


def _whole(before: bytes, after: bytes) -> dict[str, tuple[int, int]]:
    a = {c.name: c for c in parse_bytes(PATH, before).chats}
    b = {c.name: c for c in parse_bytes(PATH, after).chats}
    return {n: _compare(a[n].messages, b[n].messages) for n in sorted(set(a) & set(b))}


def _fast(before: bytes, after: bytes) -> dict[str, tuple[int, int]]:
    found = changed_messages(PATH, before, lambda: after)  # bytes, or a function giving them
    assert found is not None
    names = {c.name for c in parse_bytes(PATH, before).chats} & \
        {c.name for c in parse_bytes(PATH, after).chats}
    return {n: _compare(*found.get(n, ([], []))) for n in sorted(names)}


def _edited(data: bytes, *sql: str) -> bytes:
    db = sqlite3.connect(":memory:")
    db.deserialize(data)
    for statement in sql:
        db.execute(statement)
    db.commit()
    out = db.serialize()
    db.close()
    return out


_INSERT = ("INSERT INTO message (_id, chat_row_id, from_me, key_id, sender_jid_row_id, timestamp,"
           " message_type, text_data) VALUES ")


@pytest.fixture
def wa(tmp_path: Path) -> bytes:
    return whatsapp_msgstore(tmp_path / "msgstore.db").read_bytes()


def test_unchanged_store_has_no_changes(wa: bytes) -> None:
    assert changed_messages(PATH, wa, wa) == {}


@pytest.mark.parametrize("sql", [
    # a new message, one at the same second as another by someone else, one duplicated
    [_INSERT + "(6, 2, 1, 'k6', 0, 1704103202000, 0, 'me too')",
     _INSERT + "(7, 2, 0, 'k7', 3, 1704103202500, 0, 'Saturday 9:00?')"],
    ["UPDATE message SET text_data = 'Hallo!' WHERE _id = 1"],              # an edited text
    ["DELETE FROM message WHERE _id = 2"],                                    # a deleted one
    ["UPDATE message_media SET file_path = 'Media/x.jpg' WHERE message_row_id = 3"],  # media
    ["UPDATE jid SET user = '4900' WHERE _id = 3"],                          # a sender's number
    ["UPDATE message SET timestamp = timestamp + 400 WHERE _id = 5"],        # same second
    ["UPDATE message SET timestamp = timestamp + 5000 WHERE _id = 5"],       # another second
])
def test_whatsapp_store_changes_count_as_whole_chats_do(wa: bytes, sql: list[str]) -> None:
    after = _edited(wa, *sql)
    assert _fast(wa, after) == _whole(wa, after)


def test_only_the_changed_seconds_are_built(wa: bytes) -> None:
    after = _edited(wa, "UPDATE message SET text_data = 'Hallo!' WHERE _id = 1")
    found = changed_messages(PATH, wa, after)
    assert found is not None
    assert list(found) == ["491701234567"]
    before_msgs, after_msgs = found["491701234567"]
    assert [m.text for m in before_msgs] == ["Hallo"] and [m.text for m in after_msgs] == ["Hallo!"]


@pytest.mark.parametrize("sql", [
    ["UPDATE chat SET subject = 'Climbers' WHERE _id = 2"],                 # a chat renamed
    ["UPDATE message SET timestamp = 1.5 WHERE _id = 4"],                    # not integer ms
    ["UPDATE message SET timestamp = -5 WHERE _id = 4"],                     # before 1970
    ["ALTER TABLE message ADD COLUMN extra INTEGER"],                        # another schema
])
def test_declines_where_it_could_not_be_exact(wa: bytes, sql: list[str]) -> None:
    assert changed_messages(PATH, wa, _edited(wa, *sql)) is None


def test_declines_a_store_with_a_chat_name_used_twice(wa: bytes) -> None:
    before = _edited(wa, "UPDATE chat SET subject = '491701234567' WHERE _id = 2")
    after = _edited(before, "UPDATE message SET text_data = 'Hallo!' WHERE _id = 1")
    assert changed_messages(PATH, before, after) is None


def test_declines_what_is_no_database(wa: bytes) -> None:
    assert changed_messages(PATH, wa, b"\x00" * 200) is None
    assert changed_messages(PATH, b"SQLite format 3\x00" + b"\xff" * 200, wa) is None


def _bench_store(messages: int = 80) -> bytes:
    db = sqlite3.connect(":memory:")
    bench_msgstore.create(db)
    rng = random.Random(8)
    bench_msgstore.add_chats(db, rng, 4, 1_700_000_000_000)
    bench_msgstore.add_media(db, [(1, "photo", "Media/Images/IMG-1.jpg", 10, None),
                                  (2, "voice", "Media/Voice Notes/PTT-2.opus", 10, 3)])
    maker = bench_msgstore.MessageMaker(random.Random(9), "lorem ipsum " * 300,
                                        bench_msgstore.chat_weights(rng, 4), random.Random(10))
    with db:
        bench_msgstore.insert_messages(db, maker.rows(1, messages, 1_700_000_000_000,
                                                      1_700_000_090_000, {3: 1, 9: 2}, 0))
    out = db.serialize()
    db.close()
    return out


BENCH = _bench_store()
_EDITS: list[Callable[[int, int], str]] = [
    lambda i, v: f"UPDATE messages SET text = 'edited {v}' WHERE id = {i}",
    lambda i, v: f"UPDATE messages SET timestamp = timestamp + {v * 97} WHERE id = {i}",
    lambda i, v: f"DELETE FROM messages WHERE id = {i}",
    lambda i, v: (f"INSERT INTO messages (chat_id, sender, from_me, timestamp, text, status, read,"
                  f" media_id) SELECT chat_id, sender, from_me, timestamp, text, status, read,"
                  f" media_id FROM messages WHERE id = {i}"),  # an exact duplicate
    lambda i, v: f"UPDATE messages SET media_id = {v % 3 or 'NULL'} WHERE id = {i}",
    lambda i, v: f"UPDATE messages SET read = 1 - read WHERE id = {i}",  # not a message field
    lambda i, v: f"UPDATE media SET path = 'Media/Images/IMG-{v}.jpg' WHERE id = 1",
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_EDITS) - 1), st.integers(1, 80),
                          st.integers(0, 50)), max_size=6))
def test_bench_store_changes_count_as_whole_chats_do(edits: list[tuple[int, int, int]]) -> None:
    after = _edited(BENCH, *(_EDITS[k](i, v) for k, i, v in edits))
    assert _fast(BENCH, after) == _whole(BENCH, after)


def _searched(data: bytes, text: str) -> list[tuple[str, int, object]]:
    found = search_bytes(PATH, data, text)
    assert found is not None
    order = [c.name for c in parse_bytes(PATH, data).chats]
    return [(name, i, m) for name in order for i, m in found.get(name, [])]


@pytest.mark.parametrize("text", ["hallo", "HI!", "9:00", "img-2024", "Wie geht", "zzz", "\n"])
def test_a_search_in_sql_finds_what_the_whole_chats_give(wa: bytes, text: str) -> None:
    for data in (wa, _edited(wa, "UPDATE message SET text_data = 'STRASSE' WHERE _id = 1"), BENCH):
        whole = [(h.chat.name, h.index, h.message)
                 for h in search(parse_bytes(PATH, data).chats, text)]
        assert _searched(data, text) == whole


def test_a_search_folds_case_as_python_does(wa: bytes) -> None:
    data = _edited(wa, "UPDATE message SET text_data = 'Große Straße' WHERE _id = 2")
    assert [m.text for _, _, m in _searched(data, "STRASSE")] == ["Große Straße"]


def test_a_search_declines_what_is_no_database() -> None:
    assert search_bytes(PATH, b"\x00" * 300, "x") is None
