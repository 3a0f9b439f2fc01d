"""The chat catalogue's serialized form (docs/spec/backup-format.md, "Chat catalogue").

Canonical JSON, UTF-8: ``{"chats":[ENTRY...],"version":1}`` with keys sorted, no
whitespace, entries sorted by (kind, name, files, messages, first, last, attachments) and each entry's ``files`` sorted and
unique.  :func:`decode` is strict: it refuses with :class:`~strongroom.errors.FormatError`
anything that is not exactly the canonical encoding of a valid catalogue (non-finite
numbers, duplicate keys, deep nesting, wrong types, unknown keys, out-of-range values).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from strongroom.errors import FormatError

from .model import Chat

VERSION = 1
MAX_BYTES = 64 << 20
MAX_STRING = 4096
MAX_COUNT = (1 << 53) - 1
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z?\Z")
_KIND = re.compile(r"[a-z0-9][a-z0-9-]{0,31}\Z")
_ENTRY_KEYS = ("attachments", "files", "first", "kind", "last", "messages", "name")


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """One chat as the catalogue keeps it (no message content)."""

    name: str
    kind: str
    messages: int
    first: str | None
    last: str | None
    attachments: int
    files: tuple[str, ...]

    @staticmethod
    def of(chat: Chat) -> CatalogueEntry:
        """The entry summarising *chat*."""
        return CatalogueEntry(chat.name, chat.kind, chat.message_count, chat.first, chat.last,
                              chat.attachment_count, tuple(sorted(set(chat.sources))))

    def as_dict(self) -> dict[str, object]:
        """The entry's JSON object (also the ``chats --json`` shape)."""
        return {"name": self.name, "kind": self.kind, "messages": self.messages,
                "first": self.first, "last": self.last, "attachments": self.attachments,
                "files": list(self.files)}


def _sort_key(e: CatalogueEntry) -> tuple[object, ...]:
    # A total order (two Telegram chats may share a name and a file), so equal catalogues
    # always encode to equal bytes.
    return (e.kind, e.name, e.files, e.messages, e.first or "", e.last or "", e.attachments)


def encode(entries: Iterable[CatalogueEntry]) -> bytes:
    """The canonical bytes of a catalogue (deterministic: the same chats give the same bytes)."""
    items = sorted((CatalogueEntry(e.name, e.kind, e.messages, e.first, e.last, e.attachments,
                                   tuple(sorted(set(e.files)))) for e in entries), key=_sort_key)
    for e in items:
        _check_entry(e)
    doc = {"chats": [e.as_dict() for e in items], "version": VERSION}
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def decode(data: bytes) -> list[CatalogueEntry]:
    """Parse catalogue bytes; anything but a canonical version-1 catalogue is a FormatError."""
    if len(data) > MAX_BYTES:
        raise FormatError("chat catalogue larger than 64 MiB")
    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=_no_constant,
                         object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FormatError("chat catalogue is not valid JSON") from exc
    if not isinstance(doc, dict) or set(doc) != {"chats", "version"}:
        raise FormatError("chat catalogue must be an object with chats and version only")
    if type(doc["version"]) is not int or doc["version"] != VERSION:
        raise FormatError("unsupported chat catalogue version")
    if not isinstance(doc["chats"], list):
        raise FormatError("chat catalogue: chats is not an array")
    entries = [_entry(obj) for obj in doc["chats"]]
    try:
        canonical = encode(entries)
    except (FormatError, UnicodeEncodeError) as exc:
        raise FormatError("chat catalogue holds an invalid entry") from exc
    if canonical != data:
        raise FormatError("chat catalogue is not in canonical form")
    return entries


def _no_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key")
    return out


def _entry(obj: object) -> CatalogueEntry:
    if not isinstance(obj, dict) or tuple(sorted(obj)) != _ENTRY_KEYS:
        raise FormatError(f"chat catalogue entry must have exactly the keys {', '.join(_ENTRY_KEYS)}")
    files = obj["files"]
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise FormatError("chat catalogue entry: files is not an array of strings")
    entry = CatalogueEntry(obj["name"], obj["kind"], obj["messages"], obj["first"], obj["last"],
                           obj["attachments"], tuple(files))
    _check_entry(entry)
    return entry


def _check_entry(e: CatalogueEntry) -> None:
    for label, s in (("name", e.name), ("kind", e.kind), *(("file", f) for f in e.files)):
        if not isinstance(s, str) or not s or len(s) > MAX_STRING:
            raise FormatError(f"chat catalogue entry: {label} is not a string of 1-{MAX_STRING} characters")
    if not _KIND.match(e.kind):
        raise FormatError("chat catalogue entry: kind is not [a-z0-9-]{1,32}")
    for label, n in (("messages", e.messages), ("attachments", e.attachments)):
        if type(n) is not int or not 0 <= n <= MAX_COUNT:
            raise FormatError(f"chat catalogue entry: {label} is not an integer 0..2^53-1")
    for label, t in (("first", e.first), ("last", e.last)):
        if t is not None and (not isinstance(t, str) or not _TIME.match(t)):
            raise FormatError(f"chat catalogue entry: {label} is not null or an ISO 8601 time")
    if (e.first is None) != (e.last is None) or (e.first is None) != (e.messages == 0):
        raise FormatError("chat catalogue entry: first/last must be null exactly when messages is 0")
    if e.first is not None and e.last is not None and e.first > e.last:
        raise FormatError("chat catalogue entry: first is after last")
    if not e.files:
        raise FormatError("chat catalogue entry: files is empty")
