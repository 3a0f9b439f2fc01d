"""Chunking rules, Padmé, and every parser on garbage (only FormatError/DataDamaged)."""

from __future__ import annotations

import io
import os
import random
import struct

import pytest

from strongroom.crypto import labels
from strongroom.crypto.keys import BackupKey
from strongroom.errors import DataDamaged, FormatError
from strongroom.repo import chunker
from strongroom.repo.config import ChunkerParams, parse_config
from strongroom.repo.index import decode_index, encode_index, read_index
from strongroom.repo.manifest import ChunkIds, Entry, decode_records, open_snapshot
from strongroom.repo.pack import PackWriter, padme, parse_header
from strongroom.repo.sealed import open_object

KEY = BackupKey.from_bytes(bytes(range(32)))


def _sqlite_header(page: int) -> bytes:
    return chunker.SQLITE_MAGIC + struct.pack(">H", page) + bytes(82)


@pytest.mark.parametrize("field,size", [(4096, 4096), (512, 512), (1, 65536), (32768, 32768)])
def test_sqlite_page_size(field: int, size: int) -> None:
    assert chunker.sqlite_page_size(_sqlite_header(field)) == size


@pytest.mark.parametrize("field", [0, 300, 256, 4097])
def test_invalid_sqlite_page_size_is_not_sqlite(field: int) -> None:
    assert chunker.sqlite_page_size(_sqlite_header(field)) is None
    assert chunker.classify("x.db", _sqlite_header(field))[0] == chunker.KIND_CDC


def test_sqlite_is_cut_on_page_boundaries() -> None:
    data = _sqlite_header(1024) + os.urandom(1024 * 5 - 100 + 10)
    parts = list(chunker.chunks(io.BytesIO(data), "a.db", len(data), ChunkerParams()))
    assert [len(p) for p, _ in parts] == [1024] * 5 + [10]
    assert all(c for _, c in parts) and b"".join(p for p, _ in parts) == data


def test_media_in_fixed_pieces_never_compressed() -> None:
    params = ChunkerParams(media_piece=4096)
    data = b"\xff\xd8\xff" + os.urandom(10_000)
    parts = list(chunker.chunks(io.BytesIO(data), "noext", len(data), params))
    assert [len(p) for p, _ in parts] == [4096, 4096, 10_003 - 8192]
    assert not any(c for _, c in parts)
    assert chunker.classify("clip.MP4", b"")[0] == chunker.KIND_MEDIA


def test_cdc_matches_whole_buffer_cut() -> None:
    params = ChunkerParams(cdc_min=1024, cdc_avg=4096, cdc_max=16384)
    data = random.Random(3).randbytes(300_000)
    parts = [p for p, _ in chunker.chunks(io.BytesIO(data), "f.txt", len(data), params)]
    assert b"".join(parts) == data and len(parts) > 20
    assert max(len(p) for p in parts) <= 16384


def test_padme() -> None:
    assert [padme(n) for n in (0, 1, 7, 9, 100, 1000)] == [0, 1, 7, 10, 104, 1024]
    for n in range(1, 5000, 7):
        p = padme(n)
        assert p >= n and p - n <= n * 0.12 + 1


def _pack() -> tuple[bytes, bytes]:
    pid = bytes(16)
    w = PackWriter(KEY, pid, lambda n: bytes(n))
    w.add_frame([(b"a" * 32, 0, b"hello" * 100), (b"b" * 32, 0, b"world")], True)
    w.add_frame([(b"c" * 32, 0, os.urandom(1000))], False)
    return pid, w.finish()[0]


def test_pack_header_round_trip_and_padding() -> None:
    pid, data = _pack()
    entries = dict(parse_header(KEY, pid, data, "p"))
    assert set(entries) == {b"a" * 32, b"b" * 32, b"c" * 32}
    assert padme(len(data)) == len(data)
    with pytest.raises(DataDamaged):
        parse_header(KEY, b"\x01" * 16, data, "p")  # another pack's name


def _garbage(seed: int, data: bytes) -> list[bytes]:
    rnd = random.Random(seed)
    out = [b"", b"\x00", data[:10], data[:-1], data + b"x", rnd.randbytes(len(data))]
    for _ in range(20):
        b = bytearray(data)
        b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
        out.append(bytes(b))
    return out


def test_pack_parser_on_garbage() -> None:
    pid, data = _pack()
    good = parse_header(KEY, pid, data, "p")
    for g in _garbage(1, data):
        try:
            # A flip inside a frame leaves the header intact (frames fail on read).
            assert parse_header(KEY, pid, g, "p") == good
        except DataDamaged:  # FormatError is a DataDamaged
            pass


def test_index_parser_on_garbage() -> None:
    pid, data = _pack()
    entries = parse_header(KEY, pid, data, "p")
    from strongroom.repo.index import PackInfo

    plain = encode_index([(pid, PackInfo(bytes(32), len(data)), entries)])
    assert decode_index(plain, "i")[0][2] == entries
    for g in _garbage(2, plain):
        try:
            decode_index(g, "i")
        except FormatError:
            pass
    for g in _garbage(3, b"SRX1" + bytes(100)):
        with pytest.raises(DataDamaged):
            read_index(g, KEY, "index/00")


def test_manifest_parsers_on_garbage() -> None:
    rec = Entry(1, "a/b", 0o100644, 5, 3, 4, 6, "", ChunkIds.of([b"x" * 32])).encode()
    assert [e.path for e in decode_records(rec, "s")] == ["a/b"]
    for g in _garbage(4, rec * 3):
        try:
            list(decode_records(g, "s"))
        except FormatError:
            pass
    for g in _garbage(5, b"SRS1" + bytes(80)):
        with pytest.raises(DataDamaged):
            open_snapshot(KEY, "00" * 16, g)
    with pytest.raises(FormatError):
        open_object(KEY, labels.LOCK, b"SRL1", "locks/x", b"nope")


def test_config_parser_on_garbage() -> None:
    for g in _garbage(6, b'{"format": "strongroom-repository", "version": 1, "id": "00"}'):
        with pytest.raises(DataDamaged):
            parse_config(g)
