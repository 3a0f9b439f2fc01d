"""Chat data inside backups: recognising it, parsing it, exporting and searching it.

Self-contained: nothing here imports the rest of Strongroom except ``strongroom.errors``.
The pieces::

    detect(path, read) -> Format | None      cheap: the name, then at most 4 KiB of head
    parse(path, fmt, data) -> ParseResult    chats + ChatParseWarning values, never raises
    to_json / to_txt / to_html               exports of a chat's messages
    search(chats, text)                      case-insensitive message search
    catalogue.encode / catalogue.decode      the sealed catalogue's canonical bytes
"""

from __future__ import annotations

from . import catalogue
from .catalogue import CatalogueEntry
from .detect import HEAD, Format, detect, parse
from .export import export, to_json, to_txt
from .html import to_html
from .model import KINDS, Chat, ChatParseWarning, Message, ParseResult
from .search import SearchHit, search

__all__ = [
    "HEAD",
    "KINDS",
    "CatalogueEntry",
    "Chat",
    "ChatParseWarning",
    "Format",
    "Message",
    "ParseResult",
    "SearchHit",
    "catalogue",
    "detect",
    "export",
    "parse",
    "search",
    "to_html",
    "to_json",
    "to_txt",
]
