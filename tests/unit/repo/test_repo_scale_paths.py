"""Restore and check at scale (issue 12): each frame read once, check proportional to new content."""

from __future__ import annotations

import dataclasses
import filecmp
import itertools
import random
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from repo_helpers import Clock, Rng, SpyBackend, make_db, restored_root

from strongroom import BackupKey, Repository
from strongroom.progress import NullProgress
from strongroom.repo import check as check_mod
from strongroom.repo import manifest
from strongroom.repo import restore as restore_mod
from strongroom.repo.pack import pack_name


class RangeSpy(SpyBackend):
    """Records every ranged read as (name, offset, length)."""

    def __init__(self) -> None:
        super().__init__()
        self.ranges: list[tuple[str, int, int]] = []

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        self.ranges.append((name, offset, length))
        return super().get_range(name, offset, length)


def _change_pages(db_path: Path, seed: int, n: int = 40) -> None:
    """Scattered in-place changes, as a day of read receipts makes them."""
    rnd = random.Random(seed)
    db = sqlite3.connect(db_path)
    top = db.execute("select max(id) from m").fetchone()[0]
    db.executemany("update m set status = ? where id = ?",
                   [(rnd.randrange(2, 9), rnd.randrange(1, top)) for _ in range(n)])
    db.commit()
    db.close()


def _db_backed_up_twice(repo: Repository, tmp_path: Path, seed: int, also: str = "") -> Path:
    """A database backed up, changed in scattered pages, and backed up again."""
    src = tmp_path / "src"
    src.mkdir()
    make_db(src / "msgstore.db", rows=20_000)
    if also:
        (src / "z.txt").write_text(also)
    repo.backup([src])
    _change_pages(src / "msgstore.db", seed=seed)
    repo.backup([src])
    return src


@pytest.fixture
def spy() -> RangeSpy:
    return RangeSpy()


@pytest.fixture
def db_repo(spy: RangeSpy, key: BackupKey) -> Repository:
    return Repository.create(spy, key, clock=Clock(), rng=Rng(11))


@pytest.mark.parametrize("frame_cache", [True, False])
def test_restore_of_a_changed_database_reads_each_frame_once(
        db_repo: Repository, spy: RangeSpy, tmp_path: Path, frame_cache: bool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    if not frame_cache:
        # The plan itself must ask for each frame once per file: without the small
        # cache of recent frames nothing hides a frame the plan asks for twice (a
        # 30-day repository fetched 926 frames for 566 it needed).
        monkeypatch.setattr(restore_mod, "FRAME_CACHE_BYTES", 0)
    src = _db_backed_up_twice(db_repo, tmp_path, seed=3)
    # The changed pages sit in new frames; the file alternates between old and new.
    eng = db_repo._engine
    entry = next(e for e in eng.entries(eng.find_doc("latest")) if e.path.endswith(".db"))
    packs = [eng.index().blobs[c][0] for c in entry.chunks]
    assert len(set(packs)) >= 2 and sum(a != b for a, b in itertools.pairwise(packs)) > 10

    spy.ranges.clear()
    db_repo.restore("latest", tmp_path / "out")
    out = restored_root(tmp_path / "out", src)
    assert filecmp.cmp(src / "msgstore.db", out / "msgstore.db", shallow=False)
    reads = [r for r in spy.ranges if r[0].startswith("data/")]
    covered: dict[str, list[tuple[int, int]]] = {}
    for name, off, length in reads:
        covered.setdefault(name, []).append((off, off + length))
    for name, spans in covered.items():  # no byte of a pack is read twice
        spans.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), (name, spans)
    # Far fewer requests than switches between packs: spans per pack stay open.
    assert len(reads) <= 2 * len(set(packs)) + 4


def test_restore_with_a_frame_missing_still_names_the_file(
        db_repo: Repository, spy: RangeSpy, tmp_path: Path) -> None:
    src = _db_backed_up_twice(db_repo, tmp_path, seed=4, also="after")
    eng = db_repo._engine
    old, entry = (next(e for e in eng.entries(d) if e.path.endswith(".db"))
                  for d in eng.snapshot_docs())
    # A pack holding only changed pages (the file lists are in packs of their own).
    victim = eng.index().blobs[next(c for c in entry.chunks if c not in set(old.chunks))][0]
    segs = {eng.index().blobs[s][0] for d in eng.snapshot_docs() for s in d.segments}
    assert victim not in segs
    spy.inner.delete(pack_name(victim))
    summary = db_repo.restore("latest", tmp_path / "out", allow_damaged=True)
    assert summary.damaged == [entry.path]
    assert (restored_root(tmp_path / "out", src) / "z.txt").read_text() == "after"
    assert not (restored_root(tmp_path / "out", src) / "msgstore.db").exists()


def test_check_reads_a_shared_file_list_segment_once(
        repo: Repository, backend: SpyBackend, tree: Path) -> None:
    for _ in range(3):
        repo.backup([tree])  # nothing changes: the three snapshots share their segments
    segs = {s for d in repo._engine.snapshot_docs() for s in d.segments}
    repo._engine._index = None
    backend.gets.clear()
    assert repo.check().ok
    data_gets = [n for n in backend.gets if n.startswith("data/")]
    assert len(data_gets) == len(segs)  # one ranged read per unique segment, not per snapshot


def test_check_finds_damage_in_a_changed_database_block(
        db_repo: Repository, spy: RangeSpy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A small number so a small database takes the compare-with-last-version path.
    monkeypatch.setattr(check_mod, "BIG_FILE_CHUNKS", 16)
    _db_backed_up_twice(db_repo, tmp_path, seed=5)
    assert db_repo.check().ok
    eng = db_repo._engine
    docs = eng.snapshot_docs()
    old, new = (next(e for e in eng.entries(d) if e.path.endswith(".db")) for d in docs)
    only_new = [c for c in new.chunks if c not in set(old.chunks)]
    assert only_new
    victim = eng.index().blobs[only_new[-1]][0]
    spy.inner.delete(pack_name(victim))
    eng._index = None
    report = db_repo.check()
    bad = {p.object: p for p in report.problems}
    assert not report.ok and pack_name(victim) in bad
    assert new.path in bad[pack_name(victim)].files


def test_changed_chunk_ids_are_found_by_position() -> None:
    rnd = random.Random(2)
    old = [rnd.randbytes(manifest.ID_SIZE) for _ in range(3000)]
    new = list(old)
    for i in (0, 5, 6, 1999, 2999):
        new[i] = rnd.randbytes(manifest.ID_SIZE)
    new[7] = new[7][:31] + bytes([new[7][31] ^ 1])  # one bit of one id
    new += [rnd.randbytes(manifest.ID_SIZE) for _ in range(3)]  # the file grew
    got = check_mod._changed(b"".join(new), b"".join(old))
    assert got == [new[i] for i in (0, 5, 6, 7, 1999, 2999, 3000, 3001, 3002)]
    assert check_mod._changed(b"".join(old), b"".join(old)) == []


@settings(max_examples=150, deadline=None, derandomize=True)
@given(n=st.integers(0, 5000), extra=st.integers(-40, 40),
       edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 31), st.integers(1, 255)),
                      max_size=60))
def test_changed_ids_agree_with_an_id_by_id_comparison(
        n: int, extra: int, edits: list[tuple[int, int, int]]) -> None:
    # Edits of single bytes too (an XOR with zero bytes inside one id), across block ends.
    rnd = random.Random(n)
    old = rnd.randbytes(manifest.ID_SIZE * n)
    new = bytearray(old[: manifest.ID_SIZE * max(0, n + min(extra, 0))])
    new += rnd.randbytes(manifest.ID_SIZE * max(0, extra))
    for at, byte, flip in edits:
        if new:
            new[at % (len(new) // manifest.ID_SIZE) * manifest.ID_SIZE + byte] ^= flip
    ids = [bytes(new[i : i + manifest.ID_SIZE]) for i in range(0, len(new), manifest.ID_SIZE)]
    want = [c for i, c in enumerate(ids)
            if i >= n or c != old[i * manifest.ID_SIZE : (i + 1) * manifest.ID_SIZE]]
    assert check_mod._changed(bytes(new), old) == want


def test_check_names_every_path_of_damaged_content_seen_twice(
        repo: Repository, backend: SpyBackend, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    body = random.Random(3).randbytes(50_000)
    (src / "a" / "one.bin").write_bytes(body)
    (src / "two.bin").write_bytes(body)  # the same chunk list at a second path
    repo.backup([src])
    (src / "three.bin").write_bytes(body)
    repo.backup([src])
    eng = repo._engine
    entry = next(e for e in eng.entries(eng.find_doc("latest")) if e.path.endswith("two.bin"))
    victim = pack_name(eng.index().blobs[entry.chunks[0]][0])
    backend.inner.delete(victim)
    eng._index = None
    report = repo.check()
    files = {p.object: p.files for p in report.problems}[victim]
    assert {f.rsplit("/", 1)[-1] for f in files} == {"one.bin", "two.bin", "three.bin"}


def test_restore_plans_a_bounded_number_of_files_ahead(
        repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from strongroom.repo import restore as restore_mod

    monkeypatch.setattr(restore_mod, "MAX_QUEUED_STEPS", 8)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(300):  # empty files need no frame at all
        (src / f"e{i:03d}").write_bytes(b"")
    (src / "last.txt").write_text("x")
    repo.backup([src])
    original = restore_mod.RestoreRun._file
    planned: list[int] = []
    steps_of = restore_mod.RestoreRun._steps

    def count(self, items):  # type: ignore[no-untyped-def]
        for step in steps_of(self, items):
            planned.append(1)
            yield step

    monkeypatch.setattr(restore_mod.RestoreRun, "_steps", count)
    consumed: list[int] = []

    def watch(self, where, name, entry, steps, replaces):  # type: ignore[no-untyped-def]
        consumed.append(len(planned))
        return original(self, where, name, entry, steps, replaces)

    monkeypatch.setattr(restore_mod.RestoreRun, "_file", watch)
    repo.restore("latest", tmp_path / "out")
    # When the n-th file starts, at most n + MAX_QUEUED_STEPS + a few steps were planned.
    assert all(p <= i + 8 + 3 for i, p in enumerate(consumed)), consumed[:20]
    assert (restored_root(tmp_path / "out", src) / "last.txt").read_text() == "x"


def test_restore_of_many_small_files_with_a_short_plan(
        repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A span sent early because the writer reached it must not take more frames.
    from strongroom.repo import restore as restore_mod

    monkeypatch.setattr(restore_mod, "MAX_QUEUED_STEPS", 2)
    src = tmp_path / "src"
    src.mkdir()
    rnd = random.Random(9)
    for i in range(400):  # text: compressible, many files per frame
        (src / f"m{i:03d}.txt").write_text(f"message {i} " * rnd.randrange(50, 400))
    repo.backup([src])
    repo.restore("latest", tmp_path / "out")
    out = restored_root(tmp_path / "out", src)
    assert all(filecmp.cmp(src / f"m{i:03d}.txt", out / f"m{i:03d}.txt", shallow=False)
               for i in range(400))


def test_a_blob_in_no_index_inside_a_database_names_the_file(
        db_repo: Repository, tmp_path: Path) -> None:
    from strongroom.errors import DataDamaged

    src = _db_backed_up_twice(db_repo, tmp_path, seed=6, also="after")
    eng = db_repo._engine
    entry = next(e for e in eng.entries(eng.find_doc("latest")) if e.path.endswith(".db"))
    del eng.index().blobs[entry.chunks[len(entry.chunks) // 2]]  # a tombstone in the table
    with pytest.raises(DataDamaged, match=r"is in no index \(affects .*msgstore\.db\)"):
        db_repo.restore("latest", tmp_path / "out")
    summary = db_repo.restore("latest", tmp_path / "out2", allow_damaged=True)
    assert summary.damaged == [entry.path]
    root = restored_root(tmp_path / "out2", src)
    assert (root / "z.txt").read_text() == "after" and not (root / "msgstore.db").exists()


def test_the_plan_of_a_database_is_the_same_searched_in_short_batches(
        db_repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The plan searches a file's chunks PLAN_BATCH at a time; runs of a frame, pieces
    # and blobs in no index must not depend on where a batch ends.
    from strongroom.errors import DataDamaged

    src = _db_backed_up_twice(db_repo, tmp_path, seed=8, also="after")
    eng = db_repo._engine
    entry = next(e for e in eng.entries(eng.find_doc("latest")) if e.path.endswith(".db"))
    run = restore_mod.RestoreRun(eng, NullProgress(), restore_mod.RestoreOptions())

    def plan() -> list[tuple[int, object, object]]:
        planned = dataclasses.replace(entry)  # the plan drops its chunk ids
        return list(run._steps(iter([(planned, "write", "")])))

    whole = plan()
    assert len(entry.chunks) < restore_mod.PLAN_BATCH and len(whole) >= 20
    for batch in (1, 5, 64):
        monkeypatch.setattr(restore_mod, "PLAN_BATCH", batch)
        assert plan() == whole
    db_repo.restore("latest", tmp_path / "out")
    assert filecmp.cmp(src / "msgstore.db", restored_root(tmp_path / "out", src) / "msgstore.db",
                       shallow=False)
    # Blobs in no index (a tombstone, a blob never stored) in two different batches.
    table = eng.index().blobs
    lost = entry.chunks[len(entry.chunks) // 2]
    del table[entry.chunks[7]], table[lost]
    missing = [s for s in plan() if s[0] == restore_mod._MISSING]
    assert [m[1] for m in missing] == [entry.chunks[7], lost]
    with pytest.raises(DataDamaged, match=r"is in no index \(affects .*msgstore\.db\)"):
        db_repo.restore("latest", tmp_path / "out2")


def test_a_planned_file_s_chunk_ids_are_not_held_while_it_is_written(
        db_repo: Repository, tmp_path: Path) -> None:
    # 32 bytes per chunk (4 MB for a 500 MB store) held until the file is written
    # otherwise: the plan is done with them once its first step is out.
    src = _db_backed_up_twice(db_repo, tmp_path, seed=9)
    eng = db_repo._engine
    entry = next(e for e in eng.entries(eng.find_doc("latest")) if e.path.endswith(".db"))
    chunks = entry.chunks
    run = restore_mod.RestoreRun(eng, NullProgress(), restore_mod.RestoreOptions())
    steps = run._steps(iter([(entry, "write", ""), (entry, "skip", "")]))
    first = next(steps)
    rec = eng.index().blobs.record(chunks[0])
    assert rec is not None and first[0] == rec[0] << 32 | rec[3]  # the first frame
    assert len(entry.chunks) == 0
    rest = list(steps)
    assert rest[-1][2] is None and rest[-1][0] == entry.size  # planned in full
    db_repo.restore("latest", tmp_path / "out")
    assert filecmp.cmp(src / "msgstore.db", restored_root(tmp_path / "out", src) / "msgstore.db",
                       shallow=False)


def test_pieces_of_a_frame_spread_over_a_database_are_written_from_the_frame(
        db_repo: Repository, tmp_path: Path) -> None:
    # A frame whose pages are spread over the file is written from where it was
    # decoded, even in pieces under half of it, as long as its pieces together use
    # at least half of it; otherwise they are copies (frames held by queued writes
    # stay within twice their bytes).
    import threading

    from strongroom.repo.target import FileSink

    src = _db_backed_up_twice(db_repo, tmp_path, seed=7)
    frames: dict[int, tuple[object, int]] = {}  # id(frame) -> (frame, bytes written from it)
    small_views = [0]
    lock = threading.Lock()

    class Recording(FileSink):
        def pwritev(self, pieces: Sequence[bytes | memoryview], offset: int) -> int:
            for data in pieces:
                if isinstance(data, memoryview):
                    with lock:
                        frame, n = frames.get(id(data.obj), (data.obj, 0))
                        frames[id(data.obj)] = (frame, n + len(data))
                        small_views[0] += 2 * len(data) < len(data.obj)  # type: ignore[arg-type]
            return super().pwritev(pieces, offset)

    db_repo._engine._test_only_open_for_write = Recording
    db_repo.restore("latest", tmp_path / "out")
    out = restored_root(tmp_path / "out", src)
    assert filecmp.cmp(src / "msgstore.db", out / "msgstore.db", shallow=False)
    assert small_views[0] > 0  # pieces of spread frames, written without a copy
    for frame, n in frames.values():
        assert 2 * n >= len(frame)  # type: ignore[arg-type]


def test_each_pack_s_cipher_is_derived_once_for_its_spans(
        db_repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Small spans: each pack is read in several ranged reads, its key derived once.
    from strongroom.repo import engine as engine_mod

    monkeypatch.setattr(restore_mod, "MAX_SPAN_LOCAL", 64 * 1024)
    monkeypatch.setattr(restore_mod, "MAX_SPAN", 64 * 1024)
    src = _db_backed_up_twice(db_repo, tmp_path, seed=8)
    db_repo._engine.close()
    derived: list[bytes] = []
    real = engine_mod.pack_cipher

    def counting(key: BackupKey, salt: bytes):  # type: ignore[no-untyped-def]
        derived.append(salt)
        return real(key, salt)

    monkeypatch.setattr(engine_mod, "pack_cipher", counting)
    spy = db_repo._engine.backend
    assert isinstance(spy, RangeSpy)
    spy.ranges.clear()
    db_repo.restore("latest", tmp_path / "out")
    out = restored_root(tmp_path / "out", src)
    assert filecmp.cmp(src / "msgstore.db", out / "msgstore.db", shallow=False)
    data_reads = [r for r in spy.ranges if r[0].startswith("data/")]
    packs = {r[0] for r in data_reads}
    assert len(data_reads) > len(packs)  # some pack was read in more than one span
    # (The file list's pack is read through fetch_frame, which derives its own.)
    assert derived and len(derived) == len(set(derived)) <= len(packs)


def _daily_tree(repo: Repository, tmp_path: Path, days: int) -> Path:
    """Backed up ``days`` times; one file changes every day, so every day's file list is
    a new segment while the other records stay as they were (or only their times change)."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(40):
        (src / f"f{i:02d}.txt").write_text(f"file {i}\n" * (i + 1))
    for day in range(days):
        (src / "diary.txt").write_text(f"day {day}\n")
        if day == 2:  # times and mode only: the same path and chunk ids
            (src / "f07.txt").touch()
            (src / "f08.txt").chmod(0o600)
        repo.backup([src])
    return src


def test_check_decodes_each_distinct_record_once(
        repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _daily_tree(repo, tmp_path, days=4)
    eng = repo._engine
    docs = eng.snapshot_docs()
    assert len({s for d in docs for s in d.segments}) == 4  # no segment is shared
    listed = [e for d in docs for e in eng.entries(d)]
    # What a record's check depends on: kind, path, link target, chunk ids.
    distinct = {(e.kind, e.path, e.link, e.chunks.raw) for e in listed}
    assert len(distinct) < len(listed) - 100
    decoded: list[str] = []
    real = check_mod.decode_record

    def counted(data: bytes, pos: int, what: str) -> manifest.Entry:
        entry = real(data, pos, what)
        decoded.append(entry.path)
        return entry

    monkeypatch.setattr(check_mod, "decode_record", counted)
    eng._index = None
    assert repo.check(read_data=True).ok
    assert len(decoded) == len(distinct)


def test_check_names_every_snapshot_whose_unchanged_file_lost_its_data(
        repo: Repository, backend: SpyBackend, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "keep.bin").write_bytes(random.Random(5).randbytes(20_000))
    (src / "diary.txt").write_text("day 0\n")
    repo.backup([src], chats=False)  # (an empty chat catalogue would be day 0's blob too)
    first = {n for n in backend.inner.list("") if n.startswith(("data/", "index/"))}
    for day in (1, 2, 3):
        (src / "diary.txt").write_text(f"day {day}\n")
        repo.backup([src], chats=False)
    for name in first:  # day 0's packs and their index: keep.bin's data is in no index
        backend.inner.delete(name)
    repo._engine._index = None
    report = repo.check()
    docs = repo._engine.snapshot_docs()
    named = {p.object for p in report.problems}
    # A record that was not clean is checked again in each later snapshot (each is named).
    assert {f"snapshots/{d.id}" for d in docs} <= named
    later = [p for p in report.problems if p.object in {f"snapshots/{d.id}" for d in docs[1:]}]
    assert all(any(f.endswith("keep.bin") for f in p.files) for p in later)


def test_a_file_record_is_not_taken_for_a_clean_directory_record(repo: Repository) -> None:
    # The same path and chunk ids under two kinds: a directory's record is clean without a
    # look at its ids, so it must not make the file's record look clean.
    missing = bytes(range(32))
    rec = {kind: manifest.Entry(kind, "a/b", 0o644, 1, chunks=manifest.ChunkIds(missing)).encode()
           for kind in (manifest.KIND_DIR, manifest.KIND_FILE)}
    data = rec[manifest.KIND_DIR] + rec[manifest.KIND_FILE]
    run = check_mod.CheckRun(repo._engine, progress=NullProgress())
    index = repo._engine.index()
    spans = manifest.record_spans(data, "snapshots/x")
    assert [s[2] for s in spans] == [manifest.KIND_DIR, manifest.KIND_FILE]
    assert not run._check_records(data, spans, "snapshots/x", index)
    assert run.bad_objects == {"snapshots/x": "refers to data that is in no index"}
    assert dict(run.affected) == {"snapshots/x": {"a/b": None}}


def test_check_skips_clean_records_read_with_a_record_spanning_segments(
        db_repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Segments cut at 4 KiB: the database's chunk list spans several, so every segment is
    # read as part of one stream, and the small files' records with it.
    monkeypatch.setattr(manifest, "SEGMENT_MAX", 4096)
    monkeypatch.setattr(check_mod, "BIG_FILE_CHUNKS", 16)
    src = tmp_path / "src"
    src.mkdir()
    make_db(src / "a.db", rows=20_000)
    for i in range(20):
        (src / f"b{i:02d}.txt").write_text(f"note {i}\n")
    for day in range(3):
        if day:
            _change_pages(src / "a.db", seed=day)
        db_repo.backup([src])
    eng = db_repo._engine
    docs = eng.snapshot_docs()
    assert all(len(d.segments) >= 3 for d in docs)
    checked: list[str] = []
    real = check_mod.CheckRun._check_file

    def counted(self, snap, path, chunks, index):  # type: ignore[no-untyped-def]
        checked.append(path)
        return real(self, snap, path, chunks, index)

    monkeypatch.setattr(check_mod.CheckRun, "_check_file", counted)
    eng._index = None
    assert db_repo.check().ok
    notes = [p for p in checked if p.endswith(".txt")]
    assert len(notes) == len(set(notes)) == 20  # each once, not once per snapshot
    assert sum(p.endswith("a.db") for p in checked) == 3  # the database: each day's version
