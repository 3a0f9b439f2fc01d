"""Threshold realms with real vault processes (issue 15, docs/spec/realms.md §4, §7).

Three ``strongroom vault serve`` processes on loopback, each with its own SQLite
database and its own sealed secrets, form a 2-of-3 realm set.  Recovery with
all three; one killed; one (behind a tampering proxy) returning wrong
evaluations; two down; an attacker holding one realm's database and root
secret trying guesses offline; one realm's database rolled back (counter
reset); concurrent guessing against all three.  The guess bound of §7 is
counted exactly.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from strongroom.client.vault_client import VaultClient
from strongroom.crypto.keys import BackupKey
from strongroom.errors import AttemptsExhausted, InvalidLogin, RealmsUnavailable
from strongroom.opaque import _group
from strongroom.realms import client as rc
from strongroom.realms.locator import RealmLocator
from strongroom.vault.keystore import load_secrets, software_keystore_for
from strongroom.vault.params import KsfBounds
from strongroom.vault.realm import RealmRegistration, _ad, realm_key
from strongroom.vault.sealing import open_sealed
from strongroom.vault.store_sqlite import SqliteStore

from . import pg
from .conftest import SMALL_KSF, VaultProcess
from .realm_helpers import ForwardingHandler

ACCOUNT = "alice"
PASSWORD = b"correct horse battery staple"
SLOT = "feedfacefeedfacefeedfacefeedface"
BOUNDS = KsfBounds(minimum={"memory_kib": 8, "iterations": 1, "parallelism": 1})
LIMIT = 10


class Realms:
    """Three realm processes and a client (with its token) for each."""

    def __init__(self, tmp: Path, databases: dict[int, str] | None = None) -> None:
        self.procs: list[VaultProcess] = []
        self.tokens: list[str] = []
        for i in (1, 2, 3):
            d = tmp / f"realm{i}"
            d.mkdir()
            p = VaultProcess(d, database=(databases or {}).get(i))
            self.tokens.append(p.create_account(ACCOUNT))
            self.procs.append(p.start())
        self.urls = [p.url for p in self.procs]
        self._clients: list[VaultClient] = []

    def clients(self, urls: list[str] | None = None) -> list[VaultClient]:
        """New clients of the given realm URLs (default all), with their tokens."""
        urls = urls or self.urls
        out = []
        for u in urls:
            token = self.tokens[self.urls.index(u)] if u in self.urls else self.tokens[2]
            out.append(VaultClient(u, ACCOUNT, token, timeout=10))
        self._clients += out
        return out

    def register(self, key: BackupKey, urls: list[str] | None = None) -> RealmLocator:
        reg = rc.register(self.clients(urls), key, PASSWORD, account=ACCOUNT, slot=SLOT,
                          threshold=2, ksf=SMALL_KSF, rng=os.urandom, created=1_800_000_000)
        assert reg.missed == {}
        return reg.locator

    def recover(self, loc: RealmLocator, password: bytes = PASSWORD,
                urls: list[str] | None = None, trace: Any = None) -> rc.RecoveryResult:
        return rc.recover(loc, self.clients(urls), password, bounds=BOUNDS, rng=os.urandom,
                          trace=trace)

    def attempts_left(self, loc: RealmLocator) -> list[Any]:
        return [s.get("attempts_left", s.get("error")) for s in rc.status(loc, self.clients())]

    def close(self) -> None:
        for c in self._clients:
            c.close()
        for p in self.procs:
            p.stop()


@pytest.fixture
def realms(tmp_path: Path) -> Iterator[Realms]:
    r = Realms(tmp_path)
    try:
        yield r
    finally:
        r.close()


def _key() -> BackupKey:
    return BackupKey.generate()


def test_recovery_with_all_three(realms: Realms) -> None:
    key = _key()
    loc = realms.register(key)
    got = realms.recover(loc)
    assert got.key.secret_bytes() == key.secret_bytes()
    assert got.excluded == {}
    assert realms.attempts_left(loc) == [LIMIT] * 3  # every realm was unlocked: reset


def test_recovery_with_one_realm_killed(realms: Realms) -> None:
    key = _key()
    loc = realms.register(key)
    realms.procs[2].stop()
    got = realms.recover(loc)
    assert got.key.secret_bytes() == key.secret_bytes()
    assert list(got.excluded) == [realms.urls[2]]
    assert "VaultUnreachable" in got.excluded[realms.urls[2]]


class _Tamper(ForwardingHandler):
    """A proxy in front of one realm that doubles every evaluation it forwards."""

    def answer(self, method: str) -> tuple[int, bytes]:
        r = self.upstream(method)
        out = r.content
        if self.path.endswith("/realm/evaluate") and r.status_code == 200:
            doc = r.json()
            z = base64.urlsafe_b64decode(doc["evaluation"] + "=")
            doc["evaluation"] = base64.urlsafe_b64encode(
                _group.element_add(z, z)).rstrip(b"=").decode()
            out = json.dumps(doc).encode()
        return r.status_code, out


def test_a_realm_returning_wrong_evaluations_is_named_and_left_out(realms: Realms) -> None:
    port = pg.free_port()
    handler = type("Tamper", (_Tamper,), {"backend": realms.urls[2]})
    proxy = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        bad = f"http://127.0.0.1:{port}"
        urls = [realms.urls[0], realms.urls[1], bad]
        key = _key()
        loc = realms.register(key, urls)
        got = realms.recover(loc, urls=urls)
        assert got.key.secret_bytes() == key.secret_bytes()
        assert got.excluded == {bad: "returned a wrong evaluation (its proof does not verify)"}
        # With the honest realm 2 down too, the wrong answer cannot stand in for it.
        realms.procs[1].stop()
        with pytest.raises(RealmsUnavailable, match="wrong evaluation") as err:
            realms.recover(loc, urls=urls)
        assert err.value.failures is not None and len(err.value.failures) == 2
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_two_realms_down_is_a_clear_error_and_spends_nothing(realms: Realms) -> None:
    loc = realms.register(_key())
    realms.procs[1].stop()
    realms.procs[2].stop()
    with pytest.raises(RealmsUnavailable, match="fewer than 2 realms can take part") as err:
        realms.recover(loc)
    assert "no further attempt was spent" in (err.value.hint or "")
    live = rc.status(loc, realms.clients([realms.urls[0]]))[0]
    assert live["attempts_left"] == LIMIT  # no guess spent on the live realm


def _stolen_record(proc: VaultProcess) -> RealmRegistration:
    """What an attacker reads with the realm's database, secrets file and passphrase."""
    secrets = load_secrets(proc.secrets, software_keystore_for(proc.secrets, "test passphrase"))
    store = SqliteStore(proc.database)
    try:
        row = store.get(realm_key(ACCOUNT, SLOT))
    finally:
        store.close()
    assert row is not None and row.sealed is not None
    plain = open_sealed(secrets.record_key, row.sealed, _ad(row.account_id, row.generation))
    return RealmRegistration.parse(plain)


def _offline_test(stolen: RealmRegistration, loc: RealmLocator, rid: bytes, candidate: bytes) -> bool:
    """Every check the attacker can run with one realm's secrets: use its share as if it
    were the key, then try the stored unlock tag and the encrypted K."""
    pw2 = rc.stretch(candidate, ACCOUNT, SLOT, stolen.ksf)
    n_elem = _group.scalar_mult(stolen.oprf_share, rc.hash_to_group(pw2))
    y = rc.finalize(pw2, n_elem)
    if rc.unlock_tag(y, rid, ACCOUNT, SLOT, stolen.index) == stolen.unlock_tag:
        return True
    return rc.decrypt_key(y, stolen.key_share, stolen.wrapped_key, loc.account, loc.slot) is not None


def test_a_compromised_realm_cannot_tell_a_right_guess_offline(realms: Realms) -> None:
    loc = realms.register(_key())
    stolen = _stolen_record(realms.procs[0])
    rid = loc.realms[0].realm_id
    results = {pw: _offline_test(stolen, loc, rid, pw)
               for pw in (PASSWORD, b"wrong one", b"Tr0ub4dor&3")}
    assert results == dict.fromkeys(results, False)  # the right password looks like any other
    # The stolen share is one point of a degree-1 polynomial: the public key is not s_1·B.
    assert _group.scalar_mult_base(stolen.oprf_share) != loc.public_key
    assert realms.attempts_left(loc) == [LIMIT] * 3  # offline work spent nothing


def _snapshot(proc: VaultProcess, to: Path) -> None:
    proc.stop()
    to.mkdir()
    for suffix in ("", "-wal", "-shm"):
        src = Path(proc.database + suffix)
        if src.exists():
            shutil.copy2(src, to / src.name)
    proc.start()


def _roll_back(proc: VaultProcess, snap: Path) -> None:
    proc.stop()
    for suffix in ("", "-wal", "-shm"):
        Path(proc.database + suffix).unlink(missing_ok=True)
    for f in snap.iterdir():
        shutil.copy2(f, Path(proc.database).parent / f.name)
    proc.start()


def test_a_counter_reset_on_one_realm_keeps_guesses_within_the_bound(realms: Realms,
                                                                     tmp_path: Path) -> None:
    """Realm 1's operator rolls its database back whenever its counter runs out; the
    attacker pairs it with realm 2, then realm 3.  Exactly G(3, 2, 1, 10) = 20 guesses."""
    loc = realms.register(_key())
    snap = tmp_path / "realm1-snapshot"
    _snapshot(realms.procs[0], snap)
    bound = rc.guess_bound(3, 2, 1, LIMIT)
    assert bound == 20
    tested = 0
    for partner in (realms.urls[1], realms.urls[2]):
        while True:
            try:
                realms.recover(loc, b"guess %d" % tested, urls=[realms.urls[0], partner])
            except InvalidLogin:
                tested += 1
                continue
            except AttemptsExhausted:
                tested += 1  # the last wrong guess at a realm: it erased its share
                continue
            except RealmsUnavailable:
                status = rc.status(loc, realms.clients([realms.urls[0]]))[0]
                if status.get("locked") or status.get("attempts_left") == 0:
                    _roll_back(realms.procs[0], snap)  # reset realm 1 and go on
                    continue
                break
    assert tested == bound
    left = rc.status(loc, realms.clients())
    assert [s.get("locked") for s in left[1:]] == [True, True]  # both honest realms erased


def test_concurrent_guessing_against_all_three_keeps_the_bound(realms: Realms) -> None:
    loc = realms.register(_key())
    answered: dict[int, int] = {1: 0, 2: 0, 3: 0}
    outcomes: list[str] = []
    lock = threading.Lock()

    def count(msg: dict[str, Any]) -> None:
        if msg["op"] == "evaluate" and "error" not in msg["response"]:
            with lock:
                answered[msg["realm"]] += 1

    def guess(n: int) -> None:
        try:
            realms.recover(loc, b"wrong %d" % n, trace=count)
        except (InvalidLogin, AttemptsExhausted):
            outcome = "tested"
        except RealmsUnavailable:
            outcome = "refused"
        with lock:
            outcomes.append(outcome)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(guess, range(40)))
    assert all(v <= LIMIT for v in answered.values()), answered
    assert outcomes.count("tested") <= rc.guess_bound(3, 2, 0, LIMIT)
    assert outcomes.count("tested") >= LIMIT // 2  # the storm did reach the realms
    # Afterwards nothing more is answered anywhere.
    with pytest.raises((RealmsUnavailable, AttemptsExhausted)):
        realms.recover(loc, b"one more")


def test_a_realm_on_postgresql_next_to_realms_on_sqlite(tmp_path: Path, pg_server: Any) -> None:
    """Each realm is an ordinary vault deployment, whatever its store."""
    from .conftest import fresh_pg_dsn

    realms = Realms(tmp_path, {2: fresh_pg_dsn(pg_server)})
    try:
        key = _key()
        loc = realms.register(key)
        realms.procs[0].stop()  # recovery needs the PostgreSQL realm now
        with pytest.raises(InvalidLogin):
            realms.recover(loc, b"wrong")
        assert [s.get("attempts_left") for s in rc.status(loc, realms.clients())[1:]] == [9, 9]
        got = realms.recover(loc)
        assert got.key.secret_bytes() == key.secret_bytes()
        assert list(got.excluded) == [realms.urls[0]]
    finally:
        realms.close()

