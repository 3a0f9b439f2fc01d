"""A chat's messages as ``json`` or ``txt`` (``html`` is in :mod:`.html`).

``json`` is an array of ``{"time", "author", "text", "attachments"}`` objects, ``author``
``null`` for system messages; ``txt`` is one ``[time] author: text`` block per message,
continuation lines indented by two spaces so a reader can tell where a message ends.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from .model import Chat, Message


def message_dict(m: Message) -> dict[str, object]:
    """One message as the JSON export writes it."""
    return {"time": m.time, "author": m.author, "text": m.text, "attachments": list(m.attachments)}


def to_json(messages: Iterable[Message]) -> str:
    """The messages as a JSON array (UTF-8 text, one message per line, stable key order)."""
    items = [json.dumps(message_dict(m), ensure_ascii=False) for m in messages]
    return "[\n" + ",\n".join(items) + "\n]\n" if items else "[]\n"


def to_txt(messages: Iterable[Message]) -> str:
    """The messages as plain text."""
    out: list[str] = []
    for m in messages:
        who = "" if m.author is None else f"{_one_line(m.author)}: "
        lines = m.text.split("\n") if m.text else []
        lines += [f"<attached: {_one_line(a)}>" for a in m.attachments]
        first = lines[0] if lines else ""
        out.append(f"[{m.time.replace('T', ' ')}] {who}{first}".rstrip(" ") + "\n")
        out.extend(f"  {line}\n" for line in lines[1:])
    return "".join(out)


def _one_line(value: str) -> str:
    return value.replace("\r", " ").replace("\n", " ")


def export(chat: Chat, fmt: str) -> str:
    """``to_json`` or ``to_txt`` of a chat by format name (``html`` needs attachment bytes:
    use :func:`strongroom.chats.html.to_html`)."""
    if fmt == "json":
        return to_json(chat.messages)
    if fmt == "txt":
        return to_txt(chat.messages)
    raise ValueError(f"unknown export format {fmt!r} (json, txt or html)")
