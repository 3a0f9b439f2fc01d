"""A chat as one self-contained HTML page that reads like the chat app.

Everything from the chat (names, text, attachment names) is attacker-controlled: it is
HTML-escaped, never placed in a URL, a style or a script, and the page carries a
Content-Security-Policy that allows no script, no network and images only as ``data:``,
so a missed escape still could not run code or call out.  Images (JPEG, PNG, GIF, WebP,
recognised by their first bytes, never SVG) are inlined as ``data:`` URIs.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Iterable

from .model import Chat, Message

MAX_INLINE = 16 << 20  # an image above 16 MiB is named, not inlined
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
_STYLE = """
body{margin:0;background:#e5ddd5;font:15px/1.4 system-ui,sans-serif;color:#111}
header{position:sticky;top:0;background:#075e54;color:#fff;padding:12px 16px;font-size:18px}
header small{display:block;font-size:12px;opacity:.8}
main{max-width:760px;margin:0 auto;padding:12px;display:flex;flex-direction:column;gap:6px}
.m{max-width:75%;background:#fff;border-radius:8px;padding:6px 10px;box-shadow:0 1px 1px #0002;
align-self:flex-start;white-space:pre-wrap;overflow-wrap:anywhere}
.m.me{align-self:flex-end;background:#dcf8c6}
.m.sys{align-self:center;background:#fff3c4;font-size:13px;text-align:center}
.a{font-weight:600;color:#075e54;font-size:13px}
.t{display:block;text-align:right;font-size:11px;color:#666}
.m img{display:block;max-width:100%;border-radius:6px;margin:4px 0}
.f{font-size:13px;color:#333}
"""


def _image_type(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _attachment(name: str, read: Callable[[str], bytes | None] | None) -> str:
    data = read(name) if read is not None else None
    if data is not None and len(data) <= MAX_INLINE:
        mime = _image_type(data)
        if mime is not None:
            uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
            return f'<img src="{uri}" alt="{html.escape(name, quote=True)}">'
    return f'<span class="f">\U0001f4ce {html.escape(name)}</span>'


def _bubble(m: Message, me: str | None, read: Callable[[str], bytes | None] | None) -> str:
    if m.author is None:
        cls, who = "m sys", ""
    else:
        cls = "m me" if me is not None and m.author == me else "m"
        who = f'<span class="a">{html.escape(m.author)}</span>\n'
    parts = [_attachment(a, read) for a in m.attachments]
    text = html.escape(m.text)
    time = html.escape(m.time.replace("T", " "))
    return (f'<div class="{cls}">{who}{"".join(parts)}{text}'
            f'<span class="t">{time}</span></div>')


def to_html(chat: Chat, read_attachment: Callable[[str], bytes | None] | None = None, *,
            me: str | None = None, messages: Iterable[Message] | None = None) -> str:
    """The page for *chat* (or for *messages* of it).  *read_attachment(name)* returns an
    attachment's bytes, or None when the file is not in the backup; *me* is the author
    shown on the right."""
    body = "\n".join(_bubble(m, me, read_attachment)
                     for m in (chat.messages if messages is None else messages))
    title = html.escape(chat.name)
    span = f"{chat.message_count} messages"
    if chat.first and chat.last:
        span += f", {chat.first.replace('T', ' ')} to {chat.last.replace('T', ' ')}"
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width,initial-scale=1">\n'
        f"<title>{title}</title><style>{_STYLE}</style></head>\n<body>\n"
        f"<header>{title}<small>{html.escape(span)}</small></header>\n<main>\n{body}\n</main>\n"
        "</body></html>\n"
    )
