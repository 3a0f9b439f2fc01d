"""Chunking rules: SQLite on page boundaries, media in large fixed pieces, the rest by CDC.

* A file starting with the 16-byte header ``SQLite format 3\\0`` is cut on its
  own page boundaries (page size from header bytes 16-17, 1 meaning 65536), so
  a changed row re-stores only the pages it touched.
* Media and already-compressed files (by extension or magic number) are cut
  into fixed pieces of ``media_piece`` bytes and never compressed.
* Everything else is cut by FastCDC (``pyfastcdc``) with the configured
  min/avg/max; whether a frame is compressed is decided by a trial (see pack).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import BinaryIO

from .config import ChunkerParams

SQLITE_MAGIC = b"SQLite format 3\x00"
_MEDIA_EXT = frozenset((
    "jpg", "jpeg", "png", "gif", "webp", "heic", "heif", "avif", "mp4", "m4v", "mov", "3gp", "mkv",
    "webm", "avi", "mp3", "m4a", "aac", "opus", "ogg", "oga", "amr", "flac", "wav", "zip", "gz",
    "tgz", "bz2", "xz", "zst", "7z", "rar", "apk", "crypt12", "crypt14", "crypt15"))
# (offset, magic) of formats that are already compressed or encrypted.
_MEDIA_MAGIC = ((0, b"\xff\xd8\xff"), (0, b"\x89PNG"), (0, b"GIF8"), (0, b"OggS"),
                (0, b"ID3"), (0, b"PK\x03\x04"), (0, b"\x1f\x8b"), (0, b"\x28\xb5\x2f\xfd"),
                (0, b"7z\xbc\xaf"), (0, b"\x1aE\xdf\xa3"), (4, b"ftyp"), (8, b"WEBP"),
                (0, b"#!AMR"), (0, b"fLaC"))
#: The same, split for speed (classify runs once per file): one startswith for offset 0.
_MAGIC_AT_0 = tuple(m for o, m in _MEDIA_MAGIC if o == 0)
_MAGIC_LATER = tuple((o, m) for o, m in _MEDIA_MAGIC if o)
_READ_SLAB = 4 * 1024 * 1024
KIND_SQLITE, KIND_MEDIA, KIND_CDC = "sqlite", "media", "cdc"


def sqlite_page_size(head: bytes) -> int | None:
    """The page size of a SQLite header, or None if ``head`` is not a valid one."""
    if len(head) < 18 or head[:16] != SQLITE_MAGIC:
        return None
    size = int.from_bytes(head[16:18], "big")
    size = 65536 if size == 1 else size
    # A power of two from 512 to 65536, as the SQLite file format requires.
    return size if 512 <= size <= 65536 and size & (size - 1) == 0 else None


def classify(name: str, head: bytes) -> tuple[str, int]:
    """(kind, SQLite page size or 0) for a file called ``name`` starting with ``head``."""
    page = sqlite_page_size(head)
    if page:
        return KIND_SQLITE, page
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if (ext in _MEDIA_EXT or head.startswith(_MAGIC_AT_0)
            or any(head[o : o + len(m)] == m for o, m in _MAGIC_LATER)):
        return KIND_MEDIA, 0
    return KIND_CDC, 0


def _cutting(name: str, head: bytes, size: int, params: ChunkerParams
             ) -> tuple[str, int, bool]:
    """How a file of ``size`` bytes starting with ``head`` is cut: ("fixed", piece
    length, compressible), ("whole", 0, True) or ("cdc", 0, True)."""
    kind, page = classify(name, head)
    if kind == KIND_SQLITE:
        return "fixed", page * params.sqlite_pages_per_blob, True
    if kind == KIND_MEDIA:
        return "fixed", params.media_piece, False
    if size <= params.cdc_min:
        return "whole", 0, True
    return "cdc", 0, True


def chunks(f: BinaryIO, name: str, size: int, params: ChunkerParams
           ) -> Iterator[tuple[bytes, bool]]:
    """Yield (chunk, compressible) for the open file ``f`` of ``size`` bytes."""
    head = f.read(100)
    f.seek(0)
    how, piece, compressible = _cutting(name, head, size, params)
    if how == "fixed":
        yield from _fixed(f, piece, compressible)
    elif how == "whole":
        data = f.read()
        if data:
            yield data, True
    else:
        yield from _cdc(f, params)


def chunks_of(data: bytes, name: str, params: ChunkerParams) -> Iterator[tuple[bytes, bool]]:
    """:func:`chunks` of a whole file held in ``data``: the same pieces, no file object
    (a backup reads a small file with one read)."""
    if not data:
        return
    how, piece, compressible = _cutting(name, data[:100], len(data), params)
    if how == "cdc":
        yield from _cdc(io.BytesIO(data), params)
    elif how == "whole" or len(data) <= piece:
        yield data, compressible
    else:  # as _fixed cuts it: pieces from the start of the file, the last one shorter
        for i in range(0, len(data), piece):
            yield data[i : i + piece], compressible


def _fixed(f: BinaryIO, piece: int, compressible: bool) -> Iterator[tuple[bytes, bool]]:
    # One slab buffer read into again and again: a new 4 MiB bytes object per read
    # made glibc raise its mmap threshold and keep freed slabs resident (issue 12).
    slab = max(piece, _READ_SLAB // piece * piece)
    buf = bytearray(slab)
    with memoryview(buf) as view:
        while True:
            n = _read_into(f, view)
            if not n:
                return
            for i in range(0, n, piece):
                yield bytes(view[i : min(n, i + piece)]), compressible
            if n < slab:
                return


def _read_into(f: BinaryIO, view: memoryview) -> int:
    """Fill ``view`` from ``f`` (several reads if a read comes back short); bytes read."""
    readinto = f.readinto  # type: ignore[attr-defined]
    got = 0
    while got < len(view):
        n = readinto(view[got:])
        if not n:
            break
        got += n
    return int(got)


def _cdc(f: BinaryIO, params: ChunkerParams) -> Iterator[tuple[bytes, bool]]:
    # Streamed in slabs rather than mmap'd: a file truncated while mapped would kill the
    # process with SIGBUS.  A FastCDC cut depends only on the bytes since the previous
    # cut, so cutting slab by slab and carrying the last (possibly short) chunk over
    # gives the same chunks as cutting the whole file at once.
    from pyfastcdc.cy import FastCDC  # imported when first needed: 1.6 MB of resident set

    cdc = FastCDC(avg_size=params.cdc_avg, min_size=params.cdc_min, max_size=params.cdc_max)
    slab = max(2 * params.cdc_max, _READ_SLAB)
    carry = b""
    while True:
        data = f.read(slab)
        buf = carry + data if carry else data
        if not data:
            if buf:
                yield buf, True
            return
        cuts = [(c.offset, c.length) for c in cdc.cut_buf(buf)]
        for off, length in cuts[:-1]:
            yield buf[off : off + length], True
        off, length = cuts[-1]
        carry = buf[off : off + length]
