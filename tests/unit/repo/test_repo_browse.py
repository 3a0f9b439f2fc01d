"""Looking inside snapshots through the library: ls, find, diff, dump, stats, selection, tags."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from strongroom import Repository
from strongroom.errors import FormatError, PathNotFound, SnapshotNotFound, UsageError
from strongroom.repo.manifest import SnapshotDoc, open_snapshot, seal_snapshot
from strongroom.repo.selection import SnapshotFilter


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "chats"
    (root / "Media").mkdir(parents=True)
    (root / "notes.txt").write_text("hello\n" * 100)
    (root / "Media" / "IMG-1.jpg").write_bytes(os.urandom(50_000))
    (root / "Media" / "PTT-2.opus").write_bytes(b"voice")
    (root / "msgstore.db").write_bytes(b"db" * 1000)
    os.symlink("notes.txt", root / "link")
    return root


def p(src: Path, rel: str = "") -> str:
    return str(src) + ("/" + rel if rel else "")


def test_ls_lists_a_folder_its_children_or_everything(repo: Repository, src: Path) -> None:
    repo.backup([src])
    everything = [e.path for e in repo.ls("latest")]
    assert everything == [p(src), p(src, "Media"), p(src, "Media/IMG-1.jpg"),
                          p(src, "Media/PTT-2.opus"), p(src, "link"), p(src, "msgstore.db"),
                          p(src, "notes.txt")]
    top = {e.path: e for e in repo.ls("latest", p(src))}
    assert list(top) == [p(src), p(src, "Media"), p(src, "link"), p(src, "msgstore.db"),
                         p(src, "notes.txt")]
    assert top[p(src, "link")].type == "symlink" and top[p(src, "link")].link == "notes.txt"
    assert top[p(src, "notes.txt")].size == 600
    assert top[p(src, "notes.txt")].permissions.startswith("-rw")
    # A folder above the backed-up path has no record: shown as a folder without metadata.
    above = list(repo.ls("latest", str(src.parent)))
    assert [(e.path, e.recorded) for e in above] == [(p(src), True)]
    parent_of_parent = list(repo.ls("latest", str(src.parent.parent)))
    assert [(e.path, e.recorded) for e in parent_of_parent] == [(str(src.parent), False)]
    assert [e.path for e in repo.ls("latest", p(src, "Media"), recursive=True)] == [
        p(src, "Media"), p(src, "Media/IMG-1.jpg"), p(src, "Media/PTT-2.opus")]
    assert repo.ls("latest", p(src, "notes.txt")).__next__().to_json()["permissions"]


def test_ls_bad_paths_and_snapshots(repo: Repository, src: Path) -> None:
    repo.backup([src])
    with pytest.raises(PathNotFound, match="is not in snapshot") as info:
        list(repo.ls("latest", p(src, "nope")))
    assert str(src) in (info.value.hint or "")
    with pytest.raises(UsageError):
        list(repo.ls("latest", p(src, "../etc")))
    with pytest.raises(SnapshotNotFound, match="no snapshot matches 'ffff'"):
        list(repo.ls("ffff"))


def test_ambiguous_id_prefix_is_refused(repo: Repository, src: Path) -> None:
    ids = [repo.backup([src]).snapshot_id for _ in range(40)]
    firsts = [i[0] for i in ids]
    shared = next(c for c in firsts if firsts.count(c) > 1)
    with pytest.raises(SnapshotNotFound, match="more than one snapshot matches") as info:
        repo.find_snapshot(shared)
    assert info.value.hint == "give more digits of the id"
    assert repo.find_snapshot(ids[0]).id == ids[0]


def test_find_across_snapshots_with_filters(repo: Repository, src: Path) -> None:
    first = repo.backup([src], hostname="phone", tags=["daily"]).snapshot_id
    (src / "Media" / "IMG-3.jpg").write_bytes(b"x")
    second = repo.backup([src], hostname="laptop").snapshot_id
    hits = [(m.snapshot_id, m.entry.path) for m in repo.find(["*.jpg"])]
    assert hits == [(first, p(src, "Media/IMG-1.jpg")), (second, p(src, "Media/IMG-1.jpg")),
                    (second, p(src, "Media/IMG-3.jpg"))]
    assert [m.entry.path for m in repo.find(["Media/IMG-3*"])] == [p(src, "Media/IMG-3.jpg")]
    assert {m.snapshot_id for m in repo.find(["*.jpg"], where=SnapshotFilter.of(
        hosts=["phone"]))} == {first}
    assert {m.snapshot_id for m in repo.find(["*.db"], where=SnapshotFilter.of(
        tags=["daily"]))} == {first}
    assert {m.snapshot_id for m in repo.find(["*.db"], refs=[second[:8]])} == {second}
    assert list(repo.find(["*.nothing"])) == []
    with pytest.raises(UsageError):
        list(repo.find(["a**"]))
    with pytest.raises(UsageError):
        list(repo.find([]))


def test_latest_under_a_filter_and_snapshots_listing(repo: Repository, src: Path) -> None:
    a = repo.backup([src], hostname="phone", tags=["weekly", "b"]).snapshot_id
    b = repo.backup([src], hostname="laptop").snapshot_id
    assert repo.find_snapshot("latest").id == b
    assert repo.find_snapshot("latest", SnapshotFilter.of(hosts=["phone"])).id == a
    assert repo.find_snapshot("latest", SnapshotFilter.of(tags=["b,weekly"])).id == a
    assert repo.find_snapshot("latest", SnapshotFilter.of(paths=[str(src)])).id == b
    with pytest.raises(SnapshotNotFound, match="no snapshot matches host tablet"):
        repo.find_snapshot("latest", SnapshotFilter.of(hosts=["tablet"]))
    assert [s.id for s in repo.snapshots(SnapshotFilter.of(tags=["nope", "weekly"]))] == [a]
    assert repo.snapshots()[0].tags == ["b", "weekly"] and repo.snapshots()[1].tags == []
    with pytest.raises(UsageError, match="bad tag"):
        repo.backup([src], tags=["a,b"])


def test_diff_added_removed_modified_and_chat_hook(repo: Repository, src: Path) -> None:
    before = repo.backup([src]).snapshot_id
    (src / "notes.txt").write_text("hello\n" * 100 + "more\n")
    (src / "msgstore.db").unlink()
    (src / "new.txt").write_text("n")
    os.utime(src / "Media", (1, 1))
    after = repo.backup([src]).snapshot_id
    calls = []

    def chats(engine: object, a: SnapshotDoc, b: SnapshotDoc) -> dict[str, int]:
        calls.append((a.id, b.id))
        return {"chats_changed": 0}

    d = repo.diff(before[:8], after, chats=chats)
    got = [(c.path, c.change, c.what) for c in d.changes]
    assert (p(src, "msgstore.db"), "removed", []) in got
    assert (p(src, "new.txt"), "added", []) in got
    assert (p(src, "notes.txt"), "modified", ["size", "content", "mtime"]) in got
    assert (p(src, "Media"), "metadata", ["mtime"]) in got
    assert d.stats.added == 1 and d.stats.removed == 1 and d.stats.modified == 1
    assert d.stats.bytes_removed == 2000 and d.stats.bytes_added == 1
    assert d.stats.bytes_changed > 0
    assert calls == [(before, after)] and d.to_json()["chats"] == {"chats_changed": 0}
    json.dumps(d.to_json())
    same = repo.diff(after, after)
    assert same.changes == [] and same.to_json()["chats"] is None


def test_dump_file_and_folder_as_a_safe_tar_stream(repo: Repository, src: Path) -> None:
    repo.backup([src])
    out = io.BytesIO()
    r = repo.dump("latest", p(src, "Media/IMG-1.jpg"), out)
    assert r.kind == "file" and out.getvalue() == (src / "Media" / "IMG-1.jpg").read_bytes()
    os.chmod(src / "notes.txt", 0o4755)
    repo.backup([src])
    tar_bytes = io.BytesIO()
    r = repo.dump("latest", p(src), tar_bytes)
    assert r.kind == "tar" and r.files == 4
    with tarfile.open(fileobj=io.BytesIO(tar_bytes.getvalue())) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {"chats", "chats/Media", "chats/Media/IMG-1.jpg",
                                "chats/Media/PTT-2.opus", "chats/link", "chats/msgstore.db",
                                "chats/notes.txt"}
        assert all(not n.startswith("/") and ".." not in n.split("/") for n in members)
        assert members["chats/notes.txt"].mode == 0o755  # setuid dropped
        assert members["chats/link"].issym() and members["chats/link"].linkname == "notes.txt"
        f = tar.extractfile("chats/Media/IMG-1.jpg")
        assert f is not None and f.read() == (src / "Media" / "IMG-1.jpg").read_bytes()
    whole = io.BytesIO()
    repo.dump("latest", "/", whole)
    with tarfile.open(fileobj=io.BytesIO(whole.getvalue())) as tar:
        assert p(src, "notes.txt").lstrip("/") in tar.getnames()
    with pytest.raises(UsageError, match="is a symlink"):
        repo.dump("latest", p(src, "link"), io.BytesIO())
    with pytest.raises(PathNotFound):
        repo.dump("latest", p(src, "nope"), io.BytesIO())


def test_stats_restore_unique_and_stored_sizes(repo: Repository, src: Path) -> None:
    repo.backup([src])
    repo.backup([src])
    s = repo.stats()
    total = sum(f.stat().st_size for f in src.rglob("*") if f.is_file() and not f.is_symlink())
    assert s.snapshots == 2 and s.restore_size == 2 * total
    assert s.unique_size == total and s.dedup_ratio == 2.0
    assert 0 < s.stored_size <= s.repository_size and s.missing_blobs == 0
    one = repo.stats(["latest"])
    assert one.snapshots == 1 and one.dedup_ratio == 1.0


def test_tags_are_optional_in_the_snapshot_format(repo: Repository, src: Path) -> None:
    repo.backup([src])
    engine = repo._engine
    doc = engine.snapshot_docs()[0]
    assert b"\"tags\"" not in doc.encode()  # untagged snapshots are written exactly as before
    tagged = SnapshotDoc(doc.id, doc.time, doc.hostname, doc.paths, doc.files, doc.dirs,
                         doc.size, doc.parent, doc.segments, ["a", "b"])
    sealed = seal_snapshot(engine.key, tagged, os.urandom)
    assert open_snapshot(engine.key, doc.id, sealed).tags == ["a", "b"]
    for bad in (["b", "a"], ["a", "a"], ["x,y"], [""], [" a"], ["a\n"], "a", [1], ["x" * 256],
                [str(i).zfill(3) for i in range(101)]):
        plain = json.loads(doc.encode())
        plain["tags"] = bad
        raw = json.dumps(plain, sort_keys=True).encode()
        forged = _reseal(engine.key, doc.id, raw)
        with pytest.raises(FormatError, match="tags"):
            open_snapshot(engine.key, doc.id, forged)


def _reseal(key: object, snap_id: str, plain: bytes) -> bytes:
    from strongroom.crypto import labels
    from strongroom.repo.manifest import SNAPSHOT_MAGIC, snapshot_name
    from strongroom.repo.sealed import seal_object

    return seal_object(key, labels.SNAPSHOT, SNAPSHOT_MAGIC, snapshot_name(snap_id),  # type: ignore[arg-type]
                       plain, os.urandom)
