"""Restore into a target that has files already: the overwrite modes, the dry run,
special bits, and sparse files restored as holes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from repo_helpers import SpyBackend, restored_root, tree_state
from test_repo_restore_escape import craft

from strongroom import Repository
from strongroom.progress import RecordingProgress
from strongroom.repo.manifest import KIND_DIR, KIND_FILE, Entry

SNAP_MTIME = 1_700_000_000_000_000_000


def _setup(repo: Repository, tmp_path: Path) -> tuple[Path, Path]:
    """A backup of four files; a target holding an older, a newer, a same-time
    different-content copy and an identical one; ``new`` is only in the snapshot."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("older", "newer", "same-time", "identical", "new"):
        (src / name).write_bytes(b"snapshot " + name.encode())
        os.utime(src / name, ns=(SNAP_MTIME, SNAP_MTIME))
    repo.backup([src])
    out = tmp_path / "out"
    root = restored_root(out, src)
    root.mkdir(parents=True)
    for name, dt, data in (("older", -10**9, b"local old"), ("newer", 10**9, b"local new"),
                           ("same-time", 0, b"local same size!!!"),
                           ("identical", 0, b"snapshot identical")):
        (root / name).write_bytes(data)
        os.utime(root / name, ns=(SNAP_MTIME + dt, SNAP_MTIME + dt))
    return out, root


EXPECT = {
    # mode: (files replaced, files kept) -- "new" is always written
    "always": ({"older", "newer", "same-time", "identical"}, set()),
    # restic's meaning: same size and mtime count as unchanged, content unread
    "if-changed": ({"older", "newer"}, {"same-time", "identical"}),
    "if-newer": ({"older"}, {"newer", "same-time", "identical"}),
    "never": (set(), {"older", "newer", "same-time", "identical"}),
}


@pytest.mark.parametrize("mode", sorted(EXPECT))
def test_overwrite_modes(repo: Repository, tmp_path: Path, mode: str) -> None:
    out, root = _setup(repo, tmp_path)
    before = tree_state(root)
    seen: list[tuple[str, str]] = []
    summary = repo.restore("latest", out, overwrite=mode,
                           on_item=lambda action, path, _why: seen.append(
                               (action, path.rsplit("/", 1)[-1])))
    replaced, kept = EXPECT[mode]
    assert sorted(seen) == sorted([("write", "new")] + [("replace", n) for n in replaced]
                                  + [("skip", n) for n in kept])
    assert (summary.replaced, summary.skipped, summary.files) == (
        len(replaced), len(kept), 1 + len(replaced))
    for name in replaced | {"new"}:
        assert (root / name).read_bytes() == b"snapshot " + name.encode()
        assert (root / name).stat().st_mtime_ns == SNAP_MTIME
    for name in kept:
        assert tree_state(root)[name] == before[name]


def test_the_default_keeps_a_newer_file_and_says_so(repo: Repository, tmp_path: Path) -> None:
    out, root = _setup(repo, tmp_path)
    seen: list[tuple[str, str, str]] = []
    summary = repo.restore("latest", out, on_item=lambda *a: seen.append(a))
    assert (root / "newer").read_bytes() == b"local new"
    assert [a for a in seen if a[1].endswith("/newer")] == [
        ("skip", a[1], "newer than the snapshot's copy") for a in seen if a[1].endswith("/newer")]
    assert summary.skipped == 3 and summary.replaced == 1


@pytest.mark.parametrize("mode", sorted(EXPECT))
def test_dry_run_writes_nothing_and_lists_everything(repo: Repository, tmp_path: Path,
                                                     mode: str) -> None:
    out, _root = _setup(repo, tmp_path)
    before = tree_state(out)
    seen: list[tuple[str, str]] = []
    summary = repo.restore("latest", out, overwrite=mode, dry_run=True,
                           on_item=lambda action, path, _why: seen.append(
                               (action, path.rsplit("/", 1)[-1])))
    assert tree_state(out) == before
    replaced, kept = EXPECT[mode]
    assert sorted(seen) == sorted([("write", "new")] + [("replace", n) for n in replaced]
                                  + [("skip", n) for n in kept])
    assert summary.dry_run and (summary.replaced, summary.skipped) == (len(replaced), len(kept))
    fresh = tmp_path / "nowhere"
    everything = repo.restore("latest", fresh, dry_run=True)
    assert not fresh.exists() and everything.files == 5 and everything.skipped == 0


def test_existing_directory_keeps_its_mode_unless_always(repo: Repository,
                                                         backend: SpyBackend,
                                                         tmp_path: Path) -> None:
    sid = craft(repo, backend, [Entry(KIND_DIR, "d", 0o40700, 5)])
    target = tmp_path / "t"
    (target / "d").mkdir(parents=True, mode=0o755)
    (target / "d").chmod(0o755)
    repo.restore(sid, target)
    assert (target / "d").stat().st_mode & 0o777 == 0o755
    repo.restore(sid, target, overwrite="always")
    assert (target / "d").stat().st_mode & 0o777 == 0o700


def test_special_bits_only_when_asked(repo: Repository, backend: SpyBackend,
                                      tmp_path: Path) -> None:
    sid = craft(repo, backend, [Entry(KIND_DIR, "d", 0o41777, 0),
                                Entry(KIND_FILE, "d/f", 0o104755, 0)])
    plain, special = tmp_path / "plain", tmp_path / "special"
    repo.restore(sid, plain)
    assert stat.S_IMODE((plain / "d").stat().st_mode) == 0o777
    assert stat.S_IMODE((plain / "d" / "f").stat().st_mode) == 0o755
    repo.restore(sid, special, restore_special_bits=True)
    assert stat.S_IMODE((special / "d").stat().st_mode) == 0o1777
    assert stat.S_IMODE((special / "d" / "f").stat().st_mode) == 0o4755


def test_sparse_file_is_restored_with_holes(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    f = src / "sparse.db"
    with open(f, "wb") as fh:
        fh.write(os.urandom(100_000))
        fh.seek(24 << 20)
        fh.write(os.urandom(100_000))
        fh.truncate(48 << 20)  # a hole at the end too
    repo.backup([src])
    out = tmp_path / "out"
    repo.restore("latest", out)
    restored = restored_root(out, src) / "sparse.db"
    st = restored.stat()
    assert st.st_size == f.stat().st_size
    assert restored.read_bytes() == f.read_bytes()
    assert st.st_blocks * 512 < 4 << 20  # 48 MiB logical, well under 4 MiB on disk


def test_a_repeated_zero_blob_does_not_fill_the_disk(repo: Repository, backend: SpyBackend,
                                                     tmp_path: Path) -> None:
    sid = craft(repo, backend, [Entry(KIND_FILE, "big", 0o100644, 0)],
                content=bytes(64 * 1024), chunks=16 * 1024)  # 1 GiB of one zero blob
    target = tmp_path / "t"
    summary = repo.restore(sid, target)
    st = (target / "big").stat()
    assert summary.bytes == st.st_size == 1 << 30
    assert st.st_blocks * 512 < 1 << 20


@pytest.mark.parametrize("where", ["header", "trailer"])
def test_pack_header_damage_cannot_change_a_restore(repo: Repository, backend: SpyBackend,
                                                    tree: Path, tmp_path: Path,
                                                    where: str) -> None:
    # Spec §12: restore reads frames through the index, never a pack's header.
    repo.backup([tree])
    for name in list(backend.list("data/")):
        data = bytearray(backend.inner.get(name))
        data[-6 if where == "header" else -1] ^= 0x40
        backend.inner.put(name, bytes(data))
    out = tmp_path / "out"
    Repository.open(backend, repo._engine.master).restore("latest", out)
    assert tree_state(restored_root(out, tree)) == tree_state(tree)
    report = repo.check(read_data=True)
    assert not report.ok and any(p.object.startswith("data/") for p in report.problems)


class _Interrupt(RecordingProgress):
    """Ctrl-C after ``limit`` bytes were written (inside a file)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit, self.done = limit, 0

    def advance(self, n: int) -> None:
        before, self.done = self.done, self.done + n
        if before <= self.limit < self.done:  # once, like one Ctrl-C
            raise KeyboardInterrupt


def test_an_interrupted_restore_leaves_no_partial_file(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a-small").write_bytes(b"small")
    (src / "b-big").write_bytes(os.urandom(6 << 20))
    os.utime(src / "b-big", ns=(SNAP_MTIME, SNAP_MTIME))
    repo.backup([src])
    out = tmp_path / "out"
    root = restored_root(out, src)
    root.mkdir(parents=True)
    (root / "b-big").write_bytes(b"old copy")
    os.utime(root / "b-big", ns=(SNAP_MTIME - 1, SNAP_MTIME - 1))
    with pytest.raises(KeyboardInterrupt):
        repo.restore("latest", out, progress=_Interrupt(2 << 20))
    assert (root / "b-big").read_bytes() == b"old copy"  # not replaced by a partial file
    assert (root / "a-small").read_bytes() == b"small"  # complete before: kept
    assert not [p for p in out.rglob("*") if "strongroom-" in p.name]
