"""The catalogue's canonical encoding and its strict parser."""

from __future__ import annotations

import json

import pytest
from chats_samples import EN_US
from hypothesis import given, settings
from hypothesis import strategies as st

import strongroom.chats as chats_pkg
from strongroom.chats import CatalogueEntry, catalogue
from strongroom.chats._wa_header import HEADER
from strongroom.chats.whatsapp import parse_text
from strongroom.errors import FormatError

A = CatalogueEntry("Family", "whatsapp-export", 6, "2024-03-03T10:00:00", "2024-03-13T18:45:30",
                   1, ("b/_chat.txt", "a/IMG-1.jpg"), "b/_chat.txt")
B = CatalogueEntry("Bob", "msgstore", 0, None, None, 0, ("Databases/msgstore.db",),
                   "Databases/msgstore.db")


def test_roundtrip_and_determinism() -> None:
    data = catalogue.encode([A, B])
    assert data == catalogue.encode([B, A])  # order of the input does not matter
    assert data.startswith(b'{"chats":[{"attachments":0,"files":["Databases/msgstore.db"]')
    assert data.endswith(b'],"parsed":[{"path":"Databases/msgstore.db","warnings":[]},'
                         b'{"path":"b/_chat.txt","warnings":[]}],"version":1}')
    got = catalogue.decode(data)
    assert got == [B, CatalogueEntry(A.name, A.kind, A.messages, A.first, A.last, A.attachments,
                                     ("a/IMG-1.jpg", "b/_chat.txt"), A.source)]


def test_parsed_files_and_their_warnings_round_trip() -> None:
    parsed = {"Databases/msgstore.db": (), "b/_chat.txt": ("bytes that are not UTF-8",),
              "x/broken.zip": ("unreadable zip",)}
    cat = catalogue.decode_catalogue(catalogue.encode([A, B], parsed))
    assert cat.parsed == parsed
    assert cat.of_file("b/_chat.txt") == ([A.__class__(*[getattr(A, f) for f in (
        "name", "kind", "messages", "first", "last", "attachments")], tuple(sorted(A.files)),
        A.source)], ("bytes that are not UTF-8",))
    assert cat.of_file("x/broken.zip") == ([], ("unreadable zip",))
    assert cat.of_file("y/never.txt") is None


def test_an_entry_must_come_from_a_parsed_file_among_its_files() -> None:
    with pytest.raises(FormatError):
        catalogue.encode([A], {"Databases/msgstore.db": ()})
    with pytest.raises(FormatError):
        catalogue.encode([CatalogueEntry("x", "msgstore", 0, None, None, 0, ("f",), "g")])


def test_entry_of_a_parsed_chat() -> None:
    (chat,) = parse_text("WhatsApp Chat with Alice.txt", EN_US.encode(),
                         files=("IMG-20231225-WA0001.jpg",)).chats
    entry = CatalogueEntry.of(chat)
    assert entry.as_dict() == {
        "name": "Alice", "kind": "whatsapp-export", "messages": 6,
        "first": "2023-12-24T21:05:00", "last": "2024-01-02T07:00:00", "attachments": 1,
        "files": ["IMG-20231225-WA0001.jpg", "WhatsApp Chat with Alice.txt"],
        "source": "IMG-20231225-WA0001.jpg"}
    entry = CatalogueEntry.of(chat, "WhatsApp Chat with Alice.txt")
    assert entry.source == "WhatsApp Chat with Alice.txt"
    assert catalogue.decode(catalogue.encode([entry])) == [entry]


def _two(one: bytes, two: bytes) -> bytes:
    a, b = json.loads(one), json.loads(two)
    a["chats"] += b["chats"]
    return json.dumps(a, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _doc(**change: object) -> bytes:
    entry = {**A.as_dict(), "files": sorted(A.files), **change}
    parsed = [{"path": A.source, "warnings": []}]
    return json.dumps({"chats": [entry], "parsed": parsed, "version": 1}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize("data", [
    b"", b"\xff", b"[]", b"{}", b'{"chats":[],"version":2}', b'{"chats":[],"version":true}',
    b'{"chats":[],"version":1.0}', b'{"chats":{},"version":1}',
    b'{"chats":[],"version":1,"x":0}', b'{"chats":[],"chats":[],"version":1}',
    b'{"chats":[], "version":1}',                     # not canonical: whitespace
    b'{"version":1,"chats":[]}',                      # not canonical: key order
    b"[" * 50_000 + b"]" * 50_000,
    _doc(messages=float("nan")), _doc(messages=True),
    _doc(messages=-1), _doc(messages=2**53), _doc(messages="6"), _doc(attachments=1.5),
    _doc(name=""), _doc(name=None), _doc(name="x" * 4097), _doc(kind="Upper"),
    _doc(first="yesterday"), _doc(first=None), _doc(first="2025-01-01T00:00:00"),
    _doc(files=[]), _doc(files=["b", "a"]), _doc(files=["a", "a"]), _doc(files=[1]),
    _doc(files=["../etc/passwd", "b/_chat.txt"]), _doc(files=["/abs", "b/_chat.txt"]),
    _doc(files=["a//b", "b/_chat.txt"]), _doc(files=["a/./b", "b/_chat.txt"]),
    _doc(extra=1), _doc(name="X").replace(b'"X"', b'"\\ud800"'),
    _doc(name="X").replace(b'"X"', b'"\\u0058"'),  # not canonical: an escape
    _two(_doc(name="b"), _doc(name="a")),            # not canonical: entry order
    _doc().replace(b',"parsed":[{"path":"b/_chat.txt","warnings":[]}]', b""),
    _doc().replace(b'"path":"b/_chat.txt"', b'"path":"b/other.txt"'),  # source not parsed
    _doc(source="a/IMG-1.jpg"),                     # source parsed nowhere
    _doc().replace(b'"warnings":[]', b'"warnings":[""]'),
    _doc().replace(b'"warnings":[]', b'"warnings":[1]'),
    _doc().replace(b'"warnings":[]', b'"warnings":{}'),
    _doc().replace(b'"warnings":[]}]', b'"warnings":[]},{"path":"a","warnings":[]}]'),
    _doc().replace(b'"messages":6', b'"messages":Infinity'),
])
def test_decode_refuses(data: bytes) -> None:
    with pytest.raises(FormatError):
        catalogue.decode(data)


def test_decode_accepts_the_canonical_document_these_refusals_are_made_from() -> None:
    assert catalogue.decode(_doc())[0].name == "Family"


def test_encode_refuses_an_invalid_entry() -> None:
    with pytest.raises(FormatError):
        catalogue.encode([CatalogueEntry("x", "k", 1, None, None, 0, ("f",), "f")])


@settings(max_examples=2000, deadline=None)  # 1.9 s at load 19 (was 200: 0.2 s)
@given(st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_decode_raises_only_format_error(data: bytes) -> None:
    try:
        catalogue.decode(data)
    except FormatError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789/.,:-[] APMapm\u200e\u202f\nAB:x", max_size=300))
def test_whatsapp_parser_never_raises_and_drops_no_line(text: str) -> None:
    result = parse_text("c.txt", text.encode())
    assert result.chats or result.warnings
    for chat in result.chats:
        kept = "\n".join(m.text for m in chat.messages)
        for line in text.splitlines():
            assert line in kept or HEADER.match(line), line


def test_all_is_complete() -> None:
    import types

    public = {n for n in dir(chats_pkg) if not n.startswith("_") and n != "annotations"
              and not isinstance(getattr(chats_pkg, n), types.ModuleType)}
    assert public | {"catalogue"} == set(chats_pkg.__all__)
