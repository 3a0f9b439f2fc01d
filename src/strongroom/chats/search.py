"""Finding messages that contain a text, across chats."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .catalogue import CatalogueEntry
from .model import Chat, Message


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A message that matched: its chat, its position in the chat, and the message."""

    chat: Chat
    index: int
    message: Message


def search(chats: Iterable[Chat], text: str, *, authors: bool = False) -> Iterator[SearchHit]:
    """Messages whose text (or an attachment name; with *authors*, also the author)
    contains *text*, case-insensitively (Unicode case folding), in chat and message order."""
    if not text:
        raise ValueError("search text is empty")
    needle = text.casefold()
    for chat in chats:
        for i, m in enumerate(chat.messages):
            hay = [m.text, *m.attachments]
            if authors and m.author:
                hay.append(m.author)
            if any(needle in h.casefold() for h in hay):
                yield SearchHit(chat, i, m)


@dataclass(frozen=True, slots=True)
class MessageHit:
    """A message that matched, with its chat's catalogue entry (not the whole chat, which
    a search of a message store does not build) and its position in the chat."""

    chat: CatalogueEntry
    index: int
    message: Message
