"""Fuzzing campaign (hypothesis): every parser meets garbage and answers only with its errors.

* repository objects — config, pack headers, index objects, snapshot documents,
  file-list segments — both as raw stored bytes and as *authenticated*
  plaintexts (sealed here under the real key, so the parser behind the AEAD is
  reached), and through the public path (``Repository.open``/``check``/restore
  on a real repository whose object was replaced);
* OPAQUE messages (registration request/record, KE1, KE2, KE3);
* the 64-digit key input;
* the vault's HTTP API, requests generated from its published OpenAPI document
  (in-process ASGI, real SQLite store): never a 5xx, always a JSON answer.

Only the documented exceptions (``strongroom.errors``) may escape.  Example
counts: ``STRONGROOM_CAMPAIGN_SCALE`` = ci or full; ``STRONGROOM_FUZZ_CASES``, when
set, is the number of examples of every repository-object property (the
documented long run uses 100000, ``docs/reliability.md``).
"""

from __future__ import annotations

import base64
import json
import os
import re
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.api import BackupKey, Repository
from strongroom.crypto import labels
from strongroom.crypto.aead import ObjectCipher
from strongroom.errors import (
    DataDamaged,
    FormatError,
    InvalidKeyFormat,
    ProtocolError,
    StrongroomError,
    UnsupportedVersion,
)
from strongroom.repo.config import parse_config
from strongroom.repo.index import INDEX_MAGIC, decode_index, read_index
from strongroom.repo.manifest import (
    SNAPSHOT_MAGIC,
    decode_record,
    decode_records,
    open_snapshot,
    read_records,
    record_spans,
)
from strongroom.repo.pack import PACK_MAGIC, decode_header, parse_header
from strongroom.repo.sealed import seal_object
from strongroom.storage.memory import MemoryBackend

from .campaign import record, sized

N = int(os.environ.get("STRONGROOM_FUZZ_CASES") or sized(300, 3000))  # per parser property
HTTP_N = sized(1500, 12000)  # vault HTTP requests
KEY = BackupKey.from_bytes(bytes(range(32)))
PID = bytes(16)
COUNTS: dict[str, int] = {}


def _fuzz(n: int = N):  # type: ignore[no-untyped-def]
    return settings(max_examples=n, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _count(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1


def _rng(n: int) -> bytes:
    return bytes(n)


# -- repository objects ------------------------------------------------------------------

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                     lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10),
                                                                         c, max_size=4),
                     max_leaves=12)
_GOOD_CONFIG = {"format": "strongroom-repository", "version": 2, "minor": 0,
                "id": "00" * 16, "created": 1, "keycheck": "11" * 32,
                "chunker": {"cdc_min": 262144, "cdc_avg": 1048576, "cdc_max": 4194304,
                            "media_piece": 4194304, "sqlite_pages_per_blob": 1,
                            "frame_target": 131072, "pack_target": 4194304}}


@st.composite
def _config_docs(draw: st.DrawFn) -> bytes:
    """A config with some fields replaced by arbitrary JSON, or arbitrary bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=600))
    doc: dict[str, Any] = json.loads(json.dumps(_GOOD_CONFIG))
    for k in draw(st.lists(st.sampled_from(sorted(doc) + ["chunker.cdc_min", "chunker.x"]),
                           max_size=3)):
        if k.startswith("chunker.") and isinstance(doc["chunker"], dict):
            doc["chunker"][k.split(".")[1]] = draw(_json)
        elif k.startswith("chunker."):
            continue
        else:
            doc[k] = draw(_json)
    return json.dumps(doc).encode()


#: JSON texts a provider can write that Python's json module would accept or choke on:
#: non-finite constants, overflowing numbers, huge integers, deep nesting, repeated keys.
_HOSTILE = st.sampled_from([
    b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999", b"1" * 5000, b"-0", b"1.5",
    b"true", b"null", b'"\\ud800"', b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 2000 + b"1" + b"}" * 2000, b'{"a": 1, "a": 2}', b"[[[[[[[[[[1]]]]]]]]]]",
    b'"' + b"x" * 70_000 + b'"', b"18446744073709551616", b"-1",
])


@st.composite
def _hostile_docs(draw: st.DrawFn, good: dict[str, Any]) -> bytes:
    """``good`` serialized with one or two values replaced by hostile JSON text."""
    doc = json.loads(json.dumps(good))
    marks = {}
    keys = sorted(doc)
    for i, k in enumerate(draw(st.lists(st.sampled_from(keys), min_size=1, max_size=2,
                                        unique=True))):
        if isinstance(doc[k], dict) and draw(st.booleans()):
            sub = sorted(doc[k])
            doc[k][draw(st.sampled_from(sub))] = f"@@{i}@@"
        else:
            doc[k] = f"@@{i}@@"
        marks[f'"@@{i}@@"'.encode()] = draw(_HOSTILE)
    text = json.dumps(doc).encode()
    for mark, value in marks.items():
        text = text.replace(mark, value)
    return text


@_fuzz()
@given(st.one_of(_config_docs(), _hostile_docs(_GOOD_CONFIG)))
def test_config_parser(data: bytes) -> None:
    _count("config")
    try:
        parse_config(data)
    except (FormatError, UnsupportedVersion):
        pass


_GOOD_LOCATOR = {"format": "strongroom-vault-locator/1", "url": "https://vault.example",
                 "account": "alice", "server_public_key": "A" * 43,
                 "opaque": {"ksf": {"name": "argon2id", "memory_kib": 65536, "iterations": 3,
                                    "parallelism": 1}, "context": ""}}


_GOOD_LOCATOR_V2 = {"format": "strongroom-vault-locator/2", "url": "https://vault.example",
                    "account": "alice", "slot": "0f" * 16, "server_public_key": "A" * 43,
                    "context": "", "created": 1_790_000_000, "mac": "A" * 43}


@_fuzz()
@given(st.one_of(st.binary(max_size=600), _json.map(lambda j: json.dumps(j).encode()),
                 _hostile_docs(_GOOD_LOCATOR), _hostile_docs(_GOOD_LOCATOR_V2)))
def test_vault_locator_parser(data: bytes) -> None:
    """ext/vault.json, which the provider writes: a locator within bounds or FormatError."""
    from strongroom.client.flows import KSF_BOUNDS, VaultLocator

    _count("vault locator")
    try:
        loc = VaultLocator.from_json(data)
    except FormatError:
        return
    if loc.legacy_ksf is not None:  # version 1: parameters shown, never used
        for k, (lo, hi) in KSF_BOUNDS.items():
            assert type(loc.legacy_ksf[k]) is int and lo <= loc.legacy_ksf[k] <= hi
    else:
        assert loc.mac is not None and len(loc.mac) == 32 and loc.slot
    assert len(loc.server_public_key) == 32


_GOOD_HEAD = {"format": "strongroom-backup-head/1", "repository": "00" * 16, "counter": 2,
              "newest": "ab" * 16, "snapshots": ["ab" * 16, "cd" * 16]}


@_fuzz()
@given(st.one_of(st.binary(max_size=600), _json.map(lambda j: json.dumps(j).encode()),
                 _hostile_docs(_GOOD_HEAD)))
def test_backup_head_record_parser(data: bytes) -> None:
    """ext/backup-head/* records: a well-formed state or None, never an exception."""
    from strongroom.client.rollback import HeadState

    _count("backup head record")
    state = HeadState.from_json(data)
    if state is not None:
        assert type(state.counter) is int and state.counter >= 1
        assert state.newest in state.snapshots or (state.newest == "" and not state.snapshots)


_GOOD_LOCK = {"v": 2, "exclusive": True, "instance": "00" * 16, "seq": 0, "hostname": "h",
              "boot": "b", "pid": 1}


@_fuzz()
@given(st.one_of(st.binary(max_size=600), _json.map(lambda j: json.dumps(j).encode()),
                 _hostile_docs(_GOOD_LOCK)), st.booleans())
def test_lock_parser_behind_the_aead(plain: bytes, sealed: bool) -> None:
    """A lock document of any content is read as a lock or as unreadable, never a crash."""
    from strongroom.repo.locks import LOCK_MAGIC, Lock

    _count("lock sealed" if sealed else "lock raw")
    name = "locks/" + "cd" * 16
    backend = MemoryBackend()
    backend.put(name, seal_object(KEY, labels.LOCK, LOCK_MAGIC, name, plain, _rng) if sealed
                else LOCK_MAGIC + plain)
    info = Lock(backend, KEY, True, lambda: 0.0, _rng)._read(name)
    assert info is not None


@_fuzz()
@given(st.binary(max_size=2000))
def test_index_plaintext_parser(body: bytes) -> None:
    _count("index plaintext")
    for data in (body, INDEX_MAGIC + body):
        try:
            decode_index(data, "index/x")
        except FormatError:
            pass


@st.composite
def _index_plaintexts(draw: st.DrawFn) -> bytes:
    """Structurally plausible indexes with arbitrary counts, sizes and entries."""
    import struct

    npacks = draw(st.integers(0, 3))
    packs = b"".join(struct.pack(">16s32sQ", bytes(16), bytes(32), draw(st.integers(0, 2**64 - 1)))
                     for _ in range(npacks))
    nent = draw(st.integers(0, 3))
    ents = b"".join(struct.pack(">I32sBBIIIII", draw(st.integers(0, 4)), bytes(32),
                                *[draw(st.integers(0, 255)) for _ in range(2)],
                                *[draw(st.integers(0, 2**32 - 1)) for _ in range(5)])
                    for _ in range(nent))
    claimed_packs = draw(st.sampled_from([npacks, npacks + 1, 2**32 - 1]))
    claimed_ents = draw(st.sampled_from([nent, nent + 1, 0, 2**32 - 1]))
    return (INDEX_MAGIC + struct.pack(">I", claimed_packs) + packs
            + struct.pack(">I", claimed_ents) + ents
            + draw(st.binary(max_size=4) | st.integers(0, 5000).map(bytes)))  # padding


@_fuzz()
@given(_index_plaintexts())
def test_sealed_index_parser_behind_the_aead(plain: bytes) -> None:
    _count("index sealed")
    data = seal_object(KEY, labels.INDEX, INDEX_MAGIC, "index/" + "0" * 32, plain, _rng)
    try:
        read_index(data, KEY, "index/" + "0" * 32)
    except FormatError:
        pass


@_fuzz()
@given(st.binary(max_size=3000))
def test_file_list_segment_parser(data: bytes) -> None:
    _count("file list")
    try:
        list(decode_records(data, "snapshots/x"))
    except FormatError:
        pass


@_fuzz()
@given(st.binary(max_size=3000))
def test_file_list_segment_parser_of_check(data: bytes) -> None:
    # check reads a segment's fixed fields first, then decodes only records it has not seen.
    _count("file list spans")
    try:
        for pos, _length, _kind, _nc in record_spans(data, "snapshots/x"):
            decode_record(data, pos, "snapshots/x")
    except FormatError:
        pass


@_fuzz()
@given(st.lists(st.binary(max_size=400), max_size=12))
def test_file_list_parser_over_segments(segments: list[bytes]) -> None:
    # Records may span segments (spec §7): any cutting of garbage, including empty
    # segments and a header split across two, raises FormatError or nothing.
    _count("file list segments")
    try:
        list(read_records(segments, "snapshots/x"))
    except FormatError:
        pass


@_fuzz()
@given(st.one_of(st.binary(max_size=600), _json.map(lambda j: json.dumps(j).encode()),
                 st.fixed_dictionaries({"v": st.sampled_from([1, 2, "1"]), "time": _json,
                                        "hostname": _json, "paths": _json, "files": _json,
                                        "dirs": _json, "bytes": _json, "parent": _json,
                                        "segments": st.lists(st.text(string.hexdigits,
                                                                     max_size=66), max_size=3),
                                        "chats": _json | st.lists(st.text(string.hexdigits,
                                                                          max_size=66))}
                                       ).map(lambda d: json.dumps(d).encode()),
                 _hostile_docs({"v": 1, "time": 1.5, "hostname": "h", "paths": ["/a"],
                                "files": 1, "dirs": 0, "bytes": 2, "parent": None,
                                "segments": ["00" * 32], "chats": ["11" * 32]})))
def test_snapshot_document_parser_behind_the_aead(plain: bytes) -> None:
    _count("snapshot sealed")
    sid = "ab" * 16
    data = seal_object(KEY, labels.SNAPSHOT, SNAPSHOT_MAGIC, "snapshots/" + sid, plain, _rng)
    try:
        open_snapshot(KEY, sid, data)
    except FormatError:
        pass


_GOOD_CATALOGUE = {"chats": [{"attachments": 1, "files": ["a/IMG.jpg", "a/_chat.txt"],
                               "first": "2024-01-01T10:00:00", "kind": "whatsapp-export",
                               "last": "2024-01-02T10:00:00", "messages": 3, "name": "Bob",
                               "source": "a/_chat.txt"}],
                    "parsed": [{"path": "a/_chat.txt", "warnings": []}], "version": 1}


@_fuzz(4 * N)  # 1,200 at CI scale: 5.3 s at load 19, about 3.5 s more than 300
@given(st.one_of(st.binary(max_size=600), _json.map(lambda j: json.dumps(j).encode()),
                 _hostile_docs(_GOOD_CATALOGUE),
                 _hostile_docs(_GOOD_CATALOGUE["chats"][0]).map(  # type: ignore[index]
                     lambda e: b'{"chats":[' + e + b'],"parsed":[{"path":"a/_chat.txt",'
                               b'"warnings":[]}],"version":1}')))
def test_chat_catalogue_parser(data: bytes) -> None:
    # The catalogue is behind the AEAD of its pack (only a key holder writes it), but
    # chats, export and restore --chat read it: FormatError or a valid catalogue.
    from strongroom.chats import catalogue

    _count("chat catalogue")
    try:
        cat = catalogue.decode_catalogue(data)
    except FormatError:
        return
    assert catalogue.encode(cat.entries, cat.parsed) == data


@_fuzz()
@given(st.binary(max_size=400), st.booleans())
def test_raw_object_bytes(data: bytes, with_magic: bool) -> None:
    """Unauthenticated bytes in every sealed slot: FormatError or DataDamaged, nothing else."""
    _count("raw objects")
    from strongroom.repo.locks import LOCK_MAGIC

    for magic, call in ((SNAPSHOT_MAGIC, lambda d: open_snapshot(KEY, "ab" * 16, d)),
                        (LOCK_MAGIC, lambda d: _lock_raw(d)),
                        (INDEX_MAGIC, lambda d: read_index(d, KEY, "index/x")),
                        (PACK_MAGIC, lambda d: parse_header(KEY, PID, d, "data/x"))):
        try:
            call(magic + data if with_magic else data)
        except DataDamaged:  # FormatError is a DataDamaged
            pass


def _lock_raw(data: bytes) -> None:
    from strongroom.repo.locks import Lock

    backend = MemoryBackend()
    backend.put("locks/" + "cd" * 16, data)
    assert Lock(backend, KEY, True, lambda: 0.0, _rng)._read("locks/" + "cd" * 16) is not None


@st.composite
def _headers(draw: st.DrawFn) -> bytes:
    import struct

    n = draw(st.integers(0, 4))
    entries = b"".join(struct.pack(">32sBBIIIII", bytes(32),
                                   *[draw(st.integers(0, 255)) for _ in range(2)],
                                   *[draw(st.integers(0, 2**32 - 1)) for _ in range(5)])
                       for _ in range(n))
    claimed = draw(st.sampled_from([n, n + 1, 2**32 - 1, 0]))
    return struct.pack(">I", claimed) + entries + draw(st.binary(max_size=8))


@_fuzz()
@given(_headers())
def test_pack_header_parser_behind_the_aead(plain: bytes) -> None:
    _count("pack header sealed")
    salt = bytes(32)
    ct = ObjectCipher(KEY, labels.PACK, salt).seal(2**96 - 1, plain, PACK_MAGIC + b"H" + PID)
    try:
        decode_header(KEY, PID, PACK_MAGIC + salt, ct, "data/x")
    except FormatError:
        pass


# -- the public path: a real repository with one object replaced ------------------------------

@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    src = tmp_path_factory.mktemp("fuzzsrc")
    (src / "a.txt").write_text("hello " * 5000)
    (src / "b.bin").write_bytes(bytes(range(256)) * 300)
    backend = MemoryBackend()
    with Repository.create(backend, KEY) as repo:
        repo.backup([src], hostname="h")
    return {n: backend.get(n) for n in backend.list("")}


def test_public_path_with_garbage_objects(pristine: dict[str, bytes], tmp_path: Path) -> None:
    names = sorted(pristine)

    @_fuzz(sized(60, 600))
    @given(st.sampled_from(names), st.binary(max_size=300), st.integers(0, 3))
    def run(name: str, garbage: bytes, how: int) -> None:
        _count("public path")
        backend = MemoryBackend()
        for n, d in pristine.items():
            backend.put(n, d)
        orig = pristine[name]
        mutated = [garbage, orig[:4] + garbage, orig[: len(garbage) % (len(orig) + 1)],
                   orig + garbage][how]
        backend.put(name, mutated)
        try:
            with Repository.open(backend, KEY) as repo:
                report = repo.check(read_data=True)
                assert report.ok == (mutated == orig) or name == "config"
                repo.restore("latest", tmp_path / "r", allow_damaged=True)
        except StrongroomError:
            pass

    run()


# -- OPAQUE messages and the key input --------------------------------------------------------

@_fuzz()
@given(st.binary(max_size=400))
def test_opaque_message_parsers(data: bytes) -> None:
    from strongroom.opaque import messages as m

    _count("opaque messages")
    for parse in (m.parse_registration_request, m.RegistrationResponse.parse,
                  m.RegistrationRecord.parse, m.KE1.parse, m.KE2.parse, m.parse_ke3):
        try:
            parse(data)
        except ProtocolError:
            pass


@_fuzz()
@given(st.sampled_from(sorted({"KE1": 0, "KE2": 0, "RegistrationRecord": 0})),
       st.integers(0, 2**16))
def test_opaque_parsers_at_the_exact_sizes(kind: str, seed: int) -> None:
    """Right-sized random messages reach the group-element checks (identity, non-canonical)."""
    import random

    from strongroom.opaque import messages as m

    _count("opaque sized")
    size = {"KE1": m.KE1_SIZE, "KE2": m.KE2_SIZE,
            "RegistrationRecord": m.REGISTRATION_RECORD_SIZE}[kind]
    rnd = random.Random(seed)
    variants = [rnd.randbytes(size), bytes(size), b"\xff" * size]
    for data in variants:
        try:
            getattr(m, kind).parse(data)
        except ProtocolError:
            pass


_SEP = st.sampled_from([" ", "-", "_", "\t", "\n", "  ", "\u00a0", "\u2003", ".", ":", ""])
_KEY_RE = re.compile(r"[0-9a-fA-F]")


@_fuzz(sized(1000, 10000))
@given(st.one_of(
    st.text(max_size=100),
    st.lists(st.tuples(st.sampled_from("0123456789abcdefABCDEFgx"), _SEP), min_size=60,
             max_size=68).map(lambda ps: "".join(c + s for c, s in ps)),
))
def test_key_input(text: str) -> None:
    """Success exactly for 64 hex digits separated by whitespace, '-' or '_'; else InvalidKeyFormat."""
    _count("64-digit key")
    digits = re.sub(r"[\s\-_]", "", text)
    should = len(digits) == 64 and all(c in string.hexdigits for c in digits) and digits.isascii()
    try:
        key = BackupKey.parse(text)
    except InvalidKeyFormat as exc:
        assert not should, text
        assert digits[:8].lower() not in str(exc) or len(digits) < 8  # never echoes the input
        return
    assert should, text
    assert key.secret_bytes() == bytes.fromhex(digits)


# -- the vault's HTTP API from its OpenAPI document ---------------------------------------------

@pytest.fixture(scope="module")
def vault_http(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    import hashlib
    import itertools
    import socket
    import threading
    import time

    import httpx
    import uvicorn

    from strongroom.vault import _opaque as opaque
    from strongroom.vault.app import create_app
    from strongroom.vault.auth import TokenAuth
    from strongroom.vault.core import Vault, VaultPolicy, VaultSecrets
    from strongroom.vault.store_sqlite import SqliteStore

    counter = itertools.count()

    def rng(n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha512(b"fuzz" + next(counter).to_bytes(8, "big")).digest()
        return out[:n]

    store = SqliteStore(tmp_path_factory.mktemp("vault") / "vault.db")
    cfg = opaque.OpaqueConfig(ksf=opaque.Argon2idKSF(memory_kib=256, iterations=1,
                                                     parallelism=1), context=b"fuzz")
    vault = Vault(store, VaultSecrets(opaque.ServerSetup.generate(rng), rng(32)), cfg,
                  VaultPolicy(attempt_limit=10, session_ttl=60), rng=rng)
    auth = TokenAuth(store)
    tokens = {a: auth.create_account(a, rng) for a in ("alice", "bob")}
    # alice has a real record, so login paths reach real OPAQUE state.
    req, state = opaque.RegistrationClient.start(b"pw", config=cfg, rng=rng)
    started = vault.registration_start("alice", req)
    rec, _ = opaque.RegistrationClient.finish(state, started.response, config=cfg, rng=rng)
    vault.registration_finish("alice", rec, b"W" * 60, registration_id=started.registration_id,
                              proof_verifier=bytes(32))
    # A real uvicorn server on loopback (starlette's TestClient is deprecated with httpx).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(vault, auth), host="127.0.0.1",
                                           port=port, log_level="critical", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    spec = client.get("/openapi.json").json()
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            yield client, spec, tokens
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        store.close()


def _b64_of(sizes: list[int]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(sizes).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
        st.binary(max_size=200),
    ).map(lambda b: base64.b64encode(b).decode()) | st.text(max_size=40)


def _body_for(schema: dict, spec: dict) -> st.SearchStrategy[Any]:
    from strongroom.opaque import messages as m

    sizes = [m.KE1_SIZE, m.KE2_SIZE, m.KE3_SIZE, m.REGISTRATION_REQUEST_SIZE,
             m.REGISTRATION_RECORD_SIZE, 60, 32]
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].split("/")[-1]]
    props = schema.get("properties", {})
    fields = {k: _b64_of(sizes) | _json for k in props}
    return st.one_of(st.fixed_dictionaries(fields), _json,
                     st.fixed_dictionaries({}, optional=fields))


def test_vault_openapi_requests_never_5xx(vault_http) -> None:  # type: ignore[no-untyped-def]
    client, spec, tokens = vault_http
    ops = [(path, method, op) for path, item in sorted(spec["paths"].items())
           for method, op in sorted(item.items())]
    assert len(ops) >= 7
    statuses: dict[int, int] = {}

    def body(op: dict) -> st.SearchStrategy[Any]:
        content = op.get("requestBody", {}).get("content", {}).get("application/json")
        if content is None:
            return st.none()
        return _body_for(content["schema"], spec)

    strategies = [st.tuples(st.just(p), st.just(m), body(op)) for p, m, op in ops]

    @_fuzz(HTTP_N)
    @given(st.one_of(strategies),
           st.sampled_from(["alice", "bob", "carol", "", "a" * 300, "../x", "al%2Fice",
                            "\u00e9t\u00e9"]),
           st.sampled_from(["alice", "bob", "none", "garbage", "basic"]),
           st.sampled_from(["json", "raw"]), st.binary(max_size=100))
    def run(req: tuple[str, str, Any], account: str, who: str, enc: str, raw: bytes) -> None:
        path, method, payload = req
        url = path.replace("{account}", account)
        headers = {"alice": {"authorization": f"Bearer {tokens['alice']}"},
                   "bob": {"authorization": f"Bearer {tokens['bob']}"}, "none": {},
                   "garbage": {"authorization": "Bearer x"},
                   "basic": {"authorization": "Basic eDp5"}}[who]
        kwargs: dict[str, Any] = {"headers": headers}
        if method in {"post", "put", "patch"}:
            kwargs["content"] = json.dumps(payload).encode() if enc == "json" else raw
            kwargs["headers"] = {**headers, "content-type": "application/json"}
        resp = client.request(method.upper(), url, **kwargs)
        _count("vault http")
        statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
        assert resp.status_code < 500, (method, url, payload, resp.text[:500])
        assert resp.headers.get("content-type", "").startswith("application/json"), resp.text

    run()
    record("fuzz-vault-http", {"requests": sum(statuses.values()),
                               "statuses": {str(k): v for k, v in sorted(statuses.items())},
                               "5xx": sum(v for k, v in statuses.items() if k >= 500)})


def test_zz_record_counts() -> None:
    """Writes the example counts of this module's properties (runs last in file order)."""
    assert COUNTS, "the fuzz properties ran no examples"
    record("fuzz", {"examples": dict(sorted(COUNTS.items())), "total": sum(COUNTS.values())})
