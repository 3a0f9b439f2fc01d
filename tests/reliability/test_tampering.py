"""Tampering campaign: a storage provider changes stored objects; nothing is silently restored.

For every stored object type (``config`` with its key check value, data and
file-list packs, index objects, snapshot objects, locks) each case applies one
change to a pristine copy of a real local repository — flip a byte (seeded
positions), truncate, delete, swap two objects of the same type, substitute an
object of the same type from another repository made with the same key and
from one made with another key — and then runs, in process, what a user would:
open, ``check --read-data`` and a restore of every snapshot.

A case passes when nothing crashed, no restore produced a tree different from
the original, and the change was detected (open refused, or check reported a
problem naming the changed object).  Figures go to ``campaign.record``.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from strongroom.api import BackupKey, Repository
from strongroom.errors import StrongroomError
from strongroom.storage.local import LocalBackend

from .campaign import record, sized, tree_digest

# The whole module shares one set of outcomes: keep it on one xdist worker.
pytestmark = pytest.mark.xdist_group("reliability-tampering")

FLIPS = sized(3, 25)  # byte positions flipped per object
SEED = 6006


def _source(root: Path, seed: int) -> Path:
    """A small chat-like tree: an incompressible media file, compressible text, a db."""
    rnd = random.Random(seed)
    src = root / "chat"
    (src / "media").mkdir(parents=True)
    (src / "media" / "IMG-0001.jpg").write_bytes(rnd.randbytes(200_000))
    (src / "msgstore.txt").write_text("".join(f"message {i} from {rnd.random()}\n"
                                              for i in range(4000)))
    (src / "media" / "voice.opus").write_bytes(rnd.randbytes(50_000))
    return src


def _build(root: Path, key: BackupKey, seed: int) -> tuple[Path, dict[str, dict]]:
    """A repository with two snapshots (so two index objects, four packs)."""
    src = _source(root / "src", seed)
    repo_dir = root / "repo"
    backend = LocalBackend(repo_dir, create=True, fsync=False)
    refs: dict[str, dict] = {}
    # Seeded names and salts, so a case list (object names, sizes) is reproducible.
    names = random.Random(seed + 100)
    with Repository.create(backend, key, rng=names.randbytes) as repo:
        s1 = repo.backup([src], hostname="phone").snapshot_id
        refs[s1] = tree_digest(src)
        (src / "msgstore.txt").write_text("changed\n" * 3000)
        (src / "media" / "IMG-0002.jpg").write_bytes(random.Random(seed + 1).randbytes(90_000))
        s2 = repo.backup([src], hostname="phone").snapshot_id
        refs[s2] = tree_digest(src)
    backend.close()
    return repo_dir, refs


@dataclass
class World:
    """The pristine repository A, its snapshots' trees, and donors B (same key) and C."""

    root: Path
    key: BackupKey
    a: Path
    refs: dict[str, dict]
    b: Path
    c: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("tamper")
    key = BackupKey.from_bytes(bytes(range(32)))
    a, refs = _build(root / "a", key, 1)
    b, _ = _build(root / "b", key, 2)
    c, _ = _build(root / "c", BackupKey.from_bytes(bytes(range(32, 64))), 3)
    # Restored trees are rooted at the source's absolute path; compare below it.
    return World(root, key, a, refs, b, c)


def _objects(repo: Path, kind: str) -> list[str]:
    """Sorted object names of one type; packs are split into data and file-list packs."""
    backend = LocalBackend(repo)
    try:
        if kind == "config":
            return ["config"]
        if kind in {"data-pack", "filelist-pack"}:
            with Repository.open(backend, _key_of(repo)) as r:
                idx = r._engine.index()  # private: which pack holds which blob type
                types: dict[str, set[int]] = {}
                from strongroom.repo.pack import pack_name

                for pid, loc in idx.blobs.values():
                    types.setdefault(pack_name(pid), set()).add(loc.type)
            want = 0 if kind == "data-pack" else 1
            return sorted(n for n, t in types.items() if want in t)
        prefix = {"index": "index/", "snapshot": "snapshots/"}[kind]
        return sorted(backend.list(prefix))
    finally:
        backend.close()


_KEYS: dict[Path, BackupKey] = {}


def _key_of(repo: Path) -> BackupKey:
    return _KEYS[repo]


@dataclass
class Outcome:
    """What one tampering case led to."""

    case: str
    targets: list[str]
    open_refused: str | None = None
    check_problems: list[tuple[str, str, list[str]]] = field(default_factory=list)
    restore: dict[str, str] = field(default_factory=dict)  # snapshot -> detected/correct/WRONG
    crashes: list[str] = field(default_factory=list)

    @property
    def detected(self) -> bool:
        return self.open_refused is not None or bool(self.check_problems)

    @property
    def named(self) -> bool:
        """The changed object is named — or, for a deleted index (whose name is gone with
        it), the packs it listed are named as unindexed."""
        if self.open_refused is not None:
            return True
        named = {p[0] for p in self.check_problems}
        if self.case.startswith("index:") and self.case.endswith(":delete"):
            return any(n.startswith("data/") for n in named)
        return any(t in named for t in self.targets)

    @property
    def files_named(self) -> bool:
        return any(p[2] for p in self.check_problems)


def _evaluate(case: str, repo: Path, key: BackupKey, refs: dict[str, dict],
              targets: list[str], scratch: Path) -> Outcome:
    out = Outcome(case, targets)
    backend = LocalBackend(repo)
    try:
        try:
            r = Repository.open(backend, key)
        except StrongroomError as exc:
            out.open_refused = type(exc).__name__
            return out
        with r:
            try:
                report = r.check(read_data=True)
                out.check_problems = [(p.object, p.what, list(p.files)) for p in report.problems]
            except StrongroomError as exc:
                out.check_problems = [("(check refused)", f"{type(exc).__name__}: {exc}", [])]
            except Exception as exc:  # noqa: BLE001 - a crash is what this campaign looks for
                out.crashes.append(f"check: {type(exc).__name__}: {exc}")
            for n, (sid, ref) in enumerate(sorted(refs.items())):
                target = scratch / f"restore-{n}"
                try:
                    r.restore(sid, target)
                except StrongroomError:
                    out.restore[sid] = "detected"
                    continue
                except Exception as exc:  # noqa: BLE001
                    out.crashes.append(f"restore: {type(exc).__name__}: {exc}")
                    continue
                src_root = next(p for p in target.rglob("chat") if p.is_dir())
                out.restore[sid] = "correct" if tree_digest(src_root) == ref else "WRONG"
    finally:
        backend.close()
    return out


# -- the mutations ---------------------------------------------------------------------------

def _flip(path: Path, pos: int) -> None:
    data = bytearray(path.read_bytes())
    data[pos % len(data)] ^= 0x01 << (pos % 8)
    path.write_bytes(bytes(data))


def _cases(world: World) -> list[tuple[str, str, list[str], object]]:
    """(case id, kind, target object names, mutate(repo_dir)) for every case."""
    cases: list[tuple[str, str, list[str], object]] = []
    rnd = random.Random(SEED)
    for kind in ("config", "data-pack", "filelist-pack", "index", "snapshot"):
        names = _objects(world.a, kind)
        assert names, kind
        b_names = _objects(world.b, kind)
        c_names = _objects(world.c, kind)
        for name in names:
            size = (world.a / name).stat().st_size
            # Flip positions: the first bytes (magic), the last 4 (packs: header length),
            # and seeded random ones in between.
            positions = sorted({0, size - 1} | {rnd.randrange(size) for _ in range(FLIPS)})
            for pos in positions:
                cases.append((f"{kind}:{name}:flip@{pos}", kind, [name],
                              lambda d, n=name, p=pos: _flip(d / n, p)))
            for cut in sorted({0, size // 2, size - 1}):
                cases.append((f"{kind}:{name}:truncate@{cut}", kind, [name],
                              lambda d, n=name, c=cut: (d / n).write_bytes(
                                  (d / n).read_bytes()[:c])))
            cases.append((f"{kind}:{name}:delete", kind, [name],
                          lambda d, n=name: (d / n).unlink()))
            for donor, dnames, tag in ((world.b, b_names, "same-key"),
                                       (world.c, c_names, "other-key")):
                dn = dnames[0]
                cases.append((f"{kind}:{name}:substitute-{tag}", kind, [name],
                              lambda d, n=name, s=donor / dn: shutil.copyfile(s, d / n)))
        if kind == "snapshot":
            # Graft: another repository's (same key) snapshot copied in under its own name.
            graft = b_names[0]
            cases.append((f"{kind}:graft-same-key", kind, [graft],
                          lambda d, g=graft: shutil.copyfile(world.b / g, d / g)))
        if len(names) >= 2:
            x, y = names[0], names[1]

            def swap(d: Path, x: str = x, y: str = y) -> None:
                bx, by = (d / x).read_bytes(), (d / y).read_bytes()
                (d / x).write_bytes(by)
                (d / y).write_bytes(bx)

            cases.append((f"{kind}:swap", kind, [x, y], swap))
    return cases


def _run_all(world: World) -> list[Outcome]:
    outcomes = []
    for n, (case, _kind, targets, mutate) in enumerate(_cases(world)):
        work = world.root / "cases" / str(n)
        repo = work / "repo"
        shutil.copytree(world.a, repo)
        mutate(repo)  # type: ignore[operator]
        outcomes.append(_evaluate(case, repo, world.key, world.refs, targets, work))
        shutil.rmtree(work)
    return outcomes


@pytest.fixture(scope="module")
def outcomes(world: World) -> list[Outcome]:
    _KEYS.update({world.a: world.key, world.b: world.key,
                  world.c: BackupKey.from_bytes(bytes(range(32, 64)))})
    result = _run_all(world)
    kinds: dict[str, dict[str, int]] = {}
    for o in result:
        k = kinds.setdefault(o.case.split(":")[0], {"cases": 0, "detected": 0, "named": 0,
                                                    "files_named": 0, "restore_wrong": 0,
                                                    "crashes": 0, "restore_detected": 0,
                                                    "restore_correct": 0})
        k["cases"] += 1
        k["detected"] += o.detected
        k["named"] += o.detected and o.named
        k["files_named"] += o.files_named
        k["restore_wrong"] += sum(v == "WRONG" for v in o.restore.values())
        k["crashes"] += len(o.crashes)
        k["restore_detected"] += "detected" in o.restore.values()
        k["restore_correct"] += bool(o.restore) and set(o.restore.values()) == {"correct"}
    record("tampering", {"by_type": kinds, "cases": len(result),
                         "detected": sum(o.detected for o in result),
                         "named": sum(o.detected and o.named for o in result),
                         "undetected": [o.case for o in result if not o.detected]})
    return result


def test_pristine_repository_is_clean(world: World) -> None:
    """The control: the untouched repository checks clean and restores identically."""
    _KEYS.setdefault(world.a, world.key)
    scratch = world.root / "control"
    out = _evaluate("control", world.a, world.key, world.refs, [], scratch)
    assert out.open_refused is None and out.check_problems == [] and not out.crashes
    assert set(out.restore.values()) == {"correct"}


def test_no_crash_and_never_a_wrong_restore(outcomes: list[Outcome]) -> None:
    assert len(outcomes) >= 60
    assert [(o.case, o.crashes) for o in outcomes if o.crashes] == []
    assert [o.case for o in outcomes if "WRONG" in o.restore.values()] == []


@pytest.mark.parametrize("kind", ["data-pack", "filelist-pack", "index", "snapshot"])
def test_every_change_is_detected_and_the_object_named(outcomes: list[Outcome],
                                                       kind: str) -> None:
    mine = [o for o in outcomes if o.case.startswith(kind + ":")]
    assert mine
    # Deleting a whole snapshot object is a rollback: nothing in the repository
    # records that it existed (docs/threat-model.md, open item).  It is counted
    # separately and must still never restore wrongly.
    mine = [o for o in mine if not (kind == "snapshot" and o.case.endswith(":delete"))]
    assert [o.case for o in mine if not o.detected] == []
    assert [(o.case, o.check_problems) for o in mine if not o.named] == []


@pytest.mark.parametrize("kind", ["data-pack", "filelist-pack", "index"])
def test_restore_fails_loudly_when_it_needs_a_changed_object(outcomes: list[Outcome],
                                                             kind: str) -> None:
    """A whole-object change (delete, substitute, swap, empty) stops a restore that needs it.

    Restore reads only the frames it needs (ranged reads, each frame authenticated), so
    a flipped byte in a part it does not read (magic, header, length field) leaves it
    correct; such cases are counted as "restore correct", never as wrong.
    """
    whole = (":delete", ":substitute-same-key", ":substitute-other-key", ":swap",
             ":truncate@0")
    mine = [o for o in outcomes if o.case.startswith(kind + ":") and o.case.endswith(whole)]
    assert mine
    assert [o.case for o in mine if "detected" not in o.restore.values()] == []


def test_pack_damage_names_the_affected_files(outcomes: list[Outcome]) -> None:
    mine = [o for o in outcomes if o.case.startswith("data-pack:") and o.check_problems]
    assert mine
    assert [o.case for o in mine if not o.files_named] == []


def test_deleted_snapshot_is_not_detected_but_never_restores_wrongly(
        outcomes: list[Outcome]) -> None:
    """64-digit mode: a deleted snapshot is not detected (password mode detects it:
    tests/vault/test_rollback.py), but nothing is ever restored wrongly."""
    mine = [o for o in outcomes if o.case.startswith("snapshot:") and o.case.endswith(":delete")]
    assert len(mine) == 2
    for o in mine:
        assert "WRONG" not in o.restore.values()
        assert "detected" in o.restore.values()  # asking for the deleted one is SnapshotNotFound


def test_every_config_change_is_refused(outcomes: list[Outcome]) -> None:
    """Every changed config byte stops ``open`` -- even the removed final newline,
    which keeps every field (spec §3: the stored bytes must be exactly as written)."""
    mine = [o for o in outcomes if o.case.startswith("config:")]
    assert mine
    assert [o.case for o in mine if not o.detected] == []
    assert [o.case for o in mine if "WRONG" in o.restore.values()] == []


def test_config_with_the_same_fields_in_other_bytes_is_refused(world: World,
                                                               tmp_path: Path) -> None:
    """The MAC covers the fields; the exact-bytes rule catches a re-serialization."""
    original = (world.a / "config").read_bytes()
    doc = json.loads(original)
    variants = {"no final newline": original[:-1],
                "compact": json.dumps(doc, sort_keys=True).encode() + b"\n",
                "keys unsorted": json.dumps(dict(reversed(list(doc.items()))), indent=1).encode()
                + b"\n",
                "extra space": original.replace(b": ", b":  ", 1)}
    for n, (name, data) in enumerate(variants.items()):
        assert data != original and json.loads(data) == doc, name
        repo = tmp_path / f"repo{n}"
        shutil.copytree(world.a, repo)
        (repo / "config").write_bytes(data)
        out = _evaluate(f"config:{name}", repo, world.key, world.refs, ["config"], tmp_path)
        assert out.open_refused == "DataDamaged", name


def _edit_config(repo: Path, edit) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads((repo / "config").read_text())
    edit(doc)
    (repo / "config").write_text(json.dumps(doc, indent=1, sort_keys=True))


def test_changed_chunker_parameters_are_detected(world: World, tmp_path: Path) -> None:
    """Was DEFECT-1 (docs/dev/defects.md): the config is now authenticated by a MAC."""
    edits = [lambda d: d["chunker"].update(media_piece=65536, cdc_avg=524288),
             lambda d: d.update(created=d["created"] + 1),
             lambda d: d.update(minor=d["minor"] + 1, extra="x")]
    for n, edit in enumerate(edits):
        repo = tmp_path / f"repo{n}"
        shutil.copytree(world.a, repo)
        _edit_config(repo, edit)
        out = _evaluate("config:edit", repo, world.key, world.refs, ["config"], tmp_path)
        assert out.open_refused == "DataDamaged", n


def test_config_of_another_repository_with_the_same_key_is_detected(world: World,
                                                                    tmp_path: Path) -> None:
    """Was DEFECT-2: every object key now derives from RK = HKDF(K, repository id)."""
    repo = tmp_path / "repo"
    shutil.copytree(world.a, repo)
    shutil.copyfile(world.b / "config", repo / "config")
    out = _evaluate("config:foreign", repo, world.key, world.refs, ["config"], tmp_path)
    assert out.detected and not out.crashes
    assert "WRONG" not in out.restore.values() and "correct" not in out.restore.values()
