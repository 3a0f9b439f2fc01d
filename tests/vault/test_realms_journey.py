"""The password journey over a 2-of-3 realm set, through ``strongroom.password`` as a chat
app calls it (docs/spec/realms.md §4, §8): enable, open on a new device, status, change,
repair, disable; the threshold backup head against a rolled-back realm and a hiding
provider.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom import password
from strongroom.api import BackupKey, Repository
from strongroom.errors import InvalidLogin, RealmsUnavailable, RollbackDetected
from strongroom.password import RealmAccess, RealmConfig
from strongroom.realms.locator import read_realm_locator
from strongroom.storage.memory import MemoryBackend
from strongroom.vault.realm import realm_key

from .conftest import SMALL_BOUNDS, SMALL_KSF
from .realm_helpers import ACCOUNT, InProcessRealm, realm_set


@pytest.fixture
def realms(tmp_path: Path) -> Iterator[list[InProcessRealm]]:
    with realm_set(tmp_path, 3, seed=b"journey") as rs:
        yield rs


@pytest.fixture
def devices(tmp_path: Path, realms: list[InProcessRealm]) -> Iterator[dict[str, RealmAccess]]:
    made: dict[str, RealmAccess] = {}

    def access(name: str) -> RealmAccess:
        if name not in made:
            made[name] = RealmAccess(
                [RealmConfig(r.url, r.token, r.vault.server_public_key) for r in realms],
                threshold=2, account=ACCOUNT, device_dir=tmp_path / name / "heads",
                ksf=SMALL_KSF, bounds=SMALL_BOUNDS)
        return made[name]

    yield {n: access(n) for n in ("phone", "tablet", "laptop")}
    for a in made.values():
        a.close()


def _data(tmp: Path, text: str) -> Path:
    src = tmp / "chats"
    src.mkdir(exist_ok=True)
    (src / "msg.txt").write_text(text)
    return src


def _enabled_repo(tmp: Path, access: RealmAccess) -> tuple[MemoryBackend, BackupKey]:
    backend, key = MemoryBackend(), BackupKey.generate()
    with Repository.create(backend, key) as repo:
        password.enable(repo, access, "correct horse")
        repo.backup([_data(tmp, "one")])
    return backend, key


def test_journey_over_three_realms(tmp_path: Path, realms: list[InProcessRealm],
                                   devices: dict[str, RealmAccess]) -> None:
    backend, key = _enabled_repo(tmp_path, devices["phone"])
    loc = read_realm_locator(backend)
    assert loc is not None and loc.threshold == 2 and len(loc.realms) == 3
    with password.open_with_password(backend, devices["tablet"], "correct horse") as repo:
        assert repo.backup_key.secret_bytes() == key.secret_bytes()
        assert len(repo.snapshots()) == 1  # the threshold head verified first
        repo.backup([_data(tmp_path, "two")])
    st = password.status(backend, devices["tablet"])
    assert st.enabled and st.threshold == 2 and st.attempts_left == 10
    assert [(r.index, r.attempts_left) for r in st.realms] == [(1, 10), (2, 10), (3, 10)]
    with pytest.raises(InvalidLogin) as wrong:
        password.recover_key(backend, devices["laptop"], "wrong horse")
    assert wrong.value.attempts_left == 9
    assert [r.attempts_left for r in password.status(backend, devices["laptop"]).realms] == [9] * 3
    with Repository.open(backend, key, vault=devices["phone"]) as repo:
        password.change_password(repo, devices["phone"], "battery staple")
    with pytest.raises(InvalidLogin):
        password.recover_key(backend, devices["laptop"], "correct horse")
    got = password.recover_key(backend, devices["laptop"], "battery staple")
    assert got is not None and got.secret_bytes() == key.secret_bytes()
    with Repository.open(backend, key, vault=devices["phone"]) as repo:
        assert password.disable(repo, devices["phone"]) is True
    assert read_realm_locator(backend) is None
    for r in realms:
        assert r.vault.store.get(realm_key(ACCOUNT, loc.slot)) is None


def test_a_realm_down_during_a_change_is_left_out_then_repaired(
        tmp_path: Path, realms: list[InProcessRealm], devices: dict[str, RealmAccess]) -> None:
    backend, key = _enabled_repo(tmp_path, devices["phone"])
    third = realms[2]
    third.stop()
    # By default every realm must take a change: nothing is sent while one is down.
    with Repository.open(backend, key, vault=devices["phone"]) as repo, \
            pytest.raises(RealmsUnavailable, match="nothing was sent"):
        password.change_password(repo, devices["phone"], "new pw")
    assert password.recover_key(backend, devices["tablet"], "correct horse") is not None
    # A device that settles for two: the change goes through and names the third.
    told: list[str] = []
    devices["phone"].register_threshold, devices["phone"].on_skip = 2, told.append
    with Repository.open(backend, key, vault=devices["phone"]) as repo:
        password.change_password(repo, devices["phone"], "new pw")
    assert len(told) == 1 and "missed the change" in told[0] and third.url in told[0]
    # The third realm comes back with the old registration only: named and left out
    # before any guess is spent there.
    third.start()
    warnings: list[str] = []
    devices["tablet"].on_skip = warnings.append
    got = password.recover_key(backend, devices["tablet"], "new pw")
    assert got is not None and got.secret_bytes() == key.secret_bytes()
    assert any("stale record" in w and third.url in w for w in warnings)
    # Repaired on the next contact: opening with the password re-registers the set.
    warnings.clear()
    with password.open_with_password(backend, devices["tablet"], "new pw") as repo:
        assert len(repo.snapshots()) == 1
    assert any(w.startswith("repaired") and third.url in w for w in warnings)
    warnings.clear()
    password.recover_key(backend, devices["tablet"], "new pw")
    assert warnings == []
    assert [r.attempts_left for r in password.status(backend, devices["tablet"]).realms] == [10] * 3


def test_enable_below_the_register_threshold_leaves_nothing(
        tmp_path: Path, realms: list[InProcessRealm], devices: dict[str, RealmAccess]) -> None:
    realms[1].stop()
    backend, key = MemoryBackend(), BackupKey.generate()
    with Repository.create(backend, key) as repo, pytest.raises(RealmsUnavailable):
        password.enable(repo, devices["phone"], "pw")
    assert read_realm_locator(backend) is None
    for r in (realms[0], realms[2]):
        rows = r.vault.store.list_accounts()
        assert all("\x1e" not in name for name, _s, _u in rows)


def _set_head(realm: InProcessRealm, slot: str, column: str, value: object) -> None:
    """What a database writer does to a realm's head row (``counter`` or ``tag``)."""
    conn = sqlite3.connect(realm.vault.store.path)  # type: ignore[attr-defined]
    with conn:
        conn.execute(f"UPDATE heads SET {column} = ? WHERE account_id = ?",
                     (value, f"{ACCOUNT}\x1f{slot}"))
    conn.close()


def _roll_back_head(realm: InProcessRealm, slot: str, counter: int) -> None:
    _set_head(realm, slot, "counter", counter)


def test_one_rolled_back_realm_cannot_hide_snapshots_but_the_provider_is_caught(
        tmp_path: Path, realms: list[InProcessRealm], devices: dict[str, RealmAccess]) -> None:
    backend, key = _enabled_repo(tmp_path, devices["phone"])
    with Repository.open(backend, key, vault=devices["phone"]) as repo:
        repo.backup([_data(tmp_path, "two")])
        newest = repo.snapshots()[-1].id
    loc = read_realm_locator(backend)
    assert loc is not None
    # Realm 1's operator rolls its head back to before the second backup, and the provider
    # hides that backup: the two other realms outvote the rolled-back one.
    _roll_back_head(realms[0], loc.slot, 2)
    with Repository.open(backend, key, vault=devices["tablet"]) as repo:
        assert [s.id for s in repo.snapshots()][-1] == newest  # outvoted: no false alarm
    backend.delete(f"snapshots/{newest}")
    with Repository.open(backend, key, vault=devices["laptop"]) as repo, \
            pytest.raises(RollbackDetected, match=newest[:8]):
        repo.snapshots()


def test_moving_from_one_vault_to_a_realm_set_uploads_nothing(
        tmp_path: Path, devices: dict[str, RealmAccess]) -> None:
    from strongroom.client import flows
    from strongroom.password import VaultAccess

    from .conftest import SMALL_BOUNDS as BOUNDS

    (tmp_path / "single").mkdir()
    with realm_set(tmp_path / "single", 1, seed=b"single") as (single,):
        old = VaultAccess(single.url, single.token, account=ACCOUNT, ksf=SMALL_KSF, bounds=BOUNDS,
                          device_dir=tmp_path / "phone" / "heads")
        backend, key = MemoryBackend(), BackupKey.generate()
        with Repository.create(backend, key) as repo:
            password.enable(repo, old, "correct horse")
            repo.backup([_data(tmp_path, "one")])
        old_slot = flows.read_locator(backend).slot  # type: ignore[union-attr]
        before = {n: backend.get(n) for n in backend.list("") if not n.startswith("ext/")}
        with Repository.open(backend, key, vault=old) as repo:
            password.move_to_realms(repo, old, devices["phone"], "new horse")
        after = {n: backend.get(n) for n in backend.list("") if not n.startswith("ext/")}
        assert after == before  # no repository object re-uploaded or changed
        assert single.vault.status(ACCOUNT, slot=old_slot).exists is False  # old slot deleted
        old.close()
    with password.open_with_password(backend, devices["tablet"], "new horse") as repo:
        assert repo.backup_key.secret_bytes() == key.secret_bytes()
        assert len(repo.snapshots()) == 1


def test_a_realm_down_during_backups_is_brought_up_to_the_head(
        tmp_path: Path, realms: list[InProcessRealm], devices: dict[str, RealmAccess]) -> None:
    backend, key = _enabled_repo(tmp_path, devices["phone"])  # head 2 (enable, backup)
    loc = read_realm_locator(backend)
    assert loc is not None
    realms[2].stop()
    with Repository.open(backend, key, vault=devices["phone"]) as repo:
        repo.backup([_data(tmp_path, "two")])   # taken by realms 1 and 2: head 3
        repo.backup([_data(tmp_path, "three")])  # head 4
    assert realms[2].vault.head(ACCOUNT, slot=loc.slot).counter == 2
    realms[2].start()
    with Repository.open(backend, key, vault=devices["phone"]) as repo:
        repo.backup([_data(tmp_path, "four")])  # head 5: realm 3 is brought up by steps
    heads = [r.vault.head(ACCOUNT, slot=loc.slot) for r in realms]
    assert [h.counter for h in heads] == [5, 5, 5]
    assert len({h.tag for h in heads}) == 1


def _forge_head_tag(realm: InProcessRealm, slot: str, tag: bytes) -> None:
    _set_head(realm, slot, "tag", tag)


def test_a_lying_realm_tied_with_the_only_honest_one_at_the_head_raises_no_false_alarm(
        tmp_path: Path, realms: list[InProcessRealm], devices: dict[str, RealmAccess]) -> None:
    """realms.md §8: realm 3 missed the last advance; realm 2 reports the top counter with
    a forged tag (bytewise smaller than the authentic one, so it wins the tie-break).
    The authentic tag of realm 1 is found by authenticating each candidate."""
    backend, key = _enabled_repo(tmp_path, devices["phone"])  # head 2 at every realm
    loc = read_realm_locator(backend)
    assert loc is not None
    realms[2].stop()
    with Repository.open(backend, key, vault=devices["phone"]) as repo:
        repo.backup([_data(tmp_path, "two")])  # head 3 at realms 1 and 2
        newest = repo.snapshots()[-1].id
    realms[2].start()
    _forge_head_tag(realms[1], loc.slot, b"\x00" * 32)
    heads = [r.vault.head(ACCOUNT, slot=loc.slot) for r in realms]
    assert [h.counter for h in heads] == [3, 3, 2] and heads[1].tag != heads[0].tag
    with Repository.open(backend, key, vault=devices["tablet"]) as repo:
        assert [s.id for s in repo.snapshots()][-1] == newest  # no false RollbackDetected
    # The lie does not blind the check: the provider hiding that backup is still caught.
    backend.delete(f"snapshots/{newest}")
    with Repository.open(backend, key, vault=devices["laptop"]) as repo, \
            pytest.raises(RollbackDetected, match=newest[:8]):
        repo.snapshots()
    # Two realms lying together (k of them, outside f < k): an alarm, never a silent pass.
    _forge_head_tag(realms[0], loc.slot, b"\x01" * 32)
    with Repository.open(backend, key, vault=devices["laptop"]) as repo, \
            pytest.raises(RollbackDetected):
        repo.snapshots()


def test_a_realm_that_missed_more_than_64_advances_is_caught_up_in_one_step(
        tmp_path: Path, realms: list[InProcessRealm], devices: dict[str, RealmAccess]) -> None:
    """realms.md §8: realm 3 is at head 2 while the others are at 100 (an authentic head
    with its record); the next advance brings realm 3 to 101 with one
    catch-up request (the record proof), not 99 steps."""
    from strongroom.client.rollback import HeadState, head_key, listing, record_name

    backend, key = _enabled_repo(tmp_path, devices["phone"])  # head 2 at every realm
    loc = read_realm_locator(backend)
    assert loc is not None
    with Repository.open(backend, key) as repo:
        newest, ids = listing(repo.lister())
        state = HeadState(100, newest, ids)
        tag = state.tag(head_key(key), repo.id)
        backend.put(record_name(100, tag), state.to_json(repo.id))  # as a device writes it
    for r in realms[:2]:
        conn = sqlite3.connect(r.vault.store.path)  # type: ignore[attr-defined]
        with conn:
            conn.execute("UPDATE heads SET counter = 100, tag = ? WHERE account_id = ?",
                         (tag, f"{ACCOUNT}\x1f{loc.slot}"))
        conn.close()
    assert [r.vault.head(ACCOUNT, slot=loc.slot).counter for r in realms] == [100, 100, 2]
    with Repository.open(backend, key, vault=devices["tablet"]) as repo:
        repo.backup([_data(tmp_path, "two")])  # head 101
    heads = [r.vault.head(ACCOUNT, slot=loc.slot) for r in realms]
    assert [h.counter for h in heads] == [101, 101, 101]
    assert len({h.tag for h in heads}) == 1
    # Realm 3 alone now vouches with the others: with realm 1 down the head still reads.
    realms[0].stop()
    with Repository.open(backend, key, vault=devices["laptop"]) as repo:
        assert len(repo.snapshots()) == 2
