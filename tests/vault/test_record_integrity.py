"""Issue 10's attacks on the vault record, replayed against the current code.

* Registration start must not evaluate the OPRF under the live record's key
  (an uncounted OPRF oracle gave offline guessing with one counted login).
* The counter columns are bound to the sealed record by a MAC: an edit is
  refused, never taken as a reset.
* Replacing or deleting an active record needs the record proof (from K).
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from strongroom.errors import AttemptsExhausted, VaultAuthError, VaultSessionInvalid
from strongroom.vault import _opaque as opaque
from strongroom.vault.core import Vault, VaultPolicy, VaultSecrets
from strongroom.vault.store import RecordRow
from strongroom.vault.store_sqlite import SqliteStore

from .conftest import Clock, DetRng, small_config
from .helpers import PROOF, client_finish, ke1_for, register

PW = b"correct horse"
SMALL_ROOT = {"memory_kib": 256, "iterations": 1, "lanes": 1}


def _evaluated_by_login(vault: Vault, blinded: bytes) -> bytes:
    """The evaluated element a counted login start returns for ``blinded``."""
    ke1 = blinded + b"\x11" * 32 + ke1_for(b"any")[0][64:96]
    return vault.login_start("alice", ke1).ke2[:32]


def test_registration_start_is_no_oracle_for_the_live_record(vault: Vault) -> None:
    register(vault, "alice", PW)
    request = opaque.RegistrationClient.start(PW, config=small_config(), rng=DetRng(b"b"))[0]
    # The attack: the same blinded password through registration start (uncounted) and
    # login start (counted) gave the same evaluation, i.e. the live record's OPRF.
    by_login = _evaluated_by_login(vault, request)
    by_registration = vault.registration_start("alice", request).response[:32]
    again = vault.registration_start("alice", request).response[:32]
    assert by_registration != by_login
    assert by_registration != again  # a one-time key per registration start
    # Registration starts spent nothing and the live record still opens.
    assert vault.status("alice").attempts_left == 9
    ke1, st = ke1_for(PW, b"ok")
    s = vault.login_start("alice", ke1)
    ke3, _sk, _ek = client_finish(st, s.ke2)
    vault.login_finish("alice", s.session_id, ke3)
    assert vault.status("alice").attempts_left == 10


def _envelope_opens(candidate: bytes, reg_state: object, reg_response: bytes,
                    ke2: bytes) -> bool:
    """The attacker's offline test: does the candidate's OPRF output, as registration
    start evaluated it, unmask the KE2's credential response to an envelope that verifies?"""
    from strongroom.errors import InvalidLogin
    from strongroom.opaque import _envelope, oprf

    output = oprf.finalize(candidate, reg_state.blind, reg_response[:32])  # type: ignore[attr-defined]
    rwd = _envelope.randomized_password(output, small_config())  # type: ignore[arg-type]
    masking_nonce, masked = ke2[32:64], ke2[64:192]
    unmasked = _envelope.xor(_envelope.credential_response_pad(_envelope.masking_key(rwd),
                                                               masking_nonce), masked)
    try:
        _envelope.recover(rwd, unmasked[:32], unmasked[32:], None, None)
    except InvalidLogin:
        return False
    return True


def test_the_offline_attack_of_issue_10_no_longer_tells_right_from_wrong(vault: Vault) -> None:
    """The whole attack: one counted KE2, then one registration start per candidate.

    With the old code (one OPRF key per account) the right candidate's envelope
    opened (checked by running this test with the old credential identifier);
    now no candidate's does, the right one included.
    """
    register(vault, "alice", PW)
    ke2 = vault.login_start("alice", ke1_for(b"attacker", b"a")[0]).ke2
    opened = []
    for candidate in (b"wrong 1", PW, b"wrong 2"):
        req, st = opaque.RegistrationClient.start(candidate, config=small_config(),
                                                  rng=DetRng(candidate))
        response = vault.registration_start("alice", req).response
        if _envelope_opens(candidate, st, response, ke2):
            opened.append(candidate)
    assert opened == []
    assert vault.status("alice").attempts_left == 9  # only the one login start counted


def test_replacing_an_active_record_needs_the_record_proof(vault: Vault) -> None:
    register(vault, "alice", PW)
    req, st = opaque.RegistrationClient.start(b"mine now", config=small_config(), rng=DetRng(b"t"))
    started = vault.registration_start("alice", req)
    record, _ek = opaque.RegistrationClient.finish(st, started.response, config=small_config(),
                                                   rng=DetRng(b"t"))
    for proof in (None, b"x" * 32, PROOF[:31]):
        with pytest.raises(VaultAuthError):
            vault.registration_finish("alice", record, b"V" * 60,
                                      registration_id=started.registration_id,
                                      proof_verifier=hashlib.sha256(b"x" * 32).digest(),
                                      proof=proof)
    with pytest.raises(VaultAuthError):
        vault.delete("alice")
    assert vault.status("alice").exists and vault.status("alice").attempts_left == 10
    assert vault.delete("alice", PROOF) is True


def test_a_registration_id_is_bound_to_its_account_and_expires(vault: Vault, clock: Clock) -> None:
    req, st = opaque.RegistrationClient.start(PW, config=small_config(), rng=DetRng(b"r"))
    started = vault.registration_start("alice", req)
    record, _ek = opaque.RegistrationClient.finish(st, started.response, config=small_config(),
                                                   rng=DetRng(b"r"))
    verifier = hashlib.sha256(PROOF).digest()
    for reg_id in ("", "AAAA", started.registration_id[:-2] + "AA"):
        with pytest.raises(VaultSessionInvalid):
            vault.registration_finish("alice", record, b"W" * 60, registration_id=reg_id,
                                      proof_verifier=verifier)
    with pytest.raises(VaultSessionInvalid):
        vault.registration_finish("bob", record, b"W" * 60,
                                  registration_id=started.registration_id, proof_verifier=verifier)
    clock.now += 61
    with pytest.raises(VaultSessionInvalid):
        vault.registration_finish("alice", record, b"W" * 60,
                                  registration_id=started.registration_id, proof_verifier=verifier)
    assert vault.store.get("alice") is None and vault.store.get("bob") is None


def _sqlite_vault(tmp_path: Path, secrets: VaultSecrets, clock: Clock) -> Vault:
    return Vault(SqliteStore(tmp_path / "v.db"), secrets, small_config(),
                 VaultPolicy(attempt_limit=10, session_ttl=60), clock=clock, rng=DetRng(b"v"))


def _sql(tmp_path: Path, statement: str, *args: object) -> None:
    with sqlite3.connect(tmp_path / "v.db") as db:
        db.execute(statement, args)


@pytest.mark.parametrize("edit", [
    "UPDATE records SET used = 0",
    "UPDATE records SET lim = 1000",
    "UPDATE records SET state = 'active', used = 0",
    "UPDATE records SET mac = NULL, used = 0",
    "UPDATE records SET generation = generation + 1",
])
def test_an_edited_counter_is_refused_never_reset(tmp_path: Path, edit: str) -> None:
    vault = _served_vault(tmp_path)  # as `vault serve` builds it (creates the sealed secrets)
    register(vault, "alice", PW)
    for i in range(3):
        vault.login_start("alice", ke1_for(b"wrong", bytes([i]))[0])
    assert vault.status("alice").attempts_left == 7
    _sql(tmp_path, edit)
    for call in (lambda: vault.status("alice"),
                 lambda: vault.login_start("alice", ke1_for(PW, b"r")[0])):
        with pytest.raises(AttemptsExhausted) as exc:
            call()
        assert "integrity" in exc.value.message
    # A restart (same secrets) does not re-sign it: that is the operator's explicit flag.
    with pytest.raises(AttemptsExhausted):
        _served_vault(tmp_path).status("alice")


def _served_vault(tmp_path: Path) -> Vault:
    from strongroom.vault.server import VaultSettings, build_vault

    return build_vault(VaultSettings(database=str(tmp_path / "v.db"),
                                     secrets=str(tmp_path / "secrets.json"), passphrase="pass",
                                     software_kdf=SMALL_ROOT, session_ttl=60))


def test_a_locked_record_cannot_be_brought_back_by_editing_columns(
        tmp_path: Path, secrets: VaultSecrets, clock: Clock) -> None:
    vault = _sqlite_vault(tmp_path, secrets, clock)
    register(vault, "alice", PW)
    for i in range(10):
        vault.login_start("alice", ke1_for(b"wrong", bytes([i]))[0])
    assert vault.status("alice").locked
    _sql(tmp_path, "UPDATE records SET state = 'active', used = 0")
    with pytest.raises(AttemptsExhausted):
        vault.login_start("alice", ke1_for(PW, b"r")[0])


def test_rows_of_an_older_vault_are_signed_once(tmp_path: Path, secrets: VaultSecrets,
                                                clock: Clock) -> None:
    vault = _sqlite_vault(tmp_path, secrets, clock)
    register(vault, "alice", PW)
    vault.login_start("alice", ke1_for(b"wrong")[0])
    row = vault.store.get("alice")
    assert isinstance(row, RecordRow) and row.mac is not None
    _sql(tmp_path, "UPDATE records SET mac = NULL")  # as an older version left it
    assert vault.sign_unsigned_rows() == 1
    assert vault.sign_unsigned_rows() == 0
    assert vault.status("alice").attempts_left == 9  # the count carried over, not reset
