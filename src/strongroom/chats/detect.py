"""Recognising chat data cheaply, and parsing what was recognised.

:func:`detect` looks at a file's name and, only when the name could be chat data, at its
first bytes (at most :data:`HEAD` of them), so backup can ask it about every file.
:func:`parse` then runs the matching parser; neither raises on bad input.
"""

from __future__ import annotations

import enum
import posixpath
import re
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from .model import ParseResult

HEAD = 4096


class Format(enum.Enum):
    """The kinds of file a parser exists for."""

    WHATSAPP_TXT = "whatsapp-txt"
    WHATSAPP_ZIP = "whatsapp-zip"
    TELEGRAM_JSON = "telegram-json"
    SQLITE_STORE = "sqlite-store"


_WA_NAME = re.compile(r"^(_chat|.*whatsapp.*)\.(txt|zip)$", re.IGNORECASE)
_STORE_NAME = re.compile(r"^msgstore.*\.db(\.crypt\d+)?$", re.IGNORECASE)
_TG_KEYS = re.compile(rb'^\s*\{\s*"(about|name)"\s*:')

Reader = Callable[[int], bytes] | BinaryIO


def _head(read: Reader) -> bytes:
    try:
        data = read(HEAD) if callable(read) else read.read(HEAD)
    except OSError:
        return b""
    return data if isinstance(data, bytes) else b""


def detect(path: str, read: Reader) -> Format | None:
    """The chat format *path* holds, or None.  *read(n)* (or a file object) gives the
    first bytes; it is called at most once, and only for names that could be chat data."""
    base = posixpath.basename(path.replace("\\", "/"))
    low = base.lower()
    if _STORE_NAME.match(base):
        return Format.SQLITE_STORE
    if low.endswith(".zip"):
        return Format.WHATSAPP_ZIP if _WA_NAME.match(base) and _head(read)[:4] == b"PK\x03\x04" else None
    if low.endswith(".txt"):
        head = _head(read)
        return Format.WHATSAPP_TXT if _looks_like_log(head, named=bool(_WA_NAME.match(base))) else None
    if low.endswith(".json"):
        head = _head(read)
        if _TG_KEYS.match(head.lstrip(b"\xef\xbb\xbf")) and (
                b'"personal_information"' in head or b'"messages"' in head or b'"type"' in head):
            return Format.TELEGRAM_JSON if low == "result.json" or b'"id"' in head else None
    return None


def _looks_like_log(head: bytes, *, named: bool) -> bool:
    """An export-named file is a log if any header is in its head; another ``.txt`` only
    if its first non-empty line is one (so ordinary notes are not parsed)."""
    text = head.decode("utf-8-sig", errors="replace")
    lines = [line for line in text.splitlines()[:40] if line.strip()]
    if named:
        return bool(lines)
    from . import _wa_header  # only here: most names never get this far

    return bool(lines) and _wa_header.HEADER.match(lines[0]) is not None


def parse(path: str, fmt: Format, data: bytes, *, neighbours: Collection[str] = (),
          chats: Collection[str] | None = None) -> ParseResult:
    """Parse *data* (the whole file) as *fmt*.  *neighbours* are the names of the other files
    in the same folder, so a ``.txt`` log links to the media exported beside it.  *chats*
    (message stores only) names the chats wanted; others may be left out."""
    # The parsers are imported by the format they are needed for: a program that only
    # reads catalogues (``strongroom chats``) imports none of them.
    if fmt in (Format.WHATSAPP_TXT, Format.WHATSAPP_ZIP):
        from . import whatsapp
    if fmt is Format.WHATSAPP_TXT:
        return whatsapp.parse_text(path, data, files=neighbours)
    if fmt is Format.WHATSAPP_ZIP:
        return whatsapp.parse_zip(path, data)
    if fmt is Format.TELEGRAM_JSON:
        from . import telegram

        return telegram.parse_json(path, data)
    from . import msgstore

    return msgstore.parse_bytes(path, data, chats=chats)
