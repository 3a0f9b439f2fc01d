"""WhatsApp exports: locales, the whole-file date order, system messages, media, bad lines."""

from __future__ import annotations

import pytest
from chats_samples import (
    DE_DE,
    EN_GB,
    EN_US,
    ES_ES,
    IOS_FI,
    IOS_GB,
    IOS_US,
    JPEG,
    LRM,
    whatsapp_zip,
)

from strongroom.chats import Chat, Message
from strongroom.chats.whatsapp import chat_name, parse_text, parse_zip


def one(path: str, text: str, files: tuple[str, ...] = ()) -> Chat:
    result = parse_text(path, text.encode("utf-8"), files=files)
    assert len(result.chats) == 1, result.warnings
    return result.chats[0]


def test_en_us_12_hour_month_first() -> None:
    chat = one("WhatsApp Chat with Alice Smith.txt", EN_US, ("IMG-20231225-WA0001.jpg",))
    assert chat.name == "Alice Smith"
    assert [m.time for m in chat.messages] == [
        "2023-12-24T21:05:00", "2023-12-24T21:06:00", "2023-12-24T21:07:00",
        "2023-12-25T00:01:00", "2023-12-25T12:30:00", "2024-01-02T07:00:00"]
    e2e, added, multi, omitted, photo, colon = chat.messages
    assert e2e.author is None and e2e.text.startswith("Messages and calls are end-to-end")
    assert added == Message("2023-12-24T21:06:00", None, "You were added")
    assert multi.author == "Alice Smith"
    assert multi.text == "Merry Christmas!\nsee you tomorrow\n\nbring the cake"
    assert omitted.text == "<Media omitted>" and omitted.attachments == ()
    assert photo.attachments == ("IMG-20231225-WA0001.jpg",) and photo.text == "the tree"
    assert colon.author == "Alice Smith" and colon.text == "time: 7am sharp"
    assert chat.sources == ("IMG-20231225-WA0001.jpg", "WhatsApp Chat with Alice Smith.txt")
    assert (chat.message_count, chat.first, chat.last, chat.attachment_count) == (
        6, "2023-12-24T21:05:00", "2024-01-02T07:00:00", 1)


def test_en_gb_day_first_is_decided_by_the_whole_file() -> None:
    # The first two lines alone would read as month-first; "14/02" later decides day-first.
    chat = one("WhatsApp Chat with Priya.txt", EN_GB)
    assert [m.time for m in chat.messages] == [
        "2024-02-01T08:15:00", "2024-02-05T23:59:00", "2024-02-14T12:00:00"]


def test_month_first_is_decided_by_a_second_field_above_12() -> None:
    chat = one("c.txt", IOS_US)
    assert [m.time for m in chat.messages] == [
        "2024-01-05T15:04:05", "2024-01-05T15:04:59", "2024-01-15T11:00:00"]


def test_ambiguous_dates_follow_the_order_that_runs_forward() -> None:
    # Every field is 12 or less; read day-first the dates go 11 Jan, 12 Jan, 1 Feb, 2 Feb;
    # month-first they would jump back from 12 Jan... to 2 Jan: day-first wins.
    text = ("11/01/24, 10:00 - A: x\n12/01/24, 10:00 - A: y\n"
            "01/02/24, 10:00 - A: z\n02/02/24, 10:00 - A: w\n")
    chat = one("c.txt", text)
    assert [m.time[:10] for m in chat.messages] == [
        "2024-01-11", "2024-01-12", "2024-02-01", "2024-02-02"]
    text_us = ("01/11/24, 10:00 AM - A: x\n01/12/24, 10:00 AM - A: y\n"
               "02/01/24, 10:00 AM - A: z\n02/02/24, 10:00 AM - A: w\n")
    assert [m.time[:10] for m in one("c.txt", text_us).messages] == [
        "2024-01-11", "2024-01-12", "2024-02-01", "2024-02-02"]


def test_de_de_dots_and_german_markers() -> None:
    chat = one("WhatsApp Chat mit Max Müller.txt", DE_DE)
    assert chat.name == "Max Müller"
    assert [m.author for m in chat.messages] == [None, "Max Müller", "Erika", "Max Müller"]
    assert chat.messages[0].time == "2023-12-31T23:59:00"
    assert chat.messages[2].attachments == ("PTT-20240101-WA0002.opus",)
    assert chat.messages[3].text == "<Medien ausgeschlossen>"


def test_es_a_m_p_m_with_nbsp_and_narrow_nbsp() -> None:
    chat = one("WhatsApp Chat with Lucía.txt", ES_ES)
    assert [(m.time, m.author) for m in chat.messages] == [
        ("2023-12-24T23:58:00", None), ("2023-12-24T23:59:00", "Lucía"),
        ("2023-12-25T00:00:00", "Jorge"), ("2023-12-25T09:30:00", "Lucía")]
    assert chat.messages[3].attachments == ("IMG-20231225-WA0003.jpg",)


def test_ios_brackets_seconds_crlf_and_marks() -> None:
    chat = one("WhatsApp Chat - Family.txt", IOS_GB, ("00000004-PHOTO-2024-03-03-10-01-10.jpg",))
    assert chat.name == "Family"
    got = [(m.time, m.author, m.text, m.attachments) for m in chat.messages]
    assert got == [
        ("2024-03-03T10:00:00", None, "Messages and calls are end-to-end encrypted.", ()),
        ("2024-03-03T10:00:01", None, "You were added", ()),
        ("2024-03-03T10:00:05", "Mum", "Welcome!\nDinner at 7", ()),
        ("2024-03-03T10:01:10", "Dad", "", ("00000004-PHOTO-2024-03-03-10-01-10.jpg",)),
        ("2024-03-03T10:02:00", "Dad", f"{LRM}image omitted", ()),
        ("2024-03-13T18:45:30", "Mum", "done", ()),
    ]
    assert all("\r" not in m.text for m in chat.messages)


def test_ios_finnish_klo_and_dotted_time() -> None:
    chat = one("_chat.txt", IOS_FI)
    assert [(m.time, m.author) for m in chat.messages] == [
        ("2022-03-12T14:08:18", "Matti"), ("2022-03-12T14:09:00", "Liisa")]


@pytest.mark.parametrize(("line", "time"), [
    ("2024/03/05 21:07 - A: x", "2024-03-05T21:07:00"),            # year first
    ("05-03-2024 21:07 - A: x", "2024-03-05T21:07:00"),            # dashes, no comma
    ("[05.03.24, 9:07:01 PM] A: x", "2024-03-05T21:07:01"),
    ("05/03/2024, 21:07. - A: x", "2024-03-05T21:07:00"),          # trailing dot after time
    ("2024. 3. 5. 오후 9:07 - A: x", "2024-03-05T21:07:00"),       # ko_KR
    ("5 March 2024, 21:07 - A: x", None),                          # not a header shape
    ("25/03/2024, 오후 9:07 - A: x", "2024-03-25T21:07:00"),        # meridiem before the time
    ("25/03/2024, 9:07 nachm. - A: x", "2024-03-25T21:07:00"),
])
def test_header_shapes(line: str, time: str | None) -> None:
    result = parse_text("c.txt", (line + "\n").encode("utf-8"))
    if time is None:
        assert result.chats == () and result.warnings
    else:
        assert result.chats[0].messages[0].time == time
        assert result.chats[0].messages[0].author == "A"


def test_a_line_that_does_not_parse_joins_the_previous_message() -> None:
    text = ("31/12/2023, 10:00 - A: first\n"
            "32/13/2023, 10:00 - A: not a date in this file\n"   # header shape, invalid date
            "12/31/2023, 25:00 - B: bad hour\n"
            "garbage without header\n"
            "01/01/2024, 10:00 - B: second\n")
    chat = one("c.txt", text)
    assert [m.text for m in chat.messages] == [
        ("first\n32/13/2023, 10:00 - A: not a date in this file\n12/31/2023, 25:00 - B: bad hour"
        "\ngarbage without header"), "second"]


def test_lines_before_the_first_message_are_kept_with_a_warning() -> None:
    result = parse_text("c.txt", b"exported by a tool\n01/01/2024, 10:00 - A: hi\n")
    (chat,) = result.chats
    assert chat.messages[0] == Message("2024-01-01T10:00:00", None, "exported by a tool")
    assert [w.path for w in result.warnings] == ["c.txt"]


def test_not_utf8_is_replaced_and_warned_not_dropped() -> None:
    result = parse_text("c.txt", b"01/01/2024, 10:00 - A: caf\xe9\n")
    assert result.chats[0].messages[0].text == "caf\ufffd"
    assert "UTF-8" in result.warnings[0].message


def test_export_without_any_message_line_is_a_warning() -> None:
    result = parse_text("WhatsApp Chat with X.txt", b"hello\nworld\n")
    assert result.chats == ()
    assert result.warnings[0].path == "WhatsApp Chat with X.txt"


def test_system_message_with_quoted_colon_has_no_author() -> None:
    chat = one("c.txt", '01/01/2024, 10:00 - Ann changed the subject to "Plans: 2024"\n')
    assert chat.messages[0].author is None


@pytest.mark.parametrize(("file", "name"), [
    ("WhatsApp Chat with Bob.txt", "Bob"), ("WhatsApp Chat - Family (2).zip", "Family"),
    ("dir/WhatsApp-Chat mit Oma.txt", "Oma"), ("Chat de WhatsApp con Ana.txt", "Ana"),
    ("_chat.txt", "_chat"), ("notes.txt", "notes"),
])
def test_chat_name_from_file_name(file: str, name: str) -> None:
    assert chat_name(file) == name


def test_zip_with_media_links_attachments_to_members() -> None:
    media = {"00000004-PHOTO-2024-03-03-10-01-10.jpg": JPEG}
    data = whatsapp_zip("_chat.txt", IOS_GB, media)
    result = parse_zip("phone/WhatsApp Chat - Family.zip", data)
    (chat,) = result.chats
    assert chat.name == "Family" and chat.sources == ("phone/WhatsApp Chat - Family.zip",)
    assert chat.attachment_count == 1 and chat.message_count == 6


def test_android_zip_log_named_after_the_chat() -> None:
    data = whatsapp_zip("WhatsApp Chat with Alice Smith.txt", EN_US,
                        {"IMG-20231225-WA0001.jpg": JPEG})
    (chat,) = parse_zip("WhatsApp Chat with Alice Smith.zip", data).chats
    assert chat.messages[4].attachments == ("IMG-20231225-WA0001.jpg",)


def test_unknown_attachment_word_links_only_to_a_present_file() -> None:
    text = "01/01/2024, 10:00 - A: report.pdf (draft)\n01/01/2024, 10:01 - A: x.pdf (draft)\n"
    chat = one("c.txt", text, ("report.pdf",))
    assert chat.messages[0].attachments == ("report.pdf",)
    assert chat.messages[1].attachments == () and chat.messages[1].text == "x.pdf (draft)"


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04broken", b"not a zip at all"])
def test_broken_zip_is_a_warning(data: bytes) -> None:
    result = parse_zip("WhatsApp Chat - X.zip", data)
    assert result.chats == () and result.warnings[0].path == "WhatsApp Chat - X.zip"


def test_zip_without_a_log_is_a_warning() -> None:
    data = whatsapp_zip("photo.jpg", "", {})
    assert "no WhatsApp chat log" in parse_zip("WhatsApp Chat - X.zip", data).warnings[0].message
