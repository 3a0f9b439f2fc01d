"""Objects the provider can write, sizes it can see, files that change under a backup (issue 11)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
from repo_helpers import Clock, Rng

from strongroom.api import BackupKey, Repository
from strongroom.crypto import labels
from strongroom.errors import DataDamaged, FormatError, RepositoryLocked
from strongroom.repo.config import parse_config
from strongroom.repo.locks import LOCK_MAGIC, Lock
from strongroom.repo.manifest import SNAPSHOT_MAGIC, open_snapshot
from strongroom.repo.sealed import (
    INDEX_MAX,
    LOCK_MAX,
    PAD_FLOOR,
    SNAPSHOT_MAX,
    fetch_capped,
    seal_object,
    strict_json,
)
from strongroom.storage.local import LocalBackend
from strongroom.storage.memory import MemoryBackend

KEY = BackupKey.from_bytes(bytes(range(32)))
GiB = 1 << 30


# -- strict JSON ------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}', b'{"a": 1e999}',
    b"[" * 200_000 + b"]" * 200_000, b'{"a": 1, "a": 2}', b'{"a": "\xff"}',
    b'{"a": ' + b"9" * 5000 + b"}",
])
def test_strict_json_refuses(text: bytes) -> None:
    with pytest.raises(FormatError):
        strict_json(text, "x", 1 << 20)


def test_strict_json_depth_ignores_brackets_in_strings() -> None:
    assert strict_json(b'{"a": "[[[[[[[[[[[[[[[[{{{{{{{{{{"}', "x", 100) == {"a": "[" * 16 + "{" * 10}
    with pytest.raises(FormatError):
        strict_json(b'{"a": "x"}', "x", 5)


def _config_doc() -> dict[str, object]:
    return {"format": "strongroom-repository", "version": 2, "minor": 0, "id": "00" * 16,
            "created": 1, "keycheck": "00" * 32,
            "chunker": {"cdc_min": 262144, "cdc_avg": 1048576, "cdc_max": 4194304,
                        "media_piece": 4194304, "sqlite_pages_per_blob": 1,
                        "frame_target": 131072, "pack_target": 4194304}, "mac": "00" * 32}


@pytest.mark.parametrize("field,value", [
    ("created", float("inf")), ("created", "1"), ("created", True), ("created", -1),
    ("created", 2**70), ("minor", 1.5), ("version", 2.0), ("id", 5), ("id", "zz" * 16),
    ("keycheck", "00"), ("chunker", []), ("chunker", {"cdc_min": 1e300}),
    ("chunker", {"pack_target": True}),
])
def test_config_fields_of_the_wrong_type_or_range(field: str, value: object) -> None:
    doc = _config_doc()
    if field == "chunker" and isinstance(value, dict):
        doc["chunker"] = {**doc["chunker"], **value}  # type: ignore[dict-item]
    else:
        doc[field] = value
    raw = json.dumps(doc).encode()  # json.dumps writes inf as Infinity
    with pytest.raises(FormatError):
        parse_config(raw)
    parse_config(json.dumps(_config_doc()).encode())  # the unchanged document parses


@pytest.mark.parametrize("doc", [
    {"v": 1, "time": float("nan"), "hostname": "h", "paths": [], "files": 0, "dirs": 0,
     "bytes": 0, "parent": None, "segments": []},
    {"v": 1, "time": 1, "hostname": ["h"], "paths": [], "files": 0, "dirs": 0,
     "bytes": 0, "parent": None, "segments": []},
    {"v": 1, "time": 1, "hostname": "h", "paths": [1], "files": 0, "dirs": 0,
     "bytes": 0, "parent": None, "segments": []},
    {"v": 1, "time": 1, "hostname": "h", "paths": [], "files": -1, "dirs": 0,
     "bytes": 0, "parent": None, "segments": []},
    {"v": 1, "time": 1, "hostname": "h", "paths": [], "files": 0, "dirs": 0,
     "bytes": 0, "parent": {"x": 1}, "segments": []},
    {"v": True, "time": 1, "hostname": "h", "paths": [], "files": 0, "dirs": 0,
     "bytes": 0, "parent": None, "segments": []},
    # Segment ids and the parent are exactly lowercase hex (spec §7), one text per id.
    {"v": 1, "time": 1, "hostname": "h", "paths": [], "files": 0, "dirs": 0,
     "bytes": 0, "parent": None, "segments": ["AB" * 32]},
    {"v": 1, "time": 1, "hostname": "h", "paths": [], "files": 0, "dirs": 0,
     "bytes": 0, "parent": None, "segments": ["ab " * 31 + "ab"]},
    {"v": 1, "time": 1, "hostname": "h", "paths": [], "files": 0, "dirs": 0,
     "bytes": 0, "parent": None, "segments": ["ab" * 32 + "\n"]},
    {"v": 1, "time": 1, "hostname": "h", "paths": [], "files": 0, "dirs": 0,
     "bytes": 0, "parent": "ab" * 16 + "\n", "segments": []},
    [], "x", None,
])
def test_snapshot_documents_of_the_wrong_shape(doc: object) -> None:
    sid = "ab" * 16
    data = seal_object(KEY, labels.SNAPSHOT, SNAPSHOT_MAGIC, "snapshots/" + sid,
                       json.dumps(doc).encode(), bytes)
    with pytest.raises(FormatError):
        open_snapshot(KEY, sid, data)


def test_lock_documents_of_the_wrong_shape_are_unreadable_not_a_crash() -> None:
    backend = MemoryBackend()
    for i, doc in enumerate([{"exclusive": "yes", "pid": 1, "hostname": "h"},
                             {"exclusive": True, "pid": float("inf"), "hostname": "h"},
                             [[[[[[[[[[[[]]]]]]]]]]]]]):
        name = f"locks/{i:032x}"
        backend.put(name, seal_object(KEY, labels.LOCK, LOCK_MAGIC, name,
                                      json.dumps(doc).encode(), bytes))
    lock = Lock(backend, KEY, True, Clock(), Rng(3)).acquire()  # unreadable: ignored, removed
    assert list(backend.list("locks/")) == [lock.name]
    lock.release()


_GOOD_LOCK = {"v": 2, "exclusive": True, "instance": "ab" * 16, "seq": 0, "hostname": "h",
              "boot": "", "pid": 1}


@pytest.mark.parametrize("change", [
    {}, {"v": 3}, {"v": True}, {"v": "2"}, {"instance": "AB" * 16}, {"instance": "ab" * 15},
    {"instance": 7}, {"seq": True}, {"seq": -1}, {"seq": 1.5}, {"seq": None},
])
def test_a_lock_field_of_the_wrong_type_makes_the_lock_unreadable(change: dict[str, object]) -> None:
    """Spec §1/§9: ``v``, ``instance`` and ``seq`` are checked like every other field; a
    lock that fails is unreadable (ignored), one that passes blocks an exclusive locker."""
    backend = MemoryBackend()
    name = "locks/" + "cd" * 16
    backend.put(name, seal_object(KEY, labels.LOCK, LOCK_MAGIC, name,
                                  json.dumps({**_GOOD_LOCK, **change}).encode(), bytes))
    lock = Lock(backend, KEY, True, Clock(), Rng(3))
    if not change:
        with pytest.raises(RepositoryLocked):
            lock.acquire()
        return
    lock.acquire().release()


# -- size caps ----------------------------------------------------------------------------------

class _NoBigReads(LocalBackend):
    """Counts the bytes read: a huge object must be refused without reading it."""

    read = 0

    def get(self, name: str) -> bytes:
        raise AssertionError(f"{name}: read whole")

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        data = super().get_range(name, offset, length)
        self.read += len(data)
        return data


@pytest.mark.parametrize("prefix", ["snapshots/", "index/", "locks/"])
def test_a_3_gib_object_is_refused_without_reading_it(tmp_path: Path, prefix: str,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    backend = _NoBigReads(tmp_path / "repo", create=True)
    repo = Repository.create(backend, KEY, clock=Clock(), rng=Rng(1))
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    repo.backup([src])
    name = prefix + "ff" * 16
    path = tmp_path / "repo" / name
    with open(path, "wb") as f:  # sparse: 3 GiB without using the disk
        f.truncate(3 * GiB)
    backend.read = 0
    fresh = Repository.open(backend, KEY)
    with pytest.raises(DataDamaged, match=name) if prefix == "snapshots/" else _no_raise():
        fresh.snapshots()
    report = fresh.check(read_data=False)
    if prefix == "locks/":
        assert report.ok  # an unreadable lock is ignored
    else:
        assert not report.ok and any(p.object == name for p in report.problems)
    assert backend.read < 1 << 20, backend.read


class _no_raise:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_fetch_capped_refuses_an_object_that_grew_after_stat(tmp_path: Path) -> None:
    class Growing(MemoryBackend):
        def get_range(self, name: str, offset: int, length: int) -> bytes:
            return b"x" * length

    b = Growing()
    b.put("index/x", b"small")
    with pytest.raises(DataDamaged, match="index/x"):
        fetch_capped(b, "index/x", 100)
    assert (LOCK_MAX, SNAPSHOT_MAX, INDEX_MAX) == (64 << 10, 16 << 20, 64 << 20)


# -- sizes that say nothing exact -----------------------------------------------------------------

def _day(tmp: Path, changed: int) -> tuple[int, list[int], list[int]]:
    """A day that adds ``changed`` small files: (blobs added, new index sizes, new snapshot sizes)."""
    backend = MemoryBackend()
    repo = Repository.create(backend, KEY, clock=Clock(), rng=Rng(1))
    src = tmp / f"src{changed}"
    src.mkdir()
    (src / "base.bin").write_bytes(random.Random(0).randbytes(100_000))
    repo.backup([src])
    before = set(backend.list(""))
    for i in range(changed):
        (src / f"note{i:03d}.txt").write_bytes(random.Random(i).randbytes(64) * (i % 7 + 1))
    blobs = repo.backup([src]).blobs_added

    def new(prefix: str) -> list[int]:
        return sorted(len(backend.get(n)) for n in set(backend.list(prefix)) - before)

    return blobs, new("index/"), new("snapshots/")


@pytest.mark.parametrize("days", [(40, 47), (156, 162)])
def test_new_object_sizes_do_not_give_the_number_of_changed_pages(
        tmp_path: Path, days: tuple[int, int]) -> None:
    """Two days with different numbers of new blobs give equal index and snapshot sizes.

    (40, 47): both under the padding floor; (156, 162): one Padmé bucket.
    """
    (n1, idx1, snap1), (n2, idx2, snap2) = (_day(tmp_path, d) for d in days)
    assert n1 != n2  # different numbers of new blobs ...
    assert idx1 == idx2 and snap1 == snap2  # ... the same index and snapshot object sizes
    assert all(s >= PAD_FLOOR for s in idx1 + snap1)


def test_version_1_repository_still_opens_and_writes_unpadded_index(tmp_path: Path) -> None:
    """A format-1 repository keeps working: read, backed up into, checked, restored."""
    from strongroom.repo.config import config_mac, repository_key

    backend = MemoryBackend()
    Repository.create(backend, KEY, clock=Clock(), rng=Rng(1)).close()
    doc = json.loads(backend.get("config"))
    doc["version"] = 1
    doc["mac"] = config_mac(repository_key(KEY, bytes.fromhex(doc["id"])), doc)
    backend.put("config", json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n")
    repo = Repository.open(backend, KEY)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(b"a" * 5000)
    repo.backup([src])
    (name,) = backend.list("index/")
    # 52 (sealed envelope) + 12 + 56 per pack + 58 per entry: unpadded in format 1.
    packs = 2  # one data pack, one file-list pack
    entries = 2
    assert len(backend.get(name)) == 52 + 12 + 56 * packs + 58 * entries
    assert repo.check(read_data=True).ok
    repo.restore("latest", tmp_path / "out")
    assert (tmp_path / "out" / str(src).lstrip("/") / "a").read_bytes() == b"a" * 5000


# -- backup reads only what it listed -------------------------------------------------------------

@pytest.mark.parametrize("swap", ["symlink", "fifo", "other-file"])
def test_a_file_swapped_between_lstat_and_open_is_not_read(tmp_path: Path, swap: str) -> None:
    outside = tmp_path / "outside-secret"
    outside.write_text("root-only secret\n")
    src = tmp_path / "src"
    src.mkdir()
    (src / "victim.txt").write_text("inside\n")
    (src / "z.txt").write_text("ok\n")
    backend = MemoryBackend()
    repo = Repository.create(backend, KEY, clock=Clock(), rng=Rng(1))

    def before_read(path: Path) -> None:  # the moment between lstat and open
        if path.name == "victim.txt":
            path.rename(tmp_path / "moved-away")  # kept, so its inode is not reused
            if swap == "symlink":
                os.symlink(outside, path)
            elif swap == "fifo":
                os.mkfifo(path)  # opening it for reading without O_NONBLOCK would hang
            else:
                path.write_text("another file, another inode\n")

    repo._engine._test_only_before_read = before_read
    summary = repo.backup([src])
    assert any("victim.txt" in w and "not read" in w for w in summary.warnings), summary.warnings
    repo._engine._test_only_before_read = None
    out = tmp_path / "out"
    repo.restore("latest", out)
    root = out / str(src).lstrip("/")
    assert (root / "z.txt").read_text() == "ok\n"
    assert not (root / "victim.txt").exists()
    for p in out.rglob("*"):
        if p.is_file():
            assert b"secret" not in p.read_bytes()


@pytest.mark.parametrize("path,link", [("a\x00b", ""), ("a", "x\x00/etc/passwd")])
def test_nul_in_a_manifest_path_or_link_is_a_format_error(path: str, link: str) -> None:
    from strongroom.repo.manifest import KIND_SYMLINK, Entry, decode_records

    data = Entry(KIND_SYMLINK, path, 0o777, 0, link=link).encode()
    with pytest.raises(FormatError, match="NUL"):
        list(decode_records(data, "snapshots/x"))
    assert [e.path for e in decode_records(Entry(KIND_SYMLINK, "ok", 0o777, 0,
                                                 link="t").encode(), "s")] == ["ok"]
