"""Packs: many encrypted frames of blobs in one stored object, with an encrypted header.

Layout (the spec, "Pack")::

    "SRP1" | salt (32) | frame ciphertexts ... | header ciphertext | u32 header ciphertext length

A frame is one or more blobs, concatenated and optionally zstd-compressed, then
sealed with AES-256-GCM under the pack's key with nonce = the frame's byte
offset in the pack.  The header lists every blob (so a pack whose index was
never written can be recovered) and carries the zero padding that rounds the
pack to a Padmé length.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

import zstandard

from ..crypto import labels
from ..crypto.aead import HEADER_NONCE, SALT_SIZE, TAG_SIZE, ObjectCipher
from ..crypto.keys import BackupKey
from ..errors import DataDamaged, FormatError

PACK_MAGIC = b"SRP1"
PREFIX_SIZE = len(PACK_MAGIC) + SALT_SIZE
FLAG_ZSTD = 1
BLOB_DATA = 0
BLOB_META = 1
# blob id, type, flags, frame offset, frame ciphertext length, frame raw length,
# offset in the frame, blob length.
ENTRY = struct.Struct(">32sBBIIIII")
_U32 = struct.Struct(">I")
#: No frame is larger than this, ciphertext or plaintext (spec §5): the largest blob
#: (``cdc_max``/``media_piece`` are at most 2^28) plus its tag.  Readers refuse more.
FRAME_MAX = (1 << 28) + 1024
#: Below this saving a compressed frame is stored raw (media, encrypted files).
MIN_SAVING = 0.03
_ZSTD_LEVEL = 3


@dataclass(frozen=True, slots=True)
class BlobLocation:
    """Where a blob lives inside its pack (the pack is named separately)."""

    type: int
    flags: int
    frame_offset: int
    frame_len: int
    frame_raw: int
    inner: int
    length: int


def padme(length: int) -> int:
    """Padmé (Nikitin et al., PETS 2019): round up so at most O(log log L) bits leak."""
    if length < 2:
        return length
    e = length.bit_length() - 1
    s = e.bit_length()
    mask = (1 << (e - s)) - 1 if e > s else 0
    return (length + mask) & ~mask


def pack_name(pack_id: bytes) -> str:
    """The storage name of a pack: ``data/<2 hex>/<32 hex>``."""
    h = pack_id.hex()
    return f"data/{h[:2]}/{h}"


def pack_id_from_name(name: str) -> bytes | None:
    """The id of a pack name, or None if ``name`` is not a well-formed pack name."""
    parts = name.split("/")
    if len(parts) != 3 or parts[0] != "data" or len(parts[2]) != 32:
        return None
    try:
        pid = bytes.fromhex(parts[2])
    except ValueError:
        return None
    return pid if parts[1] == parts[2][:2] else None


def frame_aad(pack_id: bytes, offset: int, flags: int, raw_len: int) -> bytes:
    """Associated data of a frame: binds it to its pack, position, flags and size."""
    return PACK_MAGIC + pack_id + struct.pack(">IBI", offset, flags, raw_len)


class PackWriter:
    """Collects frames of one pack; :meth:`finish` compresses, encrypts and lays it out.

    ``finish`` is the CPU-heavy part (zstd, AES-GCM) and runs in a worker thread;
    the salt is drawn at construction so the rng is only used by the caller's thread.
    """

    def __init__(self, key: BackupKey, pack_id: bytes, rng: Callable[[int], bytes]) -> None:
        self.pack_id = pack_id
        self._key = key
        self.salt = rng(SALT_SIZE)
        self._frames: list[tuple[list[tuple[bytes, int, bytes]], bool]] = []
        self.raw_size = 0
        self.blob_count = 0

    def add_frame(self, blobs: list[tuple[bytes, int, bytes]], compress: bool) -> None:
        """Queue ``blobs`` (id, type, plaintext) as one frame, compressed if it pays."""
        self._frames.append((blobs, compress))
        self.raw_size += sum(len(b[2]) for b in blobs)
        self.blob_count += len(blobs)

    def finish(self) -> tuple[bytes, list[tuple[bytes, BlobLocation]]]:
        """The whole pack (frames, padded encrypted header, trailer) and its entries."""
        cipher = ObjectCipher(self._key, labels.PACK, self.salt)
        parts: list[bytes] = [PACK_MAGIC + self.salt]
        size, entries = PREFIX_SIZE, []
        zc = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
        frames, self._frames = self._frames, []
        frames.reverse()
        while frames:
            # Popped one by one so each plaintext is freed as soon as it is sealed.
            blobs, compress = frames.pop()
            raw = blobs[0][2] if len(blobs) == 1 else b"".join(b[2] for b in blobs)
            flags, body = 0, raw
            if compress:
                packed = zc.compress(raw)
                if len(packed) < len(raw) * (1 - MIN_SAVING):
                    flags, body = FLAG_ZSTD, packed
            ct = cipher.seal(size, body, frame_aad(self.pack_id, size, flags, len(raw)))
            inner = 0
            for blob_id, btype, data in blobs:
                entries.append((blob_id, BlobLocation(btype, flags, size, len(ct), len(raw),
                                                      inner, len(data))))
                inner += len(data)
            parts.append(ct)
            size += len(ct)
            del blobs, raw, body
        head = _U32.pack(len(entries)) + b"".join(
            ENTRY.pack(bid, loc.type, loc.flags, loc.frame_offset, loc.frame_len,
                       loc.frame_raw, loc.inner, loc.length) for bid, loc in entries)
        unpadded = size + len(head) + TAG_SIZE + _U32.size
        head += bytes(padme(unpadded) - unpadded)
        ct = cipher.seal(HEADER_NONCE, head, PACK_MAGIC + b"H" + self.pack_id)
        parts += [ct, _U32.pack(len(ct))]
        return b"".join(parts), entries


_DECOMPRESSORS = threading.local()


def _decompressor() -> zstandard.ZstdDecompressor:
    # One per thread (an instance is not thread-safe; each decompress starts
    # afresh): creating one per frame was 12 % of a restore's decoding CPU.
    d: zstandard.ZstdDecompressor | None = getattr(_DECOMPRESSORS, "d", None)
    if d is None:
        d = _DECOMPRESSORS.d = zstandard.ZstdDecompressor()
    return d


def pack_cipher(key: BackupKey, salt: bytes) -> ObjectCipher:
    """The cipher of a pack's frames (one HKDF; reuse it for the pack's frames)."""
    return ObjectCipher(key, labels.PACK, salt)


def open_frame(key: BackupKey, pack_id: bytes, salt: bytes, loc: BlobLocation,
               ciphertext: bytes, what: str, cipher: ObjectCipher | None = None) -> bytes:
    """Decrypt and decompress the frame at ``loc``; ``DataDamaged`` naming ``what``.

    ``cipher`` is the pack's (:func:`pack_cipher` of ``key`` and ``salt``), when
    the caller opens several frames of the pack.
    """
    if len(ciphertext) != loc.frame_len:
        raise DataDamaged(f"{what} is truncated")
    if cipher is None:
        cipher = pack_cipher(key, salt)
    aad = frame_aad(pack_id, loc.frame_offset, loc.flags, loc.frame_raw)
    body = cipher.open(loc.frame_offset, ciphertext, aad, what)
    if loc.flags & FLAG_ZSTD:
        try:
            body = _decompressor().decompress(body, max_output_size=loc.frame_raw)
        except zstandard.ZstdError as exc:
            raise DataDamaged(f"{what}: frame does not decompress") from exc
    if len(body) != loc.frame_raw:
        raise DataDamaged(f"{what}: frame has the wrong size")
    return body


def parse_header(key: BackupKey, pack_id: bytes, data: bytes,
                 what: str) -> list[tuple[bytes, BlobLocation]]:
    """Read a pack's blob list from its bytes (whole pack or any suffix holding the header)."""
    return [(e[0], BlobLocation(*e[1:])) for e in parse_header_raw(key, pack_id, data, what)]


def parse_header_raw(key: BackupKey, pack_id: bytes, data: bytes,
                     what: str) -> list[tuple[bytes, int, int, int, int, int, int, int]]:
    """:func:`parse_header` as flat tuples (blob id, then the fields of
    :class:`BlobLocation`): no object per blob (``check --read-data``)."""
    if len(data) < _U32.size + TAG_SIZE:
        raise FormatError(f"{what}: too short to be a pack")
    (hlen,) = _U32.unpack_from(data, len(data) - _U32.size)
    start = len(data) - _U32.size - hlen
    if hlen < TAG_SIZE + _U32.size or start < 0:
        raise FormatError(f"{what}: bad header length")
    return decode_header_raw(key, pack_id, data[:PREFIX_SIZE], data[start:-_U32.size], what)


def decode_header(key: BackupKey, pack_id: bytes, prefix: bytes, ct: bytes,
                  what: str) -> list[tuple[bytes, BlobLocation]]:
    """Decrypt a header ciphertext given the pack's 36-byte prefix."""
    return [(e[0], BlobLocation(*e[1:])) for e in decode_header_raw(key, pack_id, prefix, ct, what)]


def decode_header_raw(key: BackupKey, pack_id: bytes, prefix: bytes, ct: bytes,
                      what: str) -> list[tuple[bytes, int, int, int, int, int, int, int]]:
    """:func:`decode_header` as flat tuples, unpacked at once."""
    if len(prefix) != PREFIX_SIZE or prefix[:4] != PACK_MAGIC:
        raise FormatError(f"{what}: not a Strongroom pack")
    cipher = ObjectCipher(key, labels.PACK, prefix[4:])
    head = cipher.open(HEADER_NONCE, ct, PACK_MAGIC + b"H" + pack_id, what)
    if len(head) < _U32.size:
        raise FormatError(f"{what}: bad header entries or padding")
    (n,) = _U32.unpack_from(head, 0)
    end = _U32.size + n * ENTRY.size
    if end > len(head) or any(head[end:]):
        raise FormatError(f"{what}: bad header entries or padding")
    out = list(ENTRY.iter_unpack(memoryview(head)[_U32.size:end]))
    for _bid, _t, _f, fo, fl, fr, inner, ln in out:
        if inner + ln > fr or fo < PREFIX_SIZE or fl > FRAME_MAX or fr > FRAME_MAX:
            raise FormatError(f"{what}: inconsistent header entry")
    return out
