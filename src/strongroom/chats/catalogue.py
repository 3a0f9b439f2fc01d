"""The chat catalogue's serialized form (docs/spec/backup-format.md, "Chat catalogue").

Canonical JSON, UTF-8: ``{"chats":[ENTRY...],"parsed":[PARSED...],"version":1}`` with keys
sorted, no whitespace, entries sorted by (kind, name, files, messages, first, last,
attachments, source), each entry's ``files`` sorted and unique, and ``parsed`` (every file
a parser read, with its warnings) sorted by path and unique.  An entry's ``source`` is the
file whose parser found it; it is one of its ``files`` and one of the ``parsed`` paths,
which is what lets the next backup reuse the entries of a file that did not change.  :func:`decode` is strict: it refuses with :class:`~strongroom.errors.FormatError`
anything that is not exactly the canonical encoding of a valid catalogue (non-finite
numbers, duplicate keys, deep nesting, wrong types, unknown keys, out-of-range values).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
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
_ENTRY_KEYS = ("attachments", "files", "first", "kind", "last", "messages", "name", "source")
_PARSED_KEYS = ("path", "warnings")
MAX_WARNINGS = 16


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
    source: str

    @staticmethod
    def of(chat: Chat, source: str | None = None) -> CatalogueEntry:
        """The entry summarising *chat*, found by parsing *source* (default: the chat's
        first source file)."""
        files = tuple(sorted(set(chat.sources)))
        return CatalogueEntry(chat.name, chat.kind, chat.message_count, chat.first, chat.last,
                              chat.attachment_count, files,
                              chat.sources[0] if source is None else source)

    def as_dict(self) -> dict[str, object]:
        """The entry's JSON object (also the ``chats --json`` shape)."""
        return {"name": self.name, "kind": self.kind, "messages": self.messages,
                "first": self.first, "last": self.last, "attachments": self.attachments,
                "files": list(self.files), "source": self.source}


@dataclass(frozen=True, slots=True)
class Catalogue:
    """A whole catalogue: the chats, and every parsed file with its warnings (so an
    unchanged file's entries and warnings carry over to the next snapshot unparsed)."""

    entries: tuple[CatalogueEntry, ...]
    parsed: dict[str, tuple[str, ...]]

    def of_file(self, path: str) -> tuple[list[CatalogueEntry], tuple[str, ...]] | None:
        """The entries and warnings that parsing *path* gave, or None if it was not parsed."""
        if path not in self.parsed:
            return None
        return [e for e in self.entries if e.source == path], self.parsed[path]


def _sort_key(e: CatalogueEntry) -> tuple[object, ...]:
    # A total order (two Telegram chats may share a name and a file), so equal catalogues
    # always encode to equal bytes.
    return (e.kind, e.name, e.files, e.messages, e.first or "", e.last or "", e.attachments,
            e.source)


def encode(entries: Iterable[CatalogueEntry],
           parsed: dict[str, tuple[str, ...]] | None = None) -> bytes:
    """The canonical bytes of a catalogue (deterministic: the same chats give the same bytes).
    *parsed* maps every parsed file to its warnings (default: each entry's source, none)."""
    items = sorted((CatalogueEntry(e.name, e.kind, e.messages, e.first, e.last, e.attachments,
                                   tuple(sorted(set(e.files))), e.source) for e in entries),
                   key=_sort_key)
    if parsed is None:
        parsed = {e.source: () for e in items}
    for e in items:
        _check_entry(e)
        if e.source not in parsed:
            raise FormatError("chat catalogue entry: source is not a parsed file")
    files = []
    for path in sorted(parsed):
        warnings = list(parsed[path])
        _check_parsed(path, warnings)
        files.append({"path": path, "warnings": warnings})
    doc = {"chats": [e.as_dict() for e in items], "parsed": files, "version": VERSION}
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def decode(data: bytes) -> list[CatalogueEntry]:
    """Parse catalogue bytes; anything but a canonical version-1 catalogue is a FormatError."""
    return list(decode_catalogue(data).entries)


def decode_catalogue(data: bytes) -> Catalogue:
    """:func:`decode`, with the parsed files and their warnings."""
    if len(data) > MAX_BYTES:
        raise FormatError("chat catalogue larger than 64 MiB")
    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=_no_constant,
                         object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FormatError("chat catalogue is not valid JSON") from exc
    if not isinstance(doc, dict) or set(doc) != {"chats", "parsed", "version"}:
        raise FormatError("chat catalogue must be an object with chats, parsed and version only")
    if type(doc["version"]) is not int or doc["version"] != VERSION:
        raise FormatError("unsupported chat catalogue version")
    if not isinstance(doc["chats"], list) or not isinstance(doc["parsed"], list):
        raise FormatError("chat catalogue: chats or parsed is not an array")
    entries = [_entry(obj) for obj in doc["chats"]]
    parsed: dict[str, tuple[str, ...]] = {}
    for obj in doc["parsed"]:
        if not isinstance(obj, dict) or tuple(sorted(obj)) != _PARSED_KEYS:
            raise FormatError("chat catalogue: a parsed file must have exactly path and warnings")
        path, warnings = obj["path"], obj["warnings"]
        if not isinstance(warnings, list) or path in parsed:
            raise FormatError("chat catalogue: bad parsed file record")
        _check_parsed(path, warnings)
        parsed[path] = tuple(warnings)
    try:
        canonical = encode(entries, parsed)
    except (FormatError, UnicodeEncodeError) as exc:
        raise FormatError("chat catalogue holds an invalid entry") from exc
    if canonical != data:
        raise FormatError("chat catalogue is not in canonical form")
    return Catalogue(tuple(entries), parsed)


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
                           obj["attachments"], tuple(files), obj["source"])
    _check_entry(entry)
    return entry


def bad_path(path: str) -> bool:
    """Whether *path* is not a relative snapshot path (spec §7's rule for record paths)."""
    return "\x00" in path or path.startswith("/") or any(
        c in ("", ".", "..") for c in path.split("/"))


def _check_parsed(path: object, warnings: Sequence[object]) -> None:
    if not isinstance(path, str) or not path or len(path) > MAX_STRING or bad_path(path):
        raise FormatError(f"chat catalogue: a parsed path is not a relative path of "
                          f"1-{MAX_STRING} characters")
    if len(warnings) > MAX_WARNINGS or not all(
            isinstance(w, str) and 0 < len(w) <= MAX_STRING for w in warnings):
        raise FormatError(f"chat catalogue: warnings are not up to {MAX_WARNINGS} strings")


def check_entry(e: CatalogueEntry) -> None:
    """``FormatError`` unless *e* is a valid entry (the per-entry rules of :func:`decode`)."""
    _check_entry(e)


def _check_entry(e: CatalogueEntry) -> None:
    for label, s in (("name", e.name), ("kind", e.kind), ("source", e.source),
                     *(("file", f) for f in e.files)):
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
    if e.source not in e.files:
        raise FormatError("chat catalogue entry: source is not one of its files")
    if any(bad_path(f) for f in e.files):
        raise FormatError("chat catalogue entry: a file is not a relative snapshot path")
