"""Property: restore(backup(tree)) == tree for random trees and sizes around boundaries."""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom import BackupKey, Repository
from strongroom.repo import manifest
from strongroom.repo.chunker import SQLITE_MAGIC
from strongroom.repo.config import ChunkerParams
from strongroom.repo.engine import Engine
from strongroom.storage.memory import MemoryBackend

# Tiny parameters so that few bytes cross every boundary: CDC min/avg/max, media
# pieces, SQLite pages, frames and packs.
PARAMS = ChunkerParams(cdc_min=64, cdc_avg=256, cdc_max=1024, media_piece=4096,
                       frame_target=1024, pack_target=8192)
KEY = BackupKey.from_bytes(bytes(range(32)))
BOUNDARY = st.sampled_from([0, 1, 63, 64, 65, 255, 256, 1023, 1024, 1025, 4095, 4096, 4097,
                            8191, 8192, 8193, 12_289])
SIZES = st.one_of(BOUNDARY, st.integers(0, 20_000))
KINDS = st.sampled_from(["txt", "jpg", "db", "bin"])
NAMES = st.text(alphabet="abcxyz-_.é 0", min_size=1, max_size=8).filter(
    lambda n: n not in {".", ".."})


def _content(kind: str, size: int, seed: int) -> bytes:
    rnd = bytes((seed * 31 + i * 7) % 251 for i in range(min(size, 4096)))
    body = (rnd * (size // max(len(rnd), 1) + 1))[:size] if rnd else b""
    if kind == "db" and size >= 100:
        return SQLITE_MAGIC + struct.pack(">H", 1024) + body[18:]
    if kind == "txt":
        return (b"chat line %d\n" % seed * (size // 12 + 1))[:size]
    return body


FILES = st.dictionaries(
    st.lists(NAMES, min_size=1, max_size=3).map(tuple),
    st.tuples(KINDS, SIZES, st.integers(0, 10)), max_size=8)


def _write(root: Path, files: dict[tuple[str, ...], tuple[str, int, int]]) -> dict[str, bytes]:
    """Make ``root`` hold exactly ``files``; files whose content is unchanged are left alone."""
    want: dict[str, tuple[bytes, int]] = {}
    for parts, (kind, size, seed) in sorted(files.items()):
        rel = os.path.join(*parts[:-1], parts[-1] + "." + kind)
        want[rel] = (_content(kind, size, seed), seed)
    for p in sorted(root.rglob("*"), reverse=True):  # drop what the new tree does not have
        rel = str(p.relative_to(root))
        if p.is_dir() and not any(w.startswith(rel + "/") for w in want):
            shutil.rmtree(p)
        elif p.is_file() and rel not in want:
            p.unlink()
    made: dict[str, bytes] = {}
    for rel, (data, seed) in want.items():
        path = root / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not (path.is_file() and path.read_bytes() == data):
                path.write_bytes(data)
                os.utime(path, ns=(1_600_000_000_000_000_000 + seed,) * 2)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            continue  # a name generated both as a file and as a directory
        made[rel] = data
    return made


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FILES, FILES)
def test_restore_of_backup_is_identity(first: dict, second: dict) -> None:  # type: ignore[type-arg]
    tmp = Path(tempfile.mkdtemp())
    old_target = manifest.SEGMENT_TARGET
    manifest.SEGMENT_TARGET = 300  # many file-list segments: exercises the parent merge
    try:
        repo = Repository(Engine.create(MemoryBackend(), KEY, chunker=PARAMS))
        src = tmp / "src"
        src.mkdir()
        for files in (first, second, first):  # later runs are incremental: unchanged
            made = _write(src, files)           # files are taken from the parent
            repo.backup([src])
            out = tmp / "out"
            if out.exists():
                shutil.rmtree(out)
            repo.restore("latest", out)
            root = out / str(src).lstrip("/")
            got = {str(p.relative_to(root)): p.read_bytes()
                   for p in root.rglob("*") if p.is_file()}
            assert got == made
            for rel in made:
                assert (root / rel).stat().st_mtime_ns == (src / rel).stat().st_mtime_ns
        assert repo.check(read_data=True).ok
    finally:
        manifest.SEGMENT_TARGET = old_target
        shutil.rmtree(tmp)


@settings(max_examples=200, deadline=None)
@given(KINDS, SIZES, st.integers(0, 10))
def test_chunks_of_bytes_are_the_streamed_chunks(kind: str, size: int, seed: int) -> None:
    # A backup cuts a small file from its bytes (chunker.chunks_of) and a large one as it
    # streams (chunker.chunks): the same file must give the same chunks either way.
    import io

    from strongroom.repo import chunker

    data = _content(kind, size, seed)
    name = f"f.{kind}"
    streamed = list(chunker.chunks(io.BytesIO(data), name, len(data), PARAMS))
    assert list(chunker.chunks_of(data, name, PARAMS)) == streamed
    assert b"".join(c for c, _ in streamed) == data
