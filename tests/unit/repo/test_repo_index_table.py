"""The compact in-memory blob table (DEFECT-4) behaves exactly like a dict of locations."""

from __future__ import annotations

import random
import subprocess
import sys
from dataclasses import astuple

import pytest

from strongroom.repo.index import BlobTable, Index, PackInfo
from strongroom.repo.manifest import ChunkIds
from strongroom.repo.pack import BlobLocation

SEED = 4040


def _loc(rnd: random.Random) -> BlobLocation:
    return BlobLocation(rnd.randrange(2), rnd.randrange(2), rnd.randrange(2**32),
                        rnd.randrange(2**32), rnd.randrange(2**32), rnd.randrange(2**32),
                        rnd.randrange(2**32))


@pytest.fixture()
def small_merges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Merge into the sorted buffers after a few additions, so every path runs often."""
    from strongroom.repo import index

    monkeypatch.setattr(BlobTable, "_MIN_MERGE", 3)
    monkeypatch.setattr(BlobTable, "_BULK_MAX", 50)  # held index entries merged often too
    monkeypatch.setattr(index, "_SORT_RUN", 4)  # items sorted in short runs and merged


def _same(table: BlobTable, model: dict[bytes, tuple[bytes, BlobLocation]]) -> None:
    assert len(table) == len(model)
    assert dict(table.items()) == model
    assert sorted(table.keys()) == sorted(model)
    assert sorted(table.values(), key=repr) == sorted(model.values(), key=repr)


def test_random_operations_match_a_dict(small_merges: None) -> None:
    rnd = random.Random(SEED)
    table = BlobTable()
    model: dict[bytes, tuple[bytes, BlobLocation]] = {}
    packs = [rnd.randbytes(16) for _ in range(5)]
    # Few distinct first bytes, so prefixes share buckets and insertion points vary.
    universe = [bytes([rnd.randrange(3), rnd.randrange(3)]) + rnd.randbytes(30)
                for _ in range(300)]
    for step in range(3000):
        bid, op = rnd.choice(universe), rnd.randrange(5)
        value = (rnd.choice(packs), _loc(rnd))
        if op == 0:
            table.add_new(value[0], [(bid, value[1])])
            model.setdefault(bid, value)
        elif op == 1:
            assert table.setdefault(bid, value) == model.setdefault(bid, value)
        elif op == 2:
            table[bid] = value
            model[bid] = value
        elif op == 3 and bid in model:
            del table[bid]
            del model[bid]
        else:
            assert (bid in table) == (bid in model)
            assert table.get(bid) == model.get(bid)
        if step % 250 == 0:
            _same(table, model)
    table.compact()
    _same(table, model)
    for bid in universe:
        assert (bid in table) == (bid in model)
        if bid in model:
            assert table[bid] == model[bid]


def test_an_id_straddling_two_stored_ids_is_not_found(small_merges: None) -> None:
    # ``probe`` occurs in the buffer across the boundary of ``a`` and ``b`` (offset 2);
    # only whole, aligned ids may match.
    a = b"\x01" * 30 + b"\x03\x03"
    b = b"\x01\x01" + b"\x09" * 30
    probe = b"\x01" * 28 + b"\x03\x03\x01\x01"
    loc = BlobLocation(0, 0, 36, 10, 10, 0, 10)
    table = BlobTable()
    table.add_new(b"p" * 16, [(a, loc), (b, loc)])
    table.compact()
    assert a in table and b in table
    assert probe not in table and table.get(probe) is None
    # Stored, it sorts between a and b; the misaligned occurrence comes first in the buffer.
    table[probe] = (b"q" * 16, loc)
    table.compact()
    assert table[probe] == (b"q" * 16, loc)
    assert table[a] == (b"p" * 16, loc)
    # The search of many ids skips the misaligned match too (and so do its callers).
    assert table.positions(probe + a + b) == [table._find(probe), table._find(a), table._find(b)]
    assert table.records([probe, a]) == [table.record(probe), table.record(a)]


def test_positions_agree_with_the_search_of_one_id(small_merges: None) -> None:
    # ``positions`` is the search of many ids at once (records, absent, restore's plan):
    # record numbers of stored ids, -1 for absent ones, a deleted blob's tombstone found,
    # a pending blob not (it is not in the buffers yet).
    rnd = random.Random(SEED + 2)
    table = BlobTable()
    assert table.positions(rnd.randbytes(64)) == [-1, -1]  # nothing stored yet
    # Shared first bytes, so that prefixes' ranges hold several ids; every prefix byte
    # value high and low, so that reading the prefix as a native u16 is tested both ways.
    ids = [bytes([rnd.choice([0, 1, 255]), rnd.choice([0, 2, 254])]) + rnd.randbytes(30)
           for _ in range(400)]
    for bid in ids[:300]:
        table[bid] = (rnd.choice([b"a" * 16, b"b" * 16]), _loc(rnd))
    table.compact()
    for bid in ids[:25]:
        del table[bid]
    for bid in ids[300:330]:
        table[bid] = (b"c" * 16, _loc(rnd))  # pending
    raw = b"".join(ids)
    got = table.positions(raw)
    assert got == [table._find(bid) if bid not in table._pending else -1 for bid in ids]
    assert all(at >= 0 for at in got[:300]) and got[330:] == [-1] * 70
    assert got[:25] == [table._find(bid) for bid in ids[:25]]  # tombstones
    assert all(table.record_at(at)[0] == BlobTable._GONE for at in got[:25])
    assert table.positions(b"") == []
    with pytest.raises(ValueError, match="32 bytes"):
        table.positions(raw[:40])
    # Its callers: the same answers as one id at a time, pending blobs included.
    assert table.records(ids) == [table.record(bid) for bid in ids]
    assert table.absent(ids) == [bid for bid in ids if bid not in table]
    assert table.absent(ChunkIds(raw)) == table.absent(ids)
    assert table.records([b"short", ids[40]]) == [None, table.record(ids[40])]
    assert table.absent([b"short", ids[40]]) == [b"short"]
    # After a merge (new buffers) the prefix bounds are made again.
    table.compact()
    assert table.positions(raw) == [table._find(bid) for bid in ids]


def test_absent_searches_a_long_list_a_batch_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from strongroom.repo import index

    monkeypatch.setattr(index, "_SEARCH_BATCH", 7)
    rnd = random.Random(SEED + 3)
    table = BlobTable()
    ids = [rnd.randbytes(32) for _ in range(100)]
    for bid in ids[::2]:
        table[bid] = (b"a" * 16, _loc(rnd))
    table.compact()
    del table[ids[10]]
    assert table.absent(ChunkIds(b"".join(ids))) == [bid for bid in ids if bid not in table]


def test_missing_and_malformed_ids(small_merges: None) -> None:
    rnd = random.Random(SEED)
    table = BlobTable()
    table.add_new(b"p" * 16, [(rnd.randbytes(32), _loc(rnd)) for _ in range(10)])
    absent = rnd.randbytes(32)
    assert absent not in table and b"short" not in table and 42 not in table
    with pytest.raises(KeyError):
        table[absent]
    with pytest.raises(KeyError):
        del table[absent]
    with pytest.raises(ValueError, match="32 bytes"):
        table[b"short"] = (b"p" * 16, _loc(rnd))
    with pytest.raises(ValueError, match="32 bytes"):
        table.add_new(b"p" * 16, [(b"x" * 33, _loc(rnd))])
    assert len(table) == 10


def test_first_location_wins_and_a_forgotten_blob_takes_a_new_one(small_merges: None) -> None:
    rnd = random.Random(SEED)
    old, new = b"o" * 16, b"n" * 16
    ids = sorted(rnd.randbytes(32) for _ in range(20))
    locs = [_loc(rnd) for _ in ids]
    idx = Index()
    idx.add_pack(old, PackInfo(b"s" * 32, 100), zip(ids, locs, strict=True))
    idx.blobs.compact()
    idx.add_pack(new, PackInfo(b"t" * 32, 100), [(ids[0], locs[1])])
    assert idx.blobs[ids[0]] == (old, locs[0])  # a known blob keeps its first location
    del idx.blobs[ids[0]]  # as prune does before repacking it
    assert ids[0] not in idx and len(idx.blobs) == 19
    idx.add_pack(new, PackInfo(b"t" * 32, 100), [(ids[0], locs[1])])
    assert idx.blobs[ids[0]] == (new, locs[1])
    assert len(idx.blobs) == 20


def test_forget_frame_drops_only_that_frame(small_merges: None) -> None:
    rnd = random.Random(SEED)
    pid, other = b"p" * 16, b"q" * 16
    ids = [rnd.randbytes(32) for _ in range(12)]
    idx = Index()
    idx.add_pack(pid, PackInfo(b"s" * 32, 10**6),
                 [(bid, BlobLocation(0, 0, 36 + 1000 * (i % 3), 500, 500, 0, 10))
                  for i, bid in enumerate(ids[:9])])
    idx.add_pack(other, PackInfo(b"s" * 32, 10**6),
                 [(bid, BlobLocation(0, 0, 36, 500, 500, 0, 10)) for bid in ids[9:]])
    idx.forget_frame(pid, 36)
    assert [bid in idx for bid in ids] == [i % 3 != 0 or i >= 9 for i in range(12)]
    assert len(idx.blobs) == 9


def _fields(loc: BlobLocation) -> tuple[int, ...]:
    return (loc.type, loc.flags, loc.frame_offset, loc.frame_len, loc.frame_raw, loc.inner,
            loc.length)


@pytest.mark.parametrize("bulk_max", [5, 1 << 15])
def test_loading_a_whole_index_gives_the_same_table(monkeypatch: pytest.MonkeyPatch,
                                                    bulk_max: int) -> None:
    """``loading()`` (entries held, then merged at once, up to ``_BULK_MAX`` at a time)
    keeps the first location of a blob listed twice, as adding one by one does, and every
    id is found through the prefix table."""
    monkeypatch.setattr(BlobTable, "_BULK_MAX", bulk_max)
    rnd = random.Random(SEED + bulk_max)
    pack_ids = [rnd.randbytes(16) for _ in range(4)]
    ids = [bytes([rnd.randrange(4), rnd.randrange(256)]) + rnd.randbytes(30) for _ in range(400)]
    objects = [[(rnd.randrange(4), rnd.choice(ids), *_fields(_loc(rnd))) for _ in range(60)]
               for _ in range(8)]
    model: dict[bytes, tuple[bytes, BlobLocation]] = {}
    plain = BlobTable()
    loaded = BlobTable()
    with loaded.loading():
        for entries in objects:
            loaded.add_raw(pack_ids, entries)
            plain.add_raw(pack_ids, entries)
            for i, bid, *fields in entries:
                model.setdefault(bid, (pack_ids[i], BlobLocation(*fields)))
    _same(loaded, model)
    _same(plain, model)
    for bid in ids:
        assert loaded.get(bid) == model.get(bid) and (bid in loaded) == (bid in model)
    assert loaded.get(bytes(32)) is None and bytes(32) not in loaded


def test_items_sorted_in_runs_come_out_sorted_and_stable() -> None:
    # One long sort() would hold the GIL (a million items: about 0.9 s); runs of
    # _SORT_RUN merged give what one stable sort by blob id gives.
    from strongroom.repo.index import _SORT_RUN, _sorted_by_id

    rnd = random.Random(SEED)
    ids = [rnd.randbytes(32) for _ in range(50)]
    for n in (0, 1, _SORT_RUN, _SORT_RUN + 1, 5 * _SORT_RUN + 3):
        items = [rnd.choice(ids) + i.to_bytes(4, "big") for i in range(n)]  # repeated ids
        assert _sorted_by_id(items) == sorted(items, key=lambda it: it[:32])


def test_merges_into_a_large_table_keep_every_blob() -> None:
    rnd = random.Random(SEED)
    table, model = BlobTable(), {}
    pack = rnd.randbytes(16)
    for _ in range(3):  # the second and third merges insert 20,000 ids into the buffers
        entries = [(rnd.randbytes(32), _loc(rnd)) for _ in range(20_000)]
        table.add_new(pack, entries)
        table.compact()
        model.update((bid, (pack, loc)) for bid, loc in entries)
    _same(table, model)


@pytest.mark.parametrize("step", [7, 4096])
def test_index_entries_unpacked_in_steps_are_all_there(monkeypatch: pytest.MonkeyPatch,
                                                      step: int) -> None:
    # decode_index_raw unpacks _UNPACK_STEP entries per call (one call over a 16 MiB
    # object held the GIL ~100 ms): every entry, in order, whatever the step.
    import struct

    from strongroom.repo import index

    monkeypatch.setattr(index, "_UNPACK_STEP", step)
    rnd = random.Random(SEED)
    packs = [(rnd.randbytes(16), rnd.randbytes(32), 1 << 30) for _ in range(3)]
    rows = [(rnd.randrange(3), rnd.randbytes(32), 0, 0, 36 + i, 100, 100, 0, 100)
            for i in range(5000)]
    entry = struct.Struct(">I32sBBIIIII")
    plain = (b"SRI1" + struct.pack(">I", len(packs))
             + b"".join(struct.pack(">16s32sQ", *p) for p in packs)
             + struct.pack(">I", len(rows)) + b"".join(entry.pack(*r) for r in rows)
             + bytes(1000))
    got_packs, got_rows = index.decode_index_raw(plain, "index/x")
    assert [(pid, info.salt, info.size) for pid, info in got_packs] == packs
    assert got_rows == rows


def test_bulk_additions_keep_the_first_location_like_a_dict(small_merges: None) -> None:
    # add_raw with a list as large as a merge (an index object being loaded) takes
    # the bulk path: sorted and merged at once, with ids repeated inside the list,
    # ids already in the buffers or pending, and deleted ids found again.
    rnd = random.Random(SEED + 1)
    table = BlobTable()
    model: dict[bytes, tuple[bytes, BlobLocation]] = {}
    packs = [rnd.randbytes(16) for _ in range(4)]
    universe = [bytes([rnd.randrange(3), rnd.randrange(3)]) + rnd.randbytes(30)
                for _ in range(400)]
    for step in range(400):
        op = rnd.randrange(4)
        if op == 0:  # a batch: bulk once the table is small against it
            pack = rnd.choice(packs)
            entries = [(bid, _loc(rnd)) for bid in rnd.choices(universe, k=rnd.randrange(1, 60))]
            table.add_raw([pack], [(0, bid, *astuple(loc)) for bid, loc in entries])
            for bid, loc in entries:
                model.setdefault(bid, (pack, loc))
        elif op == 1:
            bid, value = rnd.choice(universe), (rnd.choice(packs), _loc(rnd))
            table.add_new(value[0], [(bid, value[1])])
            model.setdefault(bid, value)
        elif op == 2:
            bid = rnd.choice(universe)
            if bid in model:
                del table[bid]
                del model[bid]
        else:
            probe = rnd.sample(universe, 50)
            assert table.records(probe) == [table.record(b) for b in probe]
            assert [table.get(b) for b in probe] == [model.get(b) for b in probe]
            assert table.absent(probe) == [b for b in probe if b not in model]
            grouped: dict[bytes, set[bytes]] = {}
            for bid, (pack, _loc_) in model.items():
                grouped.setdefault(pack, set()).add(bid)
            runs = table.id_runs_by_pack()
            assert {p: {r[i:i + 32] for i in range(0, len(r), 32)} for p, r in runs.items()} \
                == grouped
            assert all(len(r) % 32 == 0 for r in runs.values())
        if step % 50 == 0:
            _same(table, model)
    table.compact()
    _same(table, model)
    assert table.records(universe) == [table.record(b) for b in universe]


def test_loading_holds_every_entry_flat_until_the_table_is_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Inside loading() nothing is merged as entries come (a merge per 32,768 was most
    # of an index load); they wait flat, 58 bytes each, and are built at once.
    monkeypatch.setattr(BlobTable, "_BULK_MAX", 100)
    rnd = random.Random(SEED + 7)
    pack_ids = [rnd.randbytes(16) for _ in range(3)]
    table = BlobTable()
    model: dict[bytes, tuple[bytes, BlobLocation]] = {}
    with table.loading():
        for _ in range(3):
            entries = [(rnd.randrange(3), rnd.randbytes(32), *_fields(_loc(rnd))) for _ in range(2000)]
            entries += entries[:50]  # listed twice: the first location is kept
            table.add_raw(pack_ids, entries)
            for i, bid, *fields in entries:
                model.setdefault(bid, (pack_ids[i], BlobLocation(*fields)))
            assert table._n == 0 and len(table._bulk) == 256
            assert sum(map(len, table._bulk)) == table._bulk_n * 58
    assert table._n == len(model) == 6000 and not table._bulk
    _same(table, model)
    ids = list(model)
    assert table.records(ids) == [table.record(b) for b in ids]
    with pytest.raises(ValueError):
        table.add_raw(pack_ids, [(0, b"short", *_fields(_loc(rnd)))] * 1100)


def test_lookup_finds_what_records_finds(small_merges: None) -> None:
    # Restore's plan searches the buffers of ``lookup`` through ``positions``; it must agree with
    # ``records`` for stored, pending (merged by lookup), deleted and absent ids.
    rnd = random.Random(SEED + 1)
    table = BlobTable()
    ids = [rnd.randbytes(32) for _ in range(300)]
    for bid in ids[:200]:
        table[bid] = (rnd.choice([b"a" * 16, b"b" * 16]), _loc(rnd))
    table.compact()
    for bid in ids[200:250]:  # pending, not merged yet
        table[bid] = (b"c" * 16, _loc(rnd))
    for bid in ids[:20]:
        del table[bid]
    ids.append(ids[30][:31] + bytes([ids[30][31] ^ 1]))  # a near miss
    expected = table.records(ids)
    view = table.lookup()
    found = []
    for at in table.positions(b"".join(ids)):
        rec = None if at < 0 else table.record_at(at)
        if rec is not None:
            assert view.short.unpack_from(view.recs, at * view.size) == (
                rec[0], rec[3], rec[6], rec[7])
        found.append(None if rec is None or rec[0] == view.gone else rec)
    assert found == expected
    assert sum(r is None for r in found) == 20 + 50 + 1  # deleted, never added, near miss


_BUILD_PEAK = """
import os, random
from strongroom.repo.index import BlobTable
rnd = random.Random(5)
table = BlobTable()
pack = [rnd.randbytes(16)]
with open("/proc/self/statm") as f:  # resident now (the high-water mark may be higher)
    start = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
with table.loading():
    for _ in range(30):  # 30 index objects of 10,000 entries, as an index load decodes them
        table.add_raw(pack, [(0, rnd.randbytes(32), 0, 0, 40, 100, 200, 0, 100)
                             for _ in range(10_000)])
with open("/proc/self/status") as f:  # not ru_maxrss: that carries the parent's peak
    hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
grown = hwm * 1024 - start
print(len(table), grown, len(table._ids) + len(table._recs))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_building_a_large_table_does_not_hold_it_twice() -> None:
    # Built from the held entries (58 bytes each) one first byte at a time, the freed
    # held buffers went back to glibc's heap but stayed resident while the new buffers
    # grew: the peak was the held entries and the table at once (issue 12).
    done = subprocess.run([sys.executable, "-c", _BUILD_PEAK], capture_output=True, text=True,
                          timeout=120, check=True)
    n, grown, table = map(int, done.stdout.split())
    assert n == 300_000 and table == 58 * n
    # Held entries are 58 bytes a blob (and buffers grown by appending), the decoded
    # objects being added a few MB more: 1.65 times the table, 2.5 times untrimmed.
    assert grown < 1.9 * table, (grown, table)
