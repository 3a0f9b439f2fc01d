"""A manifest crafted by a key holder cannot steer a restore outside its target."""

from __future__ import annotations

from pathlib import Path

import pytest
from repo_helpers import SpyBackend

from strongroom import Repository
from strongroom.errors import FormatError, LocalWriteError
from strongroom.repo.manifest import (
    KIND_DIR,
    KIND_FILE,
    KIND_SYMLINK,
    ChunkIds,
    Entry,
    SegmentWriter,
    SnapshotDoc,
    decode_records,
    seal_snapshot,
    snapshot_name,
)
from strongroom.repo.pack import BLOB_DATA, BLOB_META
from strongroom.repo.packer import Packer


def _craft(repo: Repository, backend: SpyBackend, entries: list[Entry], content: bytes) -> str:
    eng = repo._engine
    packer = Packer(eng)
    cid = eng.blob_id(content)
    packer.add(cid, BLOB_DATA, content, True)

    def store(data: bytes) -> bytes:
        bid = eng.blob_id(data)
        packer.add(bid, BLOB_META, data, True)
        return bid

    segments = SegmentWriter(store)
    for e in entries:
        if e.kind == KIND_FILE:
            e.chunks = ChunkIds.of([cid])
        segments.add(e)
    segments.flush()
    packer.finish()
    doc = SnapshotDoc("ab" * 16, 1.0, "h", ["/x"], 1, 0, len(content), None, segments.segments)
    backend.put(snapshot_name(doc.id), seal_snapshot(eng.key, doc, eng.rng))
    return doc.id


@pytest.mark.parametrize("shape", ["link then file", "checked dir replaced by a link"])
def test_file_behind_a_restored_symlink_is_refused(repo: Repository, backend: SpyBackend,
                                                   tmp_path: Path, shape: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    # A record below a link, and a path that appears twice, are both refused as a
    # malformed file list: no backup writes either.
    before = [] if shape == "link then file" else [Entry(KIND_DIR, "x", 0o40755, 0),
                                                    Entry(KIND_FILE, "x/a", 0o100644, 0, 4)]
    sid = _craft(repo, backend, [
        *before,
        Entry(KIND_SYMLINK, "x", 0o120777, 0, link=str(outside)),
        Entry(KIND_FILE, "x/evil", 0o100644, 0, 4),
    ], b"evil")
    with pytest.raises(FormatError, match="not a directory" if not before else "out of order"):
        repo.restore(sid, tmp_path / "target")
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("path", ["../escape", "/abs", "a/../../b", "a//b", "./a"])
def test_unsafe_manifest_paths_are_format_errors(path: str) -> None:
    rec = Entry(KIND_FILE, path, 0o100644, 0).encode()
    with pytest.raises(FormatError):
        list(decode_records(rec, "snapshots/x"))


@pytest.mark.parametrize("entries", [
    [Entry(KIND_DIR, "x", 0o40700, 0)],
    [Entry(KIND_DIR, "x", 0o40700, 0), Entry(KIND_FILE, "x/evil", 0o100644, 0, 4)],
    [Entry(KIND_DIR, "x/sub", 0o40700, 0)],
], ids=["empty dir", "dir and file", "dir under it"])
def test_a_link_already_in_the_target_is_not_followed(repo: Repository, backend: SpyBackend,
                                                       tmp_path: Path,
                                                       entries: list[Entry]) -> None:
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o755)
    target = tmp_path / "target"
    target.mkdir()
    (target / "x").symlink_to(outside)
    sid = _craft(repo, backend, entries, b"evil")
    with pytest.raises(LocalWriteError, match="not a directory"):
        repo.restore(sid, target)
    assert list(outside.iterdir()) == []
    assert outside.stat().st_mode & 0o777 == 0o755  # no chmod through the link


def test_dump_refuses_a_file_below_a_link_and_a_lying_size(repo: Repository,
                                                           backend: SpyBackend) -> None:
    import io
    import tarfile

    from strongroom.errors import DataDamaged
    from strongroom.repo.dump import tar_name

    sid = _craft(repo, backend, [
        Entry(KIND_DIR, "x", 0o40755, 0),
        Entry(KIND_SYMLINK, "x/l", 0o120777, 0, link="/etc"),
        Entry(KIND_FILE, "x/l/passwd", 0o100644, 0, 4),
    ], b"evil")
    out = io.BytesIO()
    with pytest.raises(FormatError, match="not a directory"):
        repo.dump(sid, "/x", out)
    assert b"passwd" not in out.getvalue()  # refused before its header was written
    lying = _craft(repo, backend, [Entry(KIND_FILE, "big", 0o100644, 0, 100)], b"four")
    with pytest.raises(DataDamaged, match="file list gives 100 bytes"):
        repo.dump(lying, "/big", io.BytesIO())
    tar_out = io.BytesIO()
    lying_dir = _craft(repo, backend, [Entry(KIND_DIR, "d", 0o40755, 0),
                                       Entry(KIND_FILE, "d/big", 0o100644, 0, 100)], b"four")
    with pytest.raises(DataDamaged):
        repo.dump(lying_dir, "/d", tar_out)
    # No end-of-archive: visibly incomplete.
    with pytest.raises(tarfile.ReadError), tarfile.open(fileobj=io.BytesIO(tar_out.getvalue())
                                                        ) as tar:
        tar.getmembers()
    for bad in (("a", ".."), ("a", ""), ("a", "b\x00")):
        with pytest.raises(FormatError):
            tar_name(bad, 1)
    assert tar_name(("home", "me", "chats", "a"), 2) == "chats/a"
