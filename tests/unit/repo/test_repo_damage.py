"""Damaged storage: check names the object and files, restore refuses or skips them."""

from __future__ import annotations

from pathlib import Path

import pytest
from repo_helpers import SpyBackend, restored_root, tree_state

from strongroom import Repository
from strongroom.errors import DataDamaged


def _setup(repo: Repository, tree: Path) -> tuple[str, str]:
    repo.backup([tree])
    return repo.find_snapshot("latest").id, f"{tree}".lstrip("/")


def _pack_of(backend: SpyBackend, repo: Repository, rel: str) -> tuple[str, int]:
    """The pack holding the first chunk of file ``rel``, and that chunk's frame offset."""
    from strongroom.repo.pack import pack_name

    eng = repo._engine
    doc = eng.find_doc("latest")
    entry = next(e for e in eng.entries(doc) if e.path.endswith(rel))
    pid, loc = eng.index().blobs[entry.chunks[0]]
    return pack_name(pid), loc.frame_offset


def _flip(backend: SpyBackend, name: str, offset: int) -> None:
    data = bytearray(backend.inner.get(name))
    data[offset] ^= 0x40
    backend.inner.put(name, bytes(data))


def _mutations(backend: SpyBackend, name: str, at: int = 100) -> dict[str, object]:
    return {
        "flip": lambda: _flip(backend, name, at),
        # Cut inside the frame at ``at`` (sealed objects: anywhere breaks them).
        "truncate": lambda: backend.inner.put(name, backend.inner.get(name)[:at]),
        "delete": lambda: backend.inner.delete(name),
    }


@pytest.mark.parametrize("how", ["flip", "truncate", "delete"])
def test_damaged_pack(repo: Repository, backend: SpyBackend, tree: Path, tmp_path: Path,
                      how: str) -> None:
    _setup(repo, tree)
    name, at = _pack_of(backend, repo, "p1.jpg")
    _mutations(backend, name, at + 10)[how]()  # type: ignore[operator]
    repo._engine._index = None

    report = repo.check(read_data=True)
    assert not report.ok
    bad = {p.object: p for p in report.problems}
    assert name in bad
    assert any(f.endswith("chats/media/p1.jpg") for f in bad[name].files)

    with pytest.raises(DataDamaged) as exc:
        repo.restore("latest", tmp_path / "out")
    assert name in exc.value.message

    out = tmp_path / "out2"
    res = repo.restore("latest", out, allow_damaged=True)
    assert any(d.endswith("chats/media/p1.jpg") for d in res.damaged)
    root = restored_root(out, tree)
    assert not (root / "chats/media/p1.jpg").exists()
    assert not [p for p in out.rglob("*") if "strongroom-" in p.name]
    want = tree_state(tree)
    got = tree_state(root)
    for path in res.damaged:
        want.pop(path[len(str(tree).lstrip("/")) + 1 :], None)
    assert got == {k: v for k, v in want.items() if k in got} and len(got) == len(want)


def test_flip_detected_only_with_read_data(repo: Repository, backend: SpyBackend,
                                           tree: Path) -> None:
    _setup(repo, tree)
    name, at = _pack_of(backend, repo, "p1.jpg")
    _flip(backend, name, at + 1000)
    assert repo.check().ok  # size and presence are still right
    report = repo.check(read_data=True)
    assert [p.object for p in report.problems] == [name]


def test_swapped_packs(repo: Repository, backend: SpyBackend, tree: Path, tmp_path: Path,
                       ) -> None:
    # Two backups of different trees give two packs; swap their contents.
    repo.backup([tree])
    packs = sorted(backend.inner.list("data/"))
    other = tmp_path / "more"
    other.mkdir()
    (other / "big.mp4").write_bytes(bytes(range(256)) * 20000)
    repo.backup([other])
    new = sorted(set(backend.inner.list("data/")) - set(packs))
    a, b = packs[0], new[0]
    da, db = backend.inner.get(a), backend.inner.get(b)
    backend.inner.put(a, db)
    backend.inner.put(b, da)
    report = repo.check(read_data=True)
    assert {a, b} <= {p.object for p in report.problems}


def test_damaged_index(repo: Repository, backend: SpyBackend, key, tree: Path,
                       tmp_path: Path) -> None:
    _setup(repo, tree)
    (idx,) = list(backend.inner.list("index/"))
    _flip(backend, idx, 50)
    fresh = Repository.open(backend, key)
    report = fresh.check()
    assert idx in {p.object for p in report.problems}
    with pytest.raises(DataDamaged) as exc:
        fresh.restore("latest", tmp_path / "out")
    assert idx in exc.value.message


def test_deleted_index_files_are_named(repo: Repository, backend: SpyBackend, key,
                                       tree: Path) -> None:
    _setup(repo, tree)
    (idx,) = list(backend.inner.list("index/"))
    backend.inner.delete(idx)
    report = Repository.open(backend, key).check()
    assert not report.ok
    files = [f for p in report.problems for f in p.files]
    assert any(f.endswith("chats/notes.txt") for f in files)


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_damaged_snapshot(repo: Repository, backend: SpyBackend, tree: Path, tmp_path: Path,
                          how: str) -> None:
    sid, _ = _setup(repo, tree)
    name = f"snapshots/{sid}"
    _mutations(backend, name)[how]()  # type: ignore[operator]
    report = repo.check()
    assert [p.object for p in report.problems] == [name]
    with pytest.raises(DataDamaged) as exc:
        repo.restore(sid, tmp_path / "out")
    assert name in exc.value.message


def test_swapped_snapshots_fail_authentication(repo: Repository, backend: SpyBackend,
                                               tree: Path) -> None:
    a = repo.backup([tree]).snapshot_id
    b = repo.backup([tree]).snapshot_id
    na, nb = f"snapshots/{a}", f"snapshots/{b}"
    da, db = backend.inner.get(na), backend.inner.get(nb)
    backend.inner.put(na, db)
    backend.inner.put(nb, da)
    report = repo.check()
    assert {p.object for p in report.problems} == {na, nb}


@pytest.mark.parametrize("how", ["truncate", "swap"])
def test_truncated_or_swapped_index(repo: Repository, backend: SpyBackend, key,
                                    tree: Path, tmp_path: Path, how: str) -> None:
    repo.backup([tree])
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "x.txt").write_text("more data")
    repo.backup([tmp_path / "more"])
    a, b = sorted(backend.inner.list("index/"))
    if how == "truncate":
        backend.inner.put(a, backend.inner.get(a)[:-1])
        broken = {a}
    else:
        da, db = backend.inner.get(a), backend.inner.get(b)
        backend.inner.put(a, db)
        backend.inner.put(b, da)
        broken = {a, b}
    report = Repository.open(backend, key).check()
    assert broken <= {p.object for p in report.problems}
    assert any(p.files for p in report.problems if p.object in broken)
    failed = 0
    for i, snap in enumerate(repo.snapshots()):
        try:
            Repository.open(backend, key).restore(snap.id, tmp_path / f"out{i}")
        except DataDamaged as exc:
            failed += 1
            assert any(name in exc.message for name in broken)
    assert failed >= 1


def test_backup_still_works_when_the_parent_is_damaged(repo: Repository, backend: SpyBackend,
                                                       tree: Path, tmp_path: Path) -> None:
    first = repo.backup([tree]).snapshot_id
    second = repo.backup([tree]).snapshot_id
    _flip(backend, f"snapshots/{second}", 60)
    summary = repo.backup([tree])  # parent falls back to the older, readable snapshot
    assert summary.files_unchanged == 6
    # Damage the only remaining parent's file list: every file is read again.
    doc = repo._engine.load_snapshot(summary.snapshot_id)
    from strongroom.repo.pack import pack_name

    pid, loc = repo._engine.index().blobs[doc.segments[0]]
    _flip(backend, pack_name(pid), loc.frame_offset + 5)
    backend.inner.delete(f"snapshots/{first}")
    again = repo.backup([tree])
    assert again.files_unchanged == 0 and again.files == 6 and again.warnings == []
    repo.restore(again.snapshot_id, tmp_path / "out")
    assert tree_state(restored_root(tmp_path / "out", tree)) == tree_state(tree)


def test_an_index_that_moves_a_blob_inside_its_frame_is_named(
        repo: Repository, backend: SpyBackend, key, tree: Path) -> None:
    # The index agrees with the pack header on every blob but one, whose offset inside its
    # frame it gives wrong: check --read-data names that pack and the file using the blob.
    import dataclasses

    from strongroom.repo.index import write_index
    from strongroom.repo.pack import pack_name

    _setup(repo, tree)
    eng = repo._engine
    doc = eng.find_doc("latest")
    entry = next(e for e in eng.entries(doc) if e.path.endswith("chats/notes.txt"))
    victim = entry.chunks[0]
    pid = eng.index().blobs[victim][0]
    packs = []
    for p, info in eng.index().packs.items():
        locs = [(bid, loc) for bid, (q, loc) in eng.index().blobs.items() if q == p]
        if p == pid:
            locs = [(bid, dataclasses.replace(loc, inner=loc.inner + 1, length=loc.length - 1)
                     if bid == victim else loc) for bid, loc in locs]
        packs.append((p, info, locs))
    for name in list(backend.inner.list("index/")):
        backend.inner.delete(name)
    write_index(backend.inner.put, eng.key, packs, eng.rng, eng.config.padded)
    report = Repository.open(backend, key).check(read_data=True)
    bad = {p.object: p for p in report.problems}
    name = pack_name(pid)
    assert list(bad) == [name], report.problems
    assert "header and index disagree about blob" in bad[name].what
    assert any(f.endswith("chats/notes.txt") for f in bad[name].files)
