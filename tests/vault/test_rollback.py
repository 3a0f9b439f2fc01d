"""Rollback detection in password mode: the vault's backup head (spec §10).

Real vault over HTTP (uvicorn on loopback) on each record store (SQLite and
PostgreSQL), real local-folder repositories, the real client.
"""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

import httpx
import pytest

from strongroom import password
from strongroom.api import BackupKey, Repository
from strongroom.client import flows
from strongroom.client.rollback import RECORD_PREFIX, HeadGuard, LocalHeads, record_name
from strongroom.client.vault_client import VaultClient
from strongroom.errors import BackupHeadConflict, RollbackDetected
from strongroom.password import VaultAccess
from strongroom.storage.registry import open_backend
from strongroom.vault.app import b64e
from strongroom.vault.store import record_key

from .conftest import SMALL_BOUNDS, SMALL_KSF, DetRng

K = BackupKey.from_bytes(bytes(range(32)))


class Device:
    """One device: a repository opened with K, a vault client, its local head memory."""

    def __init__(self, root: Path, repo_dir: Path, url: str, token: str, name: str = "dev",
                 slot: str = "") -> None:
        self.root, self.n, self.slot = root, 0, slot
        self.backend = open_backend(str(repo_dir))
        self.repo = Repository.open(self.backend, K)
        self.client = VaultClient(url, "alice", token, slot=slot)
        self.local = LocalHeads(root / name / "heads")
        self.guard = HeadGuard(self.repo, self.backend, K, self.client, self.local)

    def backup(self, advance: bool = True) -> str:
        """A small new snapshot; returns its id."""
        self.n += 1
        src = self.root / "chats"  # the same path each time: one forget group
        src.mkdir(exist_ok=True)
        (src / "msgstore.db").write_bytes(f"chat {self.n}\n".encode() * 500)
        snap = self.repo.backup([src]).snapshot_id
        if advance:
            self.guard.advance()
        return snap

    def close(self) -> None:
        self.repo.close()
        self.client.close()
        self.backend.close()


@pytest.fixture
def alice(live, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A password-enabled repository at ``tmp_path/repo`` and a device on it."""
    server, auth = live
    token = auth.create_account("alice", DetRng(b"alice"))
    repo_dir = tmp_path / "repo"
    with open_backend(str(repo_dir), create=True) as backend:
        Repository.create(backend, K).close()
        access = VaultAccess(server.url, token, ksf=SMALL_KSF, bounds=SMALL_BOUNDS)
        with Repository.open(backend, K) as repo:
            slot = password.enable(repo, access, "pw").slot
        access.close()
        with VaultClient(server.url, "alice", token, slot=slot) as c:
            assert c.head()[0] == 1  # enable starts the head at the (empty) listing
    dev = Device(tmp_path, repo_dir, server.url, token, slot=slot)
    dev.token, dev.url = token, server.url  # type: ignore[attr-defined]
    try:
        yield dev
    finally:
        dev.close()


def test_tag_follows_the_spec_byte_layout() -> None:
    """Rebuild the tag from the spec's table with hashlib/hmac only (no helper of the code)."""
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from strongroom.client.rollback import HeadState, head_key

    label, repo_id = b"strongroom/v1/vault/backup-head", "ab" * 16
    ids = ("ff" * 16, "00" * 16, "7e" * 16)
    k_head = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(bytes(range(32)))
    assert head_key(K) == k_head

    def u32(n: int) -> bytes:
        return n.to_bytes(4, "big")

    set_hash = hashlib.sha256(b"".join(u32(32) + i.encode() for i in sorted(ids))).digest()
    msg = (u32(31) + label + u32(32) + repo_id.encode() + u32(8) + (7).to_bytes(8, "big")
           + u32(32) + ids[0].encode() + u32(32) + set_hash)
    expected = hmac.new(k_head, msg, hashlib.sha256).digest()
    assert HeadState(7, ids[0], tuple(sorted(ids))).tag(k_head, repo_id) == expected
    # Any change of counter, newest, set or repository changes the tag.
    others = {HeadState(8, ids[0], tuple(sorted(ids))).tag(k_head, repo_id),
              HeadState(7, ids[1], tuple(sorted(ids))).tag(k_head, repo_id),
              HeadState(7, ids[0], tuple(sorted(ids[:2]))).tag(k_head, repo_id),
              HeadState(7, ids[0], tuple(sorted(ids))).tag(k_head, "cd" * 16)}
    assert expected not in others and len(others) == 4
    empty = hashlib.sha256(b"").digest()
    msg0 = (u32(31) + label + u32(32) + repo_id.encode() + u32(8) + (1).to_bytes(8, "big")
            + u32(0) + u32(32) + empty)
    assert HeadState(1, "", ()).tag(k_head, repo_id) == hmac.new(k_head, msg0, hashlib.sha256).digest()


def test_local_heads_are_per_repository_and_vault(tmp_path: Path) -> None:
    class V:
        url, account, slot = "http://v", "alice", "s1"

    class W:
        url, account, slot = "http://w", "alice", "s1"

    local = LocalHeads(tmp_path / "heads")
    assert local.load("r1", V()) == 0
    local.save("r1", V(), 5)
    local.save("r1", V(), 3)  # never goes down
    assert local.load("r1", V()) == 5
    assert local.load("r2", V()) == 0 and local.load("r1", W()) == 0
    (tmp_path / "heads" / "r1.json").write_text("garbage")
    assert local.load("r1", V()) == 0


def test_hidden_newest_snapshot_is_named(alice: Device) -> None:
    alice.backup()
    newest = alice.backup()
    assert alice.guard.verify() == 3
    alice.backend.delete(f"snapshots/{newest}")  # the provider hides the newest snapshot
    with pytest.raises(RollbackDetected) as exc:
        alice.guard.verify()
    assert f"hiding the newest snapshot {newest[:8]}" in exc.value.message
    assert exc.value.exit_code == 17
    # A new backup does not launder the hidden snapshot into a new head.
    with pytest.raises(RollbackDetected):
        alice.backup()
    assert alice.client.head()[0] == 3


def test_hidden_older_snapshot_is_named(alice: Device) -> None:
    first = alice.backup()
    alice.backup()
    alice.backend.delete(f"snapshots/{first}")
    with pytest.raises(RollbackDetected) as exc:
        alice.guard.verify()
    assert f"hiding snapshot {first[:8]}" in exc.value.message


def test_older_genuine_snapshot_list_is_detected(alice: Device, tmp_path: Path) -> None:
    alice.backup()
    shutil.copytree(tmp_path / "repo", tmp_path / "old")  # the provider keeps a copy after backup 1
    second = alice.backup()
    # Later the provider serves the old copy to a new device (fresh local memory).
    old = Device(tmp_path, tmp_path / "old", alice.url, alice.token, "new-device",  # type: ignore[attr-defined]
                 slot=alice.slot)
    try:
        with pytest.raises(RollbackDetected) as exc:
            old.guard.verify()
        assert "serving an older snapshot list" in exc.value.message
        assert "head is #3" in exc.value.message and "newest head record is #2" in exc.value.message
        # Smarter provider: old listing, but the current head record copied over.
        for name in alice.backend.list(RECORD_PREFIX):
            old.backend.put(name, alice.backend.get(name))
        with pytest.raises(RollbackDetected) as exc:
            old.guard.verify()
        assert f"hiding the newest snapshot {second[:8]}" in exc.value.message
    finally:
        old.close()


def test_forget_and_prune_advance_without_false_alarm(alice: Device) -> None:
    for _ in range(3):
        alice.backup()
    before = alice.client.head()[0]
    result = alice.guard.forget(alice.repo.forget, keep_last=1)
    assert len(result.remove) == 2
    alice.repo.prune()
    assert alice.guard.verify() == before + 1
    assert len(alice.repo.snapshots()) == 1
    # Only the current head record is left in the repository.
    assert len(list(alice.backend.list(RECORD_PREFIX))) == 1
    # A dry run changes nothing at the vault.
    alice.guard.forget(alice.repo.forget, keep_last=1, dry_run=True)
    assert alice.client.head()[0] == before + 1


def test_snapshots_without_an_advance_are_no_alarm(alice: Device) -> None:
    alice.backup()
    alice.backup(advance=False)  # e.g. no vault token at backup time, or a crash
    assert alice.guard.verify() == 2
    assert alice.guard.advance() == 3


def test_tampered_tag_is_detected(alice: Device, store) -> None:  # type: ignore[no-untyped-def]
    alice.backup()
    counter, _tag = alice.client.head()
    _set_head_raw(store, record_key("alice", alice.slot), counter, bytes(32))  # the vault changes the stored tag
    with pytest.raises(RollbackDetected) as exc:
        alice.guard.verify()
    assert f"backup head #{counter} does not authenticate" in exc.value.message


def test_made_up_head_is_detected(alice: Device) -> None:
    alice.backup()
    counter, _tag = alice.client.head()
    # Someone with the account token (or the vault) advances the head with a made-up tag:
    # without K no tag can match, so the listing looks older than the head.
    alice.client.advance_head(counter + 1, bytes(32))
    with pytest.raises(RollbackDetected) as exc:
        alice.guard.verify()
    assert f"head is #{counter + 1}" in exc.value.message


def test_tampered_head_record_is_detected(alice: Device) -> None:
    alice.backup()
    newest = alice.backup()
    counter, tag = alice.client.head()
    assert tag is not None
    name = record_name(counter, tag)
    # The provider edits the record to drop the newest snapshot, then hides it.
    forged = alice.backend.get(name).replace(newest.encode(), b"").replace(b'"",\n', b"")
    alice.backend.put(name, forged)
    alice.backend.delete(f"snapshots/{newest}")
    with pytest.raises(RollbackDetected) as exc:
        alice.guard.verify()
    assert "does not authenticate" in exc.value.message


def test_vault_rolling_back_its_head_is_seen_by_the_device(alice: Device, store) -> None:  # type: ignore[no-untyped-def]
    alice.backup()
    alice.backup()
    assert alice.local.load(alice.repo.id, alice.client) == 3
    _set_head_raw(store, record_key("alice", alice.slot), 2)  # the vault operator restores an old database
    with pytest.raises(RollbackDetected) as exc:
        alice.guard.verify()
    assert "went back from #3" in exc.value.message and "#2" in exc.value.message


def test_vault_and_provider_colluding_fool_only_a_new_device(alice: Device, store,  # type: ignore[no-untyped-def]
                                                             tmp_path: Path) -> None:
    """Old head + old repository together: a new device cannot tell; alice's device can."""
    alice.backup()
    old_counter, old_tag = alice.client.head()
    shutil.copytree(tmp_path / "repo", tmp_path / "old")
    alice.backup()
    assert alice.client.head()[0] == old_counter + 1
    _set_head_raw(store, record_key("alice", alice.slot), old_counter, old_tag)  # the vault goes back too
    new = Device(tmp_path, tmp_path / "old", alice.url, alice.token, "new-device",  # type: ignore[attr-defined]
                 slot=alice.slot)
    seen = Device(tmp_path, tmp_path / "old", alice.url, alice.token, "dev",  # type: ignore[attr-defined]
                  slot=alice.slot)
    try:
        assert new.guard.verify() == old_counter  # not detected: nothing to compare with
        with pytest.raises(RollbackDetected) as exc:  # this device saw a higher counter
            seen.guard.verify()
        assert f"went back from #{old_counter + 1}" in exc.value.message
    finally:
        new.close()
        seen.close()


def test_snapshot_made_without_an_advance_is_unprotected_until_the_next(alice: Device) -> None:
    alice.backup()
    unprotected = alice.backup(advance=False)  # no token / vault down at backup time
    alice.backend.delete(f"snapshots/{unprotected}")
    assert alice.guard.verify() == 2  # its deletion is not detected
    later = alice.backup(advance=False)
    assert alice.guard.advance() == 3  # the next advance records it
    alice.backend.delete(f"snapshots/{later}")
    with pytest.raises(RollbackDetected) as exc:
        alice.guard.verify()
    assert f"hiding the newest snapshot {later[:8]}" in exc.value.message


def test_64_digit_mode_does_not_detect_a_deleted_snapshot_or_an_older_repository(
        tmp_path: Path) -> None:
    """Without a vault there is no second party (spec §10.4): documents the limit."""
    src = tmp_path / "chats"
    src.mkdir()

    def backup(repo: Repository, n: int) -> str:
        (src / "msgstore.db").write_bytes(f"chat {n}\n".encode() * 500)
        return repo.backup([src]).snapshot_id

    with open_backend(str(tmp_path / "repo"), create=True) as backend:
        with Repository.create(backend, K) as repo:
            first = backup(repo, 1)
        shutil.copytree(tmp_path / "repo", tmp_path / "old")
        with Repository.open(backend, K) as repo:
            backup(repo, 2)
            newest = backup(repo, 3)
            backend.delete(f"snapshots/{newest}")  # the provider hides the newest
            assert repo.check().ok and repo.find_snapshot("latest").id != newest
    with open_backend(str(tmp_path / "old")) as backend, Repository.open(backend, K) as repo:
        assert repo.check().ok  # an older genuine state is clean
        assert [s.id for s in repo.snapshots()] == [first]


def test_head_advance_is_compare_and_set(alice: Device) -> None:
    url, hdr = alice.client.url, {"authorization": f"Bearer {alice.token}"}  # type: ignore[attr-defined]
    tag = b64e(b"\x01" * 32)
    for wrong in (1, 3, 7):  # the head is at 1 after enable
        r = httpx.post(f"{url}/v1/accounts/alice/slots/{alice.slot}/head", headers=hdr, json={"counter": wrong, "tag": tag})
        assert r.status_code == 409, r.text
        assert r.json()["error"] == "head_conflict" and r.json()["counter"] == 1
    r = httpx.post(f"{url}/v1/accounts/alice/slots/{alice.slot}/head", headers=hdr, json={"counter": 2, "tag": tag})
    assert r.status_code == 200 and r.json() == {"counter": 2, "tag": tag}
    with pytest.raises(BackupHeadConflict) as exc:
        alice.client.advance_head(2, b"\x02" * 32)
    assert exc.value.current == 2
    assert alice.client.head() == (2, b"\x01" * 32)
    # Neither a new password nor deleting the record moves the head back.
    flows.change_password(alice.backend, K, alice.client, "another pw", bounds=SMALL_BOUNDS)
    assert alice.client.delete(flows.record_proof(K, "alice")) is True
    assert alice.client.head() == (2, b"\x01" * 32)


MALFORMED_HEADS = [
    {"counter": 2, "tag": b64e(b"x" * 31)},
    {"counter": 2, "tag": "%%%"},
    {"counter": "2", "tag": b64e(b"x" * 32)},
    {"counter": True, "tag": b64e(b"x" * 32)},
    {"counter": 0, "tag": b64e(b"x" * 32)},
    {"counter": 2**63, "tag": b64e(b"x" * 32)},
    {"counter": 2, "tag": b64e(b"x" * 32), "extra": 1},
    {"tag": b64e(b"x" * 32)},
    [],
]


def test_malformed_head_advance_is_400(alice: Device) -> None:
    for body in MALFORMED_HEADS:
        r = httpx.post(f"{alice.client.url}/v1/accounts/alice/slots/{alice.slot}/head", json=body,
                       headers={"authorization": f"Bearer {alice.token}"})  # type: ignore[attr-defined]
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"] in {"bad_request", "bad_message"}
    assert alice.client.head()[0] == 1


def test_concurrent_advances_exactly_one_wins(alice: Device) -> None:
    url, hdr = alice.client.url, {"authorization": f"Bearer {alice.token}"}  # type: ignore[attr-defined]
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def advance(i: int) -> None:
        with httpx.Client(timeout=30) as c:
            barrier.wait()
            r = c.post(f"{url}/v1/accounts/alice/slots/{alice.slot}/head", headers=hdr,
                       json={"counter": 2, "tag": b64e(bytes([i]) * 32)})
            statuses.append(r.status_code)

    threads = [threading.Thread(target=advance, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [409] * 7
    counter, tag = alice.client.head()
    assert counter == 2 and tag is not None and tag == tag[:1] * 32


def test_two_devices_advancing_at_once_both_land(alice: Device, tmp_path: Path) -> None:
    other = Device(tmp_path, tmp_path / "repo", alice.url, alice.token, "dev2",  # type: ignore[attr-defined]
                   slot=alice.slot)
    try:
        mine, theirs = alice.backup(advance=False), other.backup(advance=False)
        errors: list[BaseException] = []

        def run(dev: Device) -> None:
            try:
                dev.guard.advance()
            except Exception as exc:  # noqa: BLE001  # asserted empty below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(d,)) for d in (alice, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert alice.guard.verify() >= 2 and other.guard.verify() >= 2
        alice.backend.delete(f"snapshots/{theirs}")
        with pytest.raises(RollbackDetected):
            alice.guard.verify()
        assert mine
    finally:
        other.close()


def test_head_is_not_a_side_channel(alice: Device, live) -> None:  # type: ignore[no-untyped-def]
    server, auth = live
    bob = auth.create_account("bob", DetRng(b"bob"))
    url = f"{server.url}/v1/accounts/alice/slots/{alice.slot}/head"
    r = httpx.get(url, headers={"authorization": f"Bearer {bob}"})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    r = httpx.post(url, headers={"authorization": f"Bearer {bob}"},
                   json={"counter": 2, "tag": b64e(b"x" * 32)})
    assert r.status_code == 403
    assert httpx.get(url).status_code == 401
    own = httpx.get(url, headers={"authorization": f"Bearer {alice.token}"})  # type: ignore[attr-defined]
    assert set(own.json()) == {"counter", "tag"}  # a counter and a MAC, nothing else
    fresh = httpx.get(f"{server.url}/v1/accounts/bob/head", headers={"authorization": f"Bearer {bob}"})
    assert fresh.json() == {"counter": 0, "tag": None}


def _set_head_raw(store, account: str, counter: int, tag: bytes | None = None) -> None:  # type: ignore[no-untyped-def]
    """What a rogue vault operator can do in its own database: move or rewrite the head."""
    old = store.get_head(account)
    assert old is not None
    tag = old[1] if tag is None else tag
    if store.kind == "sqlite":
        import sqlite3

        conn = sqlite3.connect(store.path)
        with conn:
            conn.execute("UPDATE heads SET counter = ?, tag = ? WHERE account_id = ?",
                         (counter, tag, account))
        conn.close()
    else:
        import psycopg

        with psycopg.connect(store.dsn, autocommit=True) as conn:
            conn.execute("UPDATE vault_heads SET counter = %s, tag = %s WHERE account_id = %s",
                         (counter, tag, account))


# -- the CLI (one store is enough: the store logic is covered above) ---------------------


def run(*args: str, env: dict[str, str]):  # type: ignore[no-untyped-def]
    """``strongroom ARGS`` in-process, without a terminal, with exactly ``env``."""
    from click.testing import CliRunner

    from strongroom.cli.context import AppContext
    from strongroom.cli.main import cli

    app = AppContext(stdin_is_tty=lambda: False, env=env)
    return CliRunner().invoke(cli, list(args), obj=app, env=env, catch_exceptions=False)


@pytest.fixture
def sqlite_vault(tmp_path: Path, secrets):  # type: ignore[no-untyped-def]
    """A vault over SQLite served on loopback; yields (url, alice's token)."""
    from strongroom.vault.app import create_app
    from strongroom.vault.auth import TokenAuth
    from strongroom.vault.core import Vault, VaultPolicy
    from strongroom.vault.store_sqlite import SqliteStore

    from .conftest import LiveVault, small_config

    store = SqliteStore(tmp_path / "cli-vault.db")
    vault = Vault(store, secrets, small_config(), VaultPolicy(attempt_limit=10))
    auth = TokenAuth(store)
    token = auth.create_account("alice", DetRng(b"cli-alice"))
    try:
        with LiveVault(create_app(vault, auth)) as server:
            yield server.url, token
    finally:
        store.close()


def test_cli_detects_a_hidden_snapshot_and_forget_is_no_alarm(sqlite_vault, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import json

    url, token = sqlite_vault


    repo, src = tmp_path / "repo", tmp_path / "chats"
    src.mkdir()
    base = {"STRONGROOM_REPO": str(repo), "STRONGROOM_KEYRING": "no", "STRONGROOM_VAULT": url}
    dev1 = {**base, "STRONGROOM_CONFIG_DIR": str(tmp_path / "d1"), "STRONGROOM_VAULT_TOKEN": token,
            "STRONGROOM_PASSWORD": "pw"}
    assert run("init", "--password", env=dev1).exit_code == 0
    for i in range(3):
        (src / "msgstore.db").write_bytes(b"chat %d\n" % i * 300)
        r = run("backup", str(src), env=dev1)
        assert r.exit_code == 0, r.output
    r = run("forget", "--keep-last", "1", "--prune", env=dev1)
    assert r.exit_code == 0, r.output
    assert run("snapshots", env=dev1).exit_code == 0
    assert run("check", env=dev1).exit_code == 0

    # Without the vault token the backup still works, and says the check is off.
    no_token = {k: v for k, v in dev1.items() if k != "STRONGROOM_VAULT_TOKEN"}
    (src / "msgstore.db").write_bytes(b"chat 3\n" * 300)
    r = run("backup", str(src), env=no_token)
    assert r.exit_code == 0 and "rollback check skipped" in r.stderr

    (src / "msgstore.db").write_bytes(b"chat 4\n" * 300)
    r = run("--json", "backup", str(src), env=dev1)
    assert r.exit_code == 0, r.output
    newest = json.loads(r.stdout)["snapshot_id"]
    (repo / "snapshots" / newest).unlink()  # the provider hides the newest snapshot

    dev2 = {**base, "STRONGROOM_CONFIG_DIR": str(tmp_path / "d2"), "STRONGROOM_VAULT_TOKEN": token,
            "STRONGROOM_PASSWORD": "pw"}
    for args in (("restore", "latest", "--target", str(tmp_path / "out")), ("snapshots",), ("check",)):
        r = run(*args, env=dev2)
        assert r.exit_code == 17, (args, r.output)
        assert f"hiding the newest snapshot {newest[:8]}" in r.stderr
    assert not (tmp_path / "out").exists()  # nothing restored from the rolled-back listing


def _race_two_processes(tmp_path: Path, database: str | None) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from .conftest import VaultProcess

    first = VaultProcess(tmp_path, database=database).start()
    second = None
    try:
        token = first.create_account("alice")
        second = VaultProcess(tmp_path, database=database).start()
        urls = [first.url, second.url]
        for counter in (1, 2, 3):
            def advance(i: int, counter: int = counter) -> int:
                with VaultClient(urls[i % 2], "alice", token) as c:
                    try:
                        c.advance_head(counter, bytes([i]) * 32)
                        return 200
                    except BackupHeadConflict as exc:
                        assert exc.current in (counter - 1, counter)
                        return 409

            with ThreadPoolExecutor(max_workers=12) as pool:
                results = list(pool.map(advance, range(12)))
            assert results.count(200) == 1, results
            with VaultClient(urls[counter % 2], "alice", token) as c:
                got, tag = c.head()
            assert got == counter and tag is not None and tag == tag[:1] * 32
    finally:
        first.stop()
        if second is not None:
            second.stop()


@pytest.mark.vault
def test_two_vault_processes_race_for_the_head_sqlite(tmp_path: Path) -> None:
    _race_two_processes(tmp_path, None)


@pytest.mark.vault
@pytest.mark.postgres
def test_two_vault_processes_race_for_the_head_postgres(tmp_path: Path, pg_server) -> None:  # type: ignore[no-untyped-def]
    from .conftest import fresh_pg_dsn

    _race_two_processes(tmp_path, fresh_pg_dsn(pg_server))


def test_cli_a_deleted_locator_is_a_rollback_on_a_device_that_saw_password_mode(  # type: ignore[no-untyped-def]
        sqlite_vault, tmp_path: Path) -> None:
    """Issue 10 point 4: hiding the newest snapshot *and* deleting ext/vault.json made
    ``restore latest`` silently restore the older snapshot.  Now it is exit 17 on the
    device that knows the repository is in password mode; its own ``disable`` is no alarm."""
    import json

    url, token = sqlite_vault


    repo, src = tmp_path / "repo", tmp_path / "chats"
    src.mkdir()
    dev1 = {"STRONGROOM_REPO": str(repo), "STRONGROOM_KEYRING": "no", "STRONGROOM_VAULT": url,
            "STRONGROOM_CONFIG_DIR": str(tmp_path / "d1"), "STRONGROOM_VAULT_TOKEN": token,
            "STRONGROOM_PASSWORD": "pw"}
    assert run("init", "--password", env=dev1).exit_code == 0
    for i in range(2):
        (src / "msgstore.db").write_bytes(b"chat %d\n" % i * 300)
        r = run("--json", "backup", str(src), env=dev1)
        assert r.exit_code == 0, r.output
    newest = json.loads(r.stdout)["snapshot_id"]
    saved = (repo / "ext" / "vault.json").read_bytes()
    (repo / "snapshots" / newest).rename(tmp_path / "hidden")  # the provider hides it ...
    (repo / "ext" / "vault.json").unlink()  # ... and switches password mode "off"
    for args in (("restore", "latest", "--target", str(tmp_path / "out")), ("snapshots",),
                 ("check",), ("backup", str(src))):
        r = run(*args, env=dev1)
        assert r.exit_code == 17, (args, r.output)
        assert "vault locator" in r.stderr
    assert not (tmp_path / "out").exists()
    # Put back, then this device's own disable: afterwards no alarm in 64-digit mode.
    (tmp_path / "hidden").rename(repo / "snapshots" / newest)
    (repo / "ext" / "vault.json").write_bytes(saved)
    assert run("disable", "--password", "--yes", env=dev1).exit_code == 0
    assert run("snapshots", env=dev1).exit_code == 0


LOCATOR_TAMPERS = [
    ("created Infinity", lambda d: re.sub(rb'"created": \d+', b'"created": Infinity', d)),
    ("created NaN", lambda d: re.sub(rb'"created": \d+', b'"created": NaN', d)),
    ("created huge", lambda d: re.sub(rb'"created": \d+', b'"created": 1e999', d)),
    ("created a string", lambda d: re.sub(rb'"created": (\d+)', rb'"created": "\1"', d)),
    ("slot a number", lambda d: re.sub(rb'"slot": "[^"]*"', b'"slot": 7', d)),
    ("slot with a slash", lambda d: re.sub(rb'"slot": "[^"]*"', b'"slot": "../x"', d)),
    ("mac true", lambda d: re.sub(rb'"mac": "[^"]*"', b'"mac": true', d)),
    ("mac too short", lambda d: re.sub(rb'"mac": "[^"]*"', b'"mac": "AAAA"', d)),
    ("an array", lambda d: b"[]"),
    ("nested 200,000 deep", lambda d: b"[" * 200_000 + b"]" * 200_000),
    ("not UTF-8", lambda d: b"\xff\xfe" + d),
    ("a repeated key", lambda d: d.replace(b"{", b'{"format": "x", ', 1)),
]


@pytest.mark.parametrize(("what", "tamper"), LOCATOR_TAMPERS, ids=[t[0] for t in LOCATOR_TAMPERS])
def test_cli_a_tampered_locator_is_a_clear_error_and_spends_no_guess(  # type: ignore[no-untyped-def]
        sqlite_vault, tmp_path: Path, what: str, tamper) -> None:
    """Issue 10 point 3 / issue 11 point 2: the provider writes ext/vault.json."""
    url, token = sqlite_vault


    repo = tmp_path / "repo"
    dev1 = {"STRONGROOM_REPO": str(repo), "STRONGROOM_KEYRING": "no", "STRONGROOM_VAULT": url,
            "STRONGROOM_CONFIG_DIR": str(tmp_path / "d1"), "STRONGROOM_VAULT_TOKEN": token,
            "STRONGROOM_PASSWORD": "pw"}
    assert run("init", "--password", env=dev1).exit_code == 0
    locator = repo / "ext" / "vault.json"
    text = locator.read_bytes()
    slot = flows.VaultLocator.from_json(text).slot  # the untampered form parses
    locator.write_bytes(tamper(text))
    dev2 = {**dev1, "STRONGROOM_CONFIG_DIR": str(tmp_path / "d2")}
    r = run("restore", "latest", "--target", str(tmp_path / "out"), env=dev2)
    assert r.exit_code == 12, (what, r.output)
    assert "vault.json" in r.stderr and "Traceback" not in r.output
    status = httpx.get(f"{url}/v1/accounts/alice/slots/{slot}/record",
                       headers={"authorization": f"Bearer {token}"}).json()
    assert status["attempts_left"] == 10  # no guess was spent


def test_a_huge_locator_or_head_record_is_refused_unread(tmp_path: Path) -> None:
    """A 3 GiB ext/vault.json or head record costs no memory: its size is asked first."""
    from strongroom.errors import DataDamaged
    from strongroom.storage.registry import open_backend

    backend = open_backend(str(tmp_path / "repo"), create=True)
    backend.put(flows.LOCATOR, b"{}")
    with open(tmp_path / "repo" / "ext" / "vault.json", "r+b") as f:
        f.truncate(3 << 30)  # sparse: nothing is really written
    with pytest.raises(DataDamaged, match="was not read"):
        flows.read_locator(backend)
