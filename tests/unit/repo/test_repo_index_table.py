"""The compact in-memory blob table (DEFECT-4) behaves exactly like a dict of locations."""

from __future__ import annotations

import random

import pytest

from strongroom.repo.index import BlobTable, Index, PackInfo
from strongroom.repo.pack import BlobLocation

SEED = 4040


def _loc(rnd: random.Random) -> BlobLocation:
    return BlobLocation(rnd.randrange(2), rnd.randrange(2), rnd.randrange(2**32),
                        rnd.randrange(2**32), rnd.randrange(2**32), rnd.randrange(2**32),
                        rnd.randrange(2**32))


@pytest.fixture()
def small_merges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Merge into the sorted buffers after a few additions, so every path runs often
    (the pending ids sorted in short runs and merged, too)."""
    from strongroom.repo import index

    monkeypatch.setattr(BlobTable, "_MIN_MERGE", 3)
    monkeypatch.setattr(index, "_SORT_RUN", 2)


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


@pytest.mark.parametrize("loading_merge", [5, 1 << 16])
def test_loading_a_whole_index_gives_the_same_table(monkeypatch: pytest.MonkeyPatch,
                                                    loading_merge: int) -> None:
    """``loading()`` (one sort into the empty buffers, then merges of up to
    ``_LOADING_MERGE``) keeps the first location of a blob listed twice, as adding one by
    one does, and every id is found through the prefix table."""
    monkeypatch.setattr(BlobTable, "_LOADING_MERGE", loading_merge)
    rnd = random.Random(SEED + loading_merge)
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


def test_pending_ids_sorted_in_runs_come_out_in_order() -> None:
    # A merge sorts its pending ids in runs of _SORT_RUN (one long sorted() call would
    # hold the GIL: 65,536 ids took 65 ms) and merges the runs: the same order.
    from strongroom.repo.index import _SORT_RUN, _sorted_keys

    rnd = random.Random(SEED)
    for n in (0, 1, _SORT_RUN, _SORT_RUN + 1, 5 * _SORT_RUN + 3):
        d = {rnd.randbytes(32): b"" for _ in range(n)}
        assert _sorted_keys(d) == sorted(d)
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
