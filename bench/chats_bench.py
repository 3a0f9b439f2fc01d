"""Chat parser benchmark: WhatsApp export lines per second, and the catalogue's cost.

Run: ``python3 -m bench.chats_bench [--lines 1000000] [--runs 3] [--msgstore-messages 500000] [--json]``
or ``python3 -m bench.chats_bench --dataset DIR [--runs 3]`` (the cost of cataloguing a
tree such as bench/dataset.py's, alone: see :func:`bench_dataset`).

Generates, deterministically from ``--seed``, an Android en_US export (12-hour clock,
U+202F before AM/PM, about 1 line in 8 a continuation line of a multi-line message,
1 in 50 an attachment, a few system lines) and an iOS en_GB one (brackets, seconds,
U+200E marks, CRLF) of ``--lines`` lines each, then times, per shape, ``parse_text`` on
the bytes (decode, header match, whole-file date order, messages) and the catalogue
entry plus its canonical encoding.  Also times ``detect`` on 100,000 file names of a
phone's media tree (names only: media names never match, so no head is read), and
``parse_path`` (every message built) and ``summarize_path`` (the catalogue entries counted
in SQL) on a benchmark-schema msgstore.db of ``--msgstore-messages``.  Each
figure is the median of ``--runs`` runs of CPU time of this process.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time

from bench import msgstore
from strongroom.chats import CatalogueEntry, catalogue, detect
from strongroom.chats.msgstore import parse_path, summarize_path
from strongroom.chats.whatsapp import parse_text

WORDS = ("ok", "see", "you", "tomorrow", "at", "the", "station", "🎉", "haha", "dinner", "café",
         "Straße", "ñandú", "photos", "love", "call", "me", "later", "when", "free")
NAMES = ("Alice Smith", "Bob", "Carla Gómez", "Dmitri", "Émile", "+49 170 1234567")


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randrange(1, 14)))


def android_export(lines: int, seed: int) -> bytes:
    """An en_US Android export of *lines* lines."""
    rng = random.Random(seed)
    out, t = [], 1_600_000_000
    while len(out) < lines:
        t += rng.randrange(5, 4000)
        st = time.gmtime(t)
        hour = st.tm_hour % 12 or 12
        head = (f"{st.tm_mon}/{st.tm_mday}/{st.tm_year % 100:02d}, {hour}:{st.tm_min:02d}"
                f"\u202f{'AM' if st.tm_hour < 12 else 'PM'} - ")
        roll = rng.random()
        if roll < 0.01:
            out.append(head + f"{rng.choice(NAMES)} added {rng.choice(NAMES)}")
        elif roll < 0.03:
            out.append(head + f"{rng.choice(NAMES)}: IMG-{st.tm_year}{st.tm_mon:02d}"
                       f"{st.tm_mday:02d}-WA{rng.randrange(10000):04d}.jpg (file attached)")
        else:
            out.append(head + f"{rng.choice(NAMES)}: {_sentence(rng)}")
            while rng.random() < 0.125:
                out.append(_sentence(rng))
    return ("\n".join(out[:lines]) + "\n").encode("utf-8")


def ios_export(lines: int, seed: int) -> bytes:
    """An en_GB iOS export of *lines* lines (brackets, seconds, U+200E, CRLF)."""
    rng = random.Random(seed)
    out, t = [], 1_600_000_000
    while len(out) < lines:
        t += rng.randrange(5, 4000)
        st = time.gmtime(t)
        head = (f"[{st.tm_mday:02d}/{st.tm_mon:02d}/{st.tm_year}, {st.tm_hour:02d}:"
                f"{st.tm_min:02d}:{st.tm_sec:02d}] {rng.choice(NAMES)}: ")
        if rng.random() < 0.02:
            out.append("\u200e" + head + f"\u200e<attached: {rng.randrange(10**8):08d}-PHOTO.jpg>")
        else:
            out.append(head + _sentence(rng))
            while rng.random() < 0.125:
                out.append(_sentence(rng))
    return ("\r\n".join(out[:lines]) + "\r\n").encode("utf-8")


def _cpu(fn: object) -> float:
    assert callable(fn)
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def bench_export(name: str, data: bytes, runs: int) -> dict[str, object]:
    """Median CPU seconds to parse *data* and to catalogue the chat."""
    lines = data.count(b"\n")
    parse_s = statistics.median(_cpu(lambda: parse_text("x.txt", data)) for _ in range(runs))
    (chat,) = parse_text(f"WhatsApp Chat with {name}.txt", data).chats
    cat_s = statistics.median(_cpu(lambda: catalogue.encode([CatalogueEntry.of(chat)]))
                              for _ in range(runs))
    return {"shape": name, "lines": lines, "bytes": len(data), "messages": chat.message_count,
            "parse_s": round(parse_s, 3), "lines_per_s": round(lines / parse_s),
            "mb_per_s": round(len(data) / parse_s / 1e6, 1), "catalogue_s": round(cat_s, 4)}


def bench_detect(runs: int) -> dict[str, object]:
    """Median CPU seconds for detect() over 100,000 media-tree names."""
    paths = [f"WhatsApp/Media/WhatsApp Images/IMG-2024{i % 12 + 1:02d}01-WA{i:05d}.jpg"
             for i in range(100_000)]

    def run() -> None:
        for p in paths:
            detect(p, lambda n: b"")

    s = statistics.median(_cpu(run) for _ in range(runs))
    return {"shape": "detect names", "files": len(paths), "s": round(s, 3),
            "us_per_file": round(s / len(paths) * 1e6, 2)}


def bench_msgstore(messages: int, runs: int) -> dict[str, object]:
    """Median CPU seconds to parse a benchmark-schema msgstore.db of *messages* messages in
    250 chats (built with bench/msgstore.py, as the 1 GB dataset's has ~500,000)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "msgstore.db")
        db = sqlite3.connect(path)
        msgstore.create(db)
        rng = random.Random(3)
        msgstore.add_chats(db, rng, 250, 1_600_000_000_000)
        maker = msgstore.MessageMaker(random.Random(4), " ".join(WORDS) * 200,
                                      msgstore.chat_weights(rng, 250), random.Random(5))
        with db:
            msgstore.insert_messages(db, maker.rows(1, messages, 1_600_000_000_000,
                                                    1_700_000_000_000, {}, 1_650_000_000_000))
        db.close()
        size = os.path.getsize(path)
        s = statistics.median(_cpu(lambda: parse_path(path)) for _ in range(runs))
        chats = parse_path(path).chats
        summary_s = statistics.median(_cpu(lambda: summarize_path(path)) for _ in range(runs))
    return {"shape": "bench msgstore.db", "messages": sum(c.message_count for c in chats),
            "chats": len(chats), "bytes": size, "parse_s": round(s, 3),
            "messages_per_s": round(messages / s), "summarize_s": round(summary_s, 3)}


def bench_dataset(root: str, runs: int) -> dict[str, object]:
    """Median CPU seconds (all threads) of what backup's cataloguer does for the tree at
    *root* on a full backup: detect on every file (its head read only where the name could
    be chat data), parse what is recognised from the open file, encode the catalogue.  The
    reading and chunking that backup does anyway are not counted; the files are read once
    first so the page cache is warm, as it is for backup's own second look at a store."""
    from strongroom.repo.chatcat import Cataloguer

    files: list[tuple[str, str, list[str]]] = []
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(folder, name)
            files.append((path.lstrip("/"), path, names))
            with open(path, "rb") as f:
                while f.read(1 << 22):
                    pass
    result: dict[str, object] = {}

    def run() -> None:
        cat = Cataloguer(None, lambda w: None, roots=[root.lstrip("/")])
        for arch, path, names in files:
            with open(path, "rb", buffering=0) as f:
                fmt = cat.detect(arch, f)
                if fmt is not None:
                    src = cat.source(fmt, f, os.fstat(f.fileno()).st_size)
                    if src is not None:
                        cat.parse(arch, fmt, src, names)
        cat.store(lambda data: data[:32])
        result["chats"] = len(cat.entries)

    s = statistics.median(_cpu(run) for _ in range(runs))
    return {"shape": "catalogue a tree", "files": len(files), "chats": result["chats"],
            "s": round(s, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--msgstore-messages", type=int, default=500_000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--dataset", metavar="DIR", help="only: the cost of cataloguing DIR")
    args = ap.parse_args()
    rows = [bench_dataset(args.dataset, args.runs)] if args.dataset else [bench_export("android-en_US", android_export(args.lines, args.seed), args.runs),
            bench_export("ios-en_GB", ios_export(args.lines, args.seed), args.runs),
            bench_detect(args.runs), bench_msgstore(args.msgstore_messages, args.runs)]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    for row in rows:
        print("  ".join(f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
