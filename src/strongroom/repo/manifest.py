"""Snapshot manifests: the file list of a snapshot, and the snapshot object.

The file list is a stream of binary records (one per file, directory or
symlink, in walk order) cut into *segments* of about 256 KiB that are stored
as ``meta`` blobs in packs (so they are compressed, padded and deduplicated
like data).  The snapshot object ``snapshots/<32 hex random>`` is a sealed
object (label ``strongroom/v1/snapshot``) holding JSON: time, host, paths,
counts, parent and the list of segment blob ids.  Writing and reading both
hold one segment at a time, so memory stays bounded for any number of files.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..crypto import labels
from ..crypto.keys import BackupKey
from ..errors import FormatError
from .sealed import open_object, seal_object

SNAPSHOT_MAGIC = b"SRS1"
SNAPSHOT_PREFIX = "snapshots/"
SEGMENT_TARGET = 256 * 1024
KIND_FILE, KIND_DIR, KIND_SYMLINK = 1, 2, 3
_REC = struct.Struct(">BIqQQqHHI")


@dataclass(slots=True)
class Entry:
    """One manifest record.  ``path`` is relative (``home/me/chats/msgstore.db``)."""

    kind: int
    path: str
    mode: int
    mtime_ns: int
    size: int = 0
    inode: int = 0
    ctime_ns: int = 0
    link: str = ""
    chunks: list[bytes] = field(default_factory=list)

    def encode(self) -> bytes:
        """The binary record."""
        p, ln = os.fsencode(self.path), os.fsencode(self.link)
        head = _REC.pack(self.kind, self.mode, self.mtime_ns, self.size, self.inode,
                         self.ctime_ns, len(p), len(ln), len(self.chunks))
        return b"".join([head, p, ln, *self.chunks])


def decode_records(data: bytes, what: str) -> Iterator[Entry]:
    """Parse a segment's records; ``FormatError`` on anything malformed."""
    pos = 0
    try:
        while pos < len(data):
            kind, mode, mt, size, ino, ct, lp, ll, nc = _REC.unpack_from(data, pos)
            pos += _REC.size
            end = pos + lp + ll + 32 * nc
            if kind not in (KIND_FILE, KIND_DIR, KIND_SYMLINK) or end > len(data) or lp == 0:
                raise FormatError(f"{what}: bad manifest record")
            path = os.fsdecode(data[pos : pos + lp])
            if path.startswith("/") or any(c in ("", ".", "..") for c in path.split("/")):
                # Only a holder of K can write a manifest, but a restore must never
                # be steered outside its target even then.
                raise FormatError(f"{what}: unsafe path in manifest record")
            link = os.fsdecode(data[pos + lp : pos + lp + ll])
            base = pos + lp + ll
            chunks = [data[base + 32 * i : base + 32 * (i + 1)] for i in range(nc)]
            pos = end
            yield Entry(kind, path, mode, mt, size, ino, ct, link, chunks)
    except struct.error as exc:
        raise FormatError(f"{what}: truncated manifest record") from exc


class SegmentWriter:
    """Buffers records and hands each full segment to ``store`` (which returns its blob id)."""

    def __init__(self, store: Callable[[bytes], bytes]) -> None:
        self._store = store
        self._buf: list[bytes] = []
        self._size = 0
        self.segments: list[bytes] = []

    def add(self, entry: Entry) -> None:
        """Append one record."""
        rec = entry.encode()
        self._buf.append(rec)
        self._size += len(rec)
        if self._size >= SEGMENT_TARGET:
            self.flush()

    def flush(self) -> None:
        """Store the buffered records as one segment."""
        if self._buf:
            self.segments.append(self._store(b"".join(self._buf)))
            self._buf, self._size = [], 0


@dataclass(frozen=True)
class SnapshotDoc:
    """The decrypted snapshot object."""

    id: str
    time: float
    hostname: str
    paths: list[str]
    files: int
    dirs: int
    size: int
    parent: str | None
    segments: list[bytes]

    def encode(self) -> bytes:
        """JSON plaintext of the snapshot object."""
        doc: dict[str, Any] = {"v": 1, "time": self.time, "hostname": self.hostname,
                               "paths": self.paths, "files": self.files, "dirs": self.dirs,
                               "bytes": self.size, "parent": self.parent,
                               "segments": [s.hex() for s in self.segments]}
        return json.dumps(doc, sort_keys=True).encode()


def snapshot_name(snap_id: str) -> str:
    """The storage name of snapshot ``snap_id``."""
    return SNAPSHOT_PREFIX + snap_id


def seal_snapshot(key: BackupKey, doc: SnapshotDoc, rng: Callable[[int], bytes]) -> bytes:
    """The stored bytes of a snapshot object."""
    return seal_object(key, labels.SNAPSHOT, SNAPSHOT_MAGIC, snapshot_name(doc.id), doc.encode(),
                       rng)


def open_snapshot(key: BackupKey, snap_id: str, data: bytes) -> SnapshotDoc:
    """Decrypt and parse a snapshot object; ``FormatError``/``DataDamaged``."""
    name = snapshot_name(snap_id)
    plain = open_object(key, labels.SNAPSHOT, SNAPSHOT_MAGIC, name, data)
    try:
        d = json.loads(plain)
        segs = [bytes.fromhex(s) for s in d["segments"]]
        if d["v"] != 1 or any(len(s) != 32 for s in segs):
            raise FormatError(f"{name}: bad snapshot document")
        return SnapshotDoc(snap_id, float(d["time"]), str(d["hostname"]),
                           [str(p) for p in d["paths"]], int(d["files"]), int(d["dirs"]),
                           int(d["bytes"]), d["parent"], segs)
    except FormatError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise FormatError(f"{name}: bad snapshot document") from exc
