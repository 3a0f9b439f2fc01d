"""File contents for the chat dataset: media bytes and message text, deterministic from a seed.

Media bytes come from AES-256-CTR over zeros under a key hashed from the seed and
the file's name: deterministic, incompressible like real JPEG/MP4/Opus payloads, and
several GB/s, so generating 1 GB takes a second rather than a minute.  This is a
fast pseudo-random *data* generator for benchmarks, not a cryptographic use.
"""

from __future__ import annotations

import hashlib
import random
import zlib
from typing import BinaryIO

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_CHUNK = 1 << 20
_ZEROS = bytes(_CHUNK)

# A small vocabulary with chat-like frequencies: short words dominate, as in real chats.
_WORDS = ["ok", "yes", "no", "lol", "haha", "thanks", "see", "you", "later", "tomorrow", "today", "tonight", "where", "are", "what", "when", "why", "how", "did", "the", "a", "to", "and", "is", "it", "in", "on", "at", "for", "with", "me", "my", "we", "our", "love", "miss", "call", "me", "back", "running", "late", "almost", "there", "just", "got", "home", "sounds", "good", "great", "nice", "sure", "maybe", "can", "you", "send", "photo", "pic", "video", "voice", "note", "meeting", "dinner", "lunch", "coffee", "train", "bus", "traffic", "work", "weekend", "birthday", "party", "happy", "congrats", "sorry", "cannot", "right", "now", "busy", "later", "talk", "soon", "good", "night", "morning", "hey", "hi", "hello", "please", "check", "this", "link", "did", "you", "see", "mum", "dad", "kids", "school", "doctor", "appointment", "shopping", "list", "milk", "bread", "eggs", "cheese", "pasta", "wine", "beer", "football", "match", "score", "holiday", "flight", "hotel", "beach", "booked", "tickets", "concert", "movie", "series", "episode"]

KINDS = ("photo", "video", "voice", "document")

# (min bytes, max bytes) per media kind, from the issue: photos 50 KB-3 MB,
# videos 1-20 MB, voice notes 5-200 KB; documents are our choice.
SIZE_RANGE = {
    "photo": (50_000, 3_000_000),
    "video": (1_000_000, 20_000_000),
    "voice": (5_000, 200_000),
    "document": (20_000, 5_000_000),
}


def _stream(seed: int, name: str) -> _Ctr:
    key = hashlib.sha256(f"strongroom-bench/{seed}/{name}".encode()).digest()
    return _Ctr(key)


class _Ctr:
    """Deterministic incompressible byte stream (AES-CTR keystream)."""

    def __init__(self, key: bytes) -> None:
        self._enc = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()

    def write_to(self, out: BinaryIO, n: int) -> None:
        """Write the next *n* bytes of the stream to *out*."""
        while n > 0:
            take = min(n, _CHUNK)
            out.write(self._enc.update(_ZEROS[:take]))
            n -= take


def text_corpus(rng: random.Random, size: int) -> str:
    """A long string of chat words with punctuation, sliced to make message texts."""
    words = rng.choices(_WORDS, k=size // 4)
    for i in range(0, len(words), rng.randint(5, 12)):
        words[i] = words[i].capitalize()
    text = " ".join(words)
    return text[:size]


def sample_size(rng: random.Random, kind: str) -> int:
    """A file size for *kind*: log-uniform in its range (many small, some large)."""
    lo, hi = SIZE_RANGE[kind]
    return int(lo * (hi / lo) ** rng.random())


def write_media(path: str, kind: str, size: int, seed: int, corpus: str) -> None:
    """Write one media file of exactly *size* bytes with a header typical of *kind*."""
    name = path.rsplit("/", 1)[-1]
    stream = _stream(seed, name)
    with open(path, "wb") as out:
        if kind == "document":
            # Each document's text starts elsewhere in the corpus: no dedup between files.
            _write_pdf(out, size, stream, corpus, zlib.crc32(name.encode()) % len(corpus))
            return
        head, tail = _HEADERS[kind]
        out.write(head)
        stream.write_to(out, size - len(head) - len(tail))
        out.write(tail)


def _write_pdf(out: BinaryIO, size: int, stream: _Ctr, corpus: str, pos: int) -> None:
    # Alternating text streams (compressible) and embedded images (not), as in real PDFs.
    head = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
    tail = b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
    closing = b"\nendstream\nendobj\n"
    out.write(head)
    room = size - len(head) - len(tail)
    obj = 1
    while room > 200:
        body = min(64_000, room - 100)
        opening = b"%d 0 obj\n<< /Length %d >>\nstream\n" % (obj, body)
        out.write(opening)
        if obj % 2:
            if pos + body > len(corpus):
                pos = 0
            out.write(corpus[pos : pos + body].encode().ljust(body, b" "))
            pos += body
        else:
            stream.write_to(out, body)
        out.write(closing)
        room -= len(opening) + body + len(closing)
        obj += 1
    out.write(b"%" + b" " * (room - 2) + b"\n" if room >= 2 else b"\n" * room)
    out.write(tail)


_HEADERS = {
    # JPEG SOI + JFIF APP0 ... EOI
    "photo": (
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x48\x00\x48\x00\x00"
         b"\xff\xdb\x00\x43\x00"),
        b"\xff\xd9",
    ),
    # ISO BMFF: ftyp box, then a large mdat box
    "video": (
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41\x00\x00\x00\x08free"
         b"\x00\x00\x00\x00mdat"),
        b"",
    ),
    # Ogg page carrying an OpusHead identification header
    "voice": (
        b"OggS\x00\x02" + bytes(20) + b"\x01\x13OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00",
        b"",
    ),
}
