"""The file list: compact chunk-id lists, and records that span segments (spec §7)."""

from __future__ import annotations

import filecmp
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from repo_helpers import make_db, restored_root

from strongroom import Repository
from strongroom.errors import FormatError
from strongroom.repo import manifest
from strongroom.repo.manifest import (
    KIND_DIR,
    KIND_FILE,
    ChunkIds,
    Entry,
    SegmentWriter,
    decode_record,
    decode_records,
    read_records,
    record_spans,
)


def _ids(n: int, seed: int = 0) -> list[bytes]:
    rnd = random.Random(seed)
    return [rnd.randbytes(32) for _ in range(n)]


def _write(entries: list[Entry]) -> list[bytes]:
    """The segments a writer produces for ``entries`` (plaintexts, in order)."""
    stored: list[bytes] = []

    def store(data: bytes) -> bytes:
        stored.append(data)
        return len(stored).to_bytes(32, "big")

    writer = SegmentWriter(store)
    for e in entries:
        writer.add(e)
    writer.flush()
    assert len(writer.segments) == len(stored)
    return stored


def _same(a: list[Entry], b: list[Entry]) -> None:
    assert [(e.kind, e.path, e.size, e.chunks.raw) for e in a] == \
        [(e.kind, e.path, e.size, e.chunks.raw) for e in b]


def test_chunk_ids_behave_like_a_sequence_of_ids() -> None:
    ids = _ids(5)
    c = ChunkIds.of(ids)
    assert len(c) == 5 and list(c) == ids and c == ids and c[0] == ids[0] and c[-1] == ids[4]
    assert c[1:3] == ids[1:3] and c.raw == b"".join(ids)
    assert ChunkIds() == [] and len(ChunkIds()) == 0
    with pytest.raises(IndexError):
        c[5]
    with pytest.raises(ValueError):
        ChunkIds(b"x" * 33)
    with pytest.raises(ValueError):
        ChunkIds.of([b"short"])
    assert ids[0].hex() not in repr(c) and "5 ids" in repr(c)


def test_a_record_longer_than_a_segment_is_cut_and_read_back(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(manifest, "SEGMENT_MAX", 4096)
    monkeypatch.setattr(manifest, "SEGMENT_TARGET", 1024)
    entries = [Entry(KIND_DIR, "d", 0o40755, 1),
               Entry(KIND_FILE, "d/small", 0o100644, 2, 10, chunks=ChunkIds.of(_ids(2, 1))),
               Entry(KIND_FILE, "d/huge.db", 0o100644, 3, 10**9, chunks=ChunkIds.of(_ids(1000, 2))),
               Entry(KIND_FILE, "d/z", 0o100644, 4, 10, chunks=ChunkIds.of(_ids(3, 3)))]
    segments = _write(entries)
    assert len(segments) >= 32000 // 4096
    assert max(len(s) for s in segments) == 4096  # cut exactly at the limit
    _same(list(read_records(segments, "s")), entries)


def test_small_records_still_end_segments_on_record_boundaries() -> None:
    # The cut after the record reaching SEGMENT_TARGET keeps the old segmentation,
    # so an unchanged run of files gives the same segment blobs (they deduplicate).
    entries = [Entry(KIND_FILE, f"f{i:05d}", 0o100644, i, 1, chunks=ChunkIds.of(_ids(1, i)))
               for i in range(4000)]
    segments = _write(entries)
    assert len(segments) > 1
    for seg in segments:
        assert len(list(read_records([seg], "s"))) > 0  # each parses on its own


def test_a_file_list_that_ends_inside_a_record_is_refused(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(manifest, "SEGMENT_MAX", 4096)
    entries = [Entry(KIND_FILE, "big", 0o100644, 1, 1, chunks=ChunkIds.of(_ids(500)))]
    segments = _write(entries)
    with pytest.raises(FormatError, match="truncated"):
        list(read_records(segments[:-1], "snapshots/x"))
    with pytest.raises(FormatError, match="truncated"):
        list(read_records([segments[0][:10]], "snapshots/x"))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(counts=st.lists(st.integers(0, 300), min_size=1, max_size=12),
       cuts=st.lists(st.integers(1, 5000), max_size=20))
def test_any_cutting_of_the_stream_decodes_the_same(counts: list[int], cuts: list[int]) -> None:
    entries = [Entry(KIND_FILE, f"dir/file{i}", 0o100644, i, n, chunks=ChunkIds.of(_ids(n, i)))
               for i, n in enumerate(counts)]
    stream = b"".join(_write(entries))
    pos, pieces = 0, []
    for c in cuts:
        pieces.append(stream[pos : pos + c])
        pos += c
    pieces.append(stream[pos:])
    _same(list(read_records(pieces, "s")), entries)


def _parsed(parse, data: bytes) -> list[tuple[object, ...]] | str:  # type: ignore[no-untyped-def]
    try:
        return [(e.kind, e.path, e.mode, e.mtime_ns, e.size, e.inode, e.ctime_ns, e.link,
                 e.chunks.raw) for e in parse(data)]
    except FormatError:  # (with two faults, the two may name different ones first)
        return "FormatError"


@settings(max_examples=200, deadline=None, derandomize=True)
@given(counts=st.lists(st.integers(0, 3), min_size=1, max_size=6),
       at=st.integers(0, 10**6), value=st.integers(0, 255), cut=st.booleans())
def test_check_s_record_parser_agrees_with_the_stream_parser(
        counts: list[int], at: int, value: int, cut: bool) -> None:
    # check reads a segment's fixed fields (record_spans) and decodes a record only when it
    # has not seen it (decode_record): the pair must accept and refuse what read_records does.
    entries = [Entry(KIND_FILE if n else KIND_DIR, f"d/f{i}", 0o100644, i, n,
                     chunks=ChunkIds.of(_ids(n, i))) for i, n in enumerate(counts)]
    data = bytearray(b"".join(e.encode() for e in entries))
    at %= len(data)
    if cut:
        del data[at:]
    else:
        data[at] = value
    stream = bytes(data)
    both = _parsed(lambda d: [decode_record(d, s[0], "s") for s in record_spans(d, "s")], stream)
    assert both == _parsed(lambda d: list(decode_records(d, "s")), stream)


def test_record_spans_name_each_record_and_refuse_a_cut_one() -> None:
    entries = [Entry(KIND_DIR, "d", 0o40755, 1),
               Entry(KIND_FILE, "d/a", 0o100644, 2, 10, chunks=ChunkIds.of(_ids(3, 1)))]
    recs = [e.encode() for e in entries]
    data = b"".join(recs)
    assert record_spans(data, "s") == [(0, len(recs[0]), KIND_DIR, 0),
                                       (len(recs[0]), len(recs[1]), KIND_FILE, 3)]
    for end in (len(data) - 1, len(recs[0]) + 10):
        with pytest.raises(FormatError, match="snapshots/x: truncated manifest record"):
            record_spans(data[:end], "snapshots/x")
    with pytest.raises(FormatError, match="truncated"):
        decode_record(data[:-1], len(recs[0]), "snapshots/x")
    with pytest.raises(FormatError, match="bad manifest record"):
        record_spans(b"\x07" + data[1:], "snapshots/x")


def test_backup_of_a_file_whose_id_list_spans_segments(
        repo: Repository, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(manifest, "SEGMENT_MAX", 4096)
    src = tmp_path / "src"
    src.mkdir()
    make_db(src / "msgstore.db", rows=20_000)  # one blob per page: hundreds of ids
    (src / "note.txt").write_text("after the database")
    first = repo.backup([src])
    doc = repo._engine.find_doc("latest")
    eng = repo._engine
    sizes = [len(eng.read_blob(s)) for s in doc.segments]
    assert len(sizes) >= 3 and max(sizes) <= 4096, sizes
    repo.restore("latest", tmp_path / "out")
    out = restored_root(tmp_path / "out", src)
    for name in ("msgstore.db", "note.txt"):
        assert filecmp.cmp(src / name, out / name, shallow=False)
    assert repo.check(read_data=True).ok
    second = repo.backup([src])  # the parent merge reads the spanning record back
    assert first.files == second.files == second.files_unchanged == 2
    assert second.bytes_read == 0


# -- records written as a file is read, and read back without their chunk ids ----------------

def _hashing_store(stored: dict[bytes, bytes]):  # type: ignore[no-untyped-def]
    import hashlib

    def store(data: bytes) -> bytes:
        bid = hashlib.sha256(data).digest()
        stored[bid] = data
        return bid
    return store


@settings(max_examples=150, deadline=None, derandomize=True)
@given(files=st.lists(st.tuples(st.integers(0, 40), st.integers(1, 90), st.sampled_from("asf"),
                                st.integers(1, 9)), min_size=1, max_size=10))
def test_a_streamed_record_gives_the_segments_add_gives(
        files: list[tuple[int, int, str, int]]) -> None:
    # Tiny segments, so that a record's fixed fields (45 bytes) straddle segment ends.
    from unittest import mock

    with mock.patch.object(manifest, "SEGMENT_MAX", 160), \
            mock.patch.object(manifest, "SEGMENT_TARGET", 64):
        plain: dict[bytes, bytes] = {}
        streamed: dict[bytes, bytes] = {}
        a, b = SegmentWriter(_hashing_store(plain)), SegmentWriter(_hashing_store(streamed))
        for i, (n, name_len, how, piece) in enumerate(files):
            ids = _ids(n, i)
            entry = Entry(KIND_FILE, f"{i:02d}" + "p" * name_len, 0o100644, i, 1000 + n,
                          7, 9, chunks=ChunkIds.of(ids))
            if how == "s" or how == "f":  # streamed: size unknown until the end
                b.begin(Entry(KIND_FILE, entry.path, entry.mode, i, 1, 7, 9))
                for at in range(0, n, piece):
                    b.write_ids(b"".join(ids[at:at + piece]))
                if how == "f":  # the file turned out unreadable: dropped
                    b.abort()
                    continue
                done = b.end(1000 + n)
                assert done.size == 1000 + n and len(done.chunks) == 0
                b.add(done)  # the walk hands it on as usual: nothing more is written
            else:
                b.add(entry)
            a.add(entry)
        a.flush()
        b.flush()
        assert b.segments == a.segments
        assert all(streamed[s] == plain[s] for s in b.segments)


def test_a_streamed_record_holds_no_more_than_two_segments() -> None:
    import tracemalloc

    ids = b"".join(_ids(2048, 5))
    stored: list[int] = []
    writer = SegmentWriter(lambda data: stored.append(len(data)) or bytes(32))  # type: ignore[func-returns-value]
    tracemalloc.start()
    try:
        writer.begin(Entry(KIND_FILE, "big.db", 0o100644, 1, 0, 2, 3))
        for _ in range(160):  # 160 x 2,048 ids: a 10.5 MB list
            writer.write_ids(ids)
        writer.end(1)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(stored) >= 160 * len(ids)
    # The record's first segment is held until its count is written, plus the one
    # being filled and its copy as it is stored: about 3 MiB, never the 10.5 MB list.
    assert peak < 3.5 * manifest.SEGMENT_MAX, peak


@settings(max_examples=80, deadline=None, derandomize=True)
@given(counts=st.lists(st.integers(0, 300), min_size=1, max_size=10),
       cuts=st.lists(st.integers(1, 5000), max_size=20),
       want=st.lists(st.booleans(), min_size=10, max_size=10))
def test_the_record_reader_reads_what_read_records_reads(
        counts: list[int], cuts: list[int], want: list[bool]) -> None:
    entries = [Entry(KIND_FILE, f"dir/file{i}", 0o100644, i, n, chunks=ChunkIds.of(_ids(n, i)))
               for i, n in enumerate(counts)]
    stream = b"".join(_write(entries))
    pos, pieces = 0, []
    for c in cuts:
        pieces.append(stream[pos: pos + c])
        pos += c
    pieces.append(stream[pos:])
    reader = manifest.RecordReader(pieces, "s")
    got = []
    while (e := reader.head()) is not None:
        if want[len(got)]:
            e.chunks = reader.chunks()
            assert reader.chunks() is e.chunks  # asked twice: read once
        got.append(e)
    assert [(e.path, e.size) for e in got] == [(e.path, e.size) for e in entries]
    for e, w, orig in zip(got, want, entries, strict=False):
        if w:
            assert e.chunks.raw == orig.chunks.raw


def test_the_record_reader_refuses_what_read_records_refuses(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(manifest, "SEGMENT_MAX", 4096)
    entries = [Entry(KIND_FILE, "big", 0o100644, 1, 1, chunks=ChunkIds.of(_ids(500))),
               Entry(KIND_FILE, "next", 0o100644, 1, 1, chunks=ChunkIds.of(_ids(2)))]
    segments = _write(entries)
    for cut in (segments[:-1], [segments[0][:10]]):
        reader = manifest.RecordReader(cut, "snapshots/x")
        with pytest.raises(FormatError, match="truncated"):
            while reader.head() is not None:
                pass
    reader = manifest.RecordReader(segments[:2], "snapshots/x")
    assert reader.head() is not None
    with pytest.raises(FormatError, match="truncated"):
        reader.chunks()
    bad = bytearray(b"".join(segments))
    bad[0] = 9  # no such kind
    with pytest.raises(FormatError, match="bad manifest record"):
        manifest.RecordReader([bytes(bad[:20]), bytes(bad[20:])], "snapshots/x").head()
    unsafe = Entry(KIND_FILE, "a/../b", 0o100644, 1, 1, chunks=ChunkIds.of(_ids(300))).encode()
    with pytest.raises(FormatError, match="unsafe path"):
        manifest.RecordReader([unsafe[:30], unsafe[30:]], "snapshots/x").head()


def test_a_skipped_chunk_list_is_never_held() -> None:
    import tracemalloc

    big = Entry(KIND_FILE, "big.db", 0o100644, 1, 1, chunks=ChunkIds.of(_ids(120_000, 3)))
    segments = _write([big, Entry(KIND_FILE, "z", 0o100644, 1, 1)])
    assert len(segments) >= 3
    tracemalloc.start()
    try:
        reader = manifest.RecordReader(iter(segments), "s")
        assert reader.head() is not None  # the 3.8 MB list is not read ...
        assert reader.head().path == "z"  # type: ignore[union-attr]  # ... only skipped
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024, peak


def test_a_streamed_file_that_fails_midway_is_left_out(
        repo: Repository, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(manifest, "SEGMENT_MAX", 4096)
    src = tmp_path / "src"
    src.mkdir()
    make_db(src / "a.db", rows=20_000)
    make_db(src / "b.db", rows=20_000, seed=2)  # read and stored, then its read fails
    (src / "c.txt").write_text("after the databases")

    def fail(path: Path) -> None:
        if path.name == "b.db":
            raise OSError(5, "Input/output error")

    repo._engine._test_only_after_read = fail
    summary = repo.backup([src])
    assert summary.files == 2 and len(summary.warnings) == 1
    assert "b.db: unreadable (Input/output error)" in summary.warnings[0]
    repo.restore("latest", tmp_path / "out")
    out = restored_root(tmp_path / "out", src)
    assert sorted(p.name for p in out.iterdir()) == ["a.db", "c.txt"]
    assert filecmp.cmp(src / "a.db", out / "a.db", shallow=False)
    assert repo.check(read_data=True).ok
    repo._engine._test_only_after_read = None
    again = repo.backup([src])  # the parent's records are read back, b.db is stored now
    assert again.files == 3 and again.files_unchanged == 2
    repo.restore("latest", tmp_path / "out2")
    assert filecmp.cmp(src / "b.db", restored_root(tmp_path / "out2", src) / "b.db", shallow=False)
