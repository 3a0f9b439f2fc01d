"""A second reader of the repository format, written only from docs/spec/backup-format.md.

It imports nothing from ``strongroom``: only the standard library, pyca
``cryptography`` (HKDF, HMAC, AES-GCM), ``zstandard`` and ``blake3`` (the
primitives the spec names).  If the spec and the code disagree, restoring the
vector repository (``docs/spec/vectors/repository``) with this reader fails.
Section numbers (§) are the spec's.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import blake3
import zstandard
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class ReaderError(Exception):
    """Anything this reader refuses."""


def hkdf(ikm: bytes, info: str, salt: bytes | None = None) -> bytes:
    """§2: HKDF-SHA256, 32 bytes of output."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info.encode()).derive(ikm)


def padme(n: int) -> int:
    """§5: round L up to a multiple of 2^(E-S)."""
    if n < 2:
        return n
    e = n.bit_length() - 1          # floor(log2 L)
    s = e.bit_length()              # floor(log2 E) + 1
    if e <= s:
        return n
    step = 1 << (e - s)
    return -(-n // step) * step


_H32 = re.compile(r"[0-9a-f]{32}")
_ENTRY = struct.Struct(">32sBBIIIII")      # §5, ENTRY: 54 bytes
_RECORD = struct.Struct(">BIqQQqHHI")      # §7, record fixed fields


@dataclass(frozen=True)
class Location:
    pack_id: bytes
    btype: int
    flags: int
    frame_offset: int
    frame_len: int
    frame_raw: int
    inner: int
    length: int


@dataclass(frozen=True)
class Record:
    kind: int
    mode: int
    mtime_ns: int
    size: int
    path: bytes
    link: bytes
    chunks: list[bytes]


class Reader:
    """Opens the repository folder ``root`` (a local-folder backend: one file per object)."""

    def __init__(self, root: Path, key: bytes) -> None:
        self.root = root
        self.K = key
        self._open_config()
        self.packs: dict[bytes, tuple[bytes, int]] = {}     # pack id -> (salt, size)
        self.blobs: dict[bytes, Location] = {}
        for name in self._names("index/"):
            self._load_index(name)

    # -- §3 ------------------------------------------------------------------------------
    def _open_config(self) -> None:
        raw = (self.root / "config").read_bytes()
        doc = json.loads(raw)
        if doc.get("format") != "strongroom-repository":
            raise ReaderError("not a repository config")
        if type(doc.get("version")) is not int or doc["version"] > 2:
            raise ReaderError("unsupported version")
        repo_id = bytes.fromhex(doc["id"])
        if not hmac.compare_digest(hkdf(self.K, "strongroom/v1/keycheck", repo_id),
                                   bytes.fromhex(doc["keycheck"])):
            raise ReaderError("wrong key")
        self.RK = hkdf(self.K, "strongroom/v1/repository", repo_id)
        body = {k: v for k, v in doc.items() if k != "mac"}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"),
                               ensure_ascii=True).encode()
        mac_key = hkdf(self.RK, "strongroom/v1/config")
        mac = hmac.new(mac_key, canonical, "sha256").hexdigest()
        if not hmac.compare_digest(mac, doc["mac"]):
            raise ReaderError("config MAC does not match")
        if raw != (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode():
            raise ReaderError("config bytes are not in canonical stored form")
        self.repo_id = repo_id
        self.chunker = doc["chunker"]
        self.blob_key = hkdf(self.K, "strongroom/v1/blob-id")

    def _names(self, prefix: str) -> list[str]:
        folder = self.root / prefix
        if not folder.is_dir():
            return []
        return sorted(prefix + p.name for p in folder.iterdir() if _H32.fullmatch(p.name))

    # -- §8 ------------------------------------------------------------------------------
    def open_sealed(self, name: str, magic: bytes, label: str, data: bytes | None = None) -> bytes:
        if data is None:
            data = (self.root / name).read_bytes()
        if data[:4] != magic:
            raise ReaderError(f"{name}: wrong magic")
        salt = data[4:36]
        key = hkdf(self.RK, label, salt)
        return AESGCM(key).decrypt(bytes(12), data[36:], magic + name.encode("ascii"))

    # -- §6 ------------------------------------------------------------------------------
    def _load_index(self, name: str) -> None:
        plain = self.open_sealed(name, b"SRI1", "strongroom/v1/index")
        if plain[:4] != b"SRI1":
            raise ReaderError(f"{name}: plaintext magic")
        (n_packs,) = struct.unpack_from(">I", plain, 4)
        pos, packs = 8, []
        for _ in range(n_packs):
            pid, salt, size = struct.unpack_from(">16s32sQ", plain, pos)
            packs.append(pid)
            self.packs[pid] = (salt, size)
            pos += 56
        (n,) = struct.unpack_from(">I", plain, pos)
        pos += 4
        for _ in range(n):
            (no,) = struct.unpack_from(">I", plain, pos)
            bid, t, fl, fo, flen, fraw, inner, ln = _ENTRY.unpack_from(plain, pos + 4)
            pos += 4 + _ENTRY.size
            if inner + ln > fraw or fo + flen > self.packs[packs[no]][1]:
                raise ReaderError(f"{name}: entry out of range")
            self.blobs.setdefault(bid, Location(packs[no], t, fl, fo, flen, fraw, inner, ln))
        if any(plain[pos:]):
            raise ReaderError(f"{name}: padding is not zero")
        # Version 2 pads the stored object to Padmé(max(L, 4096)).
        stored = (self.root / name).stat().st_size
        if stored != padme(max(52 + pos, 4096)):
            raise ReaderError(f"{name}: not padded as §6 says")

    # -- §5 ------------------------------------------------------------------------------
    @staticmethod
    def pack_name(pid: bytes) -> str:
        return f"data/{pid.hex()[:2]}/{pid.hex()}"

    def _pack_key(self, pid: bytes) -> bytes:
        return hkdf(self.RK, "strongroom/v1/pack", self.packs[pid][0])

    def read_blob(self, bid: bytes) -> bytes:
        loc = self.blobs[bid]
        with open(self.root / self.pack_name(loc.pack_id), "rb") as f:
            f.seek(loc.frame_offset)
            ct = f.read(loc.frame_len)
        aad = (b"SRP1" + loc.pack_id + struct.pack(">I", loc.frame_offset)
               + bytes([loc.flags]) + struct.pack(">I", loc.frame_raw))
        body = AESGCM(self._pack_key(loc.pack_id)).decrypt(
            loc.frame_offset.to_bytes(12, "big"), ct, aad)
        if loc.flags & 1:
            body = zstandard.ZstdDecompressor().decompress(body, max_output_size=loc.frame_raw)
        if len(body) != loc.frame_raw:
            raise ReaderError("frame has the wrong length")
        data = body[loc.inner:loc.inner + loc.length]
        if blake3.blake3(data, key=self.blob_key).digest() != bid:
            raise ReaderError("blob does not hash to its id")
        return data

    def check_pack_header(self, pid: bytes) -> list[tuple[bytes, int, int, int, int, int, int, int]]:
        """Decrypt a pack's own header (§5) and return its entries."""
        data = (self.root / self.pack_name(pid)).read_bytes()
        if data[:4] != b"SRP1" or data[4:36] != self.packs[pid][0]:
            raise ReaderError("pack prefix")
        (h,) = struct.unpack(">I", data[-4:])
        ct = data[-4 - h:-4]
        head = AESGCM(self._pack_key(pid)).decrypt(((1 << 96) - 1).to_bytes(12, "big"), ct,
                                                   b"SRP1" + b"H" + pid)
        (n,) = struct.unpack_from(">I", head)
        end = 4 + n * _ENTRY.size
        if any(head[end:]):
            raise ReaderError("pack header padding")
        unpadded = len(data) - (len(head) - end)
        if len(data) != padme(unpadded):
            raise ReaderError("pack is not Padmé-sized")
        return [_ENTRY.unpack_from(head, 4 + i * _ENTRY.size) for i in range(n)]

    # -- §7 ------------------------------------------------------------------------------
    def snapshot_ids(self) -> list[str]:
        return [n.split("/")[1] for n in self._names("snapshots/")]

    def snapshot(self, sid: str) -> dict[str, object]:
        plain = self.open_sealed("snapshots/" + sid, b"SRS1", "strongroom/v1/snapshot")
        doc = json.loads(plain.decode("utf-8"))
        if doc.get("v") != 1:
            raise ReaderError("snapshot layout")
        if len(plain) + 52 != padme(max(len(plain.rstrip(b" ")) + 52, 4096)):
            raise ReaderError("snapshot not padded as §7 says")
        return doc

    def records(self, doc: dict[str, object]) -> list[Record]:
        stream = b"".join(self.read_blob(bytes.fromhex(s)) for s in doc["segments"])  # type: ignore[attr-defined]
        out, pos = [], 0
        while pos < len(stream):
            kind, mode, mt, size, _ino, _ct, lp, ll, nc = _RECORD.unpack_from(stream, pos)
            pos += _RECORD.size
            path, link = stream[pos:pos + lp], stream[pos + lp:pos + lp + ll]
            pos += lp + ll
            chunks = [stream[pos + 32 * i:pos + 32 * (i + 1)] for i in range(nc)]
            pos += 32 * nc
            if pos > len(stream) or kind not in (1, 2, 3) or not path:
                raise ReaderError("bad record")
            parts = path.split(b"/")
            if path.startswith(b"/") or any(p in (b"", b".", b"..") for p in parts) \
                    or b"\0" in path or b"\0" in link:
                raise ReaderError("unsafe path")
            out.append(Record(kind, mode, mt, size, path, link, chunks))
        return out

    # -- §12 (the parts a test target needs) -----------------------------------------------
    def restore(self, sid: str, target: Path) -> None:
        recs = self.records(self.snapshot(sid))
        dirs = []
        for r in recs:
            dest = target / os.fsdecode(r.path)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if r.kind == 2:
                dest.mkdir(exist_ok=True)
                dirs.append((dest, r))
            elif r.kind == 3:
                os.symlink(os.fsdecode(r.link), dest)
                os.utime(dest, ns=(r.mtime_ns, r.mtime_ns), follow_symlinks=False)
            else:
                with open(dest, "wb") as f:
                    f.writelines(self.read_blob(c) for c in r.chunks)
                if dest.stat().st_size != r.size:
                    raise ReaderError("file size differs from its record")
                os.chmod(dest, r.mode & 0o777)
                os.utime(dest, ns=(r.mtime_ns, r.mtime_ns))
        for dest, r in reversed(dirs):
            os.chmod(dest, r.mode & 0o777)
            os.utime(dest, ns=(r.mtime_ns, r.mtime_ns))


# -- §10: FastCDC 2020, from the spec's pseudo-code ---------------------------------------

_MASK = {7: 0x0000000018035100, 8: 0x0000001800035300, 9: 0x0000019000353000,
         10: 0x0000590003530000, 11: 0x0000d90003530000, 12: 0x0000d90103530000,
         13: 0x0000d90303530000, 14: 0x0000d90313530000, 15: 0x0000d90f03530000,
         16: 0x0000d90303537000, 17: 0x0000d90703537000, 18: 0x0000d90707537000,
         19: 0x0000d91707537000, 20: 0x0000d91747537000, 21: 0x0000d91767537000,
         22: 0x0000d93767537000, 23: 0x0000d93777537000, 24: 0x0000d93777577000,
         25: 0x0000db3777577000}
_M64 = (1 << 64) - 1


def fastcdc_lengths(data: bytes, lo: int, avg: int, hi: int, gear: list[int]) -> list[int]:
    """Chunk lengths of ``data`` (a file larger than ``lo``) as §10 specifies."""
    import math

    gear_ls = [(g << 1) & _M64 for g in gear]
    bits = math.floor(math.log2(avg) + 0.5)
    mask_s, mask_l = _MASK[bits + 1], _MASK[bits - 1]
    mask_s_ls, mask_l_ls = (mask_s << 1) & _M64, (mask_l << 1) & _M64

    def cut(start: int) -> int:
        n = len(data) - start
        if n <= lo:
            return n
        center = avg
        if n > hi:
            n = hi
        elif n < center:
            center = n
        h = 0
        for i in range(lo & ~1, center & ~1, 2):
            h = ((h << 2) + gear_ls[data[start + i]]) & _M64
            if not h & mask_s_ls:
                return i
            h = (h + gear[data[start + i + 1]]) & _M64
            if not h & mask_s:
                return i + 1
        for i in range(center & ~1, n & ~1, 2):
            h = ((h << 2) + gear_ls[data[start + i]]) & _M64
            if not h & mask_l_ls:
                return i
            h = (h + gear[data[start + i + 1]]) & _M64
            if not h & mask_l:
                return i + 1
        return n

    out, pos = [], 0
    while pos < len(data):
        n = cut(pos)
        out.append(n)
        pos += n
    return out
