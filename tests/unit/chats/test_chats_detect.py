"""The detector: names first, then at most HEAD bytes; and parse() dispatching on it."""

from __future__ import annotations

import io
import json

import pytest
from chats_samples import EN_GB, IOS_GB, telegram_account, telegram_chat, whatsapp_zip

from strongroom.chats import HEAD, Format, detect, parse


class CountingReader:
    """Gives the head of *data* and records how much was asked for."""

    def __init__(self, data: bytes) -> None:
        self.data, self.asked = data, []

    def __call__(self, n: int) -> bytes:
        self.asked.append(n)
        return self.data[:n]


@pytest.mark.parametrize(("path", "data", "fmt"), [
    ("x/WhatsApp Chat with Priya.txt", EN_GB.encode(), Format.WHATSAPP_TXT),
    ("x/_chat.txt", b"\xef\xbb\xbf" + IOS_GB.encode(), Format.WHATSAPP_TXT),
    ("x/random name.txt", EN_GB.encode(), Format.WHATSAPP_TXT),
    ("x/WhatsApp Chat - Family.zip", whatsapp_zip("_chat.txt", IOS_GB, {}), Format.WHATSAPP_ZIP),
    ("t/result.json", json.dumps(telegram_chat(), indent=1).encode(), Format.TELEGRAM_JSON),
    ("t/result.json", telegram_account(), Format.TELEGRAM_JSON),
    ("Databases/msgstore.db", b"SQLite format 3\x00", Format.SQLITE_STORE),
    ("Databases/msgstore-2024-01-01.1.db.crypt14", b"\x00" * 10, Format.SQLITE_STORE),
])
def test_recognised(path: str, data: bytes, fmt: Format) -> None:
    reader = CountingReader(data)
    assert detect(path, reader) is fmt
    assert all(n <= HEAD for n in reader.asked) and len(reader.asked) <= 1


@pytest.mark.parametrize(("path", "data"), [
    ("notes.txt", b"shopping list\n01/01/2024, 10:00 - A: x\n"),   # header not on line 1
    ("WhatsApp Chat - X.zip", b"not a zip"),
    ("holiday.zip", b"PK\x03\x04"),
    ("package.json", b'{"name": "x", "version": "1"}'),
    ("photo.jpg", b"\xff\xd8\xff"),
    ("other.db", b"SQLite format 3\x00"),
])
def test_not_recognised(path: str, data: bytes) -> None:
    assert detect(path, CountingReader(data)) is None


def test_names_that_cannot_be_chat_data_read_nothing() -> None:
    reader = CountingReader(b"\xff\xd8\xff")
    for path in ("a.jpg", "b.mp4", "c.opus", "Databases/other.db", "d"):
        assert detect(path, reader) is None
    assert reader.asked == []


def test_file_object_and_failing_reader() -> None:
    assert detect("_chat.txt", io.BytesIO(IOS_GB.encode())) is Format.WHATSAPP_TXT

    def broken(n: int) -> bytes:
        raise OSError("gone")

    assert detect("_chat.txt", broken) is None


def test_parse_dispatches_and_links_neighbours() -> None:
    text = "01/01/2024, 10:00 - A: IMG-1.jpg (file attached)\n"
    (chat,) = parse("d/WhatsApp Chat with A.txt", Format.WHATSAPP_TXT, text.encode(),
                    neighbours=["IMG-1.jpg"]).chats
    assert chat.sources == ("d/IMG-1.jpg", "d/WhatsApp Chat with A.txt")
    assert parse("z.zip", Format.WHATSAPP_ZIP, b"x").warnings
    assert parse("result.json", Format.TELEGRAM_JSON, b"x").warnings
    assert parse("msgstore.db.crypt14", Format.SQLITE_STORE, b"\x01" * 64).warnings
