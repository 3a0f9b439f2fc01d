"""The format vectors read by a reader written only from the spec (backup-format.md §18).

This file and ``independent_reader.py`` import nothing from ``strongroom``: they
check that docs/spec/ (not the code) is enough to restore the vector repository
byte for byte and to recompute every derivation of backup-format §2 and
vault-protocol §5, §10.1.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
import os
import shutil
import stat
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .independent_reader import Reader, ReaderError, fastcdc_lengths, hkdf, padme

VECTORS = Path(__file__).resolve().parents[2] / "docs" / "spec" / "vectors"
REPO = VECTORS / "repository"


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


DER = _load("derivations.json")
K = bytes.fromhex(DER["K"])


def _stream(label: str, n: int) -> bytes:
    """The vectors' pseudo-random input: SHA-256(label || u64be(i)), i = 0, 1, …"""
    out = b"".join(hashlib.sha256(label.encode() + struct.pack(">Q", i)).digest()
                   for i in range((n + 31) // 32))
    return out[:n]


def _frame(*parts: bytes) -> bytes:
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def test_the_reader_imports_nothing_from_strongroom() -> None:
    for path in (Path(__file__), Path(__file__).with_name("independent_reader.py")):
        tree = ast.parse(path.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert names and not [m for m in names if m.split(".")[0] == "strongroom"], path


def test_every_snapshot_restores_byte_for_byte(tmp_path: Path) -> None:
    reader = Reader(REPO, K)
    expected = _load("snapshots.json")
    contents = _load("contents.json")
    assert sorted(reader.snapshot_ids()) == sorted(s["id"] for s in expected)
    assert len(expected) == 2 and expected[1]["parent"] == expected[0]["id"]
    for snap in expected:
        target = tmp_path / snap["id"]
        reader.restore(snap["id"], target)
        seen = sorted(p.relative_to(target).as_posix() for p in target.rglob("*"))
        wanted = {e["path"] for e in snap["entries"]}
        # Parents of the source path ("home", "home/user") are made by the restore.
        assert set(seen) - wanted <= {"home", "home/user"}
        assert wanted <= set(seen)
        for e in snap["entries"]:
            p = target / e["path"]
            st = os.lstat(p)
            assert st.st_mtime_ns == e["mtime_ns"], e["path"]
            if e["kind"] == "symlink":
                assert stat.S_ISLNK(st.st_mode) and os.readlink(p) == e["link"]
                continue
            assert stat.S_IMODE(st.st_mode) == e["mode"], e["path"]
            if e["kind"] == "dir":
                assert stat.S_ISDIR(st.st_mode)
            else:
                data = p.read_bytes()
                assert data == bytes.fromhex(contents[e["sha256"]]), e["path"]
                assert hashlib.sha256(data).hexdigest() == e["sha256"]


def test_pack_headers_agree_with_the_index() -> None:
    reader = Reader(REPO, K)
    assert len(reader.packs) >= 10 and len(reader.blobs) >= 20
    listed = 0
    for pid in reader.packs:
        for bid, t, fl, fo, flen, fraw, inner, ln in reader.check_pack_header(pid):
            loc = reader.blobs[bid]
            if loc.pack_id == pid:
                assert (loc.btype, loc.flags, loc.frame_offset, loc.frame_len, loc.frame_raw,
                        loc.inner, loc.length) == (t, fl, fo, flen, fraw, inner, ln)
                listed += 1
    assert listed == len(reader.blobs)
    # Both frame kinds occur: zstd-compressed (flag bit 0) and stored raw.
    assert {loc.flags for loc in reader.blobs.values()} == {0, 1}


def test_objects_json_describes_every_stored_object() -> None:
    objects = {o["name"]: o for o in _load("objects.json")}
    on_disk = sorted(p.relative_to(REPO).as_posix() for p in REPO.rglob("*") if p.is_file())
    assert sorted(objects) == on_disk
    reader = Reader(REPO, K)
    for name, o in objects.items():
        data = (REPO / name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (o["size"], o["sha256"])
        if name.startswith(("index/", "snapshots/")):
            magic, label = ((b"SRI1", "strongroom/v1/index") if name.startswith("index/")
                            else (b"SRS1", "strongroom/v1/snapshot"))
            assert hkdf(reader.RK, label, data[4:36]).hex() == o["object_key"]
            assert reader.open_sealed(name, magic, label).hex() == o["plaintext"]


def test_a_wrong_key_or_a_changed_byte_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReaderError, match="wrong key"):
        Reader(REPO, bytes(32))
    copy = tmp_path / "repo"
    shutil.copytree(REPO, copy, symlinks=True)
    reader = Reader(copy, K)
    bid, loc = next(iter(reader.blobs.items()))
    pack = copy / reader.pack_name(loc.pack_id)
    data = bytearray(pack.read_bytes())
    data[loc.frame_offset] ^= 1
    pack.write_bytes(bytes(data))
    with pytest.raises(InvalidTag):
        reader.read_blob(bid)


def test_repository_key_derivations() -> None:
    repo_id = bytes.fromhex(DER["repository_id"])
    assert DER["K_digits"].replace(" ", "") == DER["K"]
    assert hkdf(K, "strongroom/v1/keycheck", repo_id).hex() == DER["keycheck"]
    rk = hkdf(K, "strongroom/v1/repository", repo_id)
    assert rk.hex() == DER["repository_key_RK"]
    assert hkdf(rk, "strongroom/v1/config").hex() == DER["config_mac_key"]
    config = json.loads((REPO / "config").read_text())
    assert config["mac"] == DER["config_mac"] and config["id"] == DER["repository_id"]
    blob_key = hkdf(K, "strongroom/v1/blob-id")
    assert blob_key.hex() == DER["blob_id_key"]
    import blake3

    for case in DER["blob_ids"]:
        data = bytes(4096) if case["data"] == "4096 zero bytes" else bytes.fromhex(case["data"])
        assert blake3.blake3(data, key=blob_key).hexdigest() == case["id"]
    for case in DER["object_keys"]:
        assert hkdf(rk, case["label"], bytes.fromhex(case["salt"])).hex() == case["key"]
    lock = DER["sealed_lock"]
    obj = bytes.fromhex(lock["object"])
    assert obj[:4] == b"SRL1" and obj[4:36].hex() == lock["salt"]
    key = hkdf(rk, "strongroom/v1/lock", obj[4:36])
    plain = AESGCM(key).decrypt(bytes(12), obj[36:], b"SRL1" + lock["name"].encode())
    assert plain.hex() == lock["plaintext"] and json.loads(plain)["v"] == 2
    for case in DER["padme"]:
        assert padme(case["length"]) == case["padded"]


def test_fastcdc_from_the_spec_gives_the_vector_cut_points() -> None:
    gear = [int(x, 16) for x in (VECTORS / "fastcdc-gear.txt").read_text().split()]
    assert len(gear) == 256
    for case in DER["fastcdc"]:
        data = _stream(case["input"]["sha256_counter_label"], case["input"]["length"])
        assert hashlib.sha256(data).hexdigest() == case["input"]["sha256"]
        if len(data) > 1 << 20:
            data = data[:sum(case["chunk_lengths"][:2])]   # pure Python: two chunks suffice
            want = case["chunk_lengths"][:2]
        else:
            want = case["chunk_lengths"]
        assert len(want) >= 2
        assert fastcdc_lengths(data, case["cdc_min"], case["cdc_avg"], case["cdc_max"],
                               gear) == want


def test_key_wrap_and_release_from_the_vault_spec() -> None:
    w = DER["key_wrap"]
    export_key = bytes.fromhex(w["export_key"])
    wrap_key = hkdf(export_key, "strongroom/v1/vault/wrap-k")
    assert wrap_key.hex() == w["wrap_key"]
    wrapped = bytes.fromhex(w["wrapped"])
    assert len(wrapped) == 60 and wrapped[:12].hex() == w["nonce"]
    ad = _frame(b"strongroom/v1/vault/wrap-k", w["account_id"].encode())
    assert AESGCM(wrap_key).decrypt(wrapped[:12], wrapped[12:], ad) == K
    r = DER["release"]
    release_key = hkdf(bytes.fromhex(r["session_key"]), "strongroom/v1/vault/release")
    assert release_key.hex() == r["release_key"]
    sealed = bytes.fromhex(r["released"])
    ad = _frame(r["account_id"].encode(), r["session_id"].encode())
    assert AESGCM(release_key).decrypt(sealed[:12], sealed[12:], ad).hex() == r["wrapped"]


def test_backup_head_tag_from_the_vault_spec() -> None:
    h = DER["backup_head"]
    k_head = hkdf(K, "strongroom/v1/vault/backup-head")
    assert k_head.hex() == h["K_head"]
    snaps = sorted(h["snapshots"])
    set_hash = hashlib.sha256(_frame(*(s.encode() for s in snaps))).digest()
    assert set_hash.hex() == h["set_hash"]
    msg = _frame(b"strongroom/v1/vault/backup-head", h["repository_id"].encode(),
                 h["counter"].to_bytes(8, "big"), h["newest"].encode(), set_hash)
    tag = hmac.new(k_head, msg, "sha256").hexdigest()
    assert tag == h["tag"]
    assert h["record_name"] == f"ext/backup-head/{h['counter']:016x}.{tag}"
    record = json.loads(h["record"])
    assert record == {"format": "strongroom-backup-head/1", "repository": h["repository_id"],
                      "counter": h["counter"], "newest": h["newest"], "snapshots": snaps}
    assert sorted(snaps) == sorted(s["id"] for s in _load("snapshots.json"))
