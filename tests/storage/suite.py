"""The storage conformance suite: every clause of ``storage/base.py``, as checks.

Each ``check_*`` function takes a fresh, empty backend and a :class:`Profile`
(how big "many" and "large" are for that backend) and asserts one clause of
the contract.  ``test_conformance.py`` runs every check against every backend;
another project can call them the same way to validate its own backend.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from strongroom.errors import ObjectNotFound, TransientStorageError
from strongroom.storage.base import Backend

INVALID_NAMES = ["", "/a", "a/", "a//b", ".", "..", "a/../b", "a/./b", "a b", "a\\b",
                 "caf\u00e9", "a#b", "a\nb", "a:b", "?"]


@dataclass(frozen=True)
class Profile:
    """Sizes used for one backend: remote backends get smaller counts where that is enough."""

    many: int = 1100          # > 1000: S3 lists at most 1000 keys per page
    large: int = 3 * 1024 * 1024 + 17
    writers: int = 8          # concurrent put_if_absent callers
    rounds: int = 30          # overwrite rounds per writer while readers read
    # WebDAV servers replace on MOVE by deleting the destination first, so a
    # reader may briefly find no object, or have its transfer cut off when the
    # object vanishes after rclone sent the headers (a TransientStorageError),
    # but never get partial bytes; spec §4.
    overwrite_gap: bool = False


def data_of(tag: str, size: int) -> bytes:
    """Deterministic, distinguishable content of ``size`` bytes."""
    seed = hashlib.sha256(tag.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def check_get_missing(b: Backend, p: Profile) -> None:
    with pytest.raises(ObjectNotFound):
        b.get("missing")
    with pytest.raises(ObjectNotFound):
        b.get_range("missing", 0, 10)
    with pytest.raises(ObjectNotFound):
        b.stat("nested/missing")


def check_put_get_roundtrip(b: Backend, p: Profile) -> None:
    every_byte = bytes(range(256)) * 3
    b.put("config", every_byte)
    assert b.get("config") == every_byte
    assert b.stat("config").size == len(every_byte)
    assert b.stat("config").name == "config"


def check_put_overwrites(b: Backend, p: Profile) -> None:
    b.put("index/0", b"first version")
    b.put("index/0", b"second")
    assert b.get("index/0") == b"second"
    assert b.stat("index/0").size == 6
    b.put("index/0", b"second")  # idempotent
    assert b.get("index/0") == b"second"


def check_empty_object(b: Backend, p: Profile) -> None:
    b.put("empty", b"")
    assert b.get("empty") == b""
    assert b.stat("empty").size == 0
    assert b.get_range("empty", 0, 10) == b""
    assert list(b.list("empty")) == ["empty"]
    assert b.put_if_absent("empty2", b"") is True
    assert b.get("empty2") == b""


def check_get_range(b: Backend, p: Profile) -> None:
    data = data_of("range", 1000)
    b.put("data/ab/range", data)
    assert b.get_range("data/ab/range", 0, 10) == data[:10]
    assert b.get_range("data/ab/range", 500, 250) == data[500:750]
    assert b.get_range("data/ab/range", 990, 100) == data[990:]   # runs past the end
    assert b.get_range("data/ab/range", 999, 1) == data[999:]
    assert b.get_range("data/ab/range", 0, 1000) == data
    assert b.get_range("data/ab/range", 10, 0) == b""
    assert b.get_range("data/ab/range", 1000, 5) == b""           # starts at the end
    assert b.get_range("data/ab/range", 5000, 5) == b""           # starts past the end
    with pytest.raises(ValueError):
        b.get_range("data/ab/range", -1, 5)
    with pytest.raises(ValueError):
        b.get_range("data/ab/range", 0, -5)


def check_large_object(b: Backend, p: Profile) -> None:
    data = data_of("large", p.large)
    b.put("data/la/large", data)
    assert b.stat("data/la/large").size == p.large
    assert b.get("data/la/large") == data
    mid = p.large // 2
    assert b.get_range("data/la/large", mid, 4096) == data[mid:mid + 4096]
    assert b.put_if_absent("data/la/large2", data) is True
    assert b.get("data/la/large2") == data


def check_put_if_absent(b: Backend, p: Profile) -> None:
    assert b.put_if_absent("snapshots/a1", b"mine") is True
    assert b.put_if_absent("snapshots/a1", b"theirs") is False
    assert b.get("snapshots/a1") == b"mine"
    b.delete("snapshots/a1")
    assert b.put_if_absent("snapshots/a1", b"again") is True
    assert b.get("snapshots/a1") == b"again"


def check_put_if_absent_concurrent(b: Backend, p: Profile) -> None:
    """N writers race to create one name: exactly one wins and its bytes are stored."""
    for round_ in range(3):
        name = f"locks/race{round_}"
        barrier = threading.Barrier(p.writers)

        def write(i: int, name: str = name, barrier: threading.Barrier = barrier
                  ) -> tuple[int, bool]:
            barrier.wait()
            return i, b.put_if_absent(name, data_of(f"{name}/{i}", 2048))

        with ThreadPoolExecutor(p.writers) as pool:
            results = list(pool.map(write, range(p.writers)))
        winners = [i for i, created in results if created]
        assert len(winners) == 1, f"{name}: winners {winners}"
        assert b.get(name) == data_of(f"{name}/{winners[0]}", 2048)


def check_put_atomic_for_readers(b: Backend, p: Profile) -> None:
    """Writers replace an object while readers read: every read is one whole version."""
    size = 256 * 1024
    versions = {data_of(f"v{i}", size) for i in range(4)}
    b.put("index/hot", data_of("v0", size))
    stop = threading.Event()
    bad: list[str] = []
    reads = [0]
    cut = [0]

    def reader() -> None:
        while not stop.is_set():
            try:
                got = b.get("index/hot")
            except ObjectNotFound:
                if not p.overwrite_gap:
                    bad.append("the object vanished while being replaced")
                continue
            except TransientStorageError as exc:
                if not p.overwrite_gap:
                    bad.append(repr(exc))
                    return
                cut[0] += 1  # the gap seen mid-transfer: an error, not torn bytes
                continue
            except Exception as exc:  # noqa: BLE001 - reported, not swallowed
                bad.append(repr(exc))
                return
            reads[0] += 1
            if got not in versions:
                bad.append(f"read {len(got)} bytes that are no whole version")

    def writer(i: int) -> None:
        for r in range(p.rounds):
            b.put("index/hot", data_of(f"v{(i + r) % 4}", size))

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(writer, range(2)))
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert bad == [], bad[:5]
    assert reads[0] > 0
    assert cut[0] <= reads[0], f"{cut[0]} transfers cut off against {reads[0]} whole reads"
    assert b.get("index/hot") in versions


def check_list_prefix(b: Backend, p: Profile) -> None:
    assert list(b.list()) == []
    assert list(b.list("data/")) == []
    names = ["config", "data/00/aa", "data/00/ab", "data/01/ba", "data/1f/c", "index/0",
             "index/01", "keys/k", "snapshots/s1", "ext/vault.json"]
    for n in names:
        b.put(n, n.encode())
    assert sorted(b.list()) == sorted(names)
    assert sorted(b.list("")) == sorted(names)
    assert sorted(b.list("data/")) == ["data/00/aa", "data/00/ab", "data/01/ba", "data/1f/c"]
    assert sorted(b.list("data/0")) == ["data/00/aa", "data/00/ab", "data/01/ba"]
    assert sorted(b.list("data/00/")) == ["data/00/aa", "data/00/ab"]
    assert sorted(b.list("data/00/a")) == ["data/00/aa", "data/00/ab"]
    assert sorted(b.list("index/0")) == ["index/0", "index/01"]
    assert list(b.list("config")) == ["config"]
    assert list(b.list("nothing/")) == []
    assert list(b.list("data/2")) == []


def check_list_many(b: Backend, p: Profile) -> None:
    names = [f"data/{i % 7:02x}/{i:06d}" for i in range(p.many)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: b.put(n, b"x"), names))
    b.put("other", b"y")
    listed = list(b.list("data/"))
    assert len(listed) == len(set(listed)) == p.many
    assert set(listed) == set(names)
    assert len(list(b.list())) == p.many + 1


def check_delete(b: Backend, p: Profile) -> None:
    b.delete("never-existed")
    b.delete("nested/never/existed")
    b.put("data/de/x", b"1")
    b.put("data/de/y", b"2")
    b.delete("data/de/x")
    with pytest.raises(ObjectNotFound):
        b.get("data/de/x")
    with pytest.raises(ObjectNotFound):
        b.stat("data/de/x")
    assert list(b.list("data/")) == ["data/de/y"]
    b.delete("data/de/x")  # again: idempotent
    assert b.get("data/de/y") == b"2"


def check_invalid_names(b: Backend, p: Profile) -> None:
    calls: list[Callable[[str], object]] = [
        b.get, lambda n: b.get_range(n, 0, 1), lambda n: b.put(n, b"x"),
        lambda n: b.put_if_absent(n, b"x"), b.delete, b.stat,
    ]
    for name in INVALID_NAMES:
        for call in calls:
            with pytest.raises(ValueError):
                call(name)
    assert list(b.list()) == []


def check_prefix_names_distinct(b: Backend, p: Profile) -> None:
    """Names that are prefixes of each other are distinct objects."""
    b.put("keys/a", b"1")
    b.put("keys/ab", b"2")
    b.put("keys/a.b", b"3")
    assert b.get("keys/a") == b"1"
    assert b.get("keys/ab") == b"2"
    assert sorted(b.list("keys/a")) == ["keys/a", "keys/a.b", "keys/ab"]


def check_close_idempotent(b: Backend, p: Profile) -> None:
    b.put("x", b"1")
    assert b.get("x") == b"1"
    assert b.location and "?" != b.location
    assert repr(b).startswith("<")


CHECKS: dict[str, Callable[[Backend, Profile], None]] = {
    name[len("check_"):]: fn for name, fn in sorted(globals().items())
    if name.startswith("check_") and callable(fn)
}
