"""Encrypted indexes: blob id -> (pack, frame, offset, length, type).

An index object ``index/<32 hex random>`` is a sealed object (label
``strongroom/v1/index``) whose plaintext is::

    "SRI1" | u32 n_packs | n_packs x (pack id 16 | pack salt 32 | u64 pack size)
           | u32 n_entries | n_entries x (u32 pack number | ENTRY of the pack header)

The in-memory :class:`Index` is the union of every index object.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..crypto import labels
from ..crypto.keys import BackupKey
from ..errors import FormatError
from .pack import ENTRY, BlobLocation
from .sealed import open_object, seal_object

INDEX_MAGIC = b"SRI1"
INDEX_PREFIX = "index/"
_PACK = struct.Struct(">16s32sQ")
_U32 = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class PackInfo:
    """What the index knows about a pack: its salt (to open frames) and stored size."""

    salt: bytes
    size: int


class Index:
    """The union of index objects, in memory (about 100 bytes per blob)."""

    def __init__(self) -> None:
        self.blobs: dict[bytes, tuple[bytes, BlobLocation]] = {}
        self.packs: dict[bytes, PackInfo] = {}
        #: index object name -> pack ids it lists (for prune and check).
        self.objects: dict[str, list[bytes]] = {}
        #: index objects that could not be read -> why (their packs look unindexed).
        self.damaged: dict[str, str] = {}

    def missing_reason(self) -> str:
        """Why a blob may be in no index: the damaged index objects, if any."""
        if not self.damaged:
            return "is in no index"
        return "is in no readable index (" + ", ".join(sorted(self.damaged)) + " is damaged)"

    def add_pack(self, pack_id: bytes, info: PackInfo,
                 entries: Iterable[tuple[bytes, BlobLocation]]) -> None:
        """Record a pack and its blobs (a blob already known keeps its first location)."""
        self.packs[pack_id] = info
        for blob_id, loc in entries:
            self.blobs.setdefault(blob_id, (pack_id, loc))

    def forget_frame(self, pack_id: bytes, frame_offset: int) -> None:
        """Drop the blobs of a frame found damaged, so a backup stores them again."""
        for bid in [b for b, (p, loc) in self.blobs.items()
                    if p == pack_id and loc.frame_offset == frame_offset]:
            del self.blobs[bid]

    def __contains__(self, blob_id: bytes) -> bool:
        return blob_id in self.blobs


def encode_index(packs: list[tuple[bytes, PackInfo, list[tuple[bytes, BlobLocation]]]]) -> bytes:
    """Plaintext of an index object listing ``packs`` and all their blobs."""
    out = [INDEX_MAGIC, _U32.pack(len(packs))]
    out += [_PACK.pack(pid, info.salt, info.size) for pid, info, _ in packs]
    n = sum(len(e) for _, _, e in packs)
    out.append(_U32.pack(n))
    for i, (_, _, entries) in enumerate(packs):
        for bid, loc in entries:
            out.append(_U32.pack(i) + ENTRY.pack(bid, loc.type, loc.flags, loc.frame_offset,
                                                  loc.frame_len, loc.frame_raw, loc.inner,
                                                  loc.length))
    return b"".join(out)


def decode_index(data: bytes, what: str
                 ) -> list[tuple[bytes, PackInfo, list[tuple[bytes, BlobLocation]]]]:
    """Parse an index plaintext; ``FormatError`` on anything malformed."""
    try:
        if data[:4] != INDEX_MAGIC:
            raise FormatError(f"{what}: not an index")
        (npacks,) = _U32.unpack_from(data, 4)
        pos = 8
        packs: list[tuple[bytes, PackInfo, list[tuple[bytes, BlobLocation]]]] = []
        for _ in range(npacks):
            pid, salt, size = _PACK.unpack_from(data, pos)
            packs.append((pid, PackInfo(salt, size), []))
            pos += _PACK.size
        (n,) = _U32.unpack_from(data, pos)
        pos += 4
        if pos + n * (4 + ENTRY.size) != len(data):
            raise FormatError(f"{what}: wrong length")
        for _ in range(n):
            (i,) = _U32.unpack_from(data, pos)
            bid, t, f, fo, fl, fr, inner, ln = ENTRY.unpack_from(data, pos + 4)
            pos += 4 + ENTRY.size
            if inner + ln > fr or fo + fl > packs[i][1].size:
                raise FormatError(f"{what}: inconsistent entry")
            packs[i][2].append((bid, BlobLocation(t, f, fo, fl, fr, inner, ln)))
        return packs
    except (struct.error, IndexError) as exc:
        raise FormatError(f"{what}: unparsable index") from exc


def write_index(backend_put: Callable[[str, bytes], None], key: BackupKey,
                packs: list[tuple[bytes, PackInfo, list[tuple[bytes, BlobLocation]]]],
                rng: Callable[[int], bytes]) -> tuple[str, int]:
    """Seal and store a new index object; return its name and stored size."""
    name = INDEX_PREFIX + rng(16).hex()
    data = seal_object(key, labels.INDEX, INDEX_MAGIC, name, encode_index(packs), rng)
    backend_put(name, data)
    return name, len(data)


def read_index(data: bytes, key: BackupKey, name: str
               ) -> list[tuple[bytes, PackInfo, list[tuple[bytes, BlobLocation]]]]:
    """Decrypt and parse the index object ``name``."""
    return decode_index(open_object(key, labels.INDEX, INDEX_MAGIC, name, data), name)
