"""Issue 10, points 3-6: slots, parameters from the vault, the locator's MAC, check before write.

Every test goes through the library's password journey (``strongroom.password``)
against a live vault (SQLite and PostgreSQL stores), as a chat app would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom import password
from strongroom.api import BackupKey, Repository
from strongroom.client import flows
from strongroom.client.vault_client import VaultClient
from strongroom.errors import (
    AttemptsExhausted,
    FormatError,
    InvalidLogin,
    RollbackDetected,
    UsageError,
    VaultError,
    VaultProtocolError,
)
from strongroom.password import VaultAccess
from strongroom.storage.memory import MemoryBackend
from strongroom.vault.params import DEFAULT_KSF, KsfBounds

from .conftest import SMALL_BOUNDS, SMALL_KSF, DetRng


@pytest.fixture
def acct(live, tmp_path: Path) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Alice's token at a live vault, and a device directory."""
    server, auth = live
    token = auth.create_account("alice", DetRng(b"alice"))
    made: list[VaultAccess] = []
    yield {"url": server.url, "token": token, "dir": tmp_path, "made": made}
    for access in made:
        access.close()


def _access(a: dict[str, Any], device: str = "phone", **kw: Any) -> VaultAccess:
    """A device's access (closed when the test ends)."""
    kw.setdefault("ksf", SMALL_KSF)
    kw.setdefault("bounds", SMALL_BOUNDS)
    access = VaultAccess(a["url"], a["token"], device_dir=a["dir"] / device / "heads", **kw)
    a["made"].append(access)
    return access


def _new_repo(a: dict[str, Any], pw: str, key: BackupKey | None = None) -> tuple[MemoryBackend, BackupKey]:
    backend, key = MemoryBackend(), key or BackupKey.generate()
    access = _access(a)
    with Repository.create(backend, key) as repo:
        password.enable(repo, access, pw)
    access.close()
    return backend, key


def _slot(backend: MemoryBackend) -> str:
    loc = flows.read_locator(backend)
    assert loc is not None
    return loc.slot


def _left(a: dict[str, Any], backend: MemoryBackend) -> int:
    with VaultClient(a["url"], "alice", a["token"], slot=_slot(backend)) as c:
        return int(c.status()["attempts_left"])


def test_two_backups_on_one_account_have_their_own_slots(acct: dict[str, Any]) -> None:
    """Point 5: a second backup never takes over the first one's record, counter or head."""
    phone, k1 = _new_repo(acct, "phone pw")
    tablet, k2 = _new_repo(acct, "tablet pw")
    assert _slot(phone) != _slot(tablet)
    access = _access(acct, "new-device")
    # Each password opens its own backup; a wrong guess on one never touches the other.
    for _ in range(3):
        with pytest.raises(InvalidLogin):
            password.open_with_password(tablet, access, "phone pw")
    assert _left(acct, tablet) == 7 and _left(acct, phone) == 10
    with password.open_with_password(phone, access, "phone pw") as repo:
        assert repo.backup_key == k1 and repo.rollback_protected
    with password.open_with_password(tablet, access, "tablet pw") as repo:
        assert repo.backup_key == k2
    st = password.status(phone, access)
    assert st.enabled and st.slot == _slot(phone) and st.attempts_left == 10
    assert {x.slot for x in st.slots} == {_slot(phone), _slot(tablet)}
    # Ten wrong guesses destroy the tablet's key only.
    for _ in range(10):
        with pytest.raises((InvalidLogin, AttemptsExhausted)):
            password.open_with_password(tablet, access, "wrong")
    with pytest.raises(AttemptsExhausted):
        password.open_with_password(tablet, access, "tablet pw")
    with password.open_with_password(phone, access, "phone pw") as repo:
        assert repo.backup_key == k1
    # Disable deletes only its own slot.
    with Repository.open(phone, k1, vault=_access(acct)) as repo:
        assert password.disable(repo, _access(acct)) is True
    assert [x.slot for x in password.status(tablet, access).slots] == [_slot(tablet)]
    access.close()


def test_a_fresh_start_after_disable_gets_a_new_slot_and_head(acct: dict[str, Any]) -> None:
    backend, key = _new_repo(acct, "one")
    first = _slot(backend)
    access = _access(acct)
    with Repository.open(backend, key, vault=access) as repo:
        password.disable(repo, access)
        loc = password.enable(repo, access, "two")
    assert loc.slot != first
    with VaultClient(acct["url"], "alice", acct["token"], slot=loc.slot) as c:
        assert c.head()[0] == 1  # a new head, not the old slot's
    with password.open_with_password(backend, _access(acct, "other"), "two") as repo:
        assert repo.backup_key == key
    access.close()


def test_enable_twice_is_refused_before_anything_is_written(acct: dict[str, Any]) -> None:
    backend, key = _new_repo(acct, "one")
    before = backend.get(flows.LOCATOR)
    access = _access(acct)
    with Repository.open(backend, key, vault=access) as repo, pytest.raises(UsageError,
                                                                            match="already"):
        password.enable(repo, access, "two")
    assert backend.get(flows.LOCATOR) == before
    assert len(password.status(backend, access).slots) == 1
    access.close()


def test_parameters_come_from_the_vault_and_are_bounded(acct: dict[str, Any]) -> None:
    """Point 3: storage has no parameters to plant; weak ones from the vault cost no guess."""
    backend, key = _new_repo(acct, "pw")  # registered with SMALL_KSF
    doc = json.loads(backend.get(flows.LOCATOR))
    assert "opaque" not in doc and "ksf" not in doc
    # A device with the default bounds refuses the record's small parameters up front.
    strict = _access(acct, "strict", bounds=KsfBounds())
    with pytest.raises(VaultProtocolError, match="no attempt was spent"):
        password.open_with_password(backend, strict, "pw")
    assert _left(acct, backend) == 10
    # change-password takes the caller's parameters (default: DEFAULT_KSF), never storage's.
    with Repository.open(backend, key) as repo:
        password.change_password(repo, _access(acct, ksf=None), "new pw")
    with VaultClient(acct["url"], "alice", acct["token"], slot=_slot(backend)) as c:
        assert c.status()["ksf"] == DEFAULT_KSF
    with password.open_with_password(backend, strict, "new pw") as repo:
        assert repo.backup_key == key
    strict.close()


def test_weaker_parameters_than_the_bounds_are_refused_at_enable(acct: dict[str, Any]) -> None:
    backend, key = MemoryBackend(), BackupKey.generate()
    with Repository.create(backend, key) as repo, pytest.raises(UsageError, match="refused"):
        password.enable(repo, _access(acct, bounds=KsfBounds()), "pw")
    assert flows.read_locator(backend) is None


@pytest.mark.parametrize("field", ["slot", "created", "url", "mac"])
def test_a_rewritten_locator_fails_its_mac(acct: dict[str, Any], field: str) -> None:
    """After recovery (and on a device with K) the locator is checked under a key from K."""
    backend, key = _new_repo(acct, "pw")
    other, _k = _new_repo(acct, "other")
    doc = json.loads(backend.get(flows.LOCATOR))
    doc[field] = {"slot": _slot(other), "created": doc["created"] + 1,
                  "url": doc["url"] + "/", "mac": "B" * 43}[field]
    backend.put(flows.LOCATOR, json.dumps(doc).encode())
    with pytest.raises(FormatError, match="does not authenticate"):
        Repository.open(backend, key, vault=_access(acct)).close()
    if field in ("created", "mac"):  # the same slot: the right password, then the MAC check
        with pytest.raises(FormatError, match="does not authenticate"):
            password.open_with_password(backend, _access(acct, "new"), "pw")
        assert _left(acct, backend) == 10  # the login succeeded: the counter reset
    if field == "slot":  # the other backup's slot: the guess is wrong there, then refused
        with pytest.raises(InvalidLogin):
            password.open_with_password(backend, _access(acct, "new"), "pw")


def test_a_put_back_locator_of_a_disabled_slot_is_rollback(acct: dict[str, Any]) -> None:
    """Disable, enable again; the provider restores the old locator (and old snapshots)."""
    backend, key = _new_repo(acct, "one")
    old_locator = backend.get(flows.LOCATOR)
    access = _access(acct)
    with Repository.open(backend, key, vault=access) as repo:
        password.disable(repo, access)
        password.enable(repo, access, "two", clock=lambda: 2_000_000_000.0)
    backend.put(flows.LOCATOR, old_locator)
    with pytest.raises(RollbackDetected, match="older password slot"):
        Repository.open(backend, key, vault=_access(acct)).close()
    access.close()


def test_rollback_detection_is_on_in_the_library(acct: dict[str, Any], tmp_path: Path) -> None:
    """Point 4: hiding a snapshot or deleting the locator is caught by every library caller."""
    backend, key = _new_repo(acct, "pw")
    src = tmp_path / "chats"
    src.mkdir()
    (src / "msgstore.db").write_bytes(b"chat" * 1000)
    access = _access(acct)
    with Repository.open(backend, key, vault=access) as repo:
        newest = repo.backup([src]).snapshot_id
    with VaultClient(acct["url"], "alice", acct["token"], slot=_slot(backend)) as c:
        assert c.head()[0] == 2  # the library advanced it
    saved = backend.get(f"snapshots/{newest}")
    backend.delete(f"snapshots/{newest}")
    with Repository.open(backend, key, vault=_access(acct)) as repo, pytest.raises(
            RollbackDetected, match="hiding the newest"):
        repo.restore("latest", tmp_path / "out")
    backend.put(f"snapshots/{newest}", saved)
    backend.delete(flows.LOCATOR)
    with pytest.raises(RollbackDetected, match="vault locator"):
        Repository.open(backend, key, vault=_access(acct)).close()
    # A device that never saw password mode cannot tell, and says nothing.
    Repository.open(backend, key, vault=_access(acct, "fresh")).close()
    access.close()


def test_without_a_token_the_check_raises_unless_skipping_is_allowed(acct: dict[str, Any]) -> None:
    backend, key = _new_repo(acct, "pw")
    blind = VaultAccess(acct["url"], None, device_dir=acct["dir"] / "blind")
    with pytest.raises(VaultError, match="rollback check skipped"):
        Repository.open(backend, key, vault=blind).close()
    heard: list[str] = []
    lenient = VaultAccess(acct["url"], None, on_skip=heard.append)
    with Repository.open(backend, key, vault=lenient) as repo:
        assert not repo.rollback_protected
    assert heard and "no vault token" in heard[0]


# -- check before write: each flow interrupted at every step (issue 10 point 6) ----------


class _Cut(Exception):
    pass


class _CuttingBackend(MemoryBackend):
    """Storage whose writes fail once the test says so (a full disk, a dead provider)."""

    cut = False

    def put(self, name: str, data: bytes) -> None:
        if self.cut:
            raise _Cut(name)
        super().put(name, data)

    def delete(self, name: str) -> None:
        if self.cut:
            raise _Cut(name)
        super().delete(name)


class _CuttingClient(VaultClient):
    """A vault client whose ``n``-th request fails (the connection dies)."""

    def __init__(self, *args: Any, fail_at: int, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.fail_at, self.calls = fail_at, [0]

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        self.calls[0] += 1
        if self.calls[0] == self.fail_at:
            raise _Cut(f"{method} {path}")
        return super()._call(method, path, body)


def _cut_points(a: dict[str, Any], run: Any) -> int:
    """Run ``run(client)`` with the n-th vault request failing, n = 1, 2, ...; return n of the
    first complete run."""
    for n in range(1, 50):
        client = _CuttingClient(a["url"], "alice", a["token"], fail_at=n)
        try:
            run(client, n)
        except _Cut:
            continue
        finally:
            client.close()
        return n
    raise AssertionError("never completed")


def test_change_password_interrupted_at_every_step_keeps_one_working_password(
        acct: dict[str, Any]) -> None:
    backend, key = _new_repo(acct, "old")
    results = []

    def run(client: VaultClient, n: int) -> None:
        try:
            flows.change_password(backend, key, client, f"new{n}", ksf=SMALL_KSF,
                                  bounds=SMALL_BOUNDS)
        finally:
            access = _access(acct, f"d{n}")
            try:
                with password.open_with_password(backend, access, "old") as repo:
                    results.append((n, "old", repo.backup_key == key))
            except InvalidLogin:
                with password.open_with_password(backend, access, f"new{n}") as repo:
                    results.append((n, "new", repo.backup_key == key))
            access.close()

    done = _cut_points(acct, run)
    assert done > 3 and all(ok for _n, _which, ok in results)
    # Until the registration commits the old password works; the complete run has the new one.
    assert results[0][1] == "old" and results[-1] == (done, "new", True)


def test_enable_interrupted_at_every_step_leaves_the_repository_as_it_was(
        acct: dict[str, Any]) -> None:
    backend, key = MemoryBackend(), BackupKey.generate()
    Repository.create(backend, key).close()

    def run(client: VaultClient, n: int) -> None:
        try:
            flows.enable(backend, key, client, "pw", ksf=SMALL_KSF, bounds=SMALL_BOUNDS)
        except _Cut:
            assert flows.read_locator(backend) is None  # not half-enabled
            raise

    _cut_points(acct, run)
    with password.open_with_password(backend, _access(acct, "new"), "pw") as repo:
        assert repo.backup_key == key


def test_enable_whose_locator_write_fails_keeps_64_digit_mode(acct: dict[str, Any]) -> None:
    backend, key = _CuttingBackend(), BackupKey.generate()
    Repository.create(backend, key).close()
    backend.cut = True
    with Repository.open(backend, key) as repo, pytest.raises(_Cut):
        password.enable(repo, _access(acct), "pw")
    backend.cut = False
    assert flows.read_locator(backend) is None
    with Repository.open(backend, key, vault=_access(acct)) as repo:
        assert not repo.rollback_protected  # nothing half-done that would raise an alarm


def test_disable_interrupted_before_the_vault_delete_keeps_the_password(
        acct: dict[str, Any]) -> None:
    backend, key = _new_repo(acct, "pw")

    def run(client: VaultClient, n: int) -> None:
        try:
            flows.disable(backend, client, key)
        except _Cut:
            if flows.read_locator(backend) is not None:
                with password.open_with_password(backend, _access(acct, f"d{n}"), "pw") as r:
                    assert r.backup_key == key
            raise

    _cut_points(acct, run)
    assert flows.read_locator(backend) is None


def test_disable_whose_locator_delete_fails_finishes_when_run_again(
        acct: dict[str, Any]) -> None:
    backend, key = _CuttingBackend(), BackupKey.generate()
    access = _access(acct)
    with Repository.create(backend, key) as repo:
        password.enable(repo, access, "pw")
        backend.cut = True
        with pytest.raises(_Cut):
            password.disable(repo, access)
        backend.cut = False
        assert flows.read_locator(backend) is not None  # the vault's slot is gone already
        assert password.disable(repo, access) is False  # again: finishes, nothing to delete
    assert flows.read_locator(backend) is None
    access.close()


def test_a_rewritten_vault_key_in_the_locator_spends_no_guess(acct: dict[str, Any]) -> None:
    backend, _key = _new_repo(acct, "pw")
    doc = json.loads(backend.get(flows.LOCATOR))
    doc["server_public_key"] = "A" * 43
    backend.put(flows.LOCATOR, json.dumps(doc).encode())
    with pytest.raises(VaultProtocolError, match="different public key"):
        password.open_with_password(backend, _access(acct, "new"), "pw")
    assert _left(acct, backend) == 10
