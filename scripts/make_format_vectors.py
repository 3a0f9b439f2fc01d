#!/usr/bin/env python3
"""Write the format test vectors in ``docs/spec/vectors/`` (backup-format.md §18).

Everything is deterministic: the backup key K is fixed, every random byte
comes from :class:`CounterRng` (SHA-256 in counter mode over a fixed label),
and every clock reading is a constant.  The repository is written by the
library's own writers (config, packer, index, file-list segments, snapshot
objects) from an in-memory source tree, so its objects are exactly what a
backup of that tree writes; only the walk of a real file system (whose inode
numbers and ctimes cannot be fixed) is replaced by :func:`source_trees`.

    python3 scripts/make_format_vectors.py              # rewrite docs/spec/vectors/
    python3 scripts/make_format_vectors.py --out DIR    # write elsewhere (the test does)

``tests/spec/test_format_vectors.py`` regenerates the vectors and compares
them byte for byte with the committed ones, so they cannot drift silently.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strongroom.client import keywrap, rollback
from strongroom.crypto import labels
from strongroom.crypto.aead import HEADER_NONCE
from strongroom.crypto.keys import BackupKey
from strongroom.repo import chunker
from strongroom.repo.config import ChunkerParams, config_mac, repository_key
from strongroom.repo.engine import Engine
from strongroom.repo.index import read_index
from strongroom.repo.locks import LOCK_MAGIC
from strongroom.repo.manifest import (
    KIND_DIR,
    KIND_FILE,
    KIND_SYMLINK,
    ChunkIds,
    Entry,
    SegmentWriter,
    SnapshotDoc,
    open_snapshot,
    seal_snapshot,
    snapshot_name,
)
from strongroom.repo.pack import BLOB_DATA, BLOB_META, PREFIX_SIZE, pack_id_from_name, padme
from strongroom.repo.packer import Packer
from strongroom.repo.sealed import open_object, seal_object
from strongroom.storage.local import LocalBackend
from strongroom.vault import labels as vault_labels
from strongroom.vault.sealing import derive

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "spec" / "vectors"
#: K of every vector: the bytes 0x00 … 0x1f.
KEY_BYTES = bytes(range(32))
#: Small chunker parameters, so a few tens of KiB give several chunks, frames,
#: packs and index objects (the smallest values §3 allows for frames and packs).
PARAMS = ChunkerParams(cdc_min=512, cdc_avg=2048, cdc_max=8192, media_piece=4096,
                       sqlite_pages_per_blob=1, frame_target=1024, pack_target=4096)
CREATED = 1767225600          # 2026-01-01T00:00:00Z
SNAPSHOT_TIMES = (1767225600.25, 1767312000.5)
HOSTNAME = "vector-host"
SOURCE = "/home/user/chats"


class CounterRng:
    """Deterministic "randomness": SHA-256(label || u64be(i)) for i = 0, 1, 2, …"""

    def __init__(self, label: bytes) -> None:
        self._label, self._i, self._buf = label, 0, b""

    def __call__(self, n: int) -> bytes:
        parts, have = [self._buf], len(self._buf)
        while have < n:
            parts.append(hashlib.sha256(self._label + struct.pack(">Q", self._i)).digest())
            self._i += 1
            have += 32
        buf = b"".join(parts)
        out, self._buf = buf[:n], buf[n:]
        return out


def stream(label: bytes, n: int) -> bytes:
    """``n`` pseudo-random bytes (SHA-256 counter mode over ``label``), for file content."""
    return CounterRng(label)(n)


def text(label: str, n: int) -> bytes:
    """``n`` bytes of compressible ASCII: words picked by a pseudo-random stream."""
    words = [b"hello", b"see you", b"ok", b"photo", b"tomorrow", b"lunch?", b"yes", b"no",
             b"on my way", b"call me", b"\n"]
    out = bytearray()
    for b in stream(label.encode(), n):
        out += words[b % len(words)] + b" "
        if len(out) >= n:
            break
    return bytes(out[:n])


def sqlite_like(pages: int) -> bytes:
    """A file with a valid SQLite header (512-byte pages), cut on page boundaries."""
    head = b"SQLite format 3\x00" + (512).to_bytes(2, "big")
    body = text("sqlite", pages * 512)
    return head + body[len(head):]


@dataclass(frozen=True)
class Item:
    """One entry of a source tree (path relative to the source, without a leading '/')."""

    kind: int
    path: str
    mode: int
    mtime_ns: int
    data: bytes = b""
    link: str = ""
    inode: int = 0


def source_trees() -> list[list[Item]]:
    """The two backed-up states of ``SOURCE``, in walk order (sorted by path components)."""
    t0 = 1767139200 * 10**9
    notes = text("notes", 700)
    log1 = text("log", 20000)
    log2 = log1[:9000] + b"an edit in the middle\n" + log1[9000:] + text("log-more", 3000)
    photo = stream(b"photo", 9000)
    db = sqlite_like(4)

    def tree(log: bytes, extra: bool) -> list[Item]:
        items = [
            Item(KIND_DIR, "", 0o755, t0),
            Item(KIND_FILE, "chat.log", 0o644, t0 + 1, log, inode=11),
            Item(KIND_FILE, "copy-of-notes.txt", 0o600, t0 + 2, notes, inode=12),
            Item(KIND_FILE, "empty", 0o644, t0 + 3, b"", inode=13),
            Item(KIND_DIR, "media", 0o750, t0 + 4),
            Item(KIND_FILE, "media/photo.jpg", 0o644, t0 + 5, photo, inode=14),
            Item(KIND_SYMLINK, "media/same-photo", 0o777, t0 + 6, link="photo.jpg"),
            Item(KIND_FILE, "msgstore.db", 0o600, t0 + 7, db, inode=15),
            Item(KIND_FILE, "notes.txt", 0o644, t0 + 8, notes, inode=16),
            Item(KIND_FILE, "zeros.bin", 0o644, t0 + 9, bytes(3000), inode=17),
        ]
        if extra:
            items.insert(7, Item(KIND_FILE, "media/voice.opus", 0o644, t0 + 10,
                                 stream(b"voice", 5000), inode=18))
        return items

    return [tree(log1, False), tree(log2, True)]


def _archive(item: Item) -> str:
    base = SOURCE.lstrip("/")
    return f"{base}/{item.path}" if item.path else base


def _store_blobs(engine: Engine, packer: Packer, item: Item) -> ChunkIds:
    """Chunk ``item`` as backup does and hand its new blobs to ``packer``."""
    ids = bytearray()
    name = item.path.rsplit("/", 1)[-1]
    for data, compressible in chunker.chunks(io.BytesIO(item.data), name, len(item.data),
                                             engine.config.chunker):
        bid = engine.blob_id(data)
        if bid not in engine.index() and bid not in packer.known:
            packer.add(bid, BLOB_DATA, data, compressible)
        ids += bid
    return ChunkIds(bytes(ids))


def write_snapshot(engine: Engine, items: list[Item], when: float,
                   parent: SnapshotDoc | None) -> SnapshotDoc:
    """Store ``items`` as one snapshot, in the commit order of spec §11."""
    packer = Packer(engine, workers=1)

    def store_meta(data: bytes) -> bytes:
        bid = engine.blob_id(data)
        if bid not in engine.index() and bid not in packer.known:
            packer.add(bid, BLOB_META, data, True)
        return bid

    segments = SegmentWriter(store_meta)
    files = dirs = size = 0
    for item in items:
        if item.kind == KIND_FILE:
            entry = Entry(KIND_FILE, _archive(item), 0o100000 | item.mode, item.mtime_ns,
                          len(item.data), item.inode, item.mtime_ns,
                          chunks=_store_blobs(engine, packer, item))
            files, size = files + 1, size + len(item.data)
        elif item.kind == KIND_DIR:
            entry = Entry(KIND_DIR, _archive(item), 0o040000 | item.mode, item.mtime_ns)
            dirs += 1
        else:
            entry = Entry(KIND_SYMLINK, _archive(item), 0o120000 | item.mode, item.mtime_ns,
                          link=item.link)
        segments.add(entry)
    segments.flush()
    packer.finish()
    doc = SnapshotDoc(engine.rng(16).hex(), when, HOSTNAME, [SOURCE], files, dirs, size,
                      parent.id if parent else None, segments.segments)
    if not engine.backend.put_if_absent(snapshot_name(doc.id),
                                        seal_snapshot(engine.key, doc, engine.rng)):
        raise RuntimeError("snapshot name collision in a fresh vector repository")
    return doc


def _clock(times: Iterator[float]) -> Any:
    return lambda: next(times)


def build_repository(root: Path) -> tuple[Engine, list[SnapshotDoc]]:
    """The vector repository at ``root`` (must not exist)."""
    backend = LocalBackend(root, create=True, fsync=False)
    key = BackupKey.from_bytes(KEY_BYTES)
    rng = CounterRng(b"strongroom/vectors/rng")
    engine = Engine.create(backend, key, clock=_clock(iter([float(CREATED)])), rng=rng,
                           chunker=PARAMS)
    docs: list[SnapshotDoc] = []
    for items, when in zip(source_trees(), SNAPSHOT_TIMES, strict=True):
        docs.append(write_snapshot(engine, items, when, docs[-1] if docs else None))
    return engine, docs


# -- descriptions of what was written ------------------------------------------------------

def _hkdf(ikm: bytes, info: bytes, salt: bytes | None) -> bytes:
    return BackupKey.from_bytes(ikm).derive(info, salt=salt)


def describe_objects(engine: Engine, root: Path) -> list[dict[str, Any]]:
    """Every object of the repository: its bytes' digest and its opened content."""
    rk = engine.key
    out: list[dict[str, Any]] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = path.relative_to(root).as_posix()
        data = path.read_bytes()
        obj: dict[str, Any] = {"name": name, "size": len(data),
                               "sha256": hashlib.sha256(data).hexdigest()}
        if name.startswith(("index/", "snapshots/")):
            label = labels.INDEX if name.startswith("index/") else labels.SNAPSHOT
            salt = data[4:36]
            obj["object_key"] = _hkdf(rk.secret_bytes(), label, salt).hex()
            plain = open_object(rk, label, data[:4], name, data)
            obj["plaintext"] = plain.hex()
        elif name.startswith("data/"):
            obj.update(_describe_pack(engine, name, data))
        out.append(obj)
    return out


def _describe_pack(engine: Engine, name: str, data: bytes) -> dict[str, Any]:
    from strongroom.crypto.aead import ObjectCipher

    pid = pack_id_from_name(name)
    assert pid is not None
    salt = data[4:PREFIX_SIZE]
    cipher = ObjectCipher(engine.key, labels.PACK, salt)
    hlen = int.from_bytes(data[-4:], "big")
    header = cipher.open(HEADER_NONCE, data[-4 - hlen:-4], b"SRP1H" + pid, name)
    frames: dict[int, dict[str, Any]] = {}
    for bid in _header_ids(header):
        _p, loc = engine.index().blobs[bid]
        frames.setdefault(loc.frame_offset, {
            "offset": loc.frame_offset, "length": loc.frame_len, "flags": loc.flags,
            "raw_length": loc.frame_raw,
            "plaintext_sha256": hashlib.sha256(engine.fetch_frame(pid, loc)).hexdigest()})
    return {"object_key": _hkdf(engine.key.secret_bytes(), labels.PACK, salt).hex(),
            "header_plaintext": header.hex(),
            "frames": [frames[k] for k in sorted(frames)]}


def _header_ids(header: bytes) -> list[bytes]:
    (n,) = struct.unpack_from(">I", header)
    return [header[4 + 54 * i: 4 + 54 * i + 32] for i in range(n)]


def describe_snapshots(docs: list[SnapshotDoc]) -> list[dict[str, Any]]:
    """What a restore of each snapshot must produce (contents by SHA-256 in ``contents``)."""
    out = []
    for doc, items in zip(docs, source_trees(), strict=True):
        entries = []
        for item in items:
            e: dict[str, Any] = {"path": _archive(item), "kind": {KIND_FILE: "file",
                                 KIND_DIR: "dir", KIND_SYMLINK: "symlink"}[item.kind],
                                 "mode": item.mode, "mtime_ns": item.mtime_ns}
            if item.kind == KIND_FILE:
                e["size"], e["sha256"] = len(item.data), hashlib.sha256(item.data).hexdigest()
            if item.kind == KIND_SYMLINK:
                e["link"] = item.link
            entries.append(e)
        out.append({"id": doc.id, "time": doc.time, "parent": doc.parent, "entries": entries})
    return out


def contents() -> dict[str, str]:
    """Every file content of the source trees, hex, by SHA-256."""
    return {hashlib.sha256(i.data).hexdigest(): i.data.hex()
            for items in source_trees() for i in items if i.kind == KIND_FILE}


def fastcdc_cases() -> list[dict[str, Any]]:
    """Chunk lengths for pseudo-random input (``input`` = stream(label, size))."""
    cases = []
    for label, size, params in (
            (b"fastcdc-small", 40000, ChunkerParams(cdc_min=512, cdc_avg=2048, cdc_max=8192)),
            (b"fastcdc-256", 20000, ChunkerParams(cdc_min=64, cdc_avg=256, cdc_max=1024)),
            (b"fastcdc-default", 6 * 1024 * 1024, ChunkerParams())):
        data = stream(label, size)
        lengths = [len(c) for c, _ in chunker.chunks(io.BytesIO(data), "input", size, params)]
        cases.append({"input": {"sha256_counter_label": label.decode(), "length": size,
                                "sha256": hashlib.sha256(data).hexdigest()},
                      "cdc_min": params.cdc_min, "cdc_avg": params.cdc_avg,
                      "cdc_max": params.cdc_max, "chunk_lengths": lengths})
    return cases


def derivations(engine: Engine, docs: list[SnapshotDoc]) -> dict[str, Any]:
    """Input/output pairs of every derivation of backup-format §2 and vault-protocol §5, §10."""
    k = engine.master
    repo_id = engine.config.repo_id
    rk = repository_key(k, repo_id)
    salt = bytes(range(100, 132))
    blob_key = k.derive(labels.BLOB_ID)
    blobs = [b"", b"hello", bytes(4096)]
    lock_name = "locks/" + "ab" * 16
    lock_doc = {"v": 2, "exclusive": False, "instance": "cd" * 16, "seq": 0,
                "hostname": HOSTNAME, "boot": "", "pid": 4242}
    lock_plain = json.dumps(lock_doc).encode()
    lock_obj = seal_object(rk, labels.LOCK, LOCK_MAGIC, lock_name, lock_plain,
                           lambda n: salt[:n])
    # The client layer (vault-protocol.md §5 and §10.1).
    export_key = bytes(range(64, 128))
    session_key = bytes(range(128, 192))
    account, session_id = "alice@example.org", "session-0001"
    nonce = bytes(range(200, 212))
    wrapped = keywrap.wrap_key(export_key, k, account, lambda n: nonce[:n])
    released_nonce = bytes(range(212, 224))
    from strongroom.vault.sealing import frame, seal
    released = seal(derive(session_key, vault_labels.RELEASE), wrapped,
                    frame(account.encode(), session_id.encode()), lambda n: released_nonce[:n])
    k_head = rollback.head_key(k)
    snaps = tuple(sorted(d.id for d in docs))
    newest = max(docs, key=lambda d: (d.time, d.id)).id
    head = rollback.HeadState(3, newest, snaps)
    tag = head.tag(k_head, repo_id.hex())
    return {
        "K": k.secret_bytes().hex(),
        "K_digits": k.digits(),
        "repository_id": repo_id.hex(),
        "keycheck": k.keycheck(repo_id).hex(),
        "repository_key_RK": rk.secret_bytes().hex(),
        "config_mac_key": rk.derive(labels.CONFIG).hex(),
        "config_mac": config_mac(rk, engine.config.doc),
        "blob_id_key": blob_key.hex(),
        "blob_ids": [{"data": b.hex() if len(b) < 64 else f"{len(b)} zero bytes",
                      "id": engine.blob_id(b).hex()} for b in blobs],
        "object_keys": [{"label": lab.decode(), "salt": salt.hex(),
                         "key": rk.derive(lab, salt=salt).hex()}
                        for lab in (labels.PACK, labels.INDEX, labels.SNAPSHOT, labels.LOCK)],
        "sealed_lock": {"name": lock_name, "salt": salt.hex(), "plaintext": lock_plain.hex(),
                        "object": lock_obj.hex()},
        "padme": [{"length": n, "padded": padme(n)}
                  for n in (0, 1, 2, 3, 9, 100, 4096, 4097, 10000, 65537, 4 * 1024 * 1024 + 1)],
        "fastcdc": fastcdc_cases(),
        "key_wrap": {"export_key": export_key.hex(), "account_id": account,
                     "wrap_key": derive(export_key, vault_labels.WRAP_K).hex(),
                     "nonce": nonce.hex(), "wrapped": wrapped.hex()},
        "release": {"session_key": session_key.hex(), "account_id": account,
                    "session_id": session_id,
                    "release_key": derive(session_key, vault_labels.RELEASE).hex(),
                    "nonce": released_nonce.hex(), "wrapped": wrapped.hex(),
                    "released": released.hex()},
        "backup_head": {"K_head": k_head.hex(), "repository_id": repo_id.hex(),
                        "counter": head.counter, "newest": newest, "snapshots": list(snaps),
                        "set_hash": rollback.set_hash(snaps).hex(), "tag": tag.hex(),
                        "record_name": rollback.record_name(head.counter, tag),
                        "record": head.to_json(repo_id.hex()).decode()},
    }


def _json(doc: Any) -> bytes:
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()


def write_vectors(out: Path) -> None:
    """(Re)write every vector file under ``out``."""
    repo = out / "repository"
    if repo.exists():
        shutil.rmtree(repo)
    out.mkdir(parents=True, exist_ok=True)
    engine, docs = build_repository(repo)
    # Each object must open with the library's readers (a self-check of the generator).
    for doc in docs:
        assert open_snapshot(engine.key, doc.id, (repo / snapshot_name(doc.id)).read_bytes()) == doc
    for p in (repo / "index").iterdir():
        read_index(p.read_bytes(), engine.key, f"index/{p.name}")
    (out / "objects.json").write_bytes(_json(describe_objects(engine, repo)))
    (out / "snapshots.json").write_bytes(_json(describe_snapshots(docs)))
    (out / "contents.json").write_bytes(_json(contents()))
    (out / "derivations.json").write_bytes(_json(derivations(engine, docs)))
    from pyfastcdc.py.constants import GEAR

    (out / "fastcdc-gear.txt").write_text("".join(f"{g:016x}\n" for g in GEAR))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder to write (default: docs/spec/vectors)")
    args = parser.parse_args(argv)
    write_vectors(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
