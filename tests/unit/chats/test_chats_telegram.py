"""Telegram Desktop JSON: a single chat's result.json and a full-account export."""

from __future__ import annotations

import json

import pytest
from chats_samples import telegram_account, telegram_chat

from strongroom.chats.telegram import flatten_text, parse_json


def test_single_chat_result_json() -> None:
    data = json.dumps(telegram_chat(), ensure_ascii=False, indent=1).encode()
    result = parse_json("Telegram Desktop/ChatExport_2024-01-02/result.json", data)
    assert result.warnings == ()
    (chat,) = result.chats
    assert chat.name == "Alice" and chat.kind == "telegram-export"
    got = [(m.time, m.author, m.text, m.attachments) for m in chat.messages]
    assert got == [
        ("2024-01-01T10:00:00", None, "Alice phone_call", ()),
        ("2024-01-01T10:00:05", "Alice", "plain\nsecond line", ()),
        ("2024-01-01T10:01:00", "Me", "see this https://example.org", ()),
        ("2024-01-01T10:02:00", "Alice", "a photo", ("photos/photo_1@01-01-2024_10-02-00.jpg",)),
        ("2024-01-01T10:03:00", "user9", "", ()),  # deleted account: from is null
    ]
    assert chat.sources == (
        "Telegram Desktop/ChatExport_2024-01-02/photos/photo_1@01-01-2024_10-02-00.jpg",
        "Telegram Desktop/ChatExport_2024-01-02/result.json")


def test_full_account_export_lists_chats_and_left_chats() -> None:
    result = parse_json("export/result.json", telegram_account())
    assert [c.name for c in result.chats] == ["Alice", "Work", "Old group"]
    assert all(c.message_count == 5 for c in result.chats)


def test_attachment_outside_the_export_folder_is_not_a_source() -> None:
    chat = telegram_chat()
    chat["messages"] = [{"id": 1, "type": "message", "date": "2024-01-01T10:00:00",
                         "from": "A", "text": "", "file": "../../etc/passwd"}]
    (parsed,) = parse_json("exp/result.json", json.dumps(chat).encode()).chats
    assert parsed.messages[0].attachments == ("../../etc/passwd",)
    assert parsed.sources == ("exp/result.json",)


@pytest.mark.parametrize(("data", "why"), [
    (b"{", "not valid JSON"),
    (b'{"name": "x", "type": "personal_chat", "messages": [{"date": NaN}]}', "not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    (b"[]", "not a Telegram export"),
    (b'{"name": "x", "messages": [{"type": "message", "text": "no date"}]}', "not a Telegram export"),
    (b'{"name": "x", "messages": [{"date": "2024-01-01T00:00:00", "text": 5}]}',
     "not a Telegram export"),
    (b'{"about": "x", "chats": {"list": []}}', "holds no chats"),
])
def test_bad_export_is_a_warning_with_its_path(data: bytes, why: str) -> None:
    result = parse_json("a/result.json", data)
    assert result.chats == ()
    (warning,) = result.warnings
    assert warning.path == "a/result.json" and why in warning.message


def test_flatten_text_rejects_a_bad_entity() -> None:
    assert flatten_text(["a", {"type": "bold", "text": "b"}]) == "ab"
    with pytest.raises(TypeError):
        flatten_text(["a", 3])
