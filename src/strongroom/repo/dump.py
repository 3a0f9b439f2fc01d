"""``dump``: one file of a snapshot as a byte stream, or a folder as a tar stream.

Streams: one chunk in memory at a time, never the whole file or archive.
Every chunk is checked against its id (``read_blob``); damage stops the dump
with ``DataDamaged`` (the output so far is then incomplete and the CLI exits
12).  Tar member names are the paths below the dumped folder's parent
(``chats/notes.txt`` for ``/home/me/chats``; the whole path for the
snapshot root): never absolute, never with ``.`` or ``..`` components (the
file-list parser already refuses such records; :func:`tar_name` checks
again).  Modes keep only the permission bits (setuid, setgid and sticky are
dropped, as restore drops them by default); owners are not stored (uid and
gid 0, no names), as restore does not restore owners.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from ..errors import DataDamaged, FormatError, UsageError
from .browse import snapshot_path, subtree
from .engine import LastFrame
from .manifest import KIND_DIR, KIND_FILE, KIND_SYMLINK, Entry
from .patterns import Parts
from .target import checked_entries

if TYPE_CHECKING:
    from .engine import Engine
    from .manifest import SnapshotDoc

_PERMISSION_BITS = 0o777
_READ_BUFFER = 1024 * 1024


@dataclass(frozen=True)
class DumpResult:
    """What was written: ``kind`` is ``file`` or ``tar``; ``bytes`` of file data."""

    kind: str
    path: str
    files: int
    bytes: int


def _chunks(engine: Engine, entry: Entry) -> Iterator[bytes]:
    what = "/" + entry.path
    total = 0
    last = LastFrame()
    for cid in entry.chunks:
        data = engine.read_blob(cid, what, last)
        total += len(data)
        yield data
    if total != entry.size:
        raise DataDamaged(f"{what}: the file list gives {entry.size} bytes but its chunks "
                          f"hold {total}")


class _ChunkReader(io.RawIOBase):
    """A file's content as a readable stream (what ``tarfile.addfile`` copies from)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            nxt = next(self._chunks, None)
            if nxt is None:
                return 0
            self._buf = memoryview(nxt)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def tar_name(parts: Parts, base: int) -> str:
    """The member name of a record: its components from ``base`` on, checked safe."""
    rel = parts[base:]
    if not rel or any(p in ("", ".", "..") or "\x00" in p for p in rel):
        raise FormatError(f"unsafe path {'/'.join(parts)!r} in the file list")
    return "/".join(rel)


def _member(entry: Entry, name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = entry.mode & _PERMISSION_BITS
    info.mtime = entry.mtime_ns // 1_000_000_000
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if entry.kind == KIND_DIR:
        info.type = tarfile.DIRTYPE
    elif entry.kind == KIND_SYMLINK:
        info.type, info.linkname = tarfile.SYMTYPE, entry.link
    else:
        info.type, info.size = tarfile.REGTYPE, entry.size
    return info


def _tar(engine: Engine, records: Iterator[Entry], base: int, out: IO[bytes],
         path: str) -> DumpResult:
    files = size = 0
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for e in records:
            info = _member(e, tar_name(tuple(e.path.split("/")), base))
            if e.kind != KIND_FILE:
                tar.addfile(info)
                continue
            # Buffered: tarfile wants every read() full, a raw reader may return less.
            reader = io.BufferedReader(_ChunkReader(_chunks(engine, e)), _READ_BUFFER)
            try:
                tar.addfile(info, reader)
            except OSError:  # tarfile: the chunks ran out before the recorded size
                raise DataDamaged(f"/{e.path}: shorter than the file list says") from None
            if reader.read(1):
                raise DataDamaged(f"/{e.path}: longer than the file list says")
            files, size = files + 1, size + e.size
    return DumpResult("tar", path, files, size)


def dump(engine: Engine, doc: SnapshotDoc, path: str, out: IO[bytes]) -> DumpResult:
    """Write the file at ``path`` to ``out``, or the folder at ``path`` as a tar stream.

    ``path`` is as backed up (leading ``/`` optional); ``/`` is the whole
    snapshot.  ``PathNotFound`` if the snapshot has no such path, ``UsageError``
    for a symlink (dump its target instead).
    """
    parts = snapshot_path(path)
    shown = "/" + "/".join(parts)
    records = checked_entries((e for _, e in subtree(engine, doc, parts)),
                              f"snapshots/{doc.id}")
    first = next(records, None)
    if first is None:  # only the snapshot root can be empty
        return _tar(engine, iter(()), 0, out, shown)
    if first.path.split("/") == list(parts) and first.kind == KIND_SYMLINK:
        raise UsageError(f"{shown} is a symlink to {first.link!r}",
                         hint="dump the file it points to")
    if first.path.split("/") == list(parts) and first.kind == KIND_FILE:
        written = 0
        for data in _chunks(engine, first):
            out.write(data)
            written += len(data)
        return DumpResult("file", shown, 1, written)

    def again() -> Iterator[Entry]:
        yield first
        yield from records

    return _tar(engine, again(), max(len(parts) - 1, 0), out, shown)


__all__ = ["DumpResult", "dump", "tar_name"]
