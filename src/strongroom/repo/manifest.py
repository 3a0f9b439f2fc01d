"""Snapshot manifests: the file list of a snapshot, and the snapshot object.

The file list is a stream of binary records (one per file, directory or
symlink, in walk order) cut into *segments* of about 256 KiB that are stored
as ``meta`` blobs in packs (so they are compressed, padded and deduplicated
like data).  A record longer than a segment (a file of many chunks: a 5 GB
SQLite store has 1.2 M pages, a 38 MB id list) is cut across segments of at
most ``SEGMENT_MAX`` bytes, so no stored blob and no copy of it grows with one
file's size.  The snapshot object ``snapshots/<32 hex random>`` is a sealed
object (label ``strongroom/v1/snapshot``) holding JSON: time, host, paths,
counts, parent and the list of segment blob ids.  Writing and reading both
hold one segment at a time plus the record being decoded, so memory stays
bounded for any number of files.
"""

from __future__ import annotations

import io
import json
import re
import struct
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from ..crypto import labels
from ..crypto.keys import BackupKey
from ..errors import FormatError
from .sealed import (
    OVERHEAD,
    SNAPSHOT_MAX,
    json_int,
    json_number,
    json_str,
    open_object,
    padded_length,
    seal_object,
    strict_json,
)

SNAPSHOT_MAGIC = b"SRS1"
SNAPSHOT_PREFIX = "snapshots/"
SEGMENT_TARGET = 256 * 1024
#: A record that would make a segment longer than this is cut (spec §7).
SEGMENT_MAX = 1024 * 1024
ID_SIZE = 32
KIND_FILE, KIND_DIR, KIND_SYMLINK = 1, 2, 3
_REC = struct.Struct(">BIqQQqHHI")


class ChunkIds(Sequence[bytes]):
    """A file's chunk ids, in file order, kept as one buffer of 32-byte ids.

    One Python ``bytes`` per chunk costs ~75 bytes more than the id; a 5 GB
    SQLite store has 1.2 M of them (spec §13).  Items are sliced out on access.
    """

    __slots__ = ("_buf",)

    def __init__(self, buf: bytes = b"") -> None:
        if len(buf) % ID_SIZE:
            raise ValueError("chunk id buffer is not a whole number of ids")
        self._buf = buf

    @classmethod
    def of(cls, ids: Iterable[bytes]) -> ChunkIds:
        """From separate ids (each exactly 32 bytes)."""
        ids = list(ids)
        if any(len(i) != ID_SIZE for i in ids):
            raise ValueError("a chunk id is not 32 bytes")
        return cls(b"".join(ids))

    @property
    def raw(self) -> bytes:
        """The ids concatenated, as stored in a record."""
        return self._buf

    def __len__(self) -> int:
        return len(self._buf) // ID_SIZE

    @overload
    def __getitem__(self, i: int) -> bytes: ...
    @overload
    def __getitem__(self, i: slice) -> ChunkIds: ...
    def __getitem__(self, i: int | slice) -> bytes | ChunkIds:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if step == 1:
                return ChunkIds(self._buf[ID_SIZE * start : ID_SIZE * max(start, stop)])
            return ChunkIds.of(self[j] for j in range(start, stop, step))
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("chunk index out of range")
        return self._buf[ID_SIZE * i : ID_SIZE * (i + 1)]

    def __iter__(self) -> Iterator[bytes]:
        buf = self._buf
        return (buf[j : j + ID_SIZE] for j in range(0, len(buf), ID_SIZE))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ChunkIds):
            return self._buf == other._buf
        if isinstance(other, (list, tuple)):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ChunkIds(<{len(self)} ids>)"


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
    chunks: ChunkIds = field(default_factory=ChunkIds)

    def encode_head(self) -> bytes:
        """The record up to its chunk ids (fixed fields, path, symlink target)."""
        p = self.path.encode(_FS_ENCODING, _FS_ERRORS)
        ln = self.link.encode(_FS_ENCODING, _FS_ERRORS) if self.link else b""
        return b"".join([_REC.pack(self.kind, self.mode, self.mtime_ns, self.size, self.inode,
                                   self.ctime_ns, len(p), len(ln), len(self.chunks)), p, ln])

    def encode(self) -> bytes:
        """The binary record."""
        return self.encode_head() + self.chunks.raw


def decode_records(data: bytes, what: str) -> Iterator[Entry]:
    """Parse a whole record stream held in one buffer; ``FormatError`` on anything malformed."""
    return read_records([data], what)


def read_records(segments: Iterable[bytes], what: str) -> Iterator[Entry]:
    """Parse the record stream that is the concatenation of ``segments``.

    A record may continue into the next segment(s); only the record being
    decoded and the current segment are held.  A stream that ends inside a
    record is ``FormatError``.
    """
    carry: list[bytes] = []  # the start of a record continued by the next segment
    carried = 0
    need: int | None = None  # the carried record's length, once its header is whole
    for seg in segments:
        if carry:
            carry.append(seg)
            carried += len(seg)
            if need is None:
                need = _record_length(b"".join(carry)[: _REC.size], what)
            if need is None or carried < need:
                continue
            data, carry, carried = b"".join(carry), [], 0
            # The carried record alone is yielded from the joined buffer; the rest of the
            # last segment goes on as a copy, so a record far larger than a segment (a
            # database's chunk list) is not held twice while its file is being backed up.
            head = _REC.unpack_from(data, 0)
            out = [_decode_one(data, _REC.size, head, what)]
            data, need = data[need:], None
            yield out.pop()  # not held here while the caller works on it
        else:
            data = seg
        pos = 0
        while pos < len(data):
            if len(data) - pos < _REC.size:  # the next header continues, too
                carry, carried, need = [data[pos:]], len(data) - pos, None
                break
            head = _REC.unpack_from(data, pos)
            length = _checked_length(head, what)
            if pos + length > len(data):
                carry, carried, need = [data[pos:]], len(data) - pos, length
                break
            yield _decode_one(data, pos + _REC.size, head, what)
            pos += length
        del data
    if carry:
        raise FormatError(f"{what}: truncated manifest record")


class RecordReader:
    """A record stream read one record at a time, a record's chunk ids only on request.

    :meth:`head` gives the next record; of a record that continues into
    later segments (a database's list of 32 bytes a page) the chunk ids are
    not read yet: :meth:`chunks` reads them, and the next :meth:`head` skips
    those not asked for, holding one segment at a time.  (A backup needs the
    parent's chunk list of a file only when the file looks unchanged.)  Every
    check of :func:`read_records` is made; ``FormatError`` on anything
    malformed, ``DataDamaged`` from the segments as they are read.
    """

    def __init__(self, segments: Iterable[bytes], what: str) -> None:
        self._segs = iter(segments)
        self._what = what
        self._data = b""
        self._pos = 0
        self._ids_left = 0  # bytes of chunk ids of the last head not read yet
        self._chunks: ChunkIds | None = None  # the last head's, when read with it

    def _next_segment(self) -> bool:
        for seg in self._segs:
            if seg:
                self._data, self._pos = seg, 0
                return True
        self._data, self._pos = b"", 0
        return False

    def _take(self, n: int) -> bytes:
        """The next ``n`` bytes (a record's fixed fields, path or target), across segments."""
        data, pos = self._data, self._pos
        parts = [data[pos:pos + n]]
        got = len(parts[0])
        self._pos = pos + got
        while got < n:
            if not self._next_segment():
                raise FormatError(f"{self._what}: truncated manifest record")
            piece = self._data[: n - got]
            parts.append(piece)
            got += len(piece)
            self._pos = len(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def head(self) -> Entry | None:
        """The next record (see :meth:`chunks` for its chunk ids), or None at the end."""
        if self._ids_left:
            self._skip()
        self._chunks = None
        data, pos = self._data, self._pos
        if pos >= len(data):
            if not self._next_segment():
                return None
            data, pos = self._data, 0
        if pos + _REC.size <= len(data):
            head = _REC.unpack_from(data, pos)
            length = _checked_length(head, self._what)
            if pos + length <= len(data):  # the whole record in this segment
                entry = _decode_one(data, pos + _REC.size, head, self._what)
                self._pos = pos + length
                self._chunks = entry.chunks
                return entry
        fixed = self._take(_REC.size)
        head = _REC.unpack(fixed)
        _checked_length(head, self._what)
        text = self._take(head[6] + head[7])
        entry = _decode_one(text, 0, (*head[:8], 0), self._what)
        self._ids_left = ID_SIZE * head[8]
        return entry

    def chunks(self) -> ChunkIds:
        """The chunk ids of the record :meth:`head` gave last (read now, if not yet)."""
        if self._chunks is None:
            out = io.BytesIO()  # grows in place; getvalue hands its buffer over
            left = self._ids_left
            while left:
                avail = len(self._data) - self._pos
                if not avail:
                    if not self._next_segment():
                        raise FormatError(f"{self._what}: truncated manifest record")
                    continue
                step = min(avail, left)
                with memoryview(self._data) as view:
                    out.write(view[self._pos:self._pos + step])
                self._pos += step
                left -= step
            self._ids_left = 0
            self._chunks = ChunkIds(out.getvalue())
        return self._chunks

    def _skip(self) -> None:
        left = self._ids_left
        while left:
            avail = len(self._data) - self._pos
            if not avail:
                if not self._next_segment():
                    raise FormatError(f"{self._what}: truncated manifest record")
                continue
            step = min(avail, left)
            self._pos += step
            left -= step
        self._ids_left = 0


#: Offset in a record of its three lengths (path, link target, chunk count): the bytes
#: from here to the record's end are all of it that ``check`` depends on (spec §12);
#: before it are the kind and the file's attributes (mode, times, size, inode).
RECORD_TAIL = _REC.size - 8


def record_spans(data: bytes, what: str) -> list[tuple[int, int, int, int]]:
    """(offset, length, kind, chunk count) of each record of a stream held whole in
    ``data``, read from the fixed fields alone: no path or chunk list is decoded.
    ``FormatError`` if a record's kind or path length is bad, or ``data`` does not
    end where a record ends (a record continuing into the next segment)."""
    spans: list[tuple[int, int, int, int]] = []
    add, unpack_from, size = spans.append, _REC.unpack_from, _REC.size
    pos, end = 0, len(data)
    while pos < end:
        if end - pos < size:
            raise FormatError(f"{what}: truncated manifest record")
        head = unpack_from(data, pos)
        length = _checked_length(head, what)
        if pos + length > end:
            raise FormatError(f"{what}: truncated manifest record")
        add((pos, length, head[0], head[8]))
        pos += length
    return spans


def decode_record(data: bytes, pos: int, what: str) -> Entry:
    """The record at ``pos`` of ``data`` (an offset :func:`record_spans` gave), with every
    check :func:`read_records` makes; ``FormatError`` on anything malformed."""
    if len(data) - pos < _REC.size:
        raise FormatError(f"{what}: truncated manifest record")
    head = _REC.unpack_from(data, pos)
    if pos + _checked_length(head, what) > len(data):
        raise FormatError(f"{what}: truncated manifest record")
    return _decode_one(data, pos + _REC.size, head, what)


def _record_length(head: bytes, what: str) -> int | None:
    """Total length of the record starting with ``head``, or None if ``head`` is short."""
    return _checked_length(_REC.unpack_from(head), what) if len(head) >= _REC.size else None


def _checked_length(head: tuple[Any, ...], what: str) -> int:
    """Total length of a record with the unpacked fixed fields ``head``; checks kind and path."""
    kind, _m, _t, _s, _i, _c, lp, ll, nc = head
    if kind not in (KIND_FILE, KIND_DIR, KIND_SYMLINK) or lp == 0:
        raise FormatError(f"{what}: bad manifest record")
    return int(_REC.size + lp + ll + ID_SIZE * nc)


_UNSAFE_PARTS = frozenset(("", ".", ".."))
#: What os.fsencode/os.fsdecode use, called directly (once per record, per file).
_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()


def _decode_one(data: bytes, pos: int, head: tuple[Any, ...], what: str) -> Entry:
    """The record whose fixed fields ``head`` were read; its path starts at ``pos``."""
    kind, mode, mt, size, ino, ct, lp, ll, nc = head
    if b"\x00" in data[pos : pos + lp + ll]:
        # No file system has NUL in a name or link target; the OS calls of a
        # restore would refuse it with a ValueError.
        raise FormatError(f"{what}: NUL byte in a manifest path or link target")
    path = data[pos : pos + lp].decode(_FS_ENCODING, _FS_ERRORS)
    if path.startswith("/") or not _UNSAFE_PARTS.isdisjoint(path.split("/")):
        # Only a holder of K can write a manifest, but a restore must never
        # be steered outside its target even then.
        raise FormatError(f"{what}: unsafe path in manifest record")
    link = data[pos + lp : pos + lp + ll].decode(_FS_ENCODING, _FS_ERRORS) if ll else ""
    base = pos + lp + ll
    chunks = ChunkIds(data[base : base + ID_SIZE * nc])
    return Entry(kind, path, mode, mt, size, ino, ct, link, chunks)


class SegmentWriter:
    """Buffers records and hands each full segment to ``store`` (which returns its blob id).

    A segment ends after the record that brings it to ``SEGMENT_TARGET`` bytes
    (so an unchanged run of files gives the same segments, which deduplicate),
    or inside a record at exactly ``SEGMENT_MAX`` bytes.

    A file's record may also be written as its chunks are cut (:meth:`begin`,
    :meth:`write_ids`, :meth:`end`), so that the chunk list of a large file (32
    bytes a page of a database) is never held whole: segments are stored as
    they fill, except those holding the record's fixed fields, which are held
    until :meth:`end` writes the size and chunk count into them.  The segments
    are byte for byte those :meth:`add` gives for the finished record.
    """

    def __init__(self, store: Callable[[bytes], bytes]) -> None:
        self._store = store
        self._buf = bytearray()
        self.segments: list[bytes] = []
        self._flushed = 0  # stream bytes in segments already handed on (or held)
        # The record being streamed: its entry, its stream offset, its chunk count
        # so far, and the held segments (index in ``segments``, stream offset, bytes).
        self._open: Entry | None = None
        self._start = 0
        self._count = 0
        self._held: list[tuple[int, int, bytearray]] = []
        self._lengths: tuple[int, int] = (0, 0)
        self._written: Entry | None = None

    def add(self, entry: Entry) -> None:
        """Append one record (a no-op for the entry :meth:`end` just finished)."""
        if entry is self._written:
            self._written = None
            return
        if self._open is not None:
            raise RuntimeError("a streamed record is still open")
        self._append(entry.encode_head())
        self._append(entry.chunks.raw)
        if len(self._buf) >= SEGMENT_TARGET:
            self.flush()

    def begin(self, entry: Entry) -> None:
        """Start the record of ``entry`` (a file; its size and chunks come with :meth:`end`
        and :meth:`write_ids`)."""
        if self._open is not None:
            raise RuntimeError("a streamed record is still open")
        head = entry.encode_head()
        self._open, self._start, self._count, self._written = entry, self._flushed + len(self._buf), 0, None
        self._lengths = _REC.unpack_from(head)[6:8]  # of the path and the link target
        self._append(head)

    def write_ids(self, ids: bytes) -> None:
        """Append chunk ids (32 bytes each) to the open record."""
        if self._open is None or len(ids) % ID_SIZE:
            raise ValueError("no open record, or not a whole number of chunk ids")
        self._count += len(ids) // ID_SIZE
        self._append(ids)

    def end(self, size: int) -> Entry:
        """Finish the open record: ``size`` bytes were read.  Returns its entry (with that
        size and no chunk ids held); :meth:`add` of it does nothing."""
        entry = self._open
        if entry is None:
            raise RuntimeError("no open record")
        entry.size = size
        fixed = _REC.pack(entry.kind, entry.mode, entry.mtime_ns, size, entry.inode,
                          entry.ctime_ns, *self._lengths, self._count)
        self._patch(self._start, fixed)
        for i, _at, data in self._held:
            self.segments[i] = self._store(bytes(data))
        self._open, self._held, self._written = None, [], entry
        if len(self._buf) >= SEGMENT_TARGET:
            self.flush()
        return entry

    def abort(self) -> None:
        """Drop the open record (its file could not be read): the stream is as it was
        before :meth:`begin`.  Segments already stored stay as unreferenced blobs."""
        if self._open is None:
            return
        if self._held:  # the record began in a segment handed on: that is the buffer again
            i, at, data = self._held[0]
            self._buf = bytearray(data[: self._start - at])
            del self.segments[i:]
            self._flushed = at
        else:
            del self._buf[self._start - self._flushed:]
        self._open, self._held = None, []

    def _patch(self, at: int, data: bytes) -> None:
        """Overwrite stream bytes from offset ``at`` (held segments, then the buffer)."""
        end = at + len(data)
        for _i, start, seg in self._held:
            lo, hi = max(at, start), min(end, start + len(seg))
            if lo < hi:
                seg[lo - start:hi - start] = data[lo - at:hi - at]
        lo = max(at, self._flushed)
        if lo < end:
            self._buf[lo - self._flushed:end - self._flushed] = data[lo - at:]

    def _append(self, data: bytes) -> None:
        view = memoryview(data)
        while len(self._buf) + len(view) > SEGMENT_MAX:
            room = SEGMENT_MAX - len(self._buf)
            self._buf += view[:room]
            view = view[room:]
            self.flush()
        self._buf += view

    def flush(self) -> None:
        """Store the buffered bytes as one segment."""
        if self._buf:
            if self._open is not None and self._flushed < self._start + _REC.size:
                # Holds fixed fields of the open record: stored once they are known.
                self._held.append((len(self.segments), self._flushed, self._buf))
                self.segments.append(b"")
                self._flushed += len(self._buf)
                self._buf = bytearray()
                return
            data, self._buf = bytes(self._buf), bytearray()
            self._flushed += len(data)
            self.segments.append(self._store(data))


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
    #: Sorted, unique (spec §7); absent from the stored JSON when empty.
    tags: list[str] = field(default_factory=list)
    #: The chat catalogue's blob ids (spec §17); None: written before catalogues.
    chats: list[bytes] | None = None

    def encode(self) -> bytes:
        """JSON plaintext of the snapshot object."""
        doc: dict[str, Any] = {"v": 1, "time": self.time, "hostname": self.hostname,
                               "paths": self.paths, "files": self.files, "dirs": self.dirs,
                               "bytes": self.size, "parent": self.parent,
                               "segments": [s.hex() for s in self.segments]}
        if self.tags:
            # Only when there are tags, so an untagged snapshot is written exactly as before.
            doc["tags"] = self.tags
        if self.chats is not None:
            doc["chats"] = [c.hex() for c in self.chats]
        return json.dumps(doc, sort_keys=True).encode()


def snapshot_name(snap_id: str) -> str:
    """The storage name of snapshot ``snap_id``."""
    return SNAPSHOT_PREFIX + snap_id


def seal_snapshot(key: BackupKey, doc: SnapshotDoc, rng: Callable[[int], bytes],
                  padded: bool = True) -> bytes:
    """The stored bytes of a snapshot object (padded with spaces after the JSON, spec §7)."""
    plain = doc.encode()
    if padded:
        plain += b" " * (padded_length(len(plain) + OVERHEAD) - len(plain) - OVERHEAD)
    return seal_object(key, labels.SNAPSHOT, SNAPSHOT_MAGIC, snapshot_name(doc.id), plain, rng)


def open_snapshot(key: BackupKey, snap_id: str, data: bytes) -> SnapshotDoc:
    """Decrypt and parse a snapshot object; ``FormatError``/``DataDamaged``."""
    name = snapshot_name(snap_id)
    plain = open_object(key, labels.SNAPSHOT, SNAPSHOT_MAGIC, name, data)
    d = strict_json(plain, name, SNAPSHOT_MAX)
    if not isinstance(d, dict) or d.get("v") != 1 or type(d.get("v")) is not int:
        raise FormatError(f"{name}: bad snapshot document")
    paths, segs, parent = d.get("paths"), d.get("segments"), d.get("parent")
    if (not isinstance(paths, list) or not isinstance(segs, list)
            or not all(type(p) is str and len(p) <= 65536 for p in paths)
            or not all(type(s) is str for s in segs)):
        raise FormatError(f"{name}: bad snapshot document (paths or segments)")
    if parent is not None and (type(parent) is not str or not _SNAP_ID.fullmatch(parent)):
        raise FormatError(f"{name}: bad snapshot document (parent)")
    # Exactly 64 lowercase hex digits (spec §1, §7): bytes.fromhex alone would also
    # take upper case and spaces, so two texts would name one segment.
    if not all(_BLOB_ID.fullmatch(s) for s in segs):
        raise FormatError(f"{name}: bad snapshot document (segments)")
    segments = [bytes.fromhex(s) for s in segs]
    return SnapshotDoc(snap_id, json_number(d, "time", name, 0, 2.0**40),
                       json_str(d, "hostname", name), paths,
                       json_int(d, "files", name), json_int(d, "dirs", name),
                       json_int(d, "bytes", name), parent, segments, _tags(d, name),
                       _blob_ids(d["chats"], name, "chats") if "chats" in d else None)


#: Tag rules of spec §7 (a reader refuses what a writer may not write).
TAG_MAX_LEN, TAGS_MAX = 255, 100
_TAG = re.compile(r"^[^,\x00-\x1f\x7f]{1,255}$")


def _tags(d: dict[str, Any], name: str) -> list[str]:
    """The optional ``tags`` field: absent means none (snapshots written before tags)."""
    tags = d.get("tags", [])
    if (not isinstance(tags, list) or len(tags) > TAGS_MAX
            or not all(type(t) is str and _TAG.match(t) and t == t.strip() for t in tags)
            or tags != sorted(set(tags))):
        raise FormatError(f"{name}: bad snapshot document (tags)")
    return tags


def _blob_ids(value: object, name: str, field: str) -> list[bytes]:
    if not isinstance(value, list) or not all(type(v) is str and _BLOB_ID.match(v)
                                              for v in value):
        raise FormatError(f"{name}: bad snapshot document ({field})")
    return [bytes.fromhex(v) for v in value]


_BLOB_ID = re.compile(r"^[0-9a-f]{64}$")


_SNAP_ID = re.compile(r"^[0-9a-f]{32}$")
_BLOB_ID = re.compile(r"^[0-9a-f]{64}$")
