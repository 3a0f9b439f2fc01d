"""Real-shaped chat exports made in code (no third-party data): WhatsApp logs in several
locales, a zip "with media", Telegram Desktop JSON, and a WhatsApp msgstore.db schema."""

from __future__ import annotations

import io
import json
import sqlite3
import zipfile
from pathlib import Path

LRM = "\u200e"
NNBSP = "\u202f"
E2E_EN = ("Messages and calls are end-to-end encrypted. No one outside of this chat, not even "
          "WhatsApp, can read or listen to them. Tap to learn more.")

# Android, en_US: month first, 12-hour clock with U+202F before AM/PM.
EN_US = (
    f"12/24/23, 9:05{NNBSP}PM - {E2E_EN}\n"
    f"12/24/23, 9:06{NNBSP}PM - You were added\n"
    f"12/24/23, 9:07{NNBSP}PM - Alice Smith: Merry Christmas!\n"
    "see you tomorrow\n"
    "\n"
    "bring the cake\n"
    f"12/25/23, 12:01{NNBSP}AM - Bob: <Media omitted>\n"
    f"12/25/23, 12:30{NNBSP}PM - Bob: IMG-20231225-WA0001.jpg (file attached)\n"
    "the tree\n"
    f"1/2/24, 7:00{NNBSP}AM - Alice Smith: time: 7am sharp\n"
)
# Android, en_GB: day first (one day above 12 decides it for the whole file), 24 hours.
EN_GB = (
    "01/02/2024, 08:15 - Priya: morning\n"
    "05/02/2024, 23:59 - Tom: night\n"
    "14/02/2024, 12:00 - Priya: happy valentine's\n"
)
# Android, de_DE: dd.mm.yy, 24 hours, German attachment marker.
DE_DE = (
    "31.12.23, 23:59 - Nachrichten und Anrufe sind Ende-zu-Ende-verschlüsselt.\n"
    "01.01.24, 00:00 - Max Müller: Frohes neues Jahr!\n"
    "01.01.24, 00:01 - Erika: PTT-20240101-WA0002.opus (Datei angehängt)\n"
    "01.01.24, 00:02 - Max Müller: <Medien ausgeschlossen>\n"
)
# Android, es_ES: "a. m." / "p. m." with U+00A0 and U+202F, day first.
ES_ES = (
    "24/12/23, 11:58\u00a0p.\u00a0m. - Los mensajes y las llamadas están cifrados de extremo a extremo.\n"
    f"24/12/23, 11:59{NNBSP}p.{NNBSP}m. - Lucía: ¡Feliz Navidad!\n"
    "25/12/23, 12:00 a. m. - Jorge: igualmente\n"
    "25/12/23, 9:30 a. m. - Lucía: IMG-20231225-WA0003.jpg (archivo adjunto)\n"
)
# iOS, en_GB with seconds, brackets, U+200E marks, CRLF line ends.
IOS_GB = (
    f"[03/03/2024, 10:00:00] Family: {LRM}Messages and calls are end-to-end encrypted.\r\n"
    f"{LRM}[03/03/2024, 10:00:01] Family: {LRM}You were added\r\n"
    "[03/03/2024, 10:00:05] Mum: Welcome!\r\n"
    "Dinner at 7\r\n"
    f"{LRM}[03/03/2024, 10:01:10] Dad: {LRM}<attached: 00000004-PHOTO-2024-03-03-10-01-10.jpg>\r\n"
    f"[03/03/2024, 10:02:00] Dad: {LRM}image omitted\r\n"
    "[13/03/2024, 18:45:30] Mum: done\r\n"
)
# iOS, en_US with seconds and AM/PM and a trailing dot style ("p.m.").
IOS_US = (
    "[1/5/24, 3:04:05 p.m.] Sam: hi\n"
    "[1/5/24, 3:04:59 p.m.] Kim: hey\n"
    "[1/15/24, 11:00:00 a.m.] Sam: later\n"
)
# Finnish iOS: "klo" and dots in the time.
IOS_FI = "[12.3.2022 klo 14.08.18] Matti: moi\n[12.3.2022 klo 14.09.00] Liisa: hei\n"

# Tiny but real JPEG/PNG signatures (enough for the HTML inliner's type check).
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32 + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


def whatsapp_zip(log_name: str, log: str, media: dict[str, bytes]) -> bytes:
    """An export zip: the log and its media side by side, as WhatsApp writes it."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(log_name, log.encode("utf-8"))
        for name, data in media.items():
            z.writestr(name, data)
    return out.getvalue()


def telegram_chat(name: str = "Alice", chat_id: int = 4242) -> dict[str, object]:
    """One chat as Telegram Desktop writes it in result.json."""
    return {
        "name": name, "type": "personal_chat", "id": chat_id,
        "messages": [
            {"id": 1, "type": "service", "date": "2024-01-01T10:00:00", "date_unixtime": "1704103200",
             "actor": name, "actor_id": f"user{chat_id}", "action": "phone_call", "text": ""},
            {"id": 2, "type": "message", "date": "2024-01-01T10:00:05", "date_unixtime": "1704103205",
             "from": name, "from_id": f"user{chat_id}", "text": "plain\nsecond line",
             "text_entities": [{"type": "plain", "text": "plain\nsecond line"}]},
            {"id": 3, "type": "message", "date": "2024-01-01T10:01:00", "from": "Me",
             "from_id": "user1", "text": ["see ", {"type": "bold", "text": "this"}, " ",
                                          {"type": "link", "text": "https://example.org"}]},
            {"id": 4, "type": "message", "date": "2024-01-01T10:02:00", "from": name,
             "from_id": f"user{chat_id}", "photo": "photos/photo_1@01-01-2024_10-02-00.jpg",
             "width": 800, "height": 600, "text": "a photo"},
            {"id": 5, "type": "message", "date": "2024-01-01T10:03:00", "from": None,
             "from_id": "user9", "file": "(File not included. Change data exporting settings to download.)",
             "media_type": "voice_message", "text": ""},
        ],
    }


def telegram_account() -> bytes:
    """A full-account export: personal information, then chats.list and left_chats.list."""
    doc = {
        "about": "Here is the data you requested.",
        "personal_information": {"user_id": 1, "first_name": "Me"},
        "chats": {"about": "This page lists all chats.", "list": [telegram_chat("Alice", 10),
                                                                   telegram_chat("Work", 11)]},
        "left_chats": {"about": "Left chats.", "list": [telegram_chat("Old group", 12)]},
    }
    return json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")


WA_SCHEMA = """
CREATE TABLE jid (_id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, server TEXT NOT NULL,
    agent INTEGER, device INTEGER, type INTEGER, raw_string TEXT);
CREATE TABLE chat (_id INTEGER PRIMARY KEY AUTOINCREMENT, jid_row_id INTEGER UNIQUE, hidden INTEGER,
    subject TEXT, created_timestamp INTEGER, display_message_row_id INTEGER,
    last_message_row_id INTEGER, archived INTEGER, sort_timestamp INTEGER);
CREATE TABLE message (_id INTEGER PRIMARY KEY AUTOINCREMENT, chat_row_id INTEGER NOT NULL,
    from_me INTEGER NOT NULL, key_id TEXT NOT NULL, sender_jid_row_id INTEGER, status INTEGER,
    broadcast INTEGER, recipient_count INTEGER, participant_hash TEXT, origination_flags INTEGER,
    origin INTEGER, timestamp INTEGER, received_timestamp INTEGER, receipt_server_timestamp INTEGER,
    message_type INTEGER, text_data TEXT, starred INTEGER, lookup_tables INTEGER, sort_id INTEGER);
CREATE TABLE message_media (message_row_id INTEGER PRIMARY KEY, chat_row_id INTEGER,
    autotransfer_retry_enabled INTEGER, multicast_id TEXT, media_job_uuid TEXT, transferred INTEGER,
    transcoded INTEGER, file_path TEXT, file_size INTEGER, suspicious_content INTEGER,
    media_key BLOB, width INTEGER, height INTEGER, direct_path TEXT, mime_type TEXT,
    file_length INTEGER, media_name TEXT, file_hash TEXT, media_duration INTEGER,
    media_caption TEXT);
CREATE TABLE props (_id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT UNIQUE, value TEXT);
"""


def whatsapp_msgstore(path: Path) -> Path:
    """A decrypted Android msgstore.db with WhatsApp's current schema and two chats."""
    db = sqlite3.connect(path)
    db.executescript(WA_SCHEMA)
    db.executemany("INSERT INTO jid (_id, user, server, raw_string) VALUES (?,?,?,?)", [
        (1, "491701234567", "s.whatsapp.net", "491701234567@s.whatsapp.net"),
        (2, "491709999999-1600000000", "g.us", "491709999999-1600000000@g.us"),
        (3, "491705555555", "s.whatsapp.net", "491705555555@s.whatsapp.net"),
    ])
    db.executemany("INSERT INTO chat (_id, jid_row_id, subject) VALUES (?,?,?)",
                   [(1, 1, None), (2, 2, "Climbing club")])
    t = 1_704_103_200_000  # 2024-01-01T10:00:00Z
    db.executemany(
        "INSERT INTO message (_id, chat_row_id, from_me, key_id, sender_jid_row_id, timestamp,"
        " message_type, text_data) VALUES (?,?,?,?,?,?,?,?)", [
            (1, 1, 0, "k1", 0, t, 0, "Hallo"),
            (2, 1, 1, "k2", 0, t + 60_000, 0, "Hi!\nWie geht's?"),
            (3, 1, 0, "k3", 0, t + 120_000, 1, "caption"),
            (4, 2, 0, "k4", None, t + 1_000, 7, None),
            (5, 2, 0, "k5", 3, t + 2_000, 0, "Saturday 9:00?"),
        ])
    db.execute("INSERT INTO message_media (message_row_id, chat_row_id, file_path, mime_type)"
               " VALUES (3, 1, 'Media/WhatsApp Images/IMG-20240101-WA0000.jpg', 'image/jpeg')")
    db.commit()
    db.close()
    return path
