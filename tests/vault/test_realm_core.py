"""The realm side of threshold realms (docs/spec/realms.md §5, §6) on both record stores.

Counted before answered, the limit, unlock with a constant-time tag compare,
erase at the limit, the record proof to replace or delete, an edited counter
row refused (never reset), malformed input not counted.
"""

from __future__ import annotations

import hashlib

import pytest

from strongroom.errors import (
    AttemptsExhausted,
    InvalidLogin,
    RealmNotRegistered,
    VaultAuthError,
    VaultProtocolError,
)
from strongroom.opaque import _group, dleq
from strongroom.vault.core import Vault
from strongroom.vault.counter import State
from strongroom.vault.realm import Realm, RealmRegistration, realm_key
from strongroom.vault.store import RecordRow

from .conftest import SMALL_KSF, DetRng

SLOT = "0123456789abcdef0123456789abcdef"
PROOF = b"P" * 32
TAG = b"T" * 32
B = _group.scalar_mult_base((1).to_bytes(32, "little"))


def _registration(rng: DetRng, index: int = 1) -> RealmRegistration:
    s_i = _group.random_scalar(rng)
    return RealmRegistration(index, s_i, _group.scalar_mult_base(s_i), TAG,
                             _group.random_scalar(rng), b"C" * 60,
                             hashlib.sha256(PROOF).digest(), dict(SMALL_KSF))


def _element(rng: DetRng) -> bytes:
    return _group.scalar_mult_base(_group.random_scalar(rng))


def test_evaluate_counts_and_proves_then_unlock_releases_and_resets(vault: Vault) -> None:
    realm, rng = Realm(vault), DetRng(b"t1")
    reg = _registration(rng)
    realm.register("alice", SLOT, reg)
    st = realm.status("alice", SLOT)
    assert (st.exists, st.locked, st.attempts_left, st.index, st.ksf) == (
        True, False, 10, 1, SMALL_KSF)
    m = _element(rng)
    ev = realm.evaluate("alice", SLOT, m)
    assert ev.evaluation == _group.scalar_mult(reg.oprf_share, m)
    assert dleq.verify_proof(B, reg.public_share, [m], [ev.evaluation], ev.proof)
    assert ev.attempts_left == 9
    # The count is in the store, committed, before the answer came back.
    row = vault.store.get(realm_key("alice", SLOT))
    assert row is not None and row.used == 1
    with pytest.raises(InvalidLogin) as wrong:
        realm.unlock("alice", SLOT, b"X" * 32)
    assert wrong.value.attempts_left == 9
    rel = realm.unlock("alice", SLOT, TAG)
    assert (rel.key_share, rel.wrapped_key) == (reg.key_share, b"C" * 60)
    assert realm.status("alice", SLOT).attempts_left == 10


def test_limit_then_last_unlock_still_works_and_a_wrong_one_erases(vault: Vault) -> None:
    realm, rng = Realm(vault), DetRng(b"t2")
    realm.register("alice", SLOT, _registration(rng))
    m = _element(rng)
    for left in range(9, -1, -1):
        assert realm.evaluate("alice", SLOT, m).attempts_left == left
    with pytest.raises(AttemptsExhausted):
        realm.evaluate("alice", SLOT, m)
    assert realm.status("alice", SLOT).attempts_left == 0
    # The owner's last evaluation can still unlock (a tag match resets)...
    realm.unlock("alice", SLOT, TAG)
    for _ in range(10):
        realm.evaluate("alice", SLOT, m)
    # ...but a wrong tag at the limit erases the record for good.
    with pytest.raises(AttemptsExhausted):
        realm.unlock("alice", SLOT, b"X" * 32)
    row = vault.store.get(realm_key("alice", SLOT))
    assert row is not None and row.state is State.LOCKED and row.sealed is None
    with pytest.raises(AttemptsExhausted):
        realm.unlock("alice", SLOT, TAG)
    assert realm.status("alice", SLOT).locked


def test_replace_and_delete_need_the_record_proof(vault: Vault) -> None:
    realm, rng = Realm(vault), DetRng(b"t3")
    realm.register("alice", SLOT, _registration(rng))
    with pytest.raises(VaultAuthError):
        realm.register("alice", SLOT, _registration(rng))
    with pytest.raises(VaultAuthError):
        realm.delete("alice", SLOT, b"Q" * 32)
    realm.register("alice", SLOT, _registration(rng, 2), proof=PROOF)
    assert realm.status("alice", SLOT).index == 2
    assert realm.delete("alice", SLOT, PROOF) is True
    assert realm.status("alice", SLOT).exists is False
    with pytest.raises(RealmNotRegistered):
        realm.evaluate("alice", SLOT, _element(rng))


def test_malformed_input_is_refused_and_not_counted(vault: Vault) -> None:
    realm, rng = Realm(vault), DetRng(b"t4")
    realm.register("alice", SLOT, _registration(rng))
    for bad in (bytes(32), b"\xff" * 32, b"short"):
        with pytest.raises(VaultProtocolError):
            realm.evaluate("alice", SLOT, bad)
    assert realm.status("alice", SLOT).attempts_left == 10
    good = _registration(rng)
    for broken in (
        RealmRegistration(1, good.oprf_share, _element(rng), TAG, good.key_share, b"C",
                          good.proof_verifier, dict(SMALL_KSF)),  # P_i != s_i*B
        RealmRegistration(17, good.oprf_share, good.public_share, TAG, good.key_share, b"C",
                          good.proof_verifier, dict(SMALL_KSF)),
        RealmRegistration(1, bytes(32), good.public_share, TAG, good.key_share, b"C",
                          good.proof_verifier, dict(SMALL_KSF)),
        RealmRegistration(1, good.oprf_share, good.public_share, TAG, good.key_share, b"C",
                          good.proof_verifier, {"memory_kib": 1, "iterations": 1,
                                                "parallelism": 1}),
    ):
        with pytest.raises(VaultProtocolError):
            realm.register("bob", SLOT, broken)
    assert realm.status("bob", SLOT).exists is False


def test_an_edited_counter_is_refused_never_reset(vault: Vault) -> None:
    realm, rng = Realm(vault), DetRng(b"t5")
    realm.register("alice", SLOT, _registration(rng))
    m = _element(rng)
    for _ in range(7):
        realm.evaluate("alice", SLOT, m)
    key = realm_key("alice", SLOT)
    row = vault.store.get(key)
    assert row is not None and row.used == 7
    edited = RecordRow(row.account_id, row.state, 0, row.limit, row.generation, row.sealed,
                       row.mac)

    def put(_cur: object, _s: object) -> object:
        from strongroom.vault.store import Mutation

        return Mutation(row=edited)

    vault.store.transact(key, put)  # type: ignore[arg-type]
    for call in (lambda: realm.evaluate("alice", SLOT, m), lambda: realm.unlock("alice", SLOT, TAG),
                 lambda: realm.status("alice", SLOT)):
        with pytest.raises(AttemptsExhausted, match="integrity"):
            call()


def test_realm_records_are_apart_from_protocol_3_records(vault: Vault) -> None:
    """Same account and slot: the realm record is its own row; the slot list ignores it."""
    realm, rng = Realm(vault), DetRng(b"t6")
    realm.register("alice", SLOT, _registration(rng))
    assert vault.slots("alice") == []
    assert vault.status("alice", slot=SLOT).exists is False
    assert realm.status("alice", SLOT).exists is True


def test_operator_list_shows_realm_records_and_delete_erases_them(tmp_path: object) -> None:
    import json
    from pathlib import Path

    from click.testing import CliRunner

    from strongroom.cli.main import cli
    from strongroom.vault import _opaque as opaque
    from strongroom.vault.core import VaultPolicy, VaultSecrets
    from strongroom.vault.store_sqlite import SqliteStore

    from .conftest import small_config

    db = str(Path(str(tmp_path)) / "vault.db")
    run = CliRunner().invoke
    assert run(cli, ["vault", "account", "create", "alice", "--db", db]).exit_code == 0
    store = SqliteStore(db)
    try:
        rng = DetRng(b"t7")
        v = Vault(store, VaultSecrets(opaque.ServerSetup.generate(rng), rng(32)), small_config(),
                  VaultPolicy(), rng=rng)
        Realm(v).register("alice", SLOT, _registration(rng))
    finally:
        store.close()
    listed = json.loads(run(cli, ["vault", "account", "list", "--db", db, "--json"]).stdout)
    assert {"account": "alice", "slot": SLOT, "record": "active", "used": 0,
            "realm": True} in listed
    assert run(cli, ["vault", "account", "delete", "alice", "--db", db, "--yes"]).exit_code == 0
    assert json.loads(run(cli, ["vault", "account", "list", "--db", db, "--json"]).stdout) == []


def test_a_staged_registration_shares_the_counter_and_commit_keeps_one(vault: Vault) -> None:
    """realms.md §4.3, §6.2: two registrations side by side answer at most ``limit``
    evaluations together; ``commit`` keeps the named one and needs the proof."""
    realm, rng = Realm(vault), DetRng(b"t-stage")
    old = _registration(rng)
    realm.register("alice", SLOT, old)
    s_i = _group.random_scalar(rng)
    new = RealmRegistration(1, s_i, _group.scalar_mult_base(s_i), b"N" * 32,
                            _group.random_scalar(rng), b"D" * 60,
                            hashlib.sha256(PROOF).digest(), dict(SMALL_KSF))
    with pytest.raises(VaultAuthError):
        realm.register("alice", SLOT, new, keep=old.public_share)
    realm.register("alice", SLOT, new, proof=PROOF, keep=old.public_share)
    st = realm.status("alice", SLOT)
    assert [p for p, _k in st.registrations] == [old.public_share, new.public_share]
    m = _element(rng)
    with pytest.raises(RealmNotRegistered):
        realm.evaluate("alice", SLOT, m, _element(rng))  # no such registration: not counted
    assert realm.status("alice", SLOT).attempts_left == 10
    for n in range(10):
        reg = (old, new)[n % 2]
        ev = realm.evaluate("alice", SLOT, m, reg.public_share)
        assert ev.evaluation == _group.scalar_mult(reg.oprf_share, m)
        assert ev.attempts_left == 9 - n  # one counter for both
    with pytest.raises(AttemptsExhausted):
        realm.evaluate("alice", SLOT, m, old.public_share)
    with pytest.raises(AttemptsExhausted):
        realm.evaluate("alice", SLOT, m, new.public_share)
    # Each tag releases its own registration's share.
    assert realm.unlock("alice", SLOT, b"N" * 32).wrapped_key == b"D" * 60
    assert realm.unlock("alice", SLOT, TAG).wrapped_key == b"C" * 60
    with pytest.raises(VaultAuthError):
        realm.commit("alice", SLOT, new.public_share, b"Q" * 32)
    with pytest.raises(RealmNotRegistered):
        realm.commit("alice", SLOT, _element(rng), PROOF)
    realm.commit("alice", SLOT, new.public_share, PROOF)
    assert [p for p, _k in realm.status("alice", SLOT).registrations] == [new.public_share]
    with pytest.raises(RealmNotRegistered):
        realm.evaluate("alice", SLOT, m, old.public_share)
    # A second stage drops whatever is not kept (a leftover of a change that never ended).
    realm.register("alice", SLOT, old, proof=PROOF, keep=new.public_share)
    realm.register("alice", SLOT, _registration(rng), proof=PROOF, keep=new.public_share)
    shares = [p for p, _k in realm.status("alice", SLOT).registrations]
    assert len(shares) == 2 and shares[0] == new.public_share and old.public_share not in shares


def test_a_lagging_head_catches_up_in_one_step_only_with_the_record_proof(vault: Vault) -> None:
    """realms.md §8: any counter above the current one, with the proof; never backwards."""
    from strongroom.errors import BackupHeadConflict

    realm, rng = Realm(vault), DetRng(b"t-head")
    with pytest.raises(RealmNotRegistered):
        realm.catch_up_head("alice", SLOT, 5, b"H" * 32, PROOF)
    realm.register("alice", SLOT, _registration(rng))
    vault.advance_head("alice", 1, b"A" * 32, slot=SLOT)
    with pytest.raises(VaultAuthError):
        realm.catch_up_head("alice", SLOT, 70, b"H" * 32, b"Q" * 32)
    with pytest.raises(VaultAuthError):
        realm.catch_up_head("alice", SLOT, 70, b"H" * 32, None)
    assert vault.head("alice", slot=SLOT).counter == 1
    realm.catch_up_head("alice", SLOT, 70, b"H" * 32, PROOF)
    assert (vault.head("alice", slot=SLOT).counter, vault.head("alice", slot=SLOT).tag) == (
        70, b"H" * 32)
    for lower in (70, 12):
        with pytest.raises(BackupHeadConflict) as conflict:
            realm.catch_up_head("alice", SLOT, lower, b"L" * 32, PROOF)
        assert conflict.value.current == 70
    with pytest.raises(BackupHeadConflict):
        vault.advance_head("alice", 72, b"B" * 32, slot=SLOT)  # ordinary advances: +1 only
    vault.advance_head("alice", 71, b"B" * 32, slot=SLOT)
    assert vault.head("alice", slot=SLOT).counter == 71


def test_where_the_lock_is_per_record_an_evaluation_is_one_transaction(
        vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL: the evaluation is computed from the row read under the lock, with no
    read of its own before the transaction; a share the record does not hold rolls the
    counted guess back; the count is committed when the answer comes back."""
    realm, rng = Realm(vault), DetRng(b"t8")
    reg = _registration(rng)
    realm.register("alice", SLOT, reg)
    store = vault.store
    transactions = []
    transact = store.transact

    def counted(*args: object, **kw: object) -> object:
        transactions.append(args[0])
        return transact(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "transact", counted)
    if store.locks_per_record:
        def no_read(_key: str) -> None:
            raise AssertionError("a separate read before the evaluation's transaction")
        monkeypatch.setattr(store, "get", no_read)
    m = _element(rng)
    ev = realm.evaluate("alice", SLOT, m)
    assert dleq.verify_proof(B, reg.public_share, [m], [ev.evaluation], ev.proof)
    assert (ev.attempts_left, len(transactions)) == (9, 1)
    with pytest.raises(RealmNotRegistered):
        realm.evaluate("alice", SLOT, m, public_share=_element(rng))
    with pytest.raises(RealmNotRegistered):
        realm.evaluate("bob", SLOT, m)
    monkeypatch.undo()
    row = vault.store.get(realm_key("alice", SLOT))
    assert row is not None and row.used == 1
    assert store.kind == ("postgres" if store.locks_per_record else "sqlite")  # type: ignore[attr-defined]
