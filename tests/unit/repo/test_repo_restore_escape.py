"""Crafted snapshots and a hostile target: nothing is written, chmodded or timed outside.

Each test plants a victim outside the target and checks after the restore that
its content, mode and mtime are untouched, whatever the restore itself raised.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from repo_helpers import SpyBackend

from strongroom import Repository
from strongroom.errors import DataDamaged, LocalWriteError
from strongroom.repo.manifest import (
    KIND_DIR,
    KIND_FILE,
    KIND_SYMLINK,
    ChunkIds,
    Entry,
    SegmentWriter,
    SnapshotDoc,
    seal_snapshot,
    snapshot_name,
)
from strongroom.repo.pack import BLOB_DATA, BLOB_META
from strongroom.repo.packer import Packer

VICTIM_MTIME = 1_600_000_000_000_000_000


def craft(repo: Repository, backend: SpyBackend, entries: list[Entry],
          content: bytes = b"evil", chunks: int = 1) -> str:
    """A snapshot holding ``entries``; every file is ``chunks`` copies of ``content``."""
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
            e.chunks = ChunkIds(cid * chunks)
            e.size = len(content) * chunks
        segments.add(e)
    segments.flush()
    packer.finish()
    doc = SnapshotDoc("cd" * 16, 1.0, "h", ["/x"], 1, 0, 0, None, segments.segments)
    backend.put(snapshot_name(doc.id), seal_snapshot(eng.key, doc, eng.rng))
    return doc.id


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """An outside directory with a private file, both with known modes and times."""
    d = tmp_path / "victim"
    d.mkdir(mode=0o700)
    key = d / "id_ed25519"
    key.write_bytes(b"private")
    key.chmod(0o600)
    os.utime(key, ns=(VICTIM_MTIME, VICTIM_MTIME))
    os.utime(d, ns=(VICTIM_MTIME, VICTIM_MTIME))
    return d


def assert_untouched(victim: Path) -> None:
    assert sorted(p.name for p in victim.iterdir()) == ["id_ed25519"]
    key = victim / "id_ed25519"
    assert key.read_bytes() == b"private"
    for p, mode in ((victim, 0o700), (key, 0o600)):
        st = p.stat()
        assert (st.st_mode & 0o7777, st.st_mtime_ns) == (mode, VICTIM_MTIME), p


def restore_quietly(repo: Repository, sid: str, target: Path, **kw: object) -> None:
    """Restore; a refusal (malformed snapshot, local write error) is fine, a traceback is not."""
    try:
        repo.restore(sid, target, **kw)  # type: ignore[arg-type]
    except (DataDamaged, LocalWriteError):
        pass


def test_issue_mode_and_time_escape(repo: Repository, backend: SpyBackend, tmp_path: Path,
                                    victim: Path) -> None:
    # Issue 11 point 6: directory sub, link x -> sub, directory x 06777, link x -> victim.
    sid = craft(repo, backend, [
        Entry(KIND_DIR, "sub", 0o40755, 0),
        Entry(KIND_SYMLINK, "x", 0o120777, 0, link="sub"),
        Entry(KIND_DIR, "x", 0o46777, 0),
        Entry(KIND_SYMLINK, "x", 0o120777, 0, link=str(victim / "id_ed25519")),
    ])
    with pytest.raises(DataDamaged, match="out of order|twice"):
        repo.restore(sid, tmp_path / "target")
    assert_untouched(victim)


@pytest.mark.parametrize("entries", [
    [Entry(KIND_FILE, "x", 0o100644, 0), Entry(KIND_FILE, "x", 0o100644, 0)],
    [Entry(KIND_DIR, "x", 0o40777, 0), Entry(KIND_DIR, "x", 0o40777, 0)],
    [Entry(KIND_FILE, "b", 0o100644, 0), Entry(KIND_FILE, "a", 0o100644, 0)],
    [Entry(KIND_DIR, "a", 0o40755, 0), Entry(KIND_FILE, "a/f", 0o100644, 0),
     Entry(KIND_FILE, "a", 0o100644, 0)],
], ids=["file twice", "dir twice", "out of order", "dir, then a file of the same name"])
def test_duplicate_and_out_of_order_paths_are_refused(repo: Repository, backend: SpyBackend,
                                                      tmp_path: Path,
                                                      entries: list[Entry]) -> None:
    sid = craft(repo, backend, entries)
    with pytest.raises(DataDamaged, match="out of order|twice") as exc:
        repo.restore(sid, tmp_path / "target")
    assert exc.value.exit_code == 12


@pytest.mark.parametrize("where", ["path", "link"])
def test_nul_byte_is_a_format_error(repo: Repository, backend: SpyBackend, tmp_path: Path,
                                    where: str) -> None:
    entry = (Entry(KIND_FILE, "a\0b", 0o100644, 0) if where == "path"
             else Entry(KIND_SYMLINK, "a", 0o120777, 0, link="/etc\0/passwd"))
    sid = craft(repo, backend, [entry])
    with pytest.raises(DataDamaged, match="NUL"):
        repo.restore(sid, tmp_path / "target")
    assert not (tmp_path / "target" / "a").exists()


@pytest.mark.parametrize("name", ["../escape", "/abs", "a/../../b", "a//b", "./a"])
def test_unsafe_paths_are_refused_by_restore(repo: Repository, backend: SpyBackend,
                                             tmp_path: Path, name: str) -> None:
    sid = craft(repo, backend, [Entry(KIND_FILE, name, 0o100644, 0)])
    with pytest.raises(DataDamaged, match="unsafe path"):
        repo.restore(sid, tmp_path / "target")
    assert not (tmp_path / "escape").exists() and not Path("/abs").exists()


def test_links_named_like_temporary_files(repo: Repository, backend: SpyBackend,
                                          tmp_path: Path, victim: Path) -> None:
    # The old scheme's names (every pid, first counters) and the new prefix: each
    # a link to the victim.  Temporary files are created with O_EXCL|O_NOFOLLOW
    # under 96 random bits, so none of them is ever opened.
    names = [f".x.strongroom-{pid}-{n}" for pid in (os.getpid(), 1, 2) for n in range(3)]
    names += [".strongroom-" + "0" * 24, ".strongroom-"]
    links = [Entry(KIND_SYMLINK, n, 0o120777, 0, link=str(victim / "id_ed25519"))
             for n in sorted(names)]
    sid = craft(repo, backend, [*links, Entry(KIND_FILE, "x", 0o100777, 0)])
    target = tmp_path / "target"
    summary = repo.restore(sid, target)
    assert summary.files == 1 and (target / "x").read_bytes() == b"evil"
    assert_untouched(victim)
    assert all((target / n).is_symlink() for n in names)


def test_links_to_outside_are_created_but_never_followed(repo: Repository,
                                                         backend: SpyBackend, tmp_path: Path,
                                                         victim: Path) -> None:
    sid = craft(repo, backend, [
        Entry(KIND_SYMLINK, "a", 0o120777, 0, link=str(victim)),
        Entry(KIND_FILE, "a/id_ed25519", 0o100777, 0),
        Entry(KIND_SYMLINK, "k", 0o120777, 0, link=str(victim / "id_ed25519")),
    ])
    restore_quietly(repo, sid, tmp_path / "target", overwrite="always")
    assert_untouched(victim)
    # A file whose name exists in the target as a link replaces the link itself.
    target = tmp_path / "t2"
    target.mkdir()
    (target / "k").symlink_to(victim / "id_ed25519")
    sid2 = craft(repo, backend, [Entry(KIND_FILE, "k", 0o106777, 1)])
    repo.restore(sid2, target, overwrite="always")
    assert not (target / "k").is_symlink() and (target / "k").read_bytes() == b"evil"
    assert_untouched(victim)


@pytest.mark.parametrize("planted", ["dir", "parent"])
def test_links_already_in_the_target(repo: Repository, backend: SpyBackend, tmp_path: Path,
                                     victim: Path, planted: str) -> None:
    target = tmp_path / "target"
    (target / "a").mkdir(parents=True)
    link = target / "a" / "d" if planted == "dir" else target / "a"
    if planted == "parent":
        (target / "a").rmdir()
    link.symlink_to(victim)
    sid = craft(repo, backend, [
        Entry(KIND_DIR, "a", 0o40777, 0), Entry(KIND_DIR, "a/d", 0o47777, 0),
        Entry(KIND_FILE, "a/d/id_ed25519", 0o104777, 0),
    ])
    for mode in ("always", "if-newer"):
        with pytest.raises(LocalWriteError, match="not a directory"):
            repo.restore(sid, target, overwrite=mode)
        with pytest.raises(LocalWriteError, match="not a directory"):
            repo.restore(sid, target, overwrite=mode, dry_run=True)
    assert_untouched(victim)


def test_directories_swapped_for_links_during_the_restore(repo: Repository,
                                                          backend: SpyBackend, tmp_path: Path,
                                                          victim: Path) -> None:
    # Another process keeps replacing the target's directories by links to the
    # victim (moving each real one aside, inside the target) while files land.
    dirs = [f"d{i:02}" for i in range(40)]
    entries: list[Entry] = []
    for d in dirs:
        entries.append(Entry(KIND_DIR, d, 0o46777, 0))
        entries.append(Entry(KIND_DIR, f"{d}/s", 0o46777, 0))
        entries += [Entry(KIND_FILE, f"{d}/s/f{j}", 0o106777, 0) for j in range(5)]
    sid = craft(repo, backend, entries, content=os.urandom(20_000))
    target = tmp_path / "target"
    target.mkdir()
    stop = threading.Event()
    swaps = [0]

    def swapper() -> None:
        n = 0
        while not stop.is_set():
            for d in dirs:
                for rel in (d, f"{d}/s"):
                    p = target / rel
                    try:
                        if p.is_dir() and not p.is_symlink():
                            p.rename(target / f"moved-{n}")
                            n += 1
                            p.symlink_to(victim)
                            swaps[0] += 1
                    except OSError:
                        pass

    t = threading.Thread(target=swapper)
    t.start()
    try:
        for _ in range(3):
            restore_quietly(repo, sid, target, overwrite="always")
    finally:
        stop.set()
        t.join()
    assert swaps[0] > 0
    assert_untouched(victim)
