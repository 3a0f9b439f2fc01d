"""The typed values every chat parser returns (a leaf module: it imports nothing of Strongroom).

A :class:`Chat` is one conversation as found in one export or message store; a
:class:`Message`'s ``time`` is ISO 8601 to the second *as written in the source*
(local time without an offset for text and Telegram exports, ``...Z`` for stores
that keep UTC epoch times).  ``author`` is ``None`` for system and service messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KIND_WHATSAPP_EXPORT = "whatsapp-export"
KIND_TELEGRAM_EXPORT = "telegram-export"
KIND_WHATSAPP_MSGSTORE = "whatsapp-msgstore"
KIND_BENCH_MSGSTORE = "msgstore"
KINDS = (KIND_WHATSAPP_EXPORT, KIND_TELEGRAM_EXPORT, KIND_WHATSAPP_MSGSTORE, KIND_BENCH_MSGSTORE)


@dataclass(frozen=True, slots=True)
class Message:
    """One message: when, who (``None`` for a system message), what, and attached file names."""

    time: str
    author: str | None
    text: str
    attachments: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Chat:
    """One conversation and the source files that make it up (``sources`` sorted, no duplicates)."""

    name: str
    kind: str
    sources: tuple[str, ...]
    messages: tuple[Message, ...] = ()

    @property
    def message_count(self) -> int:
        """How many messages, system messages included."""
        return len(self.messages)

    @property
    def first(self) -> str | None:
        """The earliest message time (ISO strings of one source compare as times), or None."""
        return min((m.time for m in self.messages), default=None)

    @property
    def last(self) -> str | None:
        """The latest message time, or None."""
        return max((m.time for m in self.messages), default=None)

    @property
    def attachment_count(self) -> int:
        """How many attachment references the messages carry."""
        return sum(len(m.attachments) for m in self.messages)


@dataclass(frozen=True, slots=True)
class ChatParseWarning:
    """A file that looked like chat data but could not be read as such (it is still backed up)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True, slots=True)
class ParseResult:
    """What a parser found in one file: its chats, and warnings that did not stop it."""

    chats: tuple[Chat, ...] = ()
    warnings: tuple[ChatParseWarning, ...] = field(default=())

    @staticmethod
    def warning(path: str, message: str) -> ParseResult:
        """A result with no chats and one warning."""
        return ParseResult((), (ChatParseWarning(path, message),))
