"""Telegram Desktop JSON exports: one chat's ``result.json`` or a whole account's.

A single chat is an object with ``name``, ``type`` and ``messages``; an account export has
``chats.list`` (and ``left_chats.list``) of such objects.  A message's ``text`` is a string
or a list of strings and entity objects (``{"type": "bold", "text": "..."}``); a
``"type": "service"`` message has author ``None`` and, when its text is empty, a text made
from its ``action``.  ``photo`` and ``file`` are attachment paths relative to the export
folder, unless Telegram left the file out ("(File not included...)").
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any

from .model import KIND_TELEGRAM_EXPORT, Chat, Message, ParseResult

_MAX_JSON = 1 << 30
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def parse_json(path: str, data: bytes) -> ParseResult:
    """Parse a Telegram Desktop export; a file that fails to parse is one warning."""
    if len(data) > _MAX_JSON:
        return ParseResult.warning(path, "Telegram export larger than 1 GiB: not catalogued")
    try:
        doc = json.loads(data.decode("utf-8-sig"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        return ParseResult.warning(path, f"not valid JSON ({type(exc).__name__})")
    folder = posixpath.dirname(path)
    try:
        chats = [_chat(c, path, folder) for c in _chat_objects(doc)]
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        return ParseResult.warning(path, f"not a Telegram export ({exc})")
    if not chats:
        return ParseResult.warning(path, "Telegram export holds no chats")
    return ParseResult(tuple(chats))


def _chat_objects(doc: object) -> list[dict[str, Any]]:
    if not isinstance(doc, dict):
        raise TypeError("top level is not an object")
    if isinstance(doc.get("messages"), list):
        return [doc]
    found: list[dict[str, Any]] = []
    for section in ("chats", "left_chats"):
        part = doc.get(section)
        if isinstance(part, dict) and isinstance(part.get("list"), list):
            found.extend(c for c in part["list"] if isinstance(c, dict))
    if not found and "chats" not in doc:
        raise TypeError("no messages and no chats.list")
    return found


def _chat(obj: dict[str, Any], path: str, folder: str) -> Chat:
    name = obj.get("name")
    if not isinstance(name, str):
        name = f"{obj.get('type', 'chat')} {obj.get('id', '')}".strip()
    messages = [_message(m) for m in obj["messages"] if isinstance(m, dict)]
    # Only files inside the export's folder belong to the chat (the names are the
    # exporter's, and a hostile file could point a later "restore --chat" elsewhere).
    files = {posixpath.join(folder, a) for m in messages for a in m.attachments if _inside(a)}
    return Chat(name, KIND_TELEGRAM_EXPORT, tuple(sorted({path, *files})), tuple(messages))


def _message(m: dict[str, Any]) -> Message:
    date = m.get("date")
    if not isinstance(date, str) or not _DATE.match(date):
        raise TypeError("message without an ISO 8601 date")
    text = flatten_text(m.get("text", ""))
    if m.get("type") == "service":
        if not text:
            text = " ".join(str(p) for p in (m.get("actor"), m.get("action"), m.get("title"))
                            if isinstance(p, str) and p)
        return Message(date[:19], None, text, _attachments(m))
    author = m.get("from")
    if not isinstance(author, str):
        author = str(m.get("from_id") or "unknown")
    return Message(date[:19], author, text, _attachments(m))


def flatten_text(value: object) -> str:
    """Telegram's ``text``: a string, or a list of strings and ``{"text": ...}`` entities."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts: list[str] = []
        for item in value:
            if isinstance(item, str):
                parts.append(item)
            elif isinstance(item, dict) and isinstance(item.get("text"), str):
                parts.append(item["text"])
            else:
                raise TypeError("text entity is neither a string nor an object with text")
        return "".join(parts)
    raise TypeError("text is neither a string nor a list")


def _attachments(m: dict[str, Any]) -> tuple[str, ...]:
    out = []
    for key in ("photo", "file"):
        value = m.get(key)
        if isinstance(value, str) and value and not value.startswith("("):
            out.append(value)
    return tuple(out)


def _inside(rel: str) -> bool:
    norm = posixpath.normpath(rel.replace("\\", "/"))
    return not (norm.startswith(("/", "../")) or norm == ".." or ":" in norm.split("/")[0])
