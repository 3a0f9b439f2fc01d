"""The read-ahead wrapper: one inner request per object for front-to-back ranged
reads, small reads passed through, concurrent readers sharing one fetch."""

from __future__ import annotations

import functools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.errors import ObjectNotFound
from strongroom.storage.memory import MemoryBackend
from strongroom.storage.readahead import ReadAheadBackend


class Counting(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.ranges: list[tuple[str, int, int]] = []
        self.gate = threading.Event()
        self.gate.set()

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        self.gate.wait()
        self.ranges.append((name, offset, length))
        return super().get_range(name, offset, length)


@functools.cache
def _pack(n: int) -> bytes:
    return (bytes(range(n, 251)) + bytes(range(n))) * 3984 + bytes(1_000_000 - 251 * 3984)


def test_frames_of_a_pack_cost_one_request() -> None:
    inner = Counting()
    inner.put("data/p1", _pack(1))
    ra = ReadAheadBackend(inner, window=4_000_000, min_range=1000)
    got = b"".join(ra.get_range("data/p1", off, 100_000) for off in range(0, 1_000_000, 100_000))
    assert got == _pack(1)
    # The first read goes alone; the second continues it, so the rest comes at once.
    assert inner.ranges == [("data/p1", 0, 100_000), ("data/p1", 100_000, 4_000_000)]
    assert ra.get_range("data/p1", 999_990, 100_000) == _pack(1)[999_990:]  # past the end
    assert ra.get_range("data/p1", 2_000_000, 5000) == b""
    assert len(inner.ranges) == 2


def test_probing_reads_pass_through_and_do_not_download_the_object() -> None:
    inner = Counting()
    inner.put("data/p1", _pack(1))
    ra = ReadAheadBackend(inner, window=4_000_000, min_range=1000)
    # What adopting a pack after a crash reads: its tail, its prefix, its header.
    assert ra.get_range("data/p1", 999_996, 4) == _pack(1)[-4:]
    assert ra.get_range("data/p1", 0, 36) == _pack(1)[:36]
    assert ra.get_range("data/p1", 990_000, 9996) == _pack(1)[990_000:999_996]
    assert ra.get_range("data/p1", 36, 500) == _pack(1)[36:536]  # follows, but under min_range
    assert [r[2] for r in inner.ranges] == [4, 36, 9996, 500]


def test_reading_backwards_fetches_again_and_cache_is_bounded() -> None:
    inner = Counting()
    for n in range(4):
        inner.put(f"data/p{n}", _pack(n))
    ra = ReadAheadBackend(inner, window=4_000_000, cache_bytes=2_500_000, min_range=1000)
    for n in range(4):  # read two frames of each: the second reads ahead
        assert ra.get_range(f"data/p{n}", 0, 1000) == _pack(n)[:1000]
        assert ra.get_range(f"data/p{n}", 1000, 1000) == _pack(n)[1000:2000]
    assert len(inner.ranges) == 8
    assert ra._cached <= 2_500_000
    assert ra.get_range("data/p3", 500_000, 1000) == _pack(3)[500_000:501_000]  # cached
    assert len(inner.ranges) == 8
    assert ra.get_range("data/p3", 0, 1000) == _pack(3)[:1000]  # before the cached span
    assert ra.get_range("data/p0", 5000, 1000) == _pack(0)[5000:6000]  # evicted
    assert len(inner.ranges) == 10


def test_concurrent_readers_share_one_fetch() -> None:
    inner = Counting()
    inner.put("data/p1", _pack(1))
    ra = ReadAheadBackend(inner, window=4_000_000, min_range=1000)
    assert ra.get_range("data/p1", 0, 50_000) == _pack(1)[:50_000]
    inner.gate.clear()
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(ra.get_range, "data/p1", 50_000, 50_000)  # continues: reads ahead
        for _ in range(1000):  # until that read-ahead is under way
            if "data/p1" in ra._inflight:
                break
            time.sleep(0.001)
        others = [pool.submit(ra.get_range, "data/p1", off, 50_000)
                  for off in (200_000, 400_000, 600_000)]
        inner.gate.set()
        results = [f.result() for f in [first, *others]]
    assert results == [_pack(1)[o:o + 50_000] for o in (50_000, 200_000, 400_000, 600_000)]
    assert len(inner.ranges) == 2  # the first frame, then one read-ahead shared by all


def test_writes_invalidate_and_errors_are_not_cached() -> None:
    inner = Counting()
    ra = ReadAheadBackend(inner, window=4_000_000, min_range=10)
    with pytest.raises(ObjectNotFound):
        ra.get_range("index/0", 0, 100)
    ra.put("index/0", b"a" * 200)
    assert ra.get_range("index/0", 0, 50) + ra.get_range("index/0", 50, 50) == b"a" * 100
    ra.put("index/0", b"b" * 200)
    assert ra.get_range("index/0", 50, 50) == b"b" * 50
    ra.delete("index/0")
    with pytest.raises(ObjectNotFound):
        ra.get_range("index/0", 0, 100)


_ops = st.lists(st.one_of(
    st.tuples(st.just("put"), st.sampled_from(["p/a", "p/b"]), st.integers(0, 3000)),
    st.tuples(st.just("read"), st.sampled_from(["p/a", "p/b", "p/c"]),
              st.integers(0, 3500), st.integers(0, 1500)),
    st.tuples(st.just("next"), st.sampled_from(["p/a", "p/b"]), st.integers(0, 700)),
    st.tuples(st.just("delete"), st.sampled_from(["p/a", "p/b"])),
), max_size=60)


@settings(max_examples=400, deadline=None)
@given(ops=_ops)
def test_answers_like_the_reference_for_any_sequence(ops: list[tuple[object, ...]]) -> None:
    """Whatever the order of writes and reads, the wrapper answers as the memory backend."""
    ref, ra = MemoryBackend(), ReadAheadBackend(MemoryBackend(), window=1024,
                                                 cache_bytes=3000, min_range=1)
    version = 0
    ends: dict[str, int] = {}
    for op in ops:
        if op[0] == "next":  # continue where the last read of that object ended
            op = ("read", op[1], ends.get(str(op[1]), 0), op[2])
        if op[0] == "put":
            version += 1
            data = bytes((version * 31 + i) % 256 for i in range(int(op[2])))  # type: ignore[call-overload]
            ref.put(str(op[1]), data)
            ra.put(str(op[1]), data)
        elif op[0] == "delete":
            ref.delete(str(op[1]))
            ra.delete(str(op[1]))
        else:
            name, offset, length = str(op[1]), int(op[2]), int(op[3])  # type: ignore[call-overload]
            ends[name] = offset + length
            try:
                want: bytes | type[ObjectNotFound] = ref.get_range(name, offset, length)
            except ObjectNotFound:
                want = ObjectNotFound
            if want is ObjectNotFound:
                with pytest.raises(ObjectNotFound):
                    ra.get_range(name, offset, length)
            else:
                assert ra.get_range(name, offset, length) == want
