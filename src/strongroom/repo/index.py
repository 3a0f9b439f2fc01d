"""Encrypted indexes: blob id -> (pack, frame, offset, length, type).

An index object ``index/<32 hex random>`` is a sealed object (label
``strongroom/v1/index``) whose plaintext is::

    "SRI1" | u32 n_packs | n_packs x (pack id 16 | pack salt 32 | u64 pack size)
           | u32 n_entries | n_entries x (u32 pack number | ENTRY of the pack header)
           | zero padding (format version 2: the stored object is Padmé-sized)

The in-memory :class:`Index` is the union of every index object.
"""

from __future__ import annotations

import functools
import heapq
import struct
import sys
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import accumulate, chain, repeat
from operator import and_, itemgetter, mul, rshift
from typing import NamedTuple

from ..crypto import labels
from ..crypto.keys import BackupKey
from ..errors import FormatError
from .manifest import ChunkIds
from .pack import ENTRY, FRAME_MAX, BlobLocation
from .sealed import INDEX_MAX, OVERHEAD, open_object, padded_length, seal_object

INDEX_MAGIC = b"SRI1"
INDEX_PREFIX = "index/"
#: Index objects of packs condemned by prune (spec §12): read, never deduplicated against.
TRASH_PREFIX = "trash/"
_PACK = struct.Struct(">16s32sQ")
_U32 = struct.Struct(">I")
#: Writers start a new index object before the plaintext passes this (spec §6), well
#: under the read cap ``INDEX_MAX`` even after padding.
INDEX_OBJECT_TARGET = 16 * 1024 * 1024


class TableView(NamedTuple):
    """:meth:`BlobTable.lookup`: blob ``i`` is ``ids[32*i:32*i+32]`` (sorted), its
    record (``BlobTable._REC``) at ``recs[size*i:]``; ids whose first two bytes are
    ``b`` are blobs ``off[b]`` to ``off[b+1]``; a record whose pack number is
    ``gone`` is deleted.  ``short`` unpacks four fields of a record: pack number,
    frame offset, offset in the frame, blob length."""

    ids: bytearray
    off: array[int]
    recs: bytearray
    size: int
    gone: int
    short: struct.Struct


@dataclass(frozen=True, slots=True)
class PackInfo:
    """What the index knows about a pack: its salt (to open frames) and stored size."""

    salt: bytes
    size: int


IndexPacks = tuple[bytes, PackInfo, list[tuple[bytes, BlobLocation]]]
#: An index entry as stored: (pack number in its object, blob id, then the fields
#: of :class:`BlobLocation`).
RawEntry = tuple[int, bytes, int, int, int, int, int, int, int]
#: An index object's packs and its entries, as :func:`decode_index_raw` gives them.
RawIndex = tuple[list[tuple[bytes, "PackInfo"]], list[RawEntry]]
_ENTRY_IN_OBJECT = struct.Struct(">I" + ENTRY.format.lstrip(">"))
#: Index entries unpacked per C call (see :func:`decode_index_raw`).
_UNPACK_STEP = 4096
_BLOB_ID = itemgetter(slice(0, 32))  # of a blob id + record
_RECORD = itemgetter(slice(32, None))
_SECOND_BYTE = itemgetter(1)
_ENTRY_ID = itemgetter(1)  # of a RawEntry
_ID = struct.Struct("32s")
#: Ids searched per call of :meth:`BlobTable.positions` by a caller holding many.
_SEARCH_BATCH = 4096
_FIRST = itemgetter(0)
#: Held entries are kept apart by their blob id's first byte (see ``BlobTable.add_raw``).
_GROUPS = 256


#: A build of at least this many blobs gives freed memory back as it goes (:meth:`BlobTable._build`),
#: every this many first bytes.
_TRIM_MIN = 1 << 16
_TRIM_EVERY = 32


def _heap_trim() -> None:
    """glibc's ``malloc_trim(0)``: free pages of the C heap go back to the kernel (a few
    ms; nothing elsewhere).

    The held entries of an index being loaded grow in 256 buffers between the
    decoded objects of each index object; freed, such memory stays resident
    although unused, and the buffers built from them grow elsewhere.  Loading
    and building 300,000 blobs (a 17.4 MB table) raised the resident set by 43 MB
    untrimmed, 29 MB with a trim every 32 first bytes of the build (8 calls,
    8.5 ms of the load's 0.33 s CPU; ``tests/unit/repo/test_repo_index_table.py``).
    """
    global _TRIM
    if _TRIM is None:
        _TRIM = _no_trim
        if sys.platform.startswith("linux"):
            import ctypes

            try:
                fn = ctypes.CDLL(None).malloc_trim
            except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
                return
            fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
            _TRIM = functools.partial(fn, 0)
    _TRIM()


def _no_trim() -> None:
    return None


_TRIM: Callable[[], object] | None = None


#: Items sorted in one C call at most (see :func:`_sorted_by_id`).
_SORT_RUN = 16384


def _sorted_by_id(items: list[bytes]) -> list[bytes]:
    """``items`` (blob id + record each) stably sorted by blob id, never holding the
    GIL for long.

    One ``sort()`` is one C call that lets no other thread run: a million items
    took about 0.9 s, stopping an app's event loop for as long.  Runs of
    ``_SORT_RUN`` sorted in C (a few ms each), merged by ``heapq.merge`` (a
    generator: the interpreter may switch threads between its steps), give the
    same list for about 40 % more CPU on this step.  ``heapq.merge`` keeps equal
    ids in the order of their runs, so the order stays stable.
    """
    if len(items) <= _SORT_RUN:
        return sorted(items, key=_BLOB_ID)
    runs = [sorted(items[i:i + _SORT_RUN], key=_BLOB_ID) for i in range(0, len(items), _SORT_RUN)]
    return list(heapq.merge(*runs, key=_BLOB_ID))


def _split(group: bytearray) -> list[bytes]:
    """The held items (blob id + record) of one flat buffer, in order."""
    flat, step = bytes(group), BlobTable._ITEM.size
    return [flat[i:i + step] for i in range(0, len(flat), step)]


class BlobTable:
    """Blob id -> (pack id, location), about 70 bytes per blob (spec §13).

    A dict of Python objects costs ~350 bytes per blob, too much for the
    million blobs of a large SQLite database on a phone.  So the bulk lives in
    two flat buffers sorted by blob id: the 32-byte ids, and a 26-byte record
    per blob (pack number, then the fields of :class:`BlobLocation`).  A table
    of 65,536 offsets by the ids' first two bytes narrows a lookup to a few
    records, searched with ``bytes.find``.  Blobs added since the last merge sit
    in a small dict; it is merged into the buffers once it holds a sixteenth of
    them, so merging costs amortised O(1) copies per blob.

    Behaves as a mapping; a deleted blob leaves a tombstone (pack number
    ``0xFFFFFFFF``) in the buffers, as deletions are rare (prune, damage).
    """

    _REC = struct.Struct("<IBBIIIII")
    #: Pack number, frame offset, offset in frame, length: the fields restore plans with.
    _SHORT = struct.Struct("<I2xI8xII")
    _GONE = 0xFFFFFFFF
    _MIN_MERGE = 1024
    #: Blob id + record, as held (the same bytes as the id followed by ``_REC``).
    _ITEM = struct.Struct("<32sIBBIIIII")
    #: Outside :meth:`loading`, entries of index objects held before they are merged,
    #: at most (or as many as the buffers hold, if more).
    _BULK_MAX = 1 << 15

    def __init__(self) -> None:
        self._ids = bytearray()              # n x 32-byte blob id, sorted
        self._recs = bytearray()             # n x _REC, same order
        self._off = array("I")               # 65,537 offsets by 2-byte prefix (lazily)
        self._counts = array("I")            # records per 2-byte prefix
        self._n = 0                          # records in the buffers (tombstones too)
        self._live = 0                       # live records in the buffers
        self._pending: dict[bytes, bytes] = {}   # blob id -> _REC, not merged yet
        # Entries of index objects being loaded, not merged yet: blob id + _REC each,
        # flat, one buffer per first byte of the id (or none at all), in the order they came.
        self._bulk: list[bytearray] = []
        self._bulk_n = 0
        self._loading = False
        self._pack_ids: list[bytes] = []
        self._pack_no: dict[bytes, int] = {}
        self._bounds_of: array[int] | None = None  # the ``_off`` that ``_bounds_cache`` is of
        self._bounds_cache: tuple[array[int], array[int]] = (array("I"), array("I"))

    # -- encoding --------------------------------------------------------------------
    def _pack_number(self, pack_id: bytes) -> int:
        no = self._pack_no.get(pack_id)
        if no is None:
            no = self._pack_no[pack_id] = len(self._pack_ids)
            self._pack_ids.append(pack_id)
        return no

    def _encode(self, pack_id: bytes, loc: BlobLocation) -> bytes:
        return self._REC.pack(self._pack_number(pack_id), loc.type, loc.flags, loc.frame_offset, loc.frame_len,
                              loc.frame_raw, loc.inner, loc.length)

    def _decode(self, fields: tuple[int, ...]) -> tuple[bytes, BlobLocation]:
        return self._pack_ids[fields[0]], BlobLocation(*fields[1:])

    # -- lookup ----------------------------------------------------------------------
    def _find(self, blob_id: bytes) -> int:
        """Record number of ``blob_id`` in the buffers (tombstone or not), or -1."""
        if self._bulk:
            self._merge()
        if not self._n or len(blob_id) != 32:
            return -1
        b = (blob_id[0] << 8) | blob_id[1]
        lo, hi = self._off[b] * 32, self._off[b + 1] * 32
        pos = self._ids.find(blob_id, lo, hi)
        while pos > 0 and pos % 32:  # a match straddling two ids: keep looking
            pos = self._ids.find(blob_id, pos + 1, hi)
        return pos // 32 if pos >= 0 else -1

    def positions(self, raw: bytes | bytearray | memoryview) -> list[int]:
        """The record number in the sorted buffers (:meth:`lookup`, :meth:`record_at`)
        of each 32-byte id in ``raw`` (ids joined), -1 for one not there.  A deleted
        blob's tombstone is found (its pack number is ``gone``); blobs added since the
        last merge are not (:meth:`lookup` merges them, :meth:`records` looks first).

        The search of many ids (``records``, ``absent``, restore's plan): each step
        is one C call over all of them (``map`` of the buffer's ``find`` over the
        ids and their prefixes' bounds), no bytecode per id.
        """
        if self._bulk:
            self._merge()
        if len(raw) % 32:
            raise ValueError("a blob id is 32 bytes")
        if not self._n:
            return [-1] * (len(raw) // 32)
        lo, hi = self._bounds()
        # The first two bytes of each id as one native u16 (``_bounds`` is indexed so).
        heads = memoryview(raw).cast("B").cast("H")[::16]
        hits = list(map(self._ids.find, map(_FIRST, _ID.iter_unpack(raw)),
                        map(lo.__getitem__, heads), map(hi.__getitem__, heads)))
        misses = hits.count(-1)
        # A match straddling two stored ids is not a match: an aligned hit or -1 add
        # 0 or 31 each to this sum, so anything else means one (or more) to redo.
        if sum(map(and_, hits, repeat(31))) != 31 * misses:
            for i, at in enumerate(hits):
                if at > 0 and at % 32:
                    hits[i] = self._find(bytes(raw[32 * i:32 * i + 32]))
                else:
                    hits[i] = at >> 5
            return hits
        return list(map(rshift, hits, repeat(5)))  # byte offset -> record number; -1 stays

    def _bounds(self) -> tuple[array[int], array[int]]:
        """Byte offsets in ``_ids`` where the ids of each 2-byte prefix start and end,
        indexed by the prefix read as a native u16 (so ``positions`` reads it with a
        cast, no arithmetic per id); kept while the buffers do not change."""
        if self._bounds_of is not self._off:
            starts = array("I", map(mul, self._off, repeat(32)))
            ends = starts[1:]
            del starts[-1]
            if sys.byteorder == "little":  # u16 = second byte << 8 | first: transposed
                starts = array("I", chain.from_iterable(starts[i::256] for i in range(256)))
                ends = array("I", chain.from_iterable(ends[i::256] for i in range(256)))
            self._bounds_cache = (starts, ends)
            self._bounds_of = self._off
        return self._bounds_cache

    def _live_record(self, blob_id: bytes) -> int:
        i = self._find(blob_id)
        if (i >= 0 and self._live < self._n
                and self._REC.unpack_from(self._recs, i * self._REC.size)[0] == self._GONE):
            return -1
        return i

    def __contains__(self, blob_id: object) -> bool:
        # The hot path of backup (one call per chunk): _find inlined.
        if self._bulk:
            self._merge()
        if blob_id in self._pending:
            return True
        if not self._n or not isinstance(blob_id, bytes) or len(blob_id) != 32:
            return False
        b = (blob_id[0] << 8) | blob_id[1]
        hi = self._off[b + 1] * 32
        pos = self._ids.find(blob_id, self._off[b] * 32, hi)
        while pos > 0 and pos % 32:
            pos = self._ids.find(blob_id, pos + 1, hi)
        if pos < 0:
            return False
        return (self._live == self._n
                or self._REC.unpack_from(self._recs, pos // 32 * self._REC.size)[0] != self._GONE)

    def get(self, blob_id: bytes, default: tuple[bytes, BlobLocation] | None = None
            ) -> tuple[bytes, BlobLocation] | None:
        """The (pack id, location) of ``blob_id``, or ``default``."""
        if self._bulk:
            self._merge()
        rec = self._pending.get(blob_id)
        if rec is not None:
            return self._decode(self._REC.unpack(rec))
        i = self._live_record(blob_id)
        if i < 0:
            return default
        return self._decode(self._REC.unpack_from(self._recs, i * self._REC.size))

    def record(self, blob_id: bytes) -> tuple[int, ...] | None:
        """The raw record of ``blob_id``, or None: (pack number, then the fields of
        :class:`BlobLocation`).  The hot path of restore (one call per chunk):
        no objects are built; :meth:`pack_id` turns the number into the id."""
        if self._bulk:
            self._merge()
        rec = self._pending.get(blob_id)
        if rec is not None:
            return self._REC.unpack(rec)
        i = self._find(blob_id)
        if i < 0:
            return None
        fields = self._REC.unpack_from(self._recs, i * self._REC.size)
        return None if fields[0] == self._GONE else fields

    def records(self, blob_ids: Sequence[bytes]) -> list[tuple[int, ...] | None]:
        """:meth:`record` of each of ``blob_ids``, searched at once (:meth:`positions`)."""
        if self._bulk:
            self._merge()
        ids = blob_ids if isinstance(blob_ids, list) else list(blob_ids)
        if set(map(len, ids)) - {32}:  # not ids: no search finds them
            return [self.record(bid) for bid in ids]
        unpack_from, size, recs, gone = self._REC.unpack_from, self._REC.size, self._recs, self._GONE
        out: list[tuple[int, ...] | None] = [
            None if at < 0 else unpack_from(recs, at * size) for at in self.positions(b"".join(ids))]
        if self._live < self._n:  # tombstones
            out = [None if r is None or r[0] == gone else r for r in out]
        if self._pending:  # never also in the buffers
            unpack, pending = self._REC.unpack, self._pending
            out = [r if (p := pending.get(bid)) is None else unpack(p) for bid, r in zip(ids, out)]
        return out

    def lookup(self) -> TableView:
        """The sorted buffers, for a loop that looks up many ids itself (restore's
        plan: one search and one unpack per chunk, no call and no tuple of all
        fields per chunk).  Valid until the table changes."""
        if self._bulk or self._pending:
            self._merge()
        if not self._off:
            self._off = array("I", bytes(4 * 65537))
        return TableView(self._ids, self._off, self._recs, self._REC.size, self._GONE, self._SHORT)

    def record_at(self, number: int) -> tuple[int, ...]:
        """The record of blob ``number`` of :meth:`lookup` (the fields :meth:`record` gives)."""
        return self._REC.unpack_from(self._recs, number * self._REC.size)

    def pack_id(self, number: int) -> bytes:
        """The pack id behind a pack number of :meth:`record`."""
        return self._pack_ids[number]

    def __getitem__(self, blob_id: bytes) -> tuple[bytes, BlobLocation]:
        found = self.get(blob_id)
        if found is None:
            raise KeyError(blob_id.hex()[:16])
        return found

    def __len__(self) -> int:
        if self._bulk:
            self._merge()
        return self._live + len(self._pending)

    # -- changes ---------------------------------------------------------------------
    def __setitem__(self, blob_id: bytes, value: tuple[bytes, BlobLocation]) -> None:
        if len(blob_id) != 32:
            raise ValueError("a blob id is 32 bytes")
        rec = self._encode(*value)
        i = self._find(blob_id)
        if i < 0:
            self._pending[blob_id] = rec
            if len(self._pending) >= max(self._MIN_MERGE, self._n >> 4):
                self._merge()
            return
        at = i * self._REC.size
        if self._REC.unpack_from(self._recs, at)[0] == self._GONE:
            self._live += 1
        self._recs[at:at + self._REC.size] = rec

    def add_new(self, pack_id: bytes, entries: Iterable[tuple[bytes, BlobLocation]]) -> None:
        """Add the blobs of one pack, keeping the location of any blob already known."""
        self.add_raw([self._pack_number(pack_id)],
                     ((0, bid, loc.type, loc.flags, loc.frame_offset, loc.frame_len, loc.frame_raw,
                       loc.inner, loc.length) for bid, loc in entries))

    def add_raw(self, packs: list[int] | list[bytes], entries: Iterable[RawEntry]) -> None:
        """Add entries as :func:`decode_index_raw` gives them (their first field
        indexes ``packs``: pack ids, or numbers from :meth:`record`), keeping the
        location of any blob already known.  No object is built per blob.

        A list of entries inside :meth:`loading` (an index object being
        loaded), or outside it one as large as a merge, is held, with the next
        lists, until the table is read (inside :meth:`loading`; outside, until
        ``_BULK_MAX`` or as many as stored are held): 58 bytes per entry in 256
        flat buffers by the id's first byte, no object per entry.  Then the buffers are built anew one first byte at
        a time (:meth:`_build`), or, for fewer than stored, merged in place,
        instead of one lookup and one dict entry per blob and a merge every
        sixteenth.
        """
        rec = self._REC
        nos = [p if isinstance(p, int) else self._pack_number(p) for p in packs]
        pending = self._pending
        # Inside ``loading`` every index object is held, however small: a small one
        # first (a daily backup's, in name order) took the lookup path and made the
        # next ones merge into the buffers in place, several times per load.
        if isinstance(entries, list) and (self._loading or self._bulk_n
                                          or len(entries) >= max(self._MIN_MERGE, self._n >> 4)):
            pack = self._ITEM.pack
            if set(map(len, map(_ENTRY_ID, entries))) - {32}:  # "32s" would pad or cut
                raise ValueError("a blob id is 32 bytes")
            if not self._bulk:
                self._bulk = [bytearray() for _ in range(_GROUPS)]
            groups = self._bulk  # after the pending blobs, in the order they came
            for i, blob_id, t, f, fo, fl, fr, inner, ln in entries:
                groups[blob_id[0]] += pack(blob_id, nos[i], t, f, fo, fl, fr, inner, ln)
            self._bulk_n += len(entries)
            if not self._loading and self._bulk_n >= max(self._BULK_MAX, self._n):
                self._merge()
            return
        if self._bulk:  # before ``pending`` is taken: a merge replaces it
            self._merge()
            pending = self._pending
        for i, blob_id, t, f, fo, fl, fr, inner, ln in entries:
            if blob_id in pending:
                continue
            if len(blob_id) != 32:
                raise ValueError("a blob id is 32 bytes")
            j = self._find(blob_id)
            if j < 0:
                pending[blob_id] = rec.pack(nos[i], t, f, fo, fl, fr, inner, ln)
                if len(pending) >= max(self._MIN_MERGE, self._n >> 4):
                    self._merge()
                    pending = self._pending
            elif rec.unpack_from(self._recs, j * rec.size)[0] == self._GONE:
                rec.pack_into(self._recs, j * rec.size, nos[i], t, f, fo, fl, fr, inner, ln)
                self._live += 1

    def setdefault(self, blob_id: bytes, value: tuple[bytes, BlobLocation]
                   ) -> tuple[bytes, BlobLocation]:
        """Store ``value`` unless ``blob_id`` is known; return the stored value."""
        found = self.get(blob_id)
        if found is None:
            self[blob_id] = value
            return value
        return found

    def __delitem__(self, blob_id: bytes) -> None:
        if self._bulk:
            self._merge()
        if self._pending.pop(blob_id, None) is not None:
            return
        i = self._live_record(blob_id)
        if i < 0:
            raise KeyError(blob_id.hex()[:16])
        struct.pack_into("<I", self._recs, i * self._REC.size, self._GONE)
        self._live -= 1

    def _merge(self) -> None:
        """Merge the pending dict, then the held entries of index objects (blob id
        + record each, not looked up yet), into the sorted buffers, in place.

        Of several locations of one blob the first is kept: one in the buffers,
        then a pending one, then the first held.  As many new blobs as stored
        ones (loading the index): the buffers are built anew (:meth:`_build`).
        Fewer: the buffers grow at their end (``realloc``, no second copy of a
        large buffer) and their runs move back from the last one, so peak
        memory stays near the buffers' size instead of twice it.
        """
        items = [bid + rec for bid, rec in self._pending.items()]
        self._pending = {}
        groups, held = self._bulk, self._bulk_n
        self._bulk, self._bulk_n = [], 0
        if not items and not held:
            return
        if len(items) + held >= self._n:  # as many new blobs as stored ones: build anew
            self._build(items, groups)
            return
        for group in groups:  # each id's locations stay in the order they came
            items += _split(group)
        del groups
        items = _sorted_by_id(items)  # stable: of equal ids the first stays first
        if not self._off:
            self._off = array("I", bytes(4 * 65537))
            self._counts = array("I", bytes(4 * 65536))
        ids, recs, size, n = self._ids, self._recs, self._REC.size, self._n
        off, counts, unpack_from, gone = self._off, self._counts, self._REC.unpack_from, self._GONE
        todo: list[bytes] = []
        points: list[int] = []
        last = b""
        for item in items:
            bid = item[:32]
            if bid == last:  # a second location of a blob: the first is kept
                continue
            last = bid
            b = (item[0] << 8) | item[1]
            lo, hi = off[b], off[b + 1]
            end = hi
            while lo < hi:  # insertion point inside the prefix's range
                mid = (lo + hi) // 2
                if ids[mid * 32:mid * 32 + 32] < bid:
                    lo = mid + 1
                else:
                    hi = mid
            if lo < end and ids[lo * 32:lo * 32 + 32] == bid:  # known already
                at = lo * size
                if unpack_from(recs, at)[0] == gone:  # deleted: now found again
                    recs[at:at + size] = item[32:]
                    self._live += 1
                continue
            points.append(lo)
            todo.append(item)
            counts[b] += 1
        k = len(todo)
        if k:
            ids += bytes(32 * k)
            recs += bytes(size * k)
            with memoryview(ids) as iv, memoryview(recs) as rv:
                end = n
                for j in range(k - 1, -1, -1):  # the run after insertion j moves by j + 1
                    start = points[j]
                    iv[(start + j + 1) * 32:(end + j + 1) * 32] = iv[start * 32:end * 32]
                    rv[(start + j + 1) * size:(end + j + 1) * size] = rv[start * size:end * size]
                    iv[(start + j) * 32:(start + j + 1) * 32] = todo[j][:32]
                    rv[(start + j) * size:(start + j + 1) * size] = todo[j][32:]
                    end = start
        self._n += k
        self._live += k
        self._off = array("I", chain((0,), accumulate(counts)))

    def _build(self, pending: list[bytes], groups: list[bytearray]) -> None:
        """Replace the buffers by the stored, the ``pending`` and the held blobs
        (``groups``: flat, by first byte), one first byte of the ids at a time;
        of a repeated id the first is kept (stored, then pending, then held).

        Each step sorts about 1/256 of the blobs in one C call (no call over the
        whole table: a sort of a million ids held the GIL about 0.9 s), and
        makes objects only for them: the held entries cost their 58 bytes until
        their step, and peak memory stays near twice the buffers' size.
        """
        ids, recs, off, size, gone = self._ids, self._recs, self._off, self._REC.size, self._GONE
        n, deleted = self._n, self._live < self._n
        # The held buffers freed step by step lie in the C heap between small objects,
        # so glibc keeps them resident while the new buffers grow elsewhere: both at
        # once at the end, twice the table.  Given back every 32 steps (_heap_trim).
        trim = n + len(pending) + sum(map(len, groups)) // self._ITEM.size >= _TRIM_MIN
        early: list[list[bytes]] = [[] for _ in range(_GROUPS)]
        for item in pending:
            early[item[0]].append(item)
        new_ids, new_recs = bytearray(), bytearray()
        counts = array("I", bytes(4 * 65536))
        for first in range(_GROUPS):
            part: list[bytes] = []
            if n:  # stored live blobs (a deleted one, found again, takes the new location)
                lo, hi = off[first << 8], off[(first + 1) << 8]
                part = [bytes(ids[i * 32:i * 32 + 32]) + recs[i * size:i * size + size]
                        for i in range(lo, hi)]
                if deleted:
                    part = [item for item in part if self._REC.unpack_from(item, 32)[0] != gone]
            part += early[first]
            early[first] = []
            if groups:
                part += _split(groups[first])
                groups[first] = bytearray()
            if not part:
                continue
            ordered = sorted(part)  # distinct ids: by id
            got = list(map(_BLOB_ID, ordered))
            if len(set(got)) < len(got):  # an id listed twice: the first location is kept
                ordered, last = [], b""
                for item in sorted(part, key=_BLOB_ID):  # stable
                    if item[:32] != last:
                        ordered.append(item)
                        last = item[:32]
                got = list(map(_BLOB_ID, ordered))
            del part
            new_ids += b"".join(got)
            new_recs += b"".join(map(_RECORD, ordered))
            for second, c in Counter(map(_SECOND_BYTE, got)).items():
                counts[first << 8 | second] = c
            del got, ordered
            if trim and first % _TRIM_EVERY == _TRIM_EVERY - 1:
                _heap_trim()
        self._ids, self._recs, self._counts = new_ids, new_recs, counts
        self._n = self._live = len(new_ids) // 32
        self._off = array("I", chain((0,), accumulate(counts)))

    @contextmanager
    def loading(self) -> Iterator[None]:
        """A whole index is added inside: merged (once more) at the end.

        The entries of index objects added inside are held until the end (or
        until the table is read), then merged at once (:meth:`add_raw`).
        """
        loading, self._loading = self._loading, True
        try:
            yield
        finally:
            self._loading = loading
            self._merge()

    def compact(self) -> None:
        """Merge recent additions into the compact buffers (e.g. after loading)."""
        self._merge()

    # -- iteration -------------------------------------------------------------------
    def items(self) -> Iterator[tuple[bytes, tuple[bytes, BlobLocation]]]:
        """(blob id, (pack id, location)) of every blob; do not change the table meanwhile."""
        if self._bulk:
            self._merge()
        ids = self._ids
        for i, fields in enumerate(self._REC.iter_unpack(self._recs)):
            if fields[0] != self._GONE:
                yield bytes(ids[i * 32:i * 32 + 32]), self._decode(fields)
        for bid, rec in list(self._pending.items()):
            yield bid, self._decode(self._REC.unpack(rec))

    def id_runs_by_pack(self) -> dict[bytes, bytes]:
        """Pack id -> the ids of its blobs joined (32 bytes each, in id order), without
        an object per blob (``check``)."""
        if self._bulk:
            self._merge()
        ids, gone = self._ids, self._GONE
        runs: dict[int, bytearray] = defaultdict(bytearray)
        with memoryview(ids) as view:
            for i, (no, *_rest) in enumerate(self._REC.iter_unpack(self._recs)):
                if no != gone:
                    runs[no] += view[i * 32:i * 32 + 32]
        for bid, rec in self._pending.items():
            runs[self._REC.unpack(rec)[0]] += bid
        return {self._pack_ids[no]: bytes(run) for no, run in runs.items()}

    def absent(self, blob_ids: Iterable[bytes]) -> list[bytes]:
        """Those of ``blob_ids`` not in the table (``check``: one call per file)."""
        if self._bulk:
            self._merge()
        if isinstance(blob_ids, ChunkIds):
            raw = blob_ids.raw
        else:
            ids = list(blob_ids)
            if set(map(len, ids)) - {32}:  # not ids: none is in the table
                return [bid for bid in ids if bid not in self]
            raw = b"".join(ids)
        out: list[bytes] = []
        pending, unpack_from, size, gone = self._pending, self._REC.unpack_from, self._REC.size, self._GONE
        every = self._live == self._n
        step = 32 * _SEARCH_BATCH  # a large file's ids a slice at a time: flat memory
        for start in range(0, len(raw), step):
            found = self.positions(raw[start:start + step])
            if every and -1 not in found:
                continue
            for i, at in enumerate(found):
                if at < 0 or (not every and unpack_from(self._recs, at * size)[0] == gone):
                    bid = raw[start + 32 * i:start + 32 * i + 32]
                    if bid not in pending:
                        out.append(bid)
        return out

    def keys(self) -> Iterator[bytes]:
        """Every blob id."""
        return (bid for bid, _ in self.items())

    __iter__ = keys

    def values(self) -> Iterator[tuple[bytes, BlobLocation]]:
        """(pack id, location) of every blob."""
        return (v for _, v in self.items())

    def forget_where(self, pack_id: bytes, frame_offset: int) -> int:
        """Delete every blob in the frame at ``frame_offset`` of ``pack_id``; return the count."""
        no = self._pack_no.get(pack_id)
        if no is None:
            return 0
        gone = [bid for bid, (pid, loc) in self.items()
                if pid == pack_id and loc.frame_offset == frame_offset]
        for bid in gone:
            del self[bid]
        return len(gone)


class Index:
    """The union of index objects, in memory (about 70 bytes per blob, spec §13)."""

    def __init__(self) -> None:
        self.blobs = BlobTable()
        self.packs: dict[bytes, PackInfo] = {}
        #: index object name -> pack ids it lists (for prune and check).
        self.objects: dict[str, list[bytes]] = {}
        #: index objects that could not be read -> why (their packs look unindexed).
        self.damaged: dict[str, str] = {}
        #: packs listed only by trash objects: their blobs are readable, but a backup
        #: stores such a blob again instead of relying on it (spec §12).
        self.trashed: set[bytes] = set()

    def missing_reason(self) -> str:
        """Why a blob may be in no index: the damaged index objects, if any."""
        if not self.damaged:
            return "is in no index"
        return "is in no readable index (" + ", ".join(sorted(self.damaged)) + " is damaged)"

    def add_pack(self, pack_id: bytes, info: PackInfo,
                 entries: Iterable[tuple[bytes, BlobLocation]]) -> None:
        """Record a pack and its blobs (a blob already known keeps its first location,
        unless that is in a condemned pack and this one is not)."""
        self.packs[pack_id] = info
        if self.trashed and pack_id not in self.trashed:
            entries = list(entries)
            for bid, loc in entries:
                cur = self.blobs.get(bid)
                if cur is not None and cur[0] in self.trashed:
                    self.blobs[bid] = (pack_id, loc)
        self.blobs.add_new(pack_id, entries)

    def add_object(self, packs: list[tuple[bytes, PackInfo]], entries: list[RawEntry]) -> None:
        """Record the packs and blobs of one index object (as :meth:`add_pack` does
        for each of its packs, without building an object per blob)."""
        if self.trashed and any(pid not in self.trashed for pid, _ in packs):
            for pid, info, locs in _grouped(packs, entries):  # the condemned-pack rule
                self.add_pack(pid, info, locs)
            return
        for pid, info in packs:
            self.packs[pid] = info
        self.blobs.add_raw([pid for pid, _ in packs], entries)

    def forget_frame(self, pack_id: bytes, frame_offset: int) -> None:
        """Drop the blobs of a frame found damaged, so a backup stores them again."""
        self.blobs.forget_where(pack_id, frame_offset)

    def __contains__(self, blob_id: bytes) -> bool:
        """Whether a backup may rely on ``blob_id`` being stored (not only condemned)."""
        if not self.trashed:
            return blob_id in self.blobs
        found = self.blobs.get(blob_id)
        return found is not None and found[0] not in self.trashed


def encode_index(packs: list[tuple[bytes, PackInfo, list[tuple[bytes, BlobLocation]]]],
                 padded: bool = False) -> bytes:
    """Plaintext of an index object listing ``packs`` and all their blobs.

    ``padded``: zero bytes follow, so that the sealed object is ``padded_length``
    bytes (format version 2, spec §6).
    """
    out = [INDEX_MAGIC, _U32.pack(len(packs))]
    out += [_PACK.pack(pid, info.salt, info.size) for pid, info, _ in packs]
    n = sum(len(e) for _, _, e in packs)
    out.append(_U32.pack(n))
    for i, (_, _, entries) in enumerate(packs):
        for bid, loc in entries:
            out.append(_U32.pack(i) + ENTRY.pack(bid, loc.type, loc.flags, loc.frame_offset,
                                                  loc.frame_len, loc.frame_raw, loc.inner,
                                                  loc.length))
    if padded:
        size = sum(map(len, out)) + OVERHEAD
        out.append(bytes(padded_length(size) - size))
    return b"".join(out)


def index_plaintext_size(n_packs: int, n_entries: int) -> int:
    """Unpadded plaintext size of an index object (spec §6)."""
    return 12 + _PACK.size * n_packs + (4 + ENTRY.size) * n_entries


def decode_index(data: bytes, what: str
                 ) -> list[tuple[bytes, PackInfo, list[tuple[bytes, BlobLocation]]]]:
    """Parse an index plaintext; ``FormatError`` on anything malformed."""
    return _grouped(*decode_index_raw(data, what))


def _grouped(packs: list[tuple[bytes, PackInfo]], entries: list[RawEntry]
             ) -> list[tuple[bytes, PackInfo, list[tuple[bytes, BlobLocation]]]]:
    out: list[IndexPacks] = [(pid, info, []) for pid, info in packs]
    for i, bid, t, f, fo, fl, fr, inner, ln in entries:
        out[i][2].append((bid, BlobLocation(t, f, fo, fl, fr, inner, ln)))
    return out


def decode_index_raw(data: bytes, what: str) -> RawIndex:
    """Parse an index plaintext into its packs and its entries as flat tuples
    (:data:`RawEntry`, all unpacked at once); ``FormatError`` on anything malformed."""
    try:
        if data[:4] != INDEX_MAGIC:
            raise FormatError(f"{what}: not an index")
        (npacks,) = _U32.unpack_from(data, 4)
        pos = 8 + npacks * _PACK.size
        if pos + 4 > len(data):
            raise FormatError(f"{what}: wrong length")
        view = memoryview(data)
        packs = [(pid, PackInfo(salt, size)) for pid, salt, size in _PACK.iter_unpack(view[8:pos])]
        (n,) = _U32.unpack_from(data, pos)
        pos += 4
        end = pos + n * _ENTRY_IN_OBJECT.size
        # Unpadded (version 1) or followed by zero padding only (version 2).
        if end > len(data) or data.count(0, end) != len(data) - end:
            raise FormatError(f"{what}: wrong length or padding")
        # Unpacked 4096 entries per call: one call over a 16 MiB object (289,262
        # entries) held the GIL for about 100 ms, and an app's event loop with it.
        entries: list[RawEntry] = []
        step = _UNPACK_STEP * _ENTRY_IN_OBJECT.size
        for at in range(pos, end, step):
            entries.extend(_ENTRY_IN_OBJECT.iter_unpack(view[at:min(end, at + step)]))
        sizes = [info.size for _, info in packs]
        for i, _b, _t, _f, fo, fl, fr, inner, ln in entries:
            if inner + ln > fr or fo + fl > sizes[i] or fl > FRAME_MAX or fr > FRAME_MAX:
                raise FormatError(f"{what}: inconsistent entry")
        return packs, entries
    except (struct.error, IndexError) as exc:
        raise FormatError(f"{what}: unparsable index") from exc


def write_index(backend_put: Callable[[str, bytes], None], key: BackupKey,
                packs: list[tuple[bytes, PackInfo, list[tuple[bytes, BlobLocation]]]],
                rng: Callable[[int], bytes], padded: bool = False, prefix: str = INDEX_PREFIX
                ) -> list[tuple[str, int, list[bytes]]]:
    """Seal and store ``packs`` as new index objects of at most ``INDEX_OBJECT_TARGET``.

    Returns (name, stored size, pack ids) of each object written; none for no packs.
    """
    out = []
    group: list[tuple[bytes, PackInfo, list[tuple[bytes, BlobLocation]]]] = []
    entries = 0
    for pack in [*packs, None]:
        if group and (pack is None or index_plaintext_size(len(group) + 1,
                                                           entries + len(pack[2]))
                      > INDEX_OBJECT_TARGET):
            name = prefix + rng(16).hex()
            data = seal_object(key, labels.INDEX, INDEX_MAGIC, name,
                               encode_index(group, padded), rng)
            backend_put(name, data)
            out.append((name, len(data), [p[0] for p in group]))
            group, entries = [], 0
        if pack is not None:
            group.append(pack)
            entries += len(pack[2])
    return out


def read_index(data: bytes, key: BackupKey, name: str
               ) -> list[tuple[bytes, PackInfo, list[tuple[bytes, BlobLocation]]]]:
    """Decrypt and parse the index object ``name``."""
    return _grouped(*read_index_raw(data, key, name))


def read_index_raw(data: bytes, key: BackupKey, name: str) -> RawIndex:
    """Decrypt and parse the index object ``name`` (entries as :data:`RawEntry`)."""
    return decode_index_raw(open_index_object(data, key, name), name)


def open_index_object(data: bytes, key: BackupKey, name: str) -> bytes:
    """Decrypt the index object ``name``: its plaintext, for :func:`decode_index_raw`."""
    if len(data) > INDEX_MAX:
        raise FormatError(f"{name}: larger than {INDEX_MAX} bytes")
    return open_object(key, labels.INDEX, INDEX_MAGIC, name, data)
